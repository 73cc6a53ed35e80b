/*
 * The primary's heartbeat thread (see heartbeatThread.ts). It runs the same transport,
 * authentication and frame code as the main thread, on a connection of its own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { assert } from '@hbft/common/errors.ts';
import { createLogger } from '@hbft/common/log.ts';
import { BACKUP_RECONNECT_MS } from '@hbft/common/constants.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import { connectControl, type ControlConnection } from '@hbft/common/transport/control.ts';
import { primaryHandshake } from './backupLink.ts';
import { sharedClockMs, type HeartbeatThreadData, type ToHeartbeatThread } from './heartbeatThread.ts';

const data = workerData as HeartbeatThreadData;
const pulse = new BigInt64Array(data.pulse);
const logger = createLogger({ role: 'primary', level: data.logLevel }).child({ generation: data.generation, thread: 'heartbeat' });
const auth = data.auth.mode === 'hmac' ? { mode: 'hmac' as const, key: Buffer.from(data.auth.key) } : { mode: 'insecure' as const };
const identity = {
  memoryBytes: data.memoryBytes,
  guestImageHash: Buffer.from(data.guestImageHash),
  generation: data.generation,
  instanceId: Buffer.from(data.instanceId),
};
const limits = protocolLimitsFor(data.memoryBytes);

/** The session to join (the link's current one), or null. */
let sessionId: Buffer | null = null;
let connection: ControlConnection | null = null;
/** The connection has passed the handshake for `sessionId`. */
let joined = false;
let connecting = false;
let retryTimer: NodeJS.Timeout | null = null;
let hungReported = false;
let stopping = false;

async function join(): Promise<void> {
  if (connecting || stopping || sessionId === null) return;
  connecting = true;
  const session = sessionId;
  let next: ControlConnection | null = null;
  try {
    next = await connectControl({ host: data.host, port: data.port, auth, limits, logger, channel: 'heartbeat' });
    await primaryHandshake(next, 'heartbeat', session, identity);
    if (stopping || sessionId !== session) throw new Error('the session changed while joining');
    connection = next;
    joined = true;
    logger.info('heartbeat channel joined the session');
    next.on('close', (info) => {
      if (connection !== next) return;
      connection = null;
      joined = false;
      if (stopping || sessionId !== session) return;
      logger.warn({ code: info.code, reason: info.reason }, 'heartbeat channel lost; joining again');
      scheduleJoin();
    });
  } catch (error) {
    next?.close('handshake failed');
    const reason = (error as Error).message;
    // A refusal means the backup no longer has this session: wait for the link's next one.
    if (/E_HANDSHAKE|E_DEPOSED|E_STALE/.test(reason)) {
      if (sessionId === session) sessionId = null;
      logger.warn({ reason }, 'the backup refused the heartbeat channel');
    } else if (sessionId === session) {
      scheduleJoin();
    }
  } finally {
    connecting = false;
  }
}

function scheduleJoin(): void {
  if (retryTimer !== null || stopping) return;
  retryTimer = setTimeout(() => {
    retryTimer = null;
    void join();
  }, BACKUP_RECONNECT_MS);
}

function sendHeartbeat(): void {
  if (!joined || connection === null) return;
  const mainSilentMs = sharedClockMs() - Number(Atomics.load(pulse, 0));
  if (mainSilentMs > data.mainThreadHungMs) {
    if (!hungReported)
      logger.error({ mainSilentMs: Math.round(mainSilentMs) }, 'the main thread is hung: heartbeats stop so that the backup takes over');
    hungReported = true;
    return;
  }
  if (hungReported) logger.warn('the main thread runs again: heartbeats resume');
  hungReported = false;
  connection.send(FrameKind.HEARTBEAT, { sentAtMs: Math.max(0, performance.now()) }, { generation: data.generation });
}

/** A gap between two heartbeats longer than this is logged: this thread itself did not run. */
const STALL_WARN_MS = 50;
let lastBeatMs = performance.now();
const heartbeatTimer = setInterval(() => {
  const now = performance.now();
  const gapMs = now - lastBeatMs;
  lastBeatMs = now;
  // The heartbeat thread runs almost nothing, so a gap here is the process not being scheduled.
  if (gapMs > data.heartbeatMs + STALL_WARN_MS) logger.warn({ stallMs: Math.round(gapMs - data.heartbeatMs) }, 'heartbeat thread stalled');
  sendHeartbeat();
}, data.heartbeatMs);

const parent = parentPort;
assert(parent !== null, 'heartbeatThreadMain runs only as a worker thread');

parent.on('message', (message: ToHeartbeatThread) => {
  if (message.type === 'connect') {
    const next = Buffer.from(message.sessionId);
    if (sessionId?.equals(next)) return;
    sessionId = next;
    // The old session's connection goes; the backup closes it as well when it drops that session.
    const old = connection;
    connection = null;
    joined = false;
    old?.close('a new session');
    void join();
  } else if (message.type === 'stop') {
    stopping = true;
    clearInterval(heartbeatTimer);
    if (retryTimer !== null) clearTimeout(retryTimer);
    connection?.close('the primary is shutting down');
    // Let the GOODBYE leave, then end the thread.
    setTimeout(() => process.exit(0), 50);
  }
});
