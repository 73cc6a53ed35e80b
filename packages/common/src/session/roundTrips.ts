/**
 * Sequential INCR round trips on one plain connection: the latency a client sees for a write whose
 * reply the primary holds until the backup acknowledges it. The replication benchmark and the chaos
 * tests both measure output latency this way.
 */
import { PlainClient } from './plainClient.ts';

export interface RoundTripOptions {
  /** Measured requests. */
  count: number;
  /** Requests sent first and not measured (connection and JIT warm-up). */
  warmup?: number;
  key?: string;
  /**
   * Waits a random 0..spreadMs between requests. With spreadMs = the epoch length requests land at
   * uniformly random points of an epoch; without it each request follows the previous reply, i.e.
   * the release just after an ack, and waits nearly a whole epoch every time.
   */
  spreadMs?: number;
  host?: string;
}

/** Returns the measured latencies in milliseconds, in the order they were taken. */
export async function incrRoundTrips(port: number, options: RoundTripOptions): Promise<number[]> {
  const client = new PlainClient({ servers: [`${options.host ?? '127.0.0.1'}:${port}`] });
  const key = options.key ?? 'latency';
  const warmup = options.warmup ?? 0;
  const spreadMs = options.spreadMs;
  const latencies: number[] = [];
  try {
    for (let i = 0; i < warmup + options.count; i++) {
      const started = performance.now();
      await client.request(['INCR', key]);
      if (i >= warmup) latencies.push(performance.now() - started);
      if (spreadMs) await new Promise((resolve) => setTimeout(resolve, Math.random() * spreadMs));
    }
  } finally {
    client.close();
  }
  return latencies;
}
