import { assert } from '@hbft/common/errors.ts';
import type { BackupLossPolicy } from '@hbft/common/constants.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What the driver must do, in order. The state machine never touches sockets, timers or threads. */
export type PrimaryEffect =
  | { type: 'requestCapture'; epoch: number }
  | { type: 'pauseGuest' }
  | { type: 'resumeGuest' }
  /** Begin sending every non-zero page to the backup, then FULL_SYNC_END. */
  | { type: 'startFullSync' }
  /** Encode and send captured checkpoint `epoch` (the driver holds its data). */
  | { type: 'sendCheckpoint'; epoch: number }
  /** Free a captured checkpoint's staging without sending it (no backup to send it to). */
  | { type: 'discardCheckpoint'; epoch: number }
  | { type: 'sendHeartbeat' }
  /**
   * Epoch `epoch` and every one before it are committed (acknowledged, or released without a
   * backup): the driver sends their held frames (primary/src/frameLedger.ts).
   */
  | { type: 'commit'; epoch: number }
  /** Close the replication connections (the driver will try to reconnect later). */
  | { type: 'dropBackup'; reason: string }
  | { type: 'log'; level: LogLevel; message: string; fields?: Record<string, unknown> };

export type ProtectionMode = 'unprotected' | 'syncing' | 'protected';

/**
 * How output leaves the primary now: `committed`, on the backup's acks; `syncing`, held until a
 * backup being synchronised acks a checkpoint; `holding`, held with no backup at all
 * (--on-backup-loss hold); `unprotected`, released at once, without a backup's ack.
 */
export type OutputRelease = 'committed' | 'syncing' | 'holding' | 'unprotected';

export interface PrimaryReplicatorConfig {
  epochMs: number;
  heartbeatMs: number;
  /** Silence from the backup after which it is dropped (see constants.backupSilenceMs). */
  backupSilenceMs: number;
  checkpointsInFlightMax: number;
  onBackupLoss: BackupLossPolicy;
  /**
   * What happens to output before the first checkpoint of this generation goes to a backup.
   * `release` when no other node can hold this generation's state: a promoted primary (the old
   * primary holds its output or is dead, and nobody else has its state) or a primary without a
   * backup. A primary that booted with a backup `hold`s until its first sync: it may be a deposed
   * primary that an operator restarted, and the handshake is what tells it so.
   */
  outputBeforeFirstCheckpoint: 'release' | 'hold';
  /** The epoch the guest is running in at start (0 at boot, later after a promotion). */
  firstEpoch: number;
  nowMs: number;
}

interface InFlight {
  epoch: number;
  capturedAtMs: number;
}

export interface PrimaryStatus {
  mode: ProtectionMode;
  /** True while output waits for a backup that is not there or not yet synchronised (see `outputRelease`). */
  outputHeld: boolean;
  outputRelease: OutputRelease;
  epoch: number;
  checkpointsInFlight: number;
  stalled: boolean;
  lastCommittedEpoch: number | null;
  lastAckLatencyMs: number | null;
  /** Time since the last acknowledgement: how far behind the backup's state may be. */
  msSinceLastAck: number | null;
  msSinceBackupHeard: number | null;
}

/**
 * The primary's replication protocol as a pure state machine (etcd-raft style: inputs are clock
 * ticks, worker events and backup messages; outputs are effects for the driver).
 *
 * The order the driver must follow (style.md): capture → resume → send → release on ack. Output
 * of epoch e is released only after the backup acknowledges checkpoint e (output commit); acks
 * are cumulative because the backup applies checkpoints in order. The replicator holds no output
 * itself: it says which epoch is committed (`commit`), and the driver's frame ledger releases the
 * frames the guest sent through that epoch (frameLedger.ts). At most
 * `checkpointsInFlightMax` checkpoints may wait for an ack: at an epoch boundary beyond that the
 * guest is stalled, and the next ack ends the epoch and resumes it.
 *
 * The rule that keeps a pair of nodes without an arbiter from split brain, in every generation:
 * a primary releases output of epoch e only when every node that could take over from it holds a
 * state at or past e. A backup can take over only from a complete checkpoint it applied, so:
 * - before the first checkpoint of this generation goes to a backup, no other node can take over
 *   with this generation's state, and a promoted primary (or one without a backup) may release
 *   output at once (`outputBeforeFirstCheckpoint: 'release'`); a primary that booted holds until
 *   its first sync;
 * - from the first checkpoint sent in this generation, output is released only through acks: a
 *   backup may apply that checkpoint (and so be able to take over from it) before its ack arrives;
 * - after losing that backup the primary follows --on-backup-loss: `hold` (the default) until a
 *   backup is synchronised again; `continue-unsafe` releases output that a backup which takes over
 *   will not have, which is split brain under a partition.
 */
export class PrimaryReplicator {
  private readonly config: PrimaryReplicatorConfig;
  private mode: ProtectionMode = 'unprotected';
  /** The epoch the guest is running in. */
  private epoch: number;
  private capturing = false;
  private stalled = false;
  private stallStartedMs = 0;
  private nextEpochAtMs: number;
  private nextHeartbeatAtMs: number;
  private lastHeardMs = 0;
  private readonly inFlight: InFlight[] = [];
  private lastCommittedEpoch: number | null = null;
  private lastAckLatencyMs: number | null = null;
  private lastAckAtMs: number | null = null;
  /** Ack latencies since last read (for the metrics histogram). */
  private ackLatenciesMs: number[] = [];
  private stallMs = 0;
  /**
   * A checkpoint of this generation has gone to a backup: from now on a backup may hold this
   * generation's state and take over from it, so output waits for acks (see the class comment).
   */
  private checkpointSent = false;
  /**
   * A full synchronisation is being sent. It reads RAM while the guest runs, so the replica holds
   * pages of different moments until it applies a checkpoint captured after the last page was
   * read; one captured before would leave pages of later epochs beside an earlier CPU state, and
   * the backup would count itself able to take over from that. So the running epoch does not end
   * until the sync is sent: its checkpoint, the first the backup gets, holds every page written
   * since the sync began (dirty pages are a set, so the long epoch's staging is at most RAM's size).
   */
  private fullSyncPending = false;
  /** The backup is connected and its full synchronisation waits for the capture under way. */
  private fullSyncWaitsForCapture = false;

  constructor(config: PrimaryReplicatorConfig) {
    assert(config.checkpointsInFlightMax >= 1, 'at least one checkpoint in flight');
    this.config = config;
    this.epoch = config.firstEpoch;
    this.nextEpochAtMs = config.nowMs + config.epochMs;
    this.nextHeartbeatAtMs = config.nowMs;
  }

  status(nowMs: number): PrimaryStatus {
    const outputRelease = this.outputRelease();
    return {
      mode: this.mode,
      outputHeld: outputRelease === 'syncing' || outputRelease === 'holding',
      outputRelease,
      epoch: this.epoch,
      checkpointsInFlight: this.inFlight.length,
      stalled: this.stalled,
      lastCommittedEpoch: this.lastCommittedEpoch,
      lastAckLatencyMs: this.lastAckLatencyMs,
      msSinceLastAck: this.lastAckAtMs === null ? null : nowMs - this.lastAckAtMs,
      msSinceBackupHeard: this.mode === 'unprotected' ? null : nowMs - this.lastHeardMs,
    };
  }

  private outputRelease(): OutputRelease {
    if (this.releasesUnprotected()) return 'unprotected';
    if (this.mode === 'protected') return 'committed';
    return this.mode === 'syncing' ? 'syncing' : 'holding';
  }

  /** Whether output may go to clients without a backup's ack now (the rule in the class comment). */
  private releasesUnprotected(): boolean {
    if (!this.checkpointSent) return this.config.outputBeforeFirstCheckpoint === 'release';
    return this.mode === 'unprotected' && this.config.onBackupLoss === 'continue-unsafe';
  }

  /** Whether output produced now may leave at once, without waiting for its epoch to commit. */
  get releasesWithoutAck(): boolean {
    return this.releasesUnprotected();
  }

  /** Ack latencies observed since the last call (each a capture → ack time in ms). */
  takeAckLatencies(): number[] {
    const latencies = this.ackLatenciesMs;
    this.ackLatenciesMs = [];
    return latencies;
  }

  /** Total time the guest has spent stalled waiting for the backup. */
  get stalledMs(): number {
    return this.stallMs;
  }

  /**
   * The earliest moment `tick` has something to do: the epoch boundary, the next heartbeat, the
   * backup's silence limit. Events either act at once (an ack ends a stall) or move these later
   * (a frame from the backup), so the driver may sleep until then; an overdue boundary (a capture
   * or a stall still in progress) reads as due.
   */
  nextDeadlineMs(): number {
    if (this.mode === 'unprotected') return this.nextEpochAtMs;
    // No boundary while the full synchronisation is sent (onFullSyncSent comes from the driver,
    // whose ticker sleeps at most a few milliseconds, so the boundary is not noticed much later).
    const boundary = this.fullSyncPending ? Infinity : this.nextEpochAtMs;
    return Math.min(boundary, this.nextHeartbeatAtMs, this.lastHeardMs + this.config.backupSilenceMs + 1);
  }

  tick(nowMs: number): PrimaryEffect[] {
    const effects: PrimaryEffect[] = [];
    if (this.mode !== 'unprotected') {
      if (nowMs - this.lastHeardMs > this.config.backupSilenceMs) {
        const reason = `no frame from the backup for ${Math.round(nowMs - this.lastHeardMs)} ms (limit ${this.config.backupSilenceMs} ms)`;
        effects.push({ type: 'dropBackup', reason }, ...this.loseBackup(reason, nowMs));
      } else if (nowMs >= this.nextHeartbeatAtMs) {
        effects.push({ type: 'sendHeartbeat' });
        this.nextHeartbeatAtMs = nowMs + this.config.heartbeatMs;
      }
    }
    if (nowMs >= this.nextEpochAtMs && !this.capturing && !this.stalled && !this.fullSyncPending) {
      // Boundaries stay on a fixed grid (a tick a millisecond late does not stretch every epoch);
      // after falling a whole epoch behind, the grid restarts from now.
      const next = this.nextEpochAtMs + this.config.epochMs;
      this.nextEpochAtMs = next > nowMs ? next : nowMs + this.config.epochMs;
      // While the full synchronisation runs, staging space bounds what waits (the guest's thread
      // blocks on it); once protected, the in-flight bound keeps output latency bounded too.
      if (this.mode === 'protected' && this.inFlight.length >= this.config.checkpointsInFlightMax) {
        this.stalled = true;
        this.stallStartedMs = nowMs;
        effects.push({ type: 'pauseGuest' });
        effects.push({
          type: 'log',
          level: 'debug',
          message: 'backup behind: guest stalled at the epoch boundary',
          fields: { inFlight: this.inFlight.length, epoch: this.epoch },
        });
      } else {
        this.capturing = true;
        effects.push({ type: 'requestCapture', epoch: this.epoch });
      }
    }
    return effects;
  }

  onCaptured(epoch: number, nowMs: number): PrimaryEffect[] {
    assert(epoch === this.epoch, `captured epoch ${epoch} is the running epoch ${this.epoch}`);
    this.capturing = false;
    this.epoch = epoch + 1;
    if (this.mode === 'unprotected' || this.fullSyncWaitsForCapture) {
      // Without a backup nobody needs the checkpoint. A full synchronisation that waited for this
      // capture starts now: it reads every page after this moment, and the epoch that starts here
      // holds every page written while it runs.
      const effects: PrimaryEffect[] = [{ type: 'discardCheckpoint', epoch }];
      if (this.releasesUnprotected()) effects.push(...this.commit(epoch));
      if (this.fullSyncWaitsForCapture) {
        this.fullSyncWaitsForCapture = false;
        effects.push(...this.startFullSync());
      }
      return effects;
    }
    const effects: PrimaryEffect[] = [];
    // Output of this epoch and before that went out unprotected is in this checkpoint's state;
    // from here on a backup may hold that state, so nothing more is released without its ack.
    if (this.releasesUnprotected()) effects.push(...this.commit(epoch));
    if (!this.checkpointSent) {
      this.checkpointSent = true;
      effects.push({
        type: 'log',
        level: 'info',
        message: "first checkpoint of this generation sent: output is released only on the backup's acks from now on",
        fields: { epoch },
      });
    }
    this.inFlight.push({ epoch, capturedAtMs: nowMs });
    effects.push({ type: 'sendCheckpoint', epoch });
    return effects;
  }

  /** Both channels are up and the handshake matched: synchronise the backup from scratch. */
  onBackupReady(nowMs: number): PrimaryEffect[] {
    const effects: PrimaryEffect[] = this.inFlight.map((f) => ({ type: 'discardCheckpoint', epoch: f.epoch }) as PrimaryEffect);
    this.inFlight.length = 0;
    this.mode = 'syncing';
    this.fullSyncPending = true;
    this.lastHeardMs = nowMs;
    this.nextHeartbeatAtMs = nowMs;
    // A capture under way ends an epoch whose pages the sync might read before or after it: the
    // sync waits for it (onCaptured), so that one epoch boundary precedes every page it reads.
    if (this.capturing) this.fullSyncWaitsForCapture = true;
    else effects.push(...this.startFullSync());
    return effects;
  }

  private startFullSync(): PrimaryEffect[] {
    return [{ type: 'startFullSync' }, { type: 'log', level: 'info', message: 'backup connected: full synchronisation started' }];
  }

  /**
   * The driver has read and handed over every page of the full synchronisation: the running epoch
   * may end, and its checkpoint is the first the backup gets.
   */
  onFullSyncSent(): void {
    if (this.mode === 'syncing') this.fullSyncPending = false;
  }

  onBackupHeard(nowMs: number): void {
    this.lastHeardMs = nowMs;
  }

  /** The connections to the backup broke or were refused. */
  onBackupLost(reason: string, nowMs: number): PrimaryEffect[] {
    if (this.mode === 'unprotected') return [];
    return this.loseBackup(reason, nowMs);
  }

  private loseBackup(reason: string, nowMs: number): PrimaryEffect[] {
    const effects: PrimaryEffect[] = this.inFlight.map((f) => ({ type: 'discardCheckpoint', epoch: f.epoch }) as PrimaryEffect);
    this.inFlight.length = 0;
    this.mode = 'unprotected';
    this.fullSyncPending = false;
    this.fullSyncWaitsForCapture = false;
    const policy = !this.checkpointSent
      ? this.releasesUnprotected()
        ? 'no backup has received a checkpoint of this generation, so none can take over: output keeps flowing'
        : 'holding all output until a backup is synchronised'
      : this.config.onBackupLoss === 'hold'
        ? 'holding all output until a backup is synchronised (on backup loss: hold)'
        : 'RUNNING UNPROTECTED: output is released without a backup; if the backup is alive it may take over and clients will lose what this node acknowledges (on backup loss: continue-unsafe)';
    effects.push({ type: 'log', level: 'error', message: `backup lost: ${reason}; ${policy}` });
    effects.push(...this.endStall(nowMs));
    return effects;
  }

  onAck(epoch: number, nowMs: number): PrimaryEffect[] {
    this.lastHeardMs = nowMs;
    const effects: PrimaryEffect[] = [];
    let acked: InFlight | undefined;
    for (let oldest = this.inFlight[0]; oldest !== undefined && oldest.epoch <= epoch; oldest = this.inFlight[0]) {
      acked = oldest;
      this.inFlight.shift();
    }
    if (acked === undefined) {
      effects.push({ type: 'log', level: 'warn', message: 'ack for a checkpoint not in flight (ignored)', fields: { epoch } });
      return effects;
    }
    this.lastAckLatencyMs = nowMs - acked.capturedAtMs;
    this.lastAckAtMs = nowMs;
    this.ackLatenciesMs.push(this.lastAckLatencyMs);
    if (this.mode === 'syncing') {
      this.mode = 'protected';
      effects.push({ type: 'log', level: 'info', message: 'backup synchronised: the guest is protected', fields: { epoch } });
    }
    effects.push(...this.commit(epoch), ...this.endStall(nowMs));
    return effects;
  }

  /**
   * Epoch `epoch` is committed. Held output is not the replicator's: it says which epoch is
   * committed, and the driver's frame ledger releases what the guest sent through it. With one
   * backup, committed is that backup's cumulative ack; with several it would be the least of
   * theirs (etcd-raft's Progress), and an epoch closed early to release a reply sooner (commit on
   * demand) is just one more epoch here.
   */
  private commit(epoch: number): PrimaryEffect[] {
    if (this.lastCommittedEpoch !== null && epoch <= this.lastCommittedEpoch) return [];
    this.lastCommittedEpoch = epoch;
    return [{ type: 'commit', epoch }];
  }

  /** A stalled guest gets its epoch ended at once and resumes. */
  private endStall(nowMs: number): PrimaryEffect[] {
    if (!this.stalled) return [];
    this.stalled = false;
    this.stallMs += nowMs - this.stallStartedMs;
    this.capturing = true;
    this.nextEpochAtMs = nowMs + this.config.epochMs;
    return [{ type: 'requestCapture', epoch: this.epoch }, { type: 'resumeGuest' }];
  }
}
