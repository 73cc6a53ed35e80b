import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '@hbft/common/tsWorker.ts';
import type { AuthConfig } from '@hbft/common/protocol/auth.ts';

/** Where the heartbeat thread connects and who it says it is (structured-clone safe). */
export interface HeartbeatThreadData {
  host: string;
  port: number;
  /** The pre-shared key as bytes (a Buffer does not survive the copy into a worker), or insecure mode. */
  auth: { mode: 'hmac'; key: Uint8Array } | { mode: 'insecure' };
  memoryBytes: number;
  guestImageHash: Uint8Array;
  generation: number;
  instanceId: Uint8Array;
  heartbeatMs: number;
  /** The main thread's pulse older than this: it is hung, and the heartbeats stop. */
  mainThreadHungMs: number;
  /** One BigInt64 slot: when the main thread last ran (ms since the Unix epoch, both threads' clock). */
  pulse: SharedArrayBuffer;
  logLevel: string;
}

export type ToHeartbeatThread = { type: 'connect'; sessionId: Uint8Array } | { type: 'stop' };

/** Milliseconds since the Unix epoch at sub-millisecond resolution, comparable between threads. */
export function sharedClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * The primary's heartbeats, sent from a thread of their own on a connection of their own (the
 * heartbeat channel: the control channel's transport and authentication, paired with the session
 * by its id), so that a main thread busy for a few hundred milliseconds — a burst of clients, a
 * GC, the machine's scheduler — does not look like a dead primary. The main thread stores a pulse
 * every heartbeat interval; the thread stops sending once that pulse is older than
 * `mainThreadHungMs`, so that a primary whose main thread is really stuck is taken over.
 */
export class HeartbeatThread {
  private readonly worker: Worker;
  private readonly pulse: BigInt64Array;
  private readonly pulseTimer: NodeJS.Timeout;
  private stopped = false;

  constructor(options: Omit<HeartbeatThreadData, 'auth' | 'pulse'> & { auth: AuthConfig }) {
    const pulse = new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT);
    this.pulse = new BigInt64Array(pulse);
    this.beat();
    const data: HeartbeatThreadData = {
      ...options,
      auth: options.auth.mode === 'hmac' ? { mode: 'hmac', key: new Uint8Array(options.auth.key) } : { mode: 'insecure' },
      pulse,
    };
    this.worker = startTsWorker(new URL('./heartbeatThreadMain.ts', import.meta.url), { workerData: data });
    this.worker.unref();
    this.pulseTimer = setInterval(() => this.beat(), options.heartbeatMs);
    this.pulseTimer.unref();
  }

  private beat(): void {
    Atomics.store(this.pulse, 0, BigInt(Math.round(sharedClockMs())));
  }

  /** The link's control and bulk channels are up for `sessionId`: join it with the heartbeat channel. */
  connect(sessionId: Buffer): void {
    if (!this.stopped) this.worker.postMessage({ type: 'connect', sessionId: new Uint8Array(sessionId) } satisfies ToHeartbeatThread);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.pulseTimer);
    const exited = once(this.worker, 'exit');
    this.worker.postMessage({ type: 'stop' } satisfies ToHeartbeatThread);
    const timer = setTimeout(() => void this.worker.terminate(), 2_000);
    await exited.catch(() => {});
    clearTimeout(timer);
  }
}
