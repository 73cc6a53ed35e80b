import { FrameKind, type Channel } from '@hbft/common/protocol/kinds.ts';
import { CheckpointStreamChecker, isCheckpointStreamKind } from '@hbft/common/protocol/checkpointStream.ts';
import type { Frame } from '@hbft/common/protocol/frame.ts';
import type { AckSubject } from '@hbft/common/protocol/messages.ts';
import type { ReplicaStore } from './replicaStore.ts';
import { ProtocolErrorCode } from '@hbft/common/protocol/codes.ts';
import { SILENCE_PER_TICK_MS_MAX } from '@hbft/common/constants.ts';
import { assert } from '@hbft/common/errors.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type BackupEffect =
  | { type: 'sendAck'; epoch: number; subject: AckSubject }
  | { type: 'sendHeartbeat' }
  /** Close the primary's connections with an ERROR frame carrying this reason. */
  | { type: 'closePrimary'; code: ProtocolErrorCode; reason: string }
  /** Take over: resume the guest from the last applied checkpoint as generation `generation`. */
  | { type: 'promote'; generation: number; epoch: number; state: Uint8Array; reason: string }
  | { type: 'log'; level: LogLevel; message: string; fields?: Record<string, unknown> };

export type BackupMode = 'waiting' | 'syncing' | 'protecting' | 'promoted';

export interface BackupReplicatorConfig {
  heartbeatMs: number;
  failoverTimeoutMs: number;
  /**
   * How long after every channel of the primary was closed from its side the backup takes over
   * (unless a frame or a re-authenticated primary comes first); at most failoverTimeoutMs.
   */
  closedGraceMs: number;
  memoryBytes: number;
  nowMs: number;
}

/** What the primary says about itself in its handshake (already schema-checked). */
export interface PrimaryHello {
  generation: number;
  memoryBytes: number;
  guestImageHash: string;
  /** The primary process's identity (hex). */
  instanceId: string;
}

export type PrimaryVerdict =
  | { ok: true }
  /** `fenceSelf`: the caller is the newer primary, so this node — a promoted one — must stop. */
  | { ok: false; code: ProtocolErrorCode; reason: string; fenceSelf?: boolean };

/**
 * How one channel of the primary's session ended, as the driver saw it (CloseInfo in
 * transport/connection.ts):
 * - `vanished`: FIN or RST with no GOODBYE or ERROR before it — the primary's kernel closed the
 *   socket because its process died (kill -9, a crash), or something on the path cut it;
 * - `goodbye`: the primary said GOODBYE — it is stopping (SIGTERM), or dropping the link to
 *   reconnect (then its heartbeat thread's channel stays open);
 * - `error`: the primary sent ERROR, or its bytes broke the protocol — it is alive and refused
 *   something (or the link garbles), which has its own meaning;
 * - `local`: this node closed it (closePrimary, a replaced session, shutdown).
 * Only the first two are the primary's side closing the channel.
 */
export type ChannelEnd = 'vanished' | 'goodbye' | 'error' | 'local';

/** The channels of the primary's latest session, and how those that closed ended. */
interface SessionChannels {
  sessionId: string;
  open: Set<Channel>;
  /** Closed channels and how each ended. */
  ended: Map<Channel, ChannelEnd>;
}

export interface BackupStatus {
  mode: BackupMode;
  generation: number;
  appliedEpoch: number | null;
  primaryConnected: boolean;
  msSincePrimaryHeard: number | null;
  /** Age of the newest applied checkpoint. */
  lagMs: number | null;
  checkpointsApplied: number;
}

interface Staged {
  epoch: number;
  state: Uint8Array;
  parts: Uint8Array[];
}

/**
 * The backup's replication protocol as a pure state machine. For each checkpoint the order is:
 * stage (BEGIN, every PAGES part) → verify (CheckpointStreamChecker: counts and the chained
 * checksum; then every page record and the state) → apply (all at once, ReplicaStore) → ack.
 * A checkpoint that fails any check is not applied at all; the backup closes the connection with
 * the reason and the primary resynchronises it.
 *
 * Failure detection: any frame from the primary on any of its channels counts as a heartbeat —
 * the heartbeat channel (sent from a thread of the primary's own, so a busy main thread there
 * does not silence it), the control channel and the bulk channel: the primary is silent only when
 * all of them are. Silence is counted tick by tick, at most SILENCE_PER_TICK_MS_MAX per tick: a
 * longer gap between ticks is this node's own stall (its thread busy, its host not scheduling
 * it), and time it did not watch is not silence it saw. After failoverTimeoutMs of counted
 * silence the primary is *suspected*; it is declared failed at a later tick only if nothing
 * arrived in between. The driver ticks only after its event loop has read the sockets
 * (ticker.ts), so the confirming tick sees every frame that waited in the kernel while this
 * node's thread was busy. A backup holding a consistent state then promotes itself (effect
 * `promote`), and one without says loudly that it cannot.
 *
 * Closed connections: a primary process that dies (kill -9, a crash) or stops (SIGTERM) has its
 * connections closed at once, by its kernel (FIN or RST) or by its own GOODBYE. When every channel
 * of the primary's latest session (control, bulk, and its heartbeat thread's if it joined) was
 * closed from the primary's side, the primary is suspected after closedGraceMs (counted like
 * silence, only while this node runs) instead of the whole timeout, and taken over by the same
 * path: confirmed at the next tick, the same promote effect. A frame or a re-authenticated primary
 * before then cancels it. One channel closed is not enough (the primary's heartbeat thread still
 * speaks while its link reconnects), nor is a close this node made (closePrimary: the primary
 * reconnects and resynchronises) or an ERROR from the primary (it is alive). A partition or a dead
 * host closes nothing, so the timeout alone decides there, exactly as before.
 */
export class BackupReplicator {
  private readonly config: BackupReplicatorConfig;
  private readonly store: ReplicaStore;
  private mode: BackupMode = 'waiting';
  private generation = 0;
  private guestImageHash: string | null = null;
  /** The primary process whose checkpoints the replica holds. */
  private primaryInstance: string | null = null;
  private primaryConnected = false;
  private lastHeardMs = 0;
  private nextHeartbeatAtMs = 0;
  private appliedAtMs: number | null = null;
  private checkpointsApplied = 0;
  private checker = new CheckpointStreamChecker();
  private staged: Staged | null = null;
  private cannotTakeOverReported = false;
  /** When the silence first passed the timeout; null while the primary is heard. */
  private suspectedAtMs: number | null = null;
  /** Silence since the last frame, counted while this node ran (see SILENCE_PER_TICK_MS_MAX). */
  private silenceMs = 0;
  private lastTickMs: number;
  /** Why the current suspicion was raised (meaningful while suspectedAtMs is set). */
  private suspectedBecause: 'silence' | 'closed' = 'silence';
  private channels: SessionChannels | null = null;
  /** When the last channel of the primary's session was closed from its side; null otherwise. */
  private closedAtMs: number | null = null;
  /** Time since closedAtMs, counted while this node ran, like silenceMs. */
  private closedWatchedMs = 0;

  constructor(store: ReplicaStore, config: BackupReplicatorConfig) {
    assert(
      config.closedGraceMs >= 0 && config.closedGraceMs <= config.failoverTimeoutMs,
      'the closed-connection grace is at most the failover timeout',
    );
    this.store = store;
    this.config = config;
    this.lastTickMs = config.nowMs;
  }

  status(nowMs: number): BackupStatus {
    return {
      mode: this.mode,
      generation: this.generation,
      appliedEpoch: this.store.appliedEpoch,
      primaryConnected: this.primaryConnected,
      msSincePrimaryHeard: this.primaryConnected || this.mode !== 'waiting' ? nowMs - this.lastHeardMs : null,
      lagMs: this.appliedAtMs === null ? null : nowMs - this.appliedAtMs,
      checkpointsApplied: this.checkpointsApplied,
    };
  }

  /**
   * A primary finished authentication and sent its handshake: accept it, or say why not. A
   * promoted node refuses every primary (the caller is deposed); a primary of an older
   * generation than the state held here is stale.
   */
  acceptPrimary(hello: PrimaryHello, nowMs: number): PrimaryVerdict {
    if (this.mode === 'promoted') {
      if (hello.generation > this.generation) {
        // A later takeover happened elsewhere while this node was cut off: this node is the stale one.
        return {
          ok: false,
          code: ProtocolErrorCode.RESPONDER_STALE,
          reason: `a primary of generation ${hello.generation} exists; this node (generation ${this.generation}) is deposed and stops`,
          fenceSelf: true,
        };
      }
      return {
        ok: false,
        code: ProtocolErrorCode.DEPOSED,
        reason: `this node took over as primary at generation ${this.generation}; generation ${hello.generation} is deposed`,
      };
    }
    if (hello.memoryBytes !== this.config.memoryBytes) {
      return {
        ok: false,
        code: ProtocolErrorCode.MEMORY_MISMATCH,
        reason: `the primary's guest has ${hello.memoryBytes} bytes of memory, this backup ${this.config.memoryBytes} (both nodes must give the guest the same memory size)`,
      };
    }
    if (hello.generation < this.generation) {
      return {
        ok: false,
        code: ProtocolErrorCode.STALE_GENERATION,
        reason: `generation ${hello.generation} is older than generation ${this.generation} held here`,
      };
    }
    if (
      this.store.consistent &&
      this.guestImageHash !== null &&
      hello.guestImageHash !== this.guestImageHash &&
      hello.generation === this.generation
    ) {
      return {
        ok: false,
        code: ProtocolErrorCode.IMAGE_MISMATCH,
        reason: `the primary runs guest image ${hello.guestImageHash.slice(0, 12)}…, this backup holds ${this.guestImageHash.slice(0, 12)}…`,
      };
    }
    if (
      this.store.consistent &&
      hello.generation === this.generation &&
      this.primaryInstance !== null &&
      hello.instanceId !== this.primaryInstance
    ) {
      return {
        ok: false,
        code: ProtocolErrorCode.STALE_INSTANCE,
        reason:
          `this backup holds the guest of another primary process of generation ${hello.generation}; a restarted primary ` +
          'must rejoin as a backup (the backup takes over if that primary stays silent)',
      };
    }
    this.generation = hello.generation;
    this.guestImageHash = hello.guestImageHash;
    this.primaryInstance = hello.instanceId;
    this.primaryConnected = true;
    this.lastHeardMs = nowMs;
    this.nextHeartbeatAtMs = nowMs;
    this.cannotTakeOverReported = false;
    this.heard(nowMs);
    return { ok: true };
  }

  private heard(nowMs: number): void {
    this.lastHeardMs = nowMs;
    this.silenceMs = 0;
    this.suspectedAtMs = null;
    this.closedAtMs = null;
  }

  /**
   * A channel of an accepted primary session is open (control and bulk after acceptPrimary, the
   * heartbeat channel when it joins). A new session id starts a new record: the closes of an
   * older session's channels say nothing about the primary that replaced it.
   */
  onChannelOpened(sessionId: string, channel: Channel): void {
    if (this.channels?.sessionId !== sessionId) this.channels = { sessionId, open: new Set(), ended: new Map() };
    this.channels.open.add(channel);
    this.channels.ended.delete(channel);
  }

  /**
   * A channel of the primary's session closed (see ChannelEnd). When the last open one closes and
   * the primary's side closed every one, the closed-connection grace starts (see the class
   * comment); the next tick after it has passed raises the suspicion.
   */
  onChannelClosed(sessionId: string, channel: Channel, end: ChannelEnd, nowMs: number): BackupEffect[] {
    const channels = this.channels;
    if (channels?.sessionId !== sessionId || !channels.open.delete(channel)) return [];
    channels.ended.set(channel, end);
    if (this.mode === 'promoted' || channels.open.size > 0) return [];
    const ends = [...channels.ended];
    if (!ends.every(([, how]) => how === 'vanished' || how === 'goodbye')) return [];
    this.closedAtMs = nowMs;
    this.closedWatchedMs = 0;
    return [
      {
        type: 'log',
        level: 'warn',
        message: `every connection of the primary was closed from its side (${describeEnds(ends)}): it is taken over in ${this.config.closedGraceMs} ms unless it comes back`,
      },
    ];
  }

  /** True while a checkpoint is staged: the payloads of its frames are still referenced here. */
  get holdsPayloads(): boolean {
    return this.staged !== null;
  }

  onPrimaryDisconnected(reason: string): BackupEffect[] {
    if (!this.primaryConnected) return [];
    this.primaryConnected = false;
    this.staged = null;
    this.checker = new CheckpointStreamChecker();
    return [{ type: 'log', level: 'warn', message: `primary connection lost: ${reason}` }];
  }

  /** A verified frame from the primary on either channel. */
  onFrame(frame: Frame, nowMs: number): BackupEffect[] {
    this.heard(nowMs);
    if (this.mode === 'promoted') return [];
    if (frame.kind === FrameKind.HEARTBEAT || frame.kind === FrameKind.GOODBYE) return [];
    if (!isCheckpointStreamKind(frame.kind)) {
      return [{ type: 'log', level: 'warn', message: `unexpected ${frame.kind} frame from the primary (ignored)` }];
    }
    if (frame.generation !== this.generation) {
      this.closingPrimary();
      return [
        {
          type: 'closePrimary',
          code: ProtocolErrorCode.GENERATION,
          reason: `frame of generation ${frame.generation} on a connection of generation ${this.generation}`,
        },
      ];
    }
    const step = this.checker.check(frame);
    if (step.status === 'invalid') {
      const subject: AckSubject = frame.kind <= FrameKind.FULL_SYNC_END ? 'full-sync' : 'checkpoint';
      return this.refuse(subject, frame.epoch, step.failure.code, step.failure.reason);
    }
    switch (frame.kind) {
      case FrameKind.FULL_SYNC_BEGIN:
        this.mode = 'syncing';
        this.store.beginFullSync();
        return [{ type: 'log', level: 'info', message: 'full synchronisation started', fields: { pages: frame.meta.pageCount } }];
      case FrameKind.FULL_SYNC_PAGES: {
        const refusal = this.store.applyFullSyncPart(frame.payload);
        return refusal === null ? [] : this.refuse('full-sync', frame.epoch, refusal.code, refusal.reason);
      }
      case FrameKind.FULL_SYNC_END:
        this.store.endFullSync();
        return [
          { type: 'sendAck', epoch: frame.epoch, subject: 'full-sync' },
          { type: 'log', level: 'info', message: 'full synchronisation received; waiting for the first checkpoint' },
        ];
      case FrameKind.CHECKPOINT_BEGIN:
        this.staged = { epoch: frame.epoch, state: frame.payload, parts: [] };
        return [];
      case FrameKind.CHECKPOINT_PAGES:
        this.stagedCheckpoint().parts.push(frame.payload);
        return [];
      case FrameKind.CHECKPOINT_END:
        return this.applyStaged(nowMs);
    }
    return [];
  }

  /** The checkpoint being staged; the checker lets PAGES and END through only after its BEGIN. */
  private stagedCheckpoint(): Staged {
    assert(this.staged !== null, 'the checkpoint stream checker passed a checkpoint frame without a BEGIN');
    return this.staged;
  }

  private applyStaged(nowMs: number): BackupEffect[] {
    const staged = this.stagedCheckpoint();
    this.staged = null;
    const previous = this.store.appliedEpoch;
    if (previous !== null && staged.epoch !== previous + 1) {
      return this.refuse(
        'checkpoint',
        staged.epoch,
        ProtocolErrorCode.EPOCH_ORDER,
        `checkpoint ${staged.epoch} does not follow the applied checkpoint ${previous}`,
      );
    }
    const refusal = this.store.applyCheckpoint(staged.epoch, staged.state, staged.parts);
    if (refusal !== null) return this.refuse('checkpoint', staged.epoch, refusal.code, refusal.reason);
    const effects: BackupEffect[] = [{ type: 'sendAck', epoch: staged.epoch, subject: 'checkpoint' }];
    if (this.mode !== 'protecting') {
      effects.push({
        type: 'log',
        level: 'info',
        message: 'first checkpoint applied: the backup can take over from now on',
        fields: { epoch: staged.epoch },
      });
    }
    this.mode = 'protecting';
    this.appliedAtMs = nowMs;
    this.checkpointsApplied++;
    effects.push({
      type: 'log',
      level: 'debug',
      message: 'checkpoint applied',
      fields: { epoch: staged.epoch, parts: staged.parts.length },
    });
    return effects;
  }

  /**
   * A checkpoint or full sync failed a check: nothing of it is applied, and the connection is
   * closed with the reason, so that the primary reconnects and synchronises this backup again.
   */
  private refuse(subject: AckSubject, epoch: number, code: ProtocolErrorCode, reason: string): BackupEffect[] {
    this.staged = null;
    this.closingPrimary();
    return [
      { type: 'log', level: 'error', message: `refused ${subject} ${epoch}: ${reason} (nothing of it was applied)`, fields: { code } },
      { type: 'closePrimary', code, reason: `${subject} ${epoch} refused: ${reason}` },
    ];
  }

  /**
   * The earliest moment `tick` has something to do: the next heartbeat, or the takeover (after the
   * timeout, or after the grace once the primary's connections closed) if nothing is heard from
   * the primary before then. Frames only move the takeover later, so the driver may sleep until
   * this; a close that comes while it sleeps moves the takeover earlier, which the ticker sees
   * within TICK_WAIT_MS_MAX (its longest sleep), well inside the grace.
   */
  nextDeadlineMs(): number {
    if (this.mode === 'promoted') return Infinity;
    const heartbeat = this.primaryConnected ? this.nextHeartbeatAtMs : Infinity;
    if (this.mode === 'waiting') return heartbeat;
    // A suspicion is confirmed (or cleared) at the very next tick.
    if (this.suspectedAtMs !== null) return this.suspectedAtMs;
    const countedFromMs = Math.max(this.lastTickMs, this.lastHeardMs);
    const silenceDueMs = countedFromMs + (this.config.failoverTimeoutMs - this.silenceMs) + 1;
    const closedDueMs =
      this.closedAtMs === null ? Infinity : Math.max(this.lastTickMs, this.closedAtMs) + (this.config.closedGraceMs - this.closedWatchedMs);
    return Math.min(heartbeat, silenceDueMs, closedDueMs);
  }

  tick(nowMs: number): BackupEffect[] {
    if (this.mode === 'promoted') return [];
    // Silence since the later of the last tick and the last frame, up to the per-tick limit; the
    // same for the time since the primary's connections closed.
    this.silenceMs += watchedSince(Math.max(this.lastTickMs, this.lastHeardMs), nowMs);
    if (this.closedAtMs !== null) this.closedWatchedMs += watchedSince(Math.max(this.lastTickMs, this.closedAtMs), nowMs);
    this.lastTickMs = nowMs;
    const effects: BackupEffect[] = [];
    if (this.primaryConnected && nowMs >= this.nextHeartbeatAtMs) {
      effects.push({ type: 'sendHeartbeat' });
      this.nextHeartbeatAtMs = nowMs + this.config.heartbeatMs;
    }
    const silentMs = Math.round(nowMs - this.lastHeardMs);
    if (this.mode === 'waiting') return effects;
    const closedPast = this.closedAtMs !== null && this.closedWatchedMs >= this.config.closedGraceMs;
    if (this.silenceMs <= this.config.failoverTimeoutMs && !closedPast) return effects;
    if (this.suspectedAtMs === null) {
      // Frames (or a reconnecting primary) may be waiting in the sockets behind this node's own
      // stall: judge at the next tick.
      this.suspectedAtMs = nowMs;
      this.suspectedBecause = this.silenceMs > this.config.failoverTimeoutMs ? 'silence' : 'closed';
      return effects;
    }
    const state = this.store.state;
    const epoch = this.store.appliedEpoch;
    if (state === null || epoch === null) {
      if (!this.cannotTakeOverReported) {
        this.cannotTakeOverReported = true;
        effects.push({
          type: 'log',
          level: 'error',
          message:
            this.suspectedBecause === 'closed'
              ? `the primary's connections closed but this backup holds no consistent checkpoint yet (${this.mode}); it cannot take over`
              : `the primary is silent (${silentMs} ms) but this backup holds no consistent checkpoint yet (${this.mode}); it cannot take over`,
        });
      }
      return effects;
    }
    this.mode = 'promoted';
    this.generation++;
    this.primaryConnected = false;
    const reason = this.suspectedBecause === 'closed' ? this.closedReason(nowMs, silentMs) : this.silenceReason(silentMs);
    effects.push(
      { type: 'closePrimary', code: ProtocolErrorCode.DEPOSED, reason: `the backup took over at generation ${this.generation}` },
      { type: 'promote', generation: this.generation, epoch: epoch + 1, state, reason },
    );
    return effects;
  }

  /**
   * This node closes the primary's session (closePrimary): however the closes of its channels
   * look from here on — the primary's side may close some first, or die just then — they do not
   * count, so the record is dropped until the primary opens a new session.
   */
  private closingPrimary(): void {
    this.channels = null;
    this.closedAtMs = null;
  }

  private silenceReason(silentMs: number): string {
    const watchedMs = Math.round(this.silenceMs);
    return (
      `no frame from the primary for ${silentMs} ms` +
      `${watchedMs < silentMs - 1 ? ` (${watchedMs} ms of it while this node ran)` : ''} (timeout ${this.config.failoverTimeoutMs} ms)`
    );
  }

  private closedReason(nowMs: number, silentMs: number): string {
    const closedAtMs = this.closedAtMs;
    assert(closedAtMs !== null, 'a closed-connection suspicion is confirmed only while the connections are closed');
    const ends = describeEnds([...(this.channels?.ended ?? [])]);
    return (
      `the primary's connections closed (${ends}) ${Math.round(nowMs - closedAtMs)} ms ago and it did not come back ` +
      `(grace ${this.config.closedGraceMs} ms; last frame ${silentMs} ms ago)`
    );
  }
}

/** Of the time from `fromMs` to `nowMs`, what this node watched: at most SILENCE_PER_TICK_MS_MAX per tick. */
function watchedSince(fromMs: number, nowMs: number): number {
  return Math.max(0, Math.min(nowMs - fromMs, SILENCE_PER_TICK_MS_MAX));
}

function describeEnds(ends: Array<[Channel, ChannelEnd]>): string {
  return ends.map(([channel, end]) => `${channel}: ${end === 'vanished' ? 'FIN/RST' : end}`).join(', ');
}
