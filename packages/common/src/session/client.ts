/**
 * The session client: a byte stream to the `kv` guest (or any guest) that survives failover with
 * exactly-once delivery in both directions, plus a RESP request API on top.
 *
 * How exactly-once follows (the protocol is described in `protocol.ts`):
 * - every input byte stays in the resend buffer until the server ACKs it as committed (the backup
 *   has the checkpoint that holds it); after each handshake the client resends everything after the
 *   server's `inputAccepted`;
 * - the client tells each server how much output it already has (`outputReceived`); output arriving
 *   before that offset is skipped, so no output byte reaches the application twice.
 *
 * Which server: the client knows a list of addresses and tries them in turn. It moves on when a node
 * says it is not serving (a backup or a deposed primary) or busy, when the connection is refused or
 * closes, and when the node makes no progress for `responseTimeoutMs`: no handshake reply, input not
 * acknowledged, a request without a reply, or nothing heard although a PING is due an answer. (Only
 * the request API knows that a reply is due; a byte-stream user relies on the other checks.) After
 * a whole round of failures it backs off exponentially with jitter. A node whose generation is below
 * the highest this client has seen is a deposed primary: it is never used (its state is an older
 * prefix at best).
 *
 * Sockets, time and randomness are injected (`connect`, `clock`, `random`), so the same code runs
 * against real TCP and in unit tests with a manual clock.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { assert, type HbftError, ProtocolError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { SeededRandom } from '../random.ts';
import { formatEndpoint, parseHostPort } from '../units.ts';
import { ByteQueue } from './byteQueue.ts';
import { systemClock, type Clock } from './clock.ts';
import { SessionError, SessionErrorCode } from './errors.ts';
import {
  encodeAckFrame,
  encodeClientHandshake,
  encodeDataFrame,
  encodePingFrame,
  encodePongFrame,
  FRAME_PAYLOAD_BYTES_MAX,
  handshakeStatusName,
  HandshakeStatus,
  SESSION_ID_BYTES,
  SessionDecoder,
  type ServerHandshake,
  type SessionMessage,
} from './protocol.ts';
import { encodeCommand, ReplyReader, type RespValue } from './resp.ts';

export interface Endpoint {
  host: string;
  port: number;
}

/** The part of a socket the client uses; `net.Socket` is one. */
export interface SessionSocket {
  write(bytes: Uint8Array): unknown;
  destroy(): unknown;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** Opens a connection; failures are reported through the socket's `error`/`close` events. */
export type ConnectFunction = (endpoint: Endpoint) => SessionSocket;

export const tcpConnect: ConnectFunction = (endpoint) => {
  const socket = net.connect({ host: endpoint.host, port: endpoint.port });
  socket.setNoDelay(true);
  return socket;
};

export const SESSION_CLIENT_DEFAULTS = {
  responseTimeoutMs: 3000,
  // Attempts are cheap (a TCP connect and 33 bytes) and every millisecond of backoff after the
  // backup has promoted itself adds to the failover gap: retry often.
  backoffMsMin: 20,
  backoffMsMax: 200,
  reconnectDeadlineMs: Infinity,
  resendBytesMax: 64 * 1024 * 1024,
  resendBytesHighWater: 4 * 1024 * 1024,
} as const;

export interface SessionClientOptions {
  /** Addresses of the nodes, `HOST:PORT` or endpoints, in the order to try them. */
  servers: readonly (string | Endpoint)[];
  connect?: ConnectFunction;
  clock?: Clock;
  /** Jitter for backoff; seeded from the session id when left out. */
  random?: SeededRandom;
  /** 16 bytes; random when left out. */
  sessionId?: Uint8Array;
  logger?: Logger;
  /** A node that makes no progress for this long is abandoned for the next address. */
  responseTimeoutMs?: number;
  /** Send a PING when nothing has been heard for this long (default: a third of the response timeout). */
  pingIntervalMs?: number;
  backoffMsMin?: number;
  backoffMsMax?: number;
  /** Give up (E_SESSION_UNREACHABLE) after this long without a serving node; unlimited by default. */
  reconnectDeadlineMs?: number;
  /** Unacknowledged input beyond this is refused (E_SESSION_RESEND_FULL). */
  resendBytesMax?: number;
  /** `write` returns false above this much unacknowledged input, and `drain` follows. */
  resendBytesHighWater?: number;
  /** Largest DATA payload this client sends. */
  payloadBytesMax?: number;
}

export interface ConnectInfo {
  address: string;
  generation: number;
  /** False for the first handshake of the session. */
  resumed: boolean;
  inputAccepted: number;
  outputStart: number;
  /** Input bytes sent again because the server did not have them (lost with uncommitted state). */
  inputResentBytes: number;
}

export interface FailoverInfo {
  from: string;
  to: string;
  fromGeneration: number;
  toGeneration: number;
  /** From the last byte heard on the old connection to the new handshake. */
  gapMs: number;
  inputResentBytes: number;
}

export interface DisconnectInfo {
  address: string;
  reason: string;
  code?: string;
}

export interface SessionClientEvents {
  /** Output bytes, each delivered exactly once and in order. */
  data: [bytes: Uint8Array];
  connect: [info: ConnectInfo];
  /** A resumed handshake on another node or another generation than the last one. */
  failover: [info: FailoverInfo];
  disconnect: [info: DisconnectInfo];
  /** The session has ended with an error; emitted only when someone listens (see `whenClosed`). */
  error: [error: HbftError];
  drain: [];
  close: [];
}

export interface SessionClientStats {
  connectAttempts: number;
  reconnects: number;
  failovers: number;
  inputResentBytes: number;
}

interface Connection {
  socket: SessionSocket;
  address: string;
  index: number;
  phase: 'handshaking' | 'open';
  decoder: SessionDecoder;
  startedMs: number;
  openedMs: number;
  lastHeardMs: number;
  generation: number;
  /** Input sent on this connection ends here (starts at the server's inputAccepted). */
  inputSentEnd: number;
  /** Stream offset of the next output byte this connection will carry. */
  outputPosition: number;
  ackSentOffset: number;
  /** Since when sent input has waited for an ACK that advances. */
  inputStallSinceMs: number;
  pingOutstanding: boolean;
}

interface PendingRequest {
  resolve: (value: RespValue) => void;
  reject: (error: Error) => void;
}

export class SessionClient extends EventEmitter<SessionClientEvents> {
  readonly sessionId: Uint8Array;
  readonly servers: readonly Endpoint[];
  private readonly addresses: readonly string[];
  private readonly connectFunction: ConnectFunction;
  private readonly clock: Clock;
  private readonly random: SeededRandom;
  private readonly logger: Logger;
  private readonly responseTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private readonly backoffMsMin: number;
  private readonly backoffMsMax: number;
  private readonly reconnectDeadlineMs: number;
  private readonly resendBytesMax: number;
  private readonly resendBytesHighWater: number;
  private readonly payloadBytesMax: number;
  private readonly tickMs: number;

  private running = true;
  private conn: Connection | null = null;
  private addressIndex = 0;
  /** Failed attempts since the last accepted handshake. */
  private failures = 0;
  private reconnectTimer: unknown = null;
  private tickTimer: unknown = null;
  /** Since when no connection has been open (null while one is). */
  private disconnectedSinceMs: number | null;
  private lastServed: { address: string; generation: number; lastHeardMs: number } | null = null;
  private generationValue = 0;
  private generationMaxValue = 0;
  private readonly resend = new ByteQueue(0);
  private inputCommittedValue = 0;
  private inputSentHighWater = 0;
  private outputReceivedValue = 0;
  private replyReader: ReplyReader | null = null;
  private readonly pending: PendingRequest[] = [];
  private pendingHead = 0;
  /** Since when the oldest pending request has waited without any reply arriving. */
  private replyWaitSinceMs = 0;
  private wantDrain = false;
  private closedError: HbftError | null = null;
  private readonly closed: Promise<HbftError | null>;
  private resolveClosed!: (error: HbftError | null) => void;
  private readonly statsValue: SessionClientStats = { connectAttempts: 0, reconnects: 0, failovers: 0, inputResentBytes: 0 };

  constructor(options: SessionClientOptions) {
    super();
    assert(options.servers.length > 0, 'a session client needs at least one server address');
    this.servers = options.servers.map((server) => (typeof server === 'string' ? parseHostPort(server, 'server address') : server));
    this.addresses = this.servers.map(formatEndpoint);
    this.sessionId = options.sessionId ?? new Uint8Array(randomBytes(SESSION_ID_BYTES));
    assert(this.sessionId.length === SESSION_ID_BYTES, `a session id is ${SESSION_ID_BYTES} bytes`);
    this.connectFunction = options.connect ?? tcpConnect;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? new SeededRandom(Buffer.from(this.sessionId).readUInt32LE(0));
    this.responseTimeoutMs = options.responseTimeoutMs ?? SESSION_CLIENT_DEFAULTS.responseTimeoutMs;
    this.pingIntervalMs = options.pingIntervalMs ?? this.responseTimeoutMs / 3;
    this.backoffMsMin = options.backoffMsMin ?? SESSION_CLIENT_DEFAULTS.backoffMsMin;
    this.backoffMsMax = options.backoffMsMax ?? SESSION_CLIENT_DEFAULTS.backoffMsMax;
    this.reconnectDeadlineMs = options.reconnectDeadlineMs ?? SESSION_CLIENT_DEFAULTS.reconnectDeadlineMs;
    this.resendBytesMax = options.resendBytesMax ?? SESSION_CLIENT_DEFAULTS.resendBytesMax;
    this.resendBytesHighWater = Math.min(options.resendBytesHighWater ?? SESSION_CLIENT_DEFAULTS.resendBytesHighWater, this.resendBytesMax);
    this.payloadBytesMax = options.payloadBytesMax ?? FRAME_PAYLOAD_BYTES_MAX;
    assert(this.responseTimeoutMs > 0 && this.pingIntervalMs > 0, 'timeouts must be positive');
    assert(
      this.pingIntervalMs < this.responseTimeoutMs,
      'pingIntervalMs must be below responseTimeoutMs, or a quiet node would be abandoned before it is pinged',
    );
    assert(this.backoffMsMin > 0 && this.backoffMsMax >= this.backoffMsMin, 'backoff bounds out of order');
    assert(this.payloadBytesMax >= 1 && this.payloadBytesMax <= FRAME_PAYLOAD_BYTES_MAX, 'payloadBytesMax out of range');
    this.tickMs = Math.max(5, Math.min(this.pingIntervalMs / 2, this.responseTimeoutMs / 4, 250));
    this.logger = (options.logger ?? silentLogger()).child({ session: this.sessionIdHex.slice(0, 8) });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.disconnectedSinceMs = this.clock.nowMs();
    this.scheduleTick();
    this.attempt();
  }

  get sessionIdHex(): string {
    return Buffer.from(this.sessionId).toString('hex');
  }

  /** Generation of the node currently (or last) serving this session; 0 before the first handshake. */
  get generation(): number {
    return this.generationValue;
  }

  get generationMax(): number {
    return this.generationMaxValue;
  }

  /** Address of the node currently serving, or null while (re)connecting. */
  get address(): string | null {
    return this.conn?.phase === 'open' ? this.conn.address : null;
  }

  get connected(): boolean {
    return this.conn?.phase === 'open';
  }

  get isClosed(): boolean {
    return !this.running;
  }

  /** Bytes written by the application (the input stream's end offset). */
  get inputWritten(): number {
    return this.resend.endOffset;
  }

  /** Input the server has acknowledged as committed. */
  get inputCommitted(): number {
    return this.inputCommittedValue;
  }

  /** Output bytes delivered to the application. */
  get outputReceived(): number {
    return this.outputReceivedValue;
  }

  get pendingRequests(): number {
    return this.pending.length - this.pendingHead;
  }

  get stats(): Readonly<SessionClientStats> {
    return this.statsValue;
  }

  /** Resolves when the session ends: null after `close()`, the error when it failed. */
  whenClosed(): Promise<HbftError | null> {
    return this.closed;
  }

  /**
   * Queues input bytes (copied); they reach the server exactly once whatever fails in between.
   * Returns false when the unacknowledged input is above the high-water mark (`drain` follows).
   */
  write(bytes: Uint8Array): boolean {
    return this.writeOwned(new Uint8Array(bytes));
  }

  /**
   * Sends one RESP command; resolves with its reply (a RESP error reply is a resolved `RespError`).
   * Requests may be pipelined: replies are matched in order. Do not mix with raw `write` calls.
   * Rejects with a SessionError when the session ends before the reply.
   */
  request(args: readonly (string | number | Uint8Array)[]): Promise<RespValue> {
    if (!this.running) return Promise.reject(this.endedError());
    this.replyReader ??= new ReplyReader();
    return new Promise((resolve, reject) => {
      if (this.pendingRequests === 0) this.replyWaitSinceMs = this.clock.nowMs();
      this.pending.push({ resolve, reject });
      try {
        this.writeOwned(encodeCommand([...args]));
      } catch (error) {
        this.pending.pop();
        reject(error as Error);
      }
    });
  }

  /** Ends the session: pending requests reject with E_SESSION_CLOSED. The server forgets it later. */
  close(): Promise<void> {
    this.finish(null);
    return this.closed.then(() => undefined);
  }

  private writeOwned(bytes: Uint8Array): boolean {
    if (!this.running) throw this.endedError();
    if (this.resend.byteLength + bytes.length > this.resendBytesMax) {
      throw new SessionError(SessionErrorCode.resendFull, `unacknowledged input would exceed ${this.resendBytesMax} bytes`);
    }
    const conn = this.conn;
    const caughtUp = conn?.phase === 'open' && conn.inputSentEnd === this.resend.endOffset;
    this.resend.append(bytes);
    if (conn?.phase === 'open') {
      if (caughtUp) this.sendInputPieces(conn, [bytes]);
      else this.sendInput(conn);
    }
    const below = this.resend.byteLength < this.resendBytesHighWater;
    if (!below) this.wantDrain = true;
    return below;
  }

  private endedError(): HbftError {
    return this.closedError ?? new SessionError(SessionErrorCode.closed, 'the session is closed');
  }

  // --- connection attempts -------------------------------------------------------------------

  private attempt(): void {
    this.reconnectTimer = null;
    if (!this.running) return;
    const index = this.addressIndex;
    const server = this.servers[index];
    const address = this.addresses[index];
    assert(server !== undefined && address !== undefined, 'addressIndex stays below the number of servers');
    const now = this.clock.nowMs();
    this.statsValue.connectAttempts++;
    this.logger.debug({ address, outputReceived: this.outputReceivedValue }, 'connecting');
    let socket: SessionSocket;
    try {
      socket = this.connectFunction(server);
    } catch (error) {
      this.failures++;
      this.addressIndex = (index + 1) % this.servers.length;
      this.emit('disconnect', { address, reason: `cannot connect: ${(error as Error).message}` });
      this.scheduleAttempt();
      return;
    }
    const conn: Connection = {
      socket,
      address,
      index,
      phase: 'handshaking',
      decoder: new SessionDecoder('client'),
      startedMs: now,
      openedMs: now,
      lastHeardMs: now,
      generation: 0,
      inputSentEnd: 0,
      outputPosition: 0,
      ackSentOffset: 0,
      inputStallSinceMs: now,
      pingOutstanding: false,
    };
    this.conn = conn;
    socket.on('data', (chunk) => this.onSocketData(conn, chunk));
    socket.on('error', (error) => this.dropConnection(conn, `connection error: ${error.message}`, (error as NodeJS.ErrnoException).code));
    socket.on('close', () => this.dropConnection(conn, 'connection closed by the peer'));
    // The handshake says how much output we have; no output arrives while it is in flight.
    socket.write(encodeClientHandshake({ sessionId: this.sessionId, outputReceived: this.outputReceivedValue }));
  }

  /** Delay before the next attempt: none while a round of addresses is untried, then exponential. */
  private backoffDelayMs(): number {
    const beyondRound = this.failures - this.servers.length;
    if (beyondRound < 0) return 0;
    const ceiling = Math.min(this.backoffMsMax, this.backoffMsMin * 2 ** Math.min(beyondRound, 30));
    return ceiling * (0.5 + 0.5 * (this.random.nextU32() / 2 ** 32));
  }

  private scheduleAttempt(): void {
    if (!this.running || this.reconnectTimer !== null) return;
    const delayMs = this.backoffDelayMs();
    this.reconnectTimer = this.clock.setTimeout(() => this.attempt(), delayMs);
  }

  /** Abandons a connection (if still current) and moves on to the next address. */
  private dropConnection(conn: Connection, reason: string, code?: string): void {
    if (conn !== this.conn) return;
    this.conn = null;
    conn.socket.destroy();
    const now = this.clock.nowMs();
    if (conn.phase === 'open') {
      this.disconnectedSinceMs = now;
      this.lastServed = { address: conn.address, generation: conn.generation, lastHeardMs: conn.lastHeardMs };
      this.logger.info({ address: conn.address, generation: conn.generation, reason, code }, 'lost the serving node');
    } else {
      this.logger.debug({ address: conn.address, reason, code }, 'attempt failed');
    }
    this.failures++;
    this.addressIndex = (conn.index + 1) % this.servers.length;
    if (!this.running) return;
    this.emit('disconnect', { address: conn.address, reason, ...(code ? { code } : {}) });
    this.scheduleAttempt();
  }

  // --- incoming bytes ------------------------------------------------------------------------

  private onSocketData(conn: Connection, chunk: Uint8Array): void {
    if (conn !== this.conn) return;
    conn.lastHeardMs = this.clock.nowMs();
    const result = conn.decoder.push(chunk);
    for (const message of result.messages) {
      if (conn !== this.conn) return;
      this.onMessage(conn, message);
    }
    if (conn !== this.conn) return;
    if (result.error) {
      const error = new ProtocolError(result.error.code, `${conn.address}: ${result.error.reason}`);
      this.logger.warn({ address: conn.address, code: error.code }, error.message);
      this.dropConnection(conn, error.message, error.code);
      return;
    }
    if (conn.phase === 'open' && this.outputReceivedValue > conn.ackSentOffset) {
      conn.ackSentOffset = this.outputReceivedValue;
      conn.socket.write(encodeAckFrame(this.outputReceivedValue));
    }
  }

  private onMessage(conn: Connection, message: SessionMessage): void {
    switch (message.kind) {
      case 'serverHandshake':
        this.onServerHandshake(conn, message);
        return;
      case 'clientHandshake':
        assert(false, 'a client-side decoder never yields a client handshake');
        return;
      case 'data':
        this.onData(conn, message.payload);
        return;
      case 'ack':
        this.onAck(conn, message.offset);
        return;
      case 'ping':
        conn.socket.write(encodePongFrame());
        return;
      case 'pong':
        conn.pingOutstanding = false;
        return;
    }
  }

  private onServerHandshake(conn: Connection, reply: ServerHandshake): void {
    const { address } = conn;
    const stale = reply.generation < this.generationMaxValue;
    const staleNote = `generation ${reply.generation}, below ${this.generationMaxValue} seen before`;
    switch (reply.status) {
      case HandshakeStatus.notServing:
        return this.dropConnection(conn, `${address} is not serving`);
      case HandshakeStatus.busy:
        return this.dropConnection(conn, `${address} is busy (no free connection slot)`);
      case HandshakeStatus.badRequest:
        return this.fail(new SessionError(SessionErrorCode.rejected, `${address} rejected the session handshake as a bad request`));
      case HandshakeStatus.gap:
        // A deposed primary never knew this session's later output: only a current node's word counts.
        if (stale) return this.dropConnection(conn, `${address} (${staleNote}) cannot resume this session`);
        return this.fail(
          new SessionError(
            SessionErrorCode.gap,
            `${address} (generation ${reply.generation}) no longer holds this session's output from offset ${this.outputReceivedValue}; the session cannot resume`,
          ),
        );
      case HandshakeStatus.ok:
        break;
      default:
        return this.dropConnection(conn, `${address} answered ${handshakeStatusName(reply.status)}`);
    }
    if (stale) {
      // A deposed primary: its state is at best an older prefix of the session, and output from a
      // node that lost an election must not reach the application. Keep looking (until the deadline).
      return this.dropConnection(conn, `${address} serves an old generation (${staleNote}); looking for a current node`);
    }
    // Offsets a correct server of the current generation can never send: exactly-once is broken.
    let broken: HbftError | undefined;
    if (reply.inputAccepted > this.resend.endOffset) {
      broken = new ProtocolError(
        'E_SESSION_INPUT_AHEAD',
        `${address} claims ${reply.inputAccepted} input bytes; only ${this.resend.endOffset} were written`,
      );
    } else if (reply.inputAccepted < this.inputCommittedValue) {
      broken = new SessionError(
        SessionErrorCode.inputLost,
        `${address} has input up to ${reply.inputAccepted}, but input up to ${this.inputCommittedValue} was acknowledged as committed`,
      );
    } else if (reply.outputStart > this.outputReceivedValue) {
      broken = new SessionError(
        SessionErrorCode.gap,
        `${address} would resume output at ${reply.outputStart}, after the ${this.outputReceivedValue} bytes received`,
      );
    }
    if (broken) return this.fail(broken);

    const now = this.clock.nowMs();
    // Resumed: some connection of this session was open before (only then can input have been sent).
    const resumed = this.lastServed !== null;
    conn.phase = 'open';
    conn.openedMs = now;
    conn.generation = reply.generation;
    conn.inputSentEnd = reply.inputAccepted;
    // A server that starts before what we have resends bytes we skip; normally outputStart equals it.
    conn.outputPosition = reply.outputStart;
    conn.ackSentOffset = reply.outputStart;
    conn.inputStallSinceMs = now;
    this.generationValue = reply.generation;
    this.generationMaxValue = Math.max(this.generationMaxValue, reply.generation);
    this.failures = 0;
    this.disconnectedSinceMs = null;
    const inputResentBytes = Math.max(0, this.inputSentHighWater - reply.inputAccepted);
    this.statsValue.inputResentBytes += inputResentBytes;
    if (resumed) this.statsValue.reconnects++;
    this.logger[resumed ? 'info' : 'debug'](
      {
        address,
        generation: reply.generation,
        resumed,
        inputAccepted: reply.inputAccepted,
        outputStart: reply.outputStart,
        inputResentBytes,
      },
      'session attached',
    );
    const previous = this.lastServed;
    this.emit('connect', {
      address,
      generation: reply.generation,
      resumed,
      inputAccepted: reply.inputAccepted,
      outputStart: reply.outputStart,
      inputResentBytes,
    });
    if (conn !== this.conn) return;
    if (previous && (previous.address !== address || previous.generation !== reply.generation)) {
      this.statsValue.failovers++;
      this.emit('failover', {
        from: previous.address,
        to: address,
        fromGeneration: previous.generation,
        toGeneration: reply.generation,
        gapMs: now - previous.lastHeardMs,
        inputResentBytes,
      });
      if (conn !== this.conn) return;
    }
    this.sendInput(conn);
  }

  private onData(conn: Connection, payload: Uint8Array): void {
    const start = conn.outputPosition;
    conn.outputPosition += payload.length;
    const skip = this.outputReceivedValue - start;
    if (skip >= payload.length) return;
    assert(skip >= 0, 'output positions never pass what was delivered');
    this.deliver(skip > 0 ? payload.subarray(skip) : payload);
  }

  private deliver(bytes: Uint8Array): void {
    this.outputReceivedValue += bytes.length;
    this.emit('data', bytes);
    const reader = this.replyReader;
    if (!reader) return;
    reader.push(bytes);
    for (;;) {
      let value: RespValue | undefined;
      try {
        value = reader.next();
      } catch (error) {
        this.fail(new SessionError(SessionErrorCode.badReply, `the output stream is not valid RESP: ${(error as Error).message}`));
        return;
      }
      if (value === undefined) return;
      const waiter = this.pending[this.pendingHead];
      if (waiter === undefined) {
        this.fail(new SessionError(SessionErrorCode.badReply, 'the server sent a reply that no request asked for'));
        return;
      }
      this.pending[this.pendingHead++] = undefined as unknown as PendingRequest;
      if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
        this.pending.splice(0, this.pendingHead);
        this.pendingHead = 0;
      }
      this.replyWaitSinceMs = this.clock.nowMs();
      waiter.resolve(value);
    }
  }

  private onAck(conn: Connection, offset: number): void {
    if (offset > conn.inputSentEnd) {
      const reason = `${conn.address} acknowledged input up to ${offset}, beyond the ${conn.inputSentEnd} bytes sent`;
      this.logger.warn({ address: conn.address, code: 'E_SESSION_ACK_RANGE' }, reason);
      this.dropConnection(conn, reason, 'E_SESSION_ACK_RANGE');
      return;
    }
    if (offset <= this.inputCommittedValue) return;
    this.inputCommittedValue = offset;
    this.resend.dropBefore(offset);
    conn.inputStallSinceMs = this.clock.nowMs();
    if (this.wantDrain && this.resend.byteLength < this.resendBytesHighWater) {
      this.wantDrain = false;
      this.emit('drain');
    }
  }

  // --- outgoing bytes ------------------------------------------------------------------------

  /** Sends whatever input this connection has not carried yet. */
  private sendInput(conn: Connection): void {
    if (conn.inputSentEnd >= this.resend.endOffset) return;
    this.sendInputPieces(conn, this.resend.slicesFrom(conn.inputSentEnd, this.payloadBytesMax));
  }

  private sendInputPieces(conn: Connection, pieces: Uint8Array[]): void {
    if (this.inputCommittedValue >= conn.inputSentEnd) conn.inputStallSinceMs = this.clock.nowMs();
    for (const piece of pieces) {
      for (let at = 0; at < piece.length; at += this.payloadBytesMax) {
        const part = piece.subarray(at, at + this.payloadBytesMax);
        conn.socket.write(encodeDataFrame(part));
        conn.inputSentEnd += part.length;
      }
    }
    this.inputSentHighWater = Math.max(this.inputSentHighWater, conn.inputSentEnd);
  }

  // --- time ----------------------------------------------------------------------------------

  private scheduleTick(): void {
    this.tickTimer = this.clock.setTimeout(() => this.onTick(), this.tickMs);
  }

  private onTick(): void {
    this.tickTimer = null;
    if (!this.running) return;
    const now = this.clock.nowMs();
    const conn = this.conn;
    if (conn?.phase === 'handshaking' && now - conn.startedMs > this.responseTimeoutMs) {
      this.dropConnection(conn, `no handshake reply from ${conn.address} within ${this.responseTimeoutMs} ms`, 'E_SESSION_TIMEOUT');
    } else if (conn?.phase === 'open') {
      if (conn.inputSentEnd > this.inputCommittedValue && now - conn.inputStallSinceMs > this.responseTimeoutMs) {
        this.dropConnection(conn, `${conn.address} acknowledged no input for ${this.responseTimeoutMs} ms`, 'E_SESSION_TIMEOUT');
      } else if (this.pendingRequests > 0 && now - Math.max(this.replyWaitSinceMs, conn.openedMs) > this.responseTimeoutMs) {
        // Input committed but no reply released: a primary that can no longer commit (deposed, cut
        // off from its backup) may still answer PINGs, so only a reply counts as progress here.
        this.dropConnection(conn, `no reply from ${conn.address} for ${this.responseTimeoutMs} ms`, 'E_SESSION_TIMEOUT');
      } else if (now - conn.lastHeardMs > this.responseTimeoutMs) {
        this.dropConnection(conn, `nothing heard from ${conn.address} for ${this.responseTimeoutMs} ms`, 'E_SESSION_TIMEOUT');
      } else if (now - conn.lastHeardMs >= this.pingIntervalMs && !conn.pingOutstanding) {
        conn.pingOutstanding = true;
        conn.socket.write(encodePingFrame());
      }
    }
    if (this.disconnectedSinceMs !== null && now - this.disconnectedSinceMs > this.reconnectDeadlineMs) {
      this.fail(
        new SessionError(
          SessionErrorCode.unreachable,
          `no node of ${this.addresses.join(', ')} served this session for ${this.reconnectDeadlineMs} ms`,
        ),
      );
      return;
    }
    if (this.running) this.scheduleTick();
  }

  // --- the end -------------------------------------------------------------------------------

  private fail(error: HbftError): void {
    if (!this.running) return;
    this.logger.warn({ code: error.code }, error.message);
    this.finish(error);
  }

  private finish(error: HbftError | null): void {
    if (!this.running) return;
    this.running = false;
    this.closedError = error;
    if (this.reconnectTimer !== null) this.clock.clearTimeout(this.reconnectTimer);
    if (this.tickTimer !== null) this.clock.clearTimeout(this.tickTimer);
    this.reconnectTimer = this.tickTimer = null;
    const conn = this.conn;
    this.conn = null;
    conn?.socket.destroy();
    const rejection = this.endedError();
    for (const waiter of this.pending.slice(this.pendingHead)) waiter.reject(rejection);
    this.pending.length = 0;
    this.pendingHead = 0;
    if (error && this.listenerCount('error') > 0) this.emit('error', error);
    this.emit('close');
    this.resolveClosed(error);
  }
}
