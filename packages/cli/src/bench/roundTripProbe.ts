/**
 * The client of `hbft bench replication`'s latency part, run inside the bench's network namespace
 * (where the guest's IP is reachable): sequential INCR round trips on one plain RESP connection to
 * the guest, as `incrRoundTrips` takes them. Prints `{"latenciesMs":[…]}` as one JSON line.
 *
 *   roundTripProbe.ts HOST PORT COUNT WARMUP SPREAD_MS
 */
import { incrRoundTrips } from '@hbft/common/session/roundTrips.ts';

const [host, port, count, warmup, spreadMs] = process.argv.slice(2);
const numbers = [port, count, warmup, spreadMs].map(Number);
if (host === undefined || numbers.some((n) => !Number.isInteger(n) || n < 0))
  throw new Error('usage: roundTripProbe.ts HOST PORT COUNT WARMUP SPREAD_MS (whole numbers)');
const [portNumber, countNumber, warmupNumber, spread] = numbers as [number, number, number, number];
const latenciesMs = await incrRoundTrips(portNumber, { host, count: countNumber, warmup: warmupNumber, spreadMs: spread });
process.stdout.write(`${JSON.stringify({ latenciesMs })}\n`);
