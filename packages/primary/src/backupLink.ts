import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Logger } from '@hbft/common/log.ts';
import { BACKUP_RECONNECT_FIRST_MS, BACKUP_RECONNECT_MAX_MS, BACKUP_RECONNECT_MS } from '@hbft/common/constants.ts';
import type { AuthConfig } from '@hbft/common/protocol/auth.ts';
import type { Frame } from '@hbft/common/protocol/frame.ts';
import { ProtocolErrorCode } from '@hbft/common/protocol/codes.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolVersion, sessionIdBytes, type ProtocolLimits } from '@hbft/common/protocol/limits.ts';
import type { Channel } from '@hbft/common/protocol/kinds.ts';
import { connectBulk, type BulkConnection } from '@hbft/common/transport/bulk.ts';
import type { CloseInfo, FrameConnection } from '@hbft/common/transport/connection.ts';
import { connectControl, type ControlConnection } from '@hbft/common/transport/control.ts';
import { HeartbeatThread } from './heartbeatThread.ts';

export interface BackupLinkOptions {
  host: string;
  port: number;
  auth: AuthConfig;
  limits: ProtocolLimits;
  logger: Logger;
  memoryBytes: number;
  /** SHA-256 of the guest image. */
  guestImageHash: Buffer;
  generation: number;
  /** This primary process's identity, the same on every reconnection. */
  instanceId: Buffer;
  handshakeTimeoutMs?: number;
  /** A number in [0, 1) for each retry's jitter (style.md: the random source is passed in). */
  random?: () => number;
  /** Heartbeats from a thread of their own (heartbeatThread.ts); absent in tests of the link alone. */
  heartbeat?: { heartbeatMs: number; mainThreadHungMs: number };
}

/**
 * How long to wait before attempt `failures + 1` after `failures` failed ones in a row: doubling
 * from BACKUP_RECONNECT_MS up to BACKUP_RECONNECT_MAX_MS, each delay between half and all of
 * that ("equal jitter").
 */
export function reconnectDelayMs(failures: number, random: () => number): number {
  const ceilingMs = Math.min(BACKUP_RECONNECT_MAX_MS, BACKUP_RECONNECT_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(ceilingMs / 2 + (random() * ceilingMs) / 2);
}

/**
 * What kind of failure a reason is, to log each kind once: the error codes it names (a refusal
 * reads `E_PEER_ERROR: peer: E_MEMORY_MISMATCH: ...`), else its words without the numbers.
 */
export function failureKind(reason: string): string {
  return reason.match(/\bE[A-Z][A-Z0-9_]+\b/g)?.join(' ') ?? reason.replace(/\d+/g, 'N');
}

export interface BackupLinkEvents {
  /** Both channels are authenticated and the backup accepted the handshake on each. */
  ready: [appliedEpoch: number | null];
  /** A frame from the backup after the handshake (control channel). */
  frame: [frame: Frame];
  /** The link broke; it reconnects by itself. */
  lost: [reason: string];
  /** The backup took over: this node must stop being a primary. */
  deposed: [reason: string];
}

/**
 * The primary's connections to its backup: control (ws: heartbeats, acks) and bulk (raw TCP:
 * checkpoints), paired by a random session id in the handshake. Whatever breaks one breaks both,
 * and the link keeps trying to reconnect until stopped.
 */
export class BackupLink extends EventEmitter<BackupLinkEvents> {
  private readonly options: BackupLinkOptions;
  private controlConnection: ControlConnection | null = null;
  private bulkConnection: BulkConnection | null = null;
  private connected = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  /** Attempts that failed since the link was last up, and the last one's reason. */
  private failures = 0;
  private failure: string | null = null;
  private readonly heartbeat: HeartbeatThread | null;

  constructor(options: BackupLinkOptions) {
    super();
    this.options = options;
    this.heartbeat = options.heartbeat
      ? new HeartbeatThread({
          host: options.host,
          port: options.port,
          auth: options.auth,
          memoryBytes: options.memoryBytes,
          guestImageHash: new Uint8Array(options.guestImageHash),
          generation: options.generation,
          instanceId: new Uint8Array(options.instanceId),
          heartbeatMs: options.heartbeat.heartbeatMs,
          mainThreadHungMs: options.heartbeat.mainThreadHungMs,
          logLevel: options.logger.level,
        })
      : null;
  }

  get control(): ControlConnection | null {
    return this.connected ? this.controlConnection : null;
  }

  get bulk(): BulkConnection | null {
    return this.connected ? this.bulkConnection : null;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Why the last attempt to reach the backup failed, while the link is down (else null). */
  get lastFailure(): string | null {
    return this.connected ? null : this.failure;
  }

  start(): void {
    void this.connect();
  }

  private scheduleRetry(delayMs: number): void {
    if (this.stopped || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delayMs);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { host, port, auth, limits, logger } = this.options;
    const attempt = ++this.attempt;
    const sessionId = randomBytes(sessionIdBytes);
    // The link reports its own state changes (above, and 'lost' to the runtime); the connections'
    // per-attempt lines (authenticated, closed) would repeat them at every retry, so they show only
    // at debug level.
    const connectionLogger = logger.child({}, { level: logger.isLevelEnabled('debug') ? logger.level : 'error' });
    const connectionOptions = { host, port, auth, limits, logger: connectionLogger };
    let control: ControlConnection | null = null;
    let bulk: BulkConnection | null = null;
    try {
      [control, bulk] = await Promise.all([connectControl(connectionOptions), connectBulk(connectionOptions)]);
      const [controlOk] = await Promise.all([this.handshake(control, 'control', sessionId), this.handshake(bulk, 'bulk', sessionId)]);
      if (this.stopped || attempt !== this.attempt) throw new Error('link stopped');
      this.controlConnection = control;
      this.bulkConnection = bulk;
      this.connected = true;
      if (this.failures > 0) logger.info({ backup: `${host}:${port}`, failedAttempts: this.failures }, 'reached the backup again');
      this.failures = 0;
      this.failure = null;
      for (const connection of [control, bulk]) connection.on('close', (info) => this.onClose(info));
      control.on('frame', (frame) => this.emit('frame', frame));
      this.heartbeat?.connect(sessionId);
      this.emit('ready', controlOk);
    } catch (error) {
      control?.close('handshake failed');
      bulk?.close('handshake failed');
      const reason = (error as Error).message;
      if (error instanceof HandshakeRefused && isDeposition(error.info)) {
        this.emit('deposed', reason);
        return;
      }
      // One line when the failure starts or changes kind, not one per attempt: a backup that is
      // down for an hour would otherwise fill the log (the reason stays on /healthz meanwhile).
      if (this.failure === null || failureKind(reason) !== failureKind(this.failure)) {
        logger.warn({ backup: `${host}:${port}`, attempt, reason }, 'cannot reach the backup; retrying with backoff');
      }
      this.failures++;
      this.failure = reason;
      this.scheduleRetry(reconnectDelayMs(this.failures, this.options.random ?? Math.random));
    }
  }

  /** Sends HANDSHAKE and waits for HANDSHAKE_OK (or the refusal) on one channel. */
  private handshake(connection: FrameConnection, channel: Channel, sessionId: Buffer): Promise<number | null> {
    return primaryHandshake(connection, channel, sessionId, this.options);
  }

  private onClose(info: CloseInfo): void {
    if (!this.connected) return;
    this.connected = false;
    this.controlConnection?.close('the other channel closed');
    this.bulkConnection?.close('the other channel closed');
    const reason = `${info.code}: ${info.reason}`;
    if (isDeposition(info)) {
      this.emit('deposed', reason);
      return;
    }
    this.emit('lost', reason);
    // A connection that was up is worth trying again at once; a backup that is down, less often.
    this.scheduleRetry(BACKUP_RECONNECT_FIRST_MS);
  }

  /** Closes the current connections (the link reconnects unless stopped). */
  drop(reason: string): void {
    if (!this.connected) return;
    this.controlConnection?.close(reason);
    this.bulkConnection?.close(reason);
  }

  /** Stops at once (no frame is sent after this returns); resolves when the heartbeat thread has ended. */
  stop(reason = 'the primary is shutting down'): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.controlConnection?.close(reason);
    this.bulkConnection?.close(reason);
    this.connected = false;
    return this.heartbeat?.stop() ?? Promise.resolve();
  }
}

/** Who the primary says it is, on every channel of a session. */
export type PrimaryIdentity = Pick<
  BackupLinkOptions,
  'memoryBytes' | 'guestImageHash' | 'generation' | 'instanceId' | 'handshakeTimeoutMs'
>;

/** A channel closed before its handshake was answered: the close says why. */
class HandshakeRefused extends Error {
  constructor(readonly info: CloseInfo) {
    super(`${info.code}: ${info.reason}`);
  }
}

/**
 * The backup said that this primary is deposed: its ERROR frame carries E_DEPOSED. Only that code
 * counts. A reason's text does not, because a reason may quote another one: a deposed peer that
 * closes its link says why ("deposed: … E_DEPOSED …"), and a primary that read its own deposition
 * there would fence itself although it is the one that took over.
 */
function isDeposition(info: CloseInfo): boolean {
  return info.by === 'peer' && info.peerCode === ProtocolErrorCode.DEPOSED;
}

/**
 * Sends HANDSHAKE on one channel and waits for HANDSHAKE_OK (resolves with the backup's applied
 * epoch) or the refusal (rejects with its code and reason). The heartbeat thread uses it too.
 */
export function primaryHandshake(
  connection: FrameConnection,
  channel: Channel,
  sessionId: Buffer,
  identity: PrimaryIdentity,
): Promise<number | null> {
  const { memoryBytes, guestImageHash, generation, instanceId } = identity;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no handshake answer on the ${channel} channel`));
    }, identity.handshakeTimeoutMs ?? 5_000);
    const onFrame = (frame: Frame) => {
      cleanup();
      if (frame.kind === FrameKind.HANDSHAKE_OK && frame.meta.sessionId.equals(sessionId) && frame.meta.channel === channel) {
        resolve(frame.meta.appliedEpoch);
      } else {
        reject(new Error(`unexpected answer to the handshake on the ${channel} channel (kind ${frame.kind})`));
      }
    };
    const onClose = (info: CloseInfo) => {
      cleanup();
      reject(new HandshakeRefused(info));
    };
    const cleanup = () => {
      clearTimeout(timer);
      connection.off('frame', onFrame);
      connection.off('close', onClose);
    };
    connection.on('frame', onFrame);
    connection.on('close', onClose);
    connection.send(
      FrameKind.HANDSHAKE,
      { protocolVersion, memoryBytes, guestImageHash, role: 'primary', channel, sessionId, instanceId },
      { generation },
    );
  });
}
