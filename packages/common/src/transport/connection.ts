/**
 * What both channel drivers share: authentication before anything else, frame events, ERROR and
 * GOODBYE handling, backpressure accounting, and closing with a logged reason. The subclasses
 * (bulk.ts: raw TCP; control.ts: ws) only move bytes.
 *
 * Life of a connection:
 *   authenticating — every decoded frame goes to the AuthMachine; only auth kinds are accepted
 *                    (others are refused from their header); `ready` settles at the end.
 *   open           — frames of the channel's kinds are emitted as `frame`; ERROR and GOODBYE
 *                    from the peer close the connection and are not emitted. With a key, every
 *                    frame in both directions is sealed (protocol/seal.ts) by the encoder and
 *                    decoder here, so every transport that carries frames is sealed alike; a
 *                    frame that does not authenticate closes the connection (E_FRAME_SEAL) and
 *                    is never emitted.
 *   closed         — `close` has been emitted once with a code, a reason and who closed.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.ts';
import { AuthMachine, type AuthConfig, type AuthStep } from '../protocol/auth.ts';
import type { AuthRole } from '../protocol/seal.ts';
import { ProtocolErrorCode, toProtocolError, type ProtocolFailure } from '../protocol/codes.ts';
import { FrameDecoder, type DecodeStep } from '../protocol/decoder.ts';
import { FrameEncoder, type EncodedFrame, type Frame, type FrameFields } from '../protocol/frame.ts';
import { FrameKind, authKinds, frameKindName, kindsForChannel, type Channel } from '../protocol/kinds.ts';
import { authTimeoutMs as authTimeoutMsDefault, errorMessageBytesMax, type ProtocolLimits } from '../protocol/limits.ts';
import type { AuthMode, MetaOf } from '../protocol/messages.ts';
import { type ProtocolError, assert } from '../errors.ts';

/** Why a connection closed. `code` is a ProtocolErrorCode, or `GOODBYE` for an orderly close. */
export interface CloseInfo {
  readonly code: string;
  readonly reason: string;
  /** local: this node decided; peer: the peer sent ERROR or GOODBYE; transport: the socket ended or failed. */
  readonly by: 'local' | 'peer' | 'transport';
  /**
   * The code of the peer's ERROR frame, when that is what ended the connection. Decisions (a
   * deposition, say) go by this code, never by text in a reason: a reason may quote another one.
   */
  readonly peerCode?: string;
}

export const closeCodeGoodbye = 'GOODBYE';

export interface SendResult {
  /** False when the connection was already closed and the frame was dropped. */
  readonly sent: boolean;
  /** The frame's CRC-32 (checkpoint senders chain these into the END checksum); 0 once the connection is sealed. */
  readonly checksum: number;
  /** True when queued bytes are at or above the high-water mark: stop producing and `await drained()`. */
  readonly backpressure: boolean;
  /**
   * Where the frame ends in the connection's output (bytes sent since it opened): once
   * `bytesHandedOver` reaches it, the transport holds no reference to the frame's payload.
   */
  readonly endsAt: number;
}

const droppedSend: SendResult = { sent: false, checksum: 0, backpressure: true, endsAt: 0 };

export interface ConnectionEvents {
  frame: [frame: Frame];
  close: [info: CloseInfo];
}

export interface ConnectionOptions {
  auth: AuthConfig;
  limits: ProtocolLimits;
  logger: Logger;
  /** Defaults to crypto.randomBytes. */
  randomBytes?: (bytes: number) => Buffer;
  /** Monotonic milliseconds; defaults to performance.now. */
  nowMs?: () => number;
  authTimeoutMs?: number;
}

type ConnectionState = 'authenticating' | 'open' | 'closed';

/** How long a closing connection waits for the peer to close its side before destroying the socket. */
export const closeLingerMs = 2_000;

export abstract class FrameConnection extends EventEmitter<ConnectionEvents> {
  readonly channel: Channel;
  readonly role: AuthRole;
  /** Resolves when authenticated; rejects with a ProtocolError when authentication fails or the connection closes first. */
  readonly ready: Promise<AuthMode>;
  protected readonly limits: ProtocolLimits;
  protected readonly logger: Logger;
  /** Decodes (and, once sealed, opens) what the transport receives: subclasses push bytes or messages into it. */
  protected readonly decoder: FrameDecoder;
  private readonly encoder: FrameEncoder;
  private readonly auth: AuthMachine;
  private readonly nowMs: () => number;
  private readonly authTimer: NodeJS.Timeout;
  private state: ConnectionState = 'authenticating';
  private closeInfo: CloseInfo | null = null;
  /** Bytes given to the transport, and bytes it has written, since the connection opened. */
  private bytesQueuedTotal = 0;
  private bytesHandedOverTotal = 0;
  private readonly highWaterBytes: number;
  private drainWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  /**
   * Frames that arrived right after authentication, held until the next turn of the event loop so
   * that whoever awaits `ready` has attached its `frame` listener before they are emitted.
   */
  private deferred: Frame[] | null = null;
  private resolveReady!: (mode: AuthMode) => void;
  private rejectReady!: (error: Error) => void;

  /** `allocateBody`: see FrameDecoderOptions (where received frame bodies are assembled). */
  protected constructor(
    channel: Channel,
    role: AuthRole,
    options: ConnectionOptions,
    highWaterBytes: number,
    logBindings: object,
    allocateBody?: (bytes: number) => Buffer,
  ) {
    super();
    this.channel = channel;
    this.role = role;
    this.limits = options.limits;
    this.logger = options.logger.child({ channel, side: role, ...logBindings });
    this.encoder = new FrameEncoder(options.limits);
    this.decoder = new FrameDecoder({
      limits: options.limits,
      kindsAccepted: authKinds,
      kindsAcceptedWhere: 'before authentication',
      pausesAtAuthentication: true,
      ...(allocateBody === undefined ? {} : { allocateBody }),
    });
    this.highWaterBytes = highWaterBytes;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.ready = new Promise<AuthMode>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Callers that only listen for `close` must not get an unhandled rejection.
    this.ready.catch(() => {});
    const authTimeoutMs = options.authTimeoutMs ?? authTimeoutMsDefault;
    this.auth = new AuthMachine({
      role,
      config: options.auth,
      randomBytes: options.randomBytes ?? cryptoRandomBytes,
      nowMs: this.nowMs(),
      authTimeoutMs,
    });
    this.authTimer = setTimeout(() => this.applyAuthStep(this.auth.onTick(this.nowMs())), authTimeoutMs + 1);
    this.authTimer.unref();
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get closed(): CloseInfo | null {
    return this.closeInfo;
  }

  /** Bytes handed to the transport and not yet written to the kernel. */
  get bufferedBytes(): number {
    return this.bytesQueuedTotal - this.bytesHandedOverTotal;
  }

  /** Bytes the transport has written (or dropped) since the connection opened; see SendResult.endsAt. */
  get bytesHandedOver(): number {
    return this.bytesHandedOverTotal;
  }

  /**
   * Sends a frame. The result says whether it was sent (false once the connection is closed: the
   * frame is dropped and `close` has been emitted), its checksum (for CheckpointChecksum), and
   * whether the write buffer is above its high-water mark — the frame is queued all the same, but
   * the producer should stop and `await drained()`.
   */
  send<K extends FrameKind>(kind: K, meta: MetaOf<K>, fields?: FrameFields): SendResult {
    if (this.state === 'closed') return droppedSend;
    assert(this.state === 'open', `${frameKindName(kind)} is sent only after authentication`);
    assert(kindsForChannel(this.channel).has(kind), `${frameKindName(kind)} belongs on the ${this.channel} channel`);
    assert(kind !== FrameKind.ERROR && kind !== FrameKind.GOODBYE, 'ERROR and GOODBYE are sent by fail() and close()');
    const frame = this.encoder.encode(kind, meta, fields);
    this.sendFrame(frame);
    return { sent: true, checksum: frame.checksum, backpressure: this.bufferedBytes >= this.highWaterBytes, endsAt: this.bytesQueuedTotal };
  }

  /** Resolves when the write buffer is below its high-water mark; rejects if the connection closes first. */
  drained(): Promise<void> {
    if (this.closeInfo !== null) return Promise.reject(closedError(this.closeInfo));
    if (this.bufferedBytes < this.highWaterBytes) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  /** Orderly close: GOODBYE, then the transport ends. */
  close(reason = 'closed by this node'): void {
    if (this.state === 'closed') return;
    if (this.state === 'open') this.sendFrame(this.encoder.encode(FrameKind.GOODBYE, { reason: clip(reason) }));
    this.finish({ code: closeCodeGoodbye, reason, by: 'local' });
  }

  /**
   * Closes because of a protocol violation or a fatal condition: logged, and told to the peer with
   * ERROR. `code` is a ProtocolErrorCode or another stable `E_...` code of the caller's.
   */
  fail(failure: { readonly code: string; readonly reason: string }): void {
    if (this.state === 'closed') return;
    this.sendFrame(this.encoder.encode(FrameKind.ERROR, { code: failure.code, message: clip(failure.reason) }));
    this.finish({ code: failure.code, reason: failure.reason, by: 'local' });
  }

  /** Subclasses call this once the transport can carry bytes. */
  protected startAuthentication(): void {
    this.applyAuthStep(this.auth.start());
  }

  /** Subclasses hand every decode result here. */
  protected receive(step: DecodeStep): void {
    for (const frame of step.frames) {
      if (this.state === 'closed') return;
      this.onFrame(frame);
    }
    if (step.failure !== null && this.state !== 'closed') this.fail(step.failure);
    // Bytes that arrived behind the frame that ended authentication: decoded now that the keys
    // (and the channel's kinds) are in place.
    else if (this.state === 'open' && this.decoder.holding) this.receive(this.decoder.resume());
  }

  /** Subclasses call this when the transport ended or failed; `failure` when bytes were cut mid-frame. */
  protected transportClosed(detail: string, failure: ProtocolFailure | null = null): void {
    if (this.state === 'closed') return;
    if (failure !== null) {
      this.finish({ code: failure.code, reason: `${failure.reason} (${detail})`, by: 'transport' });
      return;
    }
    this.finish({ code: ProtocolErrorCode.CONNECTION_LOST, reason: `${detail} without GOODBYE`, by: 'transport' });
  }

  /** Subclasses call this as frames leave the process (write callbacks), with the bytes written. */
  protected written(bytes: number): void {
    this.bytesHandedOverTotal += bytes;
    if (this.bufferedBytes < this.highWaterBytes && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
  }

  /** Writes one encoded frame; must call `written(frame.bytes)` once the transport has taken it. */
  protected abstract writeFrame(frame: EncodedFrame): void;
  /** Ends the transport after queued writes are flushed (then tears it down). */
  protected abstract endTransport(info: CloseInfo): void;

  private sendFrame(frame: EncodedFrame): void {
    this.bytesQueuedTotal += frame.bytes;
    this.writeFrame(frame);
  }

  private onFrame(frame: Frame): void {
    if (this.state === 'authenticating') {
      this.applyAuthStep(this.auth.onFrame(frame));
      return;
    }
    if (this.deferred !== null) this.deferred.push(frame);
    else this.dispatch(frame);
  }

  private dispatch(frame: Frame): void {
    if (frame.kind === FrameKind.ERROR) {
      this.finish({
        code: ProtocolErrorCode.PEER_ERROR,
        reason: `peer: ${frame.meta.code}: ${frame.meta.message}`,
        by: 'peer',
        peerCode: frame.meta.code,
      });
      return;
    }
    if (frame.kind === FrameKind.GOODBYE) {
      this.finish({ code: closeCodeGoodbye, reason: `peer: ${frame.meta.reason}`, by: 'peer' });
      return;
    }
    this.emit('frame', frame);
  }

  private flushDeferred(): void {
    const frames = this.deferred ?? [];
    this.deferred = null;
    for (const frame of frames) {
      if (this.state !== 'open') return;
      this.dispatch(frame);
    }
  }

  private applyAuthStep(step: AuthStep): void {
    if (this.state !== 'authenticating') return;
    for (const message of step.send) this.sendFrame(this.encoder.encode(message.kind, message.meta as never));
    const status = step.status;
    if (status.state === 'authenticated') {
      clearTimeout(this.authTimer);
      this.state = 'open';
      this.deferred = [];
      setImmediate(() => this.flushDeferred());
      const keys = this.auth.sealKeys(this.channel);
      if (keys !== null) {
        this.encoder.seal(keys.send);
        this.decoder.open(keys.receive);
      }
      this.decoder.accept(kindsForChannel(this.channel), `on the ${this.channel} channel`);
      this.logger.info({ authMode: status.mode, sealed: keys !== null }, `${this.channel} connection authenticated`);
      this.resolveReady(status.mode);
    } else if (status.state === 'failed') {
      const byPeer = status.failure.code === ProtocolErrorCode.AUTH_REFUSED;
      this.finish({ code: status.failure.code, reason: status.failure.reason, by: byPeer ? 'peer' : 'local' });
    }
  }

  private finish(info: CloseInfo): void {
    if (this.state === 'closed') return;
    const wasAuthenticating = this.state === 'authenticating';
    this.state = 'closed';
    this.closeInfo = info;
    clearTimeout(this.authTimer);
    const level = info.code === closeCodeGoodbye ? 'info' : 'warn';
    this.logger[level]({ code: info.code, by: info.by }, `${this.channel} connection closed: ${info.reason}`);
    this.endTransport(info);
    const error = closedError(info);
    if (wasAuthenticating) this.rejectReady(error);
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
    this.emit('close', info);
  }
}

function closedError(info: CloseInfo): ProtocolError {
  return toProtocolError({ code: info.code as ProtocolErrorCode, reason: `connection closed (${info.by}): ${info.reason}` });
}

/** Keeps a reason within what an ERROR or GOODBYE frame may carry. */
function clip(text: string): string {
  return Buffer.byteLength(text) <= errorMessageBytesMax ? text : `${text.slice(0, errorMessageBytesMax / 4 - 1)}…`;
}
