import { assert, SettingError } from './errors.ts';

/**
 * Replication defaults and the relations between them (TigerBeetle style: one place for every
 * limit, relations asserted when the module loads, units last in names).
 */
export const EPOCH_MS_DEFAULT = 20;
export const EPOCH_MS_MIN = 1;
export const EPOCH_MS_MAX = 10_000;
export const HEARTBEAT_MS_DEFAULT = 20;
/**
 * 300 ms, not 100: on this VM a process that does nothing waits up to ~180 ms to be scheduled
 * while others run (BENCHMARKS.md, "False takeovers"); at 100 ms healthy primaries were taken over
 * several times an hour even with heartbeats from their own thread. docker-compose.yml, the demo
 * and two-hosts.sh already ran with 300 ms for the same reason.
 */
export const FAILOVER_TIMEOUT_MS_DEFAULT = 300;
/** A peer is declared dead only after this many heartbeat intervals of silence. */
export const FAILOVER_TIMEOUT_HEARTBEATS_MIN = 3;
/**
 * When every connection of the primary (control, bulk and its heartbeat thread's) was closed from
 * the primary's side (FIN or RST from its kernel, or its GOODBYE), the backup takes over after this
 * many heartbeat intervals (capped at the failover timeout) unless a frame or a re-authenticated
 * primary comes first. A killed or crashed process is closed by its kernel within a round trip;
 * the grace is for a live primary whose connections something on the path cut, which reconnects
 * BACKUP_RECONNECT_FIRST_MS later. A partition or a dead host closes nothing and keeps the timeout.
 */
export const PRIMARY_CLOSED_GRACE_HEARTBEATS = 3;
/** The longest a daemon's ticker sleeps between two ticks while it has nothing due (ticker.ts). */
export const TICK_WAIT_MS_MAX = 10;
/**
 * Of a gap between two ticks of the backup, at most this much counts as the primary's silence. A
 * longer gap means this node did not run (its thread was busy, or its host did not schedule it —
 * on this VM the hypervisor steals 15-20 % of the CPU): what it did not watch is not silence it
 * saw. A backup that ticks on time counts all of it, so a dead primary is taken over on time.
 */
export const SILENCE_PER_TICK_MS_MAX = 25;
/** Checkpoints captured but not yet acknowledged, before the primary stalls the guest. */
export const CHECKPOINTS_IN_FLIGHT_MAX_DEFAULT = 3;
/**
 * A primary without its backup tries to reach it again after this long, doubling at each failure
 * up to BACKUP_RECONNECT_MAX_MS (each delay jittered down by up to half, so that primaries cut off
 * together do not knock in step). The cap bounds how long a healed link waits to be noticed.
 */
export const BACKUP_RECONNECT_MS = 500;
export const BACKUP_RECONNECT_MAX_MS = 2_000;
/** After dropping a live connection, the first reconnection attempt comes this soon. */
export const BACKUP_RECONNECT_FIRST_MS = 20;
/**
 * Silence after which the primary drops its backup. Longer than the backup's failover timeout on
 * purpose: output is held either way, while a drop costs a full resynchronisation — and a drop
 * provoked by a short stall of the backup would only invite a needless takeover.
 */
export const BACKUP_SILENCE_MS_MIN = 1_000;
export function backupSilenceMs(failoverTimeoutMs: number): number {
  return Math.max(BACKUP_SILENCE_MS_MIN, 10 * failoverTimeoutMs);
}
/**
 * A primary's main thread that has not run for this long is hung, not busy: its heartbeat thread
 * stops sending, so that the backup takes over. Stalls on a loaded machine last tens to a few
 * hundred milliseconds and must not cost a takeover; a thread stuck for seconds serves nobody.
 */
export const MAIN_THREAD_HUNG_MS_MIN = 1_000;
export function mainThreadHungMs(failoverTimeoutMs: number): number {
  return Math.max(MAIN_THREAD_HUNG_MS_MIN, 10 * failoverTimeoutMs);
}
/** Pages of the primary's delta cache (what the backup holds), for XOR-RLE encoding. */
export const DELTA_CACHE_PAGES_DEFAULT = 16_384;

assert(FAILOVER_TIMEOUT_MS_DEFAULT >= FAILOVER_TIMEOUT_HEARTBEATS_MIN * HEARTBEAT_MS_DEFAULT, 'default timeout covers three heartbeats');
assert(CHECKPOINTS_IN_FLIGHT_MAX_DEFAULT >= 1, 'at least one checkpoint may be in flight');
assert(
  BACKUP_RECONNECT_FIRST_MS <= BACKUP_RECONNECT_MS && BACKUP_RECONNECT_MS <= BACKUP_RECONNECT_MAX_MS,
  'reconnection delays grow from the first to the cap',
);
assert(
  PRIMARY_CLOSED_GRACE_HEARTBEATS * HEARTBEAT_MS_DEFAULT >= 2 * BACKUP_RECONNECT_FIRST_MS &&
    PRIMARY_CLOSED_GRACE_HEARTBEATS * HEARTBEAT_MS_DEFAULT < FAILOVER_TIMEOUT_MS_DEFAULT,
  'the closed-connection grace leaves a reconnecting primary time to come back, and is shorter than the timeout',
);
assert(SILENCE_PER_TICK_MS_MAX >= 2 * TICK_WAIT_MS_MAX, 'a backup that ticks on time, even a little late, counts all of the silence');
assert(SILENCE_PER_TICK_MS_MAX <= FAILOVER_TIMEOUT_MS_DEFAULT / 3, 'one stall of the backup is never most of the timeout');
assert(
  mainThreadHungMs(FAILOVER_TIMEOUT_MS_DEFAULT) >= 3 * FAILOVER_TIMEOUT_MS_DEFAULT,
  'a main thread is called hung only well after a silent primary would be taken over',
);

/**
 * What a primary does with output while it has no synchronised backup, after a backup received a
 * checkpoint of its generation: `hold` it until a backup is synchronised again (safe: a backup
 * that took over has every output released), or `continue-unsafe`: release it, which is split
 * brain whenever the backup is alive behind a partition (both nodes answer clients, and what the
 * old primary acknowledged is lost when the clients move to the new one). Plain `continue` is
 * refused so that nobody chooses it without naming the risk.
 */
export type BackupLossPolicy = 'hold' | 'continue-unsafe';
export const BACKUP_LOSS_POLICIES: readonly BackupLossPolicy[] = ['hold', 'continue-unsafe'];

export interface TimingConfig {
  epochMs: number;
  heartbeatMs: number;
  failoverTimeoutMs: number;
}

/** Checks the timing settings together; errors name the setting. */
export function validateTiming(config: TimingConfig): TimingConfig {
  const { epochMs, heartbeatMs, failoverTimeoutMs } = config;
  if (!Number.isFinite(epochMs) || epochMs < EPOCH_MS_MIN || epochMs > EPOCH_MS_MAX) {
    throw new SettingError('epoch-ms', `must be from ${EPOCH_MS_MIN} to ${EPOCH_MS_MAX}, got ${epochMs}`);
  }
  if (!Number.isFinite(heartbeatMs) || heartbeatMs < 1) throw new SettingError('heartbeat-ms', `must be at least 1, got ${heartbeatMs}`);
  if (!Number.isFinite(failoverTimeoutMs) || failoverTimeoutMs < FAILOVER_TIMEOUT_HEARTBEATS_MIN * heartbeatMs) {
    throw new SettingError(
      'failover-timeout-ms',
      `${failoverTimeoutMs} must be at least ${FAILOVER_TIMEOUT_HEARTBEATS_MIN} × heartbeat-ms (${heartbeatMs}) = ${FAILOVER_TIMEOUT_HEARTBEATS_MIN * heartbeatMs}`,
    );
  }
  return config;
}
