import type { Logger } from '@hbft/common/log.ts';
import { Ticker } from '@hbft/common/ticker.ts';
import { formatEndpoint } from '@hbft/common/units.ts';
import { assert } from '@hbft/common/errors.ts';
import { PRIMARY_CLOSED_GRACE_HEARTBEATS, type BackupLossPolicy, type TimingConfig } from '@hbft/common/constants.ts';
import type { AuthConfig } from '@hbft/common/protocol/auth.ts';
import type { Frame } from '@hbft/common/protocol/frame.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor, type ProtocolLimits } from '@hbft/common/protocol/limits.ts';
import { closeCodeGoodbye, type CloseInfo, type FrameConnection } from '@hbft/common/transport/connection.ts';
import { ProtocolErrorCode, protocolFailure } from '@hbft/common/protocol/codes.ts';
import { listen, type ReplicationListener } from '@hbft/common/transport/listener.ts';
import { BodyPool } from '@hbft/common/transport/bodyPool.ts';
import type { ReplicationMetrics } from '@hbft/common/http/metrics.ts';
import type { Readiness } from '@hbft/common/http/statusServer.ts';
import { emptyEpochFigures, LiveFeed } from '@hbft/common/http/liveFeed.ts';
import { PrimaryRuntime, type PrimaryRuntimeOptions } from '@hbft/primary/runtime.ts';
import type { GuestWorker } from '@hbft/common/hypervisor/guestWorker.ts';
import type { StagingRing } from '@hbft/common/checkpoint/staging.ts';
import { ReplicaStore } from './replicaStore.ts';
import { GuestTap, type GuestNetworkConfig } from '@hbft/common/net/guestTap.ts';

import { BackupReplicator, type BackupEffect, type ChannelEnd } from './backupReplicator.ts';

/** What the node needs to run as a primary after it takes over. */
export type PromotedOptions = Omit<
  PrimaryRuntimeOptions,
  'generation' | 'boot' | 'memoryBytes' | 'guestImageHash' | 'logger' | 'metrics' | 'timing' | 'backup' | 'onBackupLoss' | 'guestTap'
> & { onBackupLoss?: BackupLossPolicy };

export interface BackupDaemonOptions {
  listen: { host: string; port: number };
  memoryBytes: number;
  auth: AuthConfig;
  timing: TimingConfig;
  logger: Logger;
  metrics: ReplicationMetrics;
  promoted: PromotedOptions;
  /**
   * The guest's packet NIC on a real network: the TAP is opened at start and drained while this
   * node stands by (it transmits nothing); a takeover hands it to the runtime.
   */
  guestNetwork?: GuestNetworkConfig;
  /** The image the primary runs, if known (--guest): the standby warms its CPU engine up on it. */
  guestImage?: Uint8Array;
  /** After a takeover, protect the guest again by replicating to a backup here. */
  reprotect?: { host: string; port: number };
  onPromoted?: (runtime: PrimaryRuntime) => void;
  /** The takeover could not start the guest: the node is of no use any more. */
  onPromotionFailed?: (reason: string) => void;
  /** After a takeover, this node learned that a newer primary exists: it must stop. */
  onDeposed?: (reason: string) => void;
}

interface PrimarySession {
  id: string;
  control: FrameConnection | null;
  bulk: FrameConnection | null;
  /** The primary's heartbeat thread's connection: joins a session its control and bulk channels made. */
  heartbeat: FrameConnection | null;
}

const TICK_MS = 1;

/**
 * How a channel's close reads for the failure detector (ChannelEnd): a close by the transport
 * with nothing cut mid-frame or a frame cut off is the peer's kernel closing the socket (FIN or
 * RST); a WebSocket protocol error is bad bytes, not a close.
 */
function channelEnd(info: CloseInfo): ChannelEnd {
  if (info.by === 'local') return 'local';
  if (info.by === 'peer') return info.code === closeCodeGoodbye ? 'goodbye' : 'error';
  return info.code === ProtocolErrorCode.CONNECTION_LOST || info.code === ProtocolErrorCode.FRAME_TRUNCATED ? 'vanished' : 'error';
}

/**
 * The backup daemon's driver: the replication listener, the pairing of a primary's two channels,
 * and the BackupReplicator's effects; when that says `promote`, the node becomes a primary over
 * the replica's memory (PrimaryRuntime with a resumed boot). The listener stays up afterwards so
 * that a deposed primary that comes back is told so.
 */
export class BackupDaemon {
  readonly store: ReplicaStore;
  readonly replicator: BackupReplicator;
  private readonly options: BackupDaemonOptions;
  private readonly logger: Logger;
  private listener: ReplicationListener | null = null;
  private session: PrimarySession | null = null;
  /**
   * A session that ended because the primary's side closed one of its channels: its other
   * channels stay open for the closed-connection grace, so that the replicator learns whether the
   * primary closes them too (its process is gone) — closing them here first would hide that.
   * Their frames are not read (the session is over); they are closed when the grace ends, a new
   * session starts, or the node takes over.
   */
  private ending: { session: PrimarySession; timer: NodeJS.Timeout } | null = null;
  private readonly closedGraceMs: number;
  private ticker: Ticker | null = null;
  private runtime: PrimaryRuntime | null = null;
  private guestImageHash: Buffer | null = null;
  private stopping = false;
  private standby: { worker: GuestWorker; staging: StagingRing } | null = null;
  /** The guest's TAP while this node stands by (the runtime owns it after a takeover). */
  private guestTap: GuestTap | null = null;
  private readonly limits: ProtocolLimits;
  private readonly bodies: BodyPool;
  /** Bodies of frames handed to the replicator since it last held no payload. */
  private delivered: ArrayBufferLike[] = [];
  readonly feed: LiveFeed;

  private constructor(options: BackupDaemonOptions) {
    this.options = options;
    this.logger = options.logger;
    this.store = new ReplicaStore(options.memoryBytes);
    this.limits = protocolLimitsFor(options.memoryBytes);
    this.bodies = new BodyPool(this.limits.frameMetaBytesMax + this.limits.framePayloadBytesMax);
    this.closedGraceMs = Math.min(PRIMARY_CLOSED_GRACE_HEARTBEATS * options.timing.heartbeatMs, options.timing.failoverTimeoutMs);
    this.replicator = new BackupReplicator(this.store, {
      heartbeatMs: options.timing.heartbeatMs,
      failoverTimeoutMs: options.timing.failoverTimeoutMs,
      closedGraceMs: this.closedGraceMs,
      memoryBytes: options.memoryBytes,
      nowMs: performance.now(),
    });
    this.feed = new LiveFeed(() => {
      const status = this.replicator.status(performance.now());
      return {
        role: 'backup' as const,
        generation: status.generation,
        mode: status.mode,
        epoch: status.appliedEpoch,
        heldOutputBytes: 0,
        heldFrames: 0,
        peerConnected: status.primaryConnected,
        msSincePeerHeard: status.msSincePrimaryHeard,
      };
    });
    this.feed.start();
  }

  static async start(options: BackupDaemonOptions): Promise<BackupDaemon> {
    const daemon = new BackupDaemon(options);
    try {
      if (options.guestNetwork !== undefined) daemon.guestTap = await GuestTap.open(options.guestNetwork, options.logger);
      daemon.standby = await PrimaryRuntime.startStandby(
        daemon.store.memory,
        { ...options.promoted, memoryBytes: options.memoryBytes },
        options.guestImage,
      );
      const listener = await listen({
        host: options.listen.host,
        port: options.listen.port,
        auth: options.auth,
        limits: daemon.limits,
        logger: options.logger,
        allocateBody: daemon.bodies.allocate,
      });
      daemon.listener = listener;
      listener.on('connection', (connection) => daemon.onConnection(connection));
      listener.on('rejected', (rejected) => options.logger.warn(rejected, 'replication connection refused'));
    } catch (error) {
      // Whatever did start (the standby worker, a bound port) must not keep the process up.
      await daemon.stop(`start failed: ${(error as Error).message}`);
      throw error;
    }
    daemon.ticker = new Ticker(TICK_MS, (now) => daemon.execute(daemon.replicator.tick(now)), options.logger, {
      nextDeadlineMs: () => daemon.replicator.nextDeadlineMs(),
    });
    daemon.ticker.start();
    options.metrics.setRole('backup');
    options.logger.info({ listen: formatEndpoint(daemon.listenAddress) }, 'waiting for a primary');
    return daemon;
  }

  get listenAddress(): { host: string; port: number } {
    assert(this.listener !== null, 'start() binds the listener before the daemon is handed out');
    const address = this.listener.address();
    return { host: address.address, port: address.port };
  }

  /** The runtime this node runs as a primary after a takeover. */
  get promotedRuntime(): PrimaryRuntime | null {
    return this.runtime;
  }

  /**
   * Frame bodies go back to the pool once the replicator holds none of them: a staged checkpoint
   * keeps its parts until it is applied or dropped.
   */
  private recycle(memory: ArrayBufferLike | null): void {
    if (memory !== null) this.delivered.push(memory);
    if (this.replicator.holdsPayloads) return;
    for (const delivered of this.delivered) this.bodies.release(delivered);
    this.delivered = [];
  }

  private onConnection(connection: FrameConnection): void {
    const onFirst = (frame: Frame) => {
      connection.off('frame', onFirst);
      if (frame.kind !== FrameKind.HANDSHAKE) {
        this.refuse(connection, ProtocolErrorCode.HANDSHAKE, `expected HANDSHAKE first, got kind ${frame.kind}`);
        return;
      }
      this.onHandshake(connection, frame);
    };
    connection.on('frame', onFirst);
  }

  private onHandshake(connection: FrameConnection, frame: Frame<typeof FrameKind.HANDSHAKE>): void {
    const meta = frame.meta;
    if (meta.role !== 'primary' || meta.channel !== connection.channel) {
      this.refuse(
        connection,
        ProtocolErrorCode.HANDSHAKE,
        `a ${meta.role} announced the ${meta.channel} channel on the ${connection.channel} channel`,
      );
      return;
    }
    const id = meta.sessionId.toString('hex');
    if (connection.channel === 'heartbeat') {
      this.onHeartbeatChannel(connection, frame, id);
      return;
    }
    const verdict = this.replicator.acceptPrimary(
      {
        generation: frame.generation,
        memoryBytes: meta.memoryBytes,
        guestImageHash: meta.guestImageHash.toString('hex'),
        instanceId: meta.instanceId.toString('hex'),
      },
      performance.now(),
    );
    if (!verdict.ok) {
      this.logger.warn({ code: verdict.code, reason: verdict.reason }, 'primary refused');
      this.refuse(connection, verdict.code, verdict.reason);
      if (verdict.fenceSelf) this.fence(verdict.reason);
      return;
    }
    let session = this.session;
    if (session?.id !== id) {
      // A new primary session replaces the old one (the primary reconnected).
      this.closeSession('replaced by a new connection from the primary');
      session = { id, control: null, bulk: null, heartbeat: null };
      this.session = session;
    }
    this.guestImageHash = meta.guestImageHash;
    if (connection.channel === 'control') session.control = connection;
    else session.bulk = connection;
    this.replicator.onChannelOpened(id, connection.channel);
    connection.on('frame', (next) => {
      if (this.session === session) this.execute(this.replicator.onFrame(next, performance.now()));
      this.recycle(next.payload.buffer);
    });
    connection.on('close', (info) => {
      const end = channelEnd(info);
      this.execute(this.replicator.onChannelClosed(id, connection.channel, end, performance.now()));
      if (this.session !== session) return;
      // The session is over either way (the primary's link closes both channels and starts a
      // new one); if the primary's side closed this one, its other channels are watched a
      // little longer (see `ending`).
      this.session = null;
      if (end === 'vanished' || end === 'goodbye') this.watchEnding(session);
      else this.closeChannels(session, `${connection.channel} channel closed`);
      this.options.metrics.peerConnected.set(0);
      this.feed.event('primary-lost', `primary connection lost: ${info.code}: ${info.reason}`);
      this.execute(this.replicator.onPrimaryDisconnected(`${info.code}: ${info.reason}`));
      this.recycle(null);
    });
    connection.send(
      FrameKind.HANDSHAKE_OK,
      { role: 'backup', channel: connection.channel, sessionId: meta.sessionId, appliedEpoch: this.store.appliedEpoch },
      { generation: frame.generation },
    );
    this.options.metrics.peerConnected.set(session.control && session.bulk ? 1 : 0);
    if (session.control && session.bulk) this.logger.info({ generation: frame.generation }, 'primary connected');
  }

  /**
   * The primary's heartbeat thread joins the session its control and bulk channels opened. Its
   * frames count as hearing from the primary like any other; losing it alone ends nothing (the
   * control channel carries heartbeats too), and the session's end closes it.
   */
  private onHeartbeatChannel(connection: FrameConnection, frame: Frame<typeof FrameKind.HANDSHAKE>, id: string): void {
    const session = this.session;
    if (session === null || session.id !== id || session.control === null || session.bulk === null) {
      this.refuse(connection, ProtocolErrorCode.HANDSHAKE, 'the heartbeat channel names no open session of this backup');
      return;
    }
    // The replaced channel's close is not reported: the channel itself stays open.
    const replaced = session.heartbeat;
    session.heartbeat = connection;
    this.replicator.onChannelOpened(id, 'heartbeat');
    replaced?.close('replaced by a new heartbeat channel');
    connection.on('frame', (next) => {
      if (this.session === session && session.heartbeat === connection) this.execute(this.replicator.onFrame(next, performance.now()));
    });
    connection.on('close', (info) => {
      if (session.heartbeat !== connection) return;
      session.heartbeat = null;
      this.execute(this.replicator.onChannelClosed(id, 'heartbeat', channelEnd(info), performance.now()));
      if (this.session === session) this.logger.warn({ code: info.code, reason: info.reason }, 'heartbeat channel of the primary lost');
    });
    connection.send(
      FrameKind.HANDSHAKE_OK,
      { role: 'backup', channel: 'heartbeat', sessionId: frame.meta.sessionId, appliedEpoch: this.store.appliedEpoch },
      { generation: frame.generation },
    );
  }

  private refuse(connection: FrameConnection, code: ProtocolErrorCode, reason: string): void {
    connection.fail(protocolFailure(code, reason.slice(0, 1000)));
  }

  /** Closes the current session and whatever is left of an ending one. */
  private closeSession(reason: string): void {
    this.closeEnding(reason);
    const session = this.session;
    if (!session) return;
    this.session = null;
    this.closeChannels(session, reason);
    this.options.metrics.peerConnected.set(0);
  }

  private closeChannels(session: PrimarySession, reason: string): void {
    session.control?.close(reason);
    session.bulk?.close(reason);
    session.heartbeat?.close(reason);
  }

  /** Keeps an ended session's open channels for the closed-connection grace (see `ending`). */
  private watchEnding(session: PrimarySession): void {
    this.closeEnding('replaced by a newer ending session');
    const timer = setTimeout(() => this.closeEnding('the primary closed another channel of this session'), this.closedGraceMs + TICK_MS);
    timer.unref();
    this.ending = { session, timer };
  }

  private closeEnding(reason: string): void {
    const ending = this.ending;
    if (ending === null) return;
    this.ending = null;
    clearTimeout(ending.timer);
    this.closeChannels(ending.session, reason);
  }

  private execute(effects: BackupEffect[]): void {
    const generation = this.replicator.status(0).generation;
    for (const effect of effects) {
      switch (effect.type) {
        case 'sendAck':
          this.session?.control?.send(FrameKind.ACK, { subject: effect.subject }, { generation, epoch: effect.epoch });
          if (effect.subject === 'checkpoint') {
            this.options.metrics.epochs.inc();
            this.feed.recordEpoch(emptyEpochFigures());
          }
          break;
        case 'sendHeartbeat':
          this.session?.control?.send(FrameKind.HEARTBEAT, { sentAtMs: Math.max(0, performance.now()) }, { generation });
          break;
        case 'closePrimary': {
          for (const session of [this.session, this.ending?.session]) {
            for (const connection of [session?.control, session?.bulk, session?.heartbeat]) {
              if (connection) this.refuse(connection, effect.code, effect.reason);
            }
          }
          this.closeSession(effect.reason);
          break;
        }
        case 'promote':
          void this.promote(effect);
          break;
        case 'log':
          this.logger[effect.level](effect.fields ?? {}, effect.message);
          break;
      }
    }
  }

  private async promote(effect: Extract<BackupEffect, { type: 'promote' }>): Promise<void> {
    const logger = this.logger.child({ generation: effect.generation });
    // The replicator has nothing more to do; the runtime ticks from now on.
    this.ticker?.stop();
    logger.error(
      { reason: effect.reason, resumeEpoch: effect.epoch },
      `PRIMARY FAILED: taking over at generation ${effect.generation} from checkpoint ${effect.epoch - 1}; this node runs UNPROTECTED until a backup is synchronised`,
    );
    const metrics = this.options.metrics;
    metrics.failovers.inc();
    this.feed.event('failover', `primary failed (${effect.reason}); this node took over at generation ${effect.generation}`);
    metrics.generation.set(effect.generation);
    try {
      const reprotect = this.options.reprotect;
      this.runtime = await PrimaryRuntime.start({
        // The configured --on-backup-loss, as for any primary: the runtime releases output until
        // the first checkpoint of this generation goes to a backup, and after that only on acks
        // (PrimaryReplicator states the rule). A promoted node that kept releasing after its new
        // backup had synchronised lost acknowledged writes when that backup took over in turn.
        ...this.options.promoted,
        onBackupLoss: this.options.promoted.onBackupLoss ?? 'hold',
        backup: reprotect ? { ...reprotect, auth: this.options.auth } : undefined,
        generation: effect.generation,
        boot: {
          kind: 'resume',
          memory: this.store.memory,
          state: effect.state,
          epoch: effect.epoch,
          standby: this.standby ?? undefined,
        },
        guestTap: this.takeGuestTap(),
        memoryBytes: this.options.memoryBytes,
        guestImageHash: this.guestImageHash ?? Buffer.alloc(32),
        timing: this.options.timing,
        logger: this.options.logger,
        metrics,
        feed: this.feed,
        onDeposed: (reason) => this.fence(reason),
      });
      this.options.onPromoted?.(this.runtime);
    } catch (error) {
      const reason = (error as Error).message;
      logger.fatal({ err: reason }, 'takeover failed: the guest could not be resumed');
      this.options.onPromotionFailed?.(reason);
    }
  }

  /** The standby's TAP, handed to the runtime that takes over (which then owns it). */
  private takeGuestTap(): GuestTap | undefined {
    const tap = this.guestTap ?? undefined;
    this.guestTap = null;
    return tap;
  }

  /** This node is no longer the primary: stop serving at once, and tell the process to exit. */
  private fence(reason: string): void {
    this.logger.error({ reason }, 'DEPOSED: a newer primary exists; this node stops serving');
    this.feed.event('deposed', reason);
    // However the stop ends, the node must still be told to exit: a deposed node never serves.
    void this.runtime
      ?.stop(`deposed: ${reason}`)
      .catch((error: Error) => this.logger.error({ err: error.message }, 'stopping the deposed runtime failed'))
      .then(() => this.options.onDeposed?.(reason));
  }

  readiness(): Readiness {
    if (this.runtime) return this.runtime.readiness();
    const status = this.replicator.status(performance.now());
    return {
      ready: !this.stopping && status.mode === 'protecting',
      role: 'backup',
      generation: status.generation,
      peerConnected: status.primaryConnected,
      replicationLagMs: status.lagMs,
      mode: status.mode,
      appliedEpoch: status.appliedEpoch,
      checkpointsApplied: status.checkpointsApplied,
    };
  }

  async stop(reason = 'the backup is shutting down'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.ticker?.stop();
    this.feed.stop();
    this.closeSession(reason);
    await this.listener?.close(reason);
    await this.runtime?.stop(reason);
    if (this.runtime === null) await this.standby?.worker.stop();
    await this.takeGuestTap()?.close();
  }
}
