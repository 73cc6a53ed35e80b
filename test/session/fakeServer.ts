/**
 * A reference implementation of the server side of the session protocol, for tests only: a cluster
 * of nodes (one serving at a time) over a tiny in-memory RESP key–value store, with output commit
 * and failover that behave like the daemon's.
 *
 * - Input is applied to the **live** state at once; replies are held.
 * - `commit()` (every `epochMs`, or by hand) snapshots the live state as **committed**, releases the
 *   held output to clients and ACKs the input it covers: like the backup acknowledging a checkpoint.
 * - `failover()` drops every connection, throws the live state away, restores the committed
 *   snapshot, bumps the generation and makes another node serve (on its own port); the old node
 *   either answers "not serving" or stops listening.
 * - Faults: output writes split into random pieces and random connection cuts mid-frame
 *   (`cutProbability`), a connection limit (busy), forgetting every session (gap), a stall of the
 *   epochs (`holdCommits`: no output released for a while), and deliberate bugs that tests watch the
 *   client and the checker catch: `restoreStaleSnapshot` restores an older snapshot (lost state),
 *   `applyNextIncrsTwice` applies INCRs twice (duplicated writes).
 */
import net from 'node:net';
import { once } from 'node:events';
import {
  encodeAckFrame,
  encodeDataFrame,
  encodePongFrame,
  encodeServerHandshake,
  HandshakeStatus,
  isSessionConnection,
  SessionDecoder,
  type ClientHandshake,
} from '@hbft/common/session/protocol.ts';
import { parseReply, type RespValue } from '@hbft/common/session/resp.ts';
import { SeededRandom } from '@hbft/common/random.ts';

interface SessionState {
  /** Input bytes received (and applied, up to `inputPending`). */
  inputAccepted: number;
  /** Received bytes of a command not complete yet. */
  inputPending: Buffer;
  /** Output from `outputStart` on; older output was acknowledged by the client and dropped. */
  output: Buffer;
  outputStart: number;
}

interface ClusterState {
  store: Map<string, string>;
  sessions: Map<string, SessionState>;
}

function cloneState(state: ClusterState): ClusterState {
  // Buffers are never changed in place (every change makes a new one), so sharing them is safe.
  return { store: new Map(state.store), sessions: new Map([...state.sessions].map(([id, session]) => [id, { ...session }])) };
}

function outputEnd(session: SessionState): number {
  return session.outputStart + session.output.length;
}

export interface FakeClusterOptions {
  nodes?: number;
  /** Commit every this many ms; 0 commits only when `commit()` is called. */
  epochMs?: number;
  /** Randomness for fragmenting and cutting; give a seeded one to replay. */
  random?: SeededRandom;
  /** Probability that an output frame is cut off halfway and the connection dropped. */
  cutProbability?: number;
  /** Largest piece of output per DATA frame (pieces are random up to this). */
  outputPieceBytesMax?: number;
  /** Session connections per node before it answers busy. */
  maxConnections?: number;
  /** Deliberate bug: a failover restores the snapshot before the last one. */
  restoreStaleSnapshot?: boolean;
  generation?: number;
}

type NodeMode = 'serving' | 'notServing' | 'down';

interface FakeNode {
  index: number;
  port: number;
  server: net.Server;
  mode: NodeMode;
  sockets: Set<net.Socket>;
  sessionConnections: number;
}

interface Attachment {
  socket: net.Socket;
  node: FakeNode;
  outputSentEnd: number;
  inputAckSent: number;
}

interface PlainConnection {
  socket: net.Socket;
  pending: Buffer;
  held: Buffer[];
}

export class FakeCluster {
  readonly nodes: FakeNode[] = [];
  generation: number;
  live: ClusterState = { store: new Map(), sessions: new Map() };
  committed: ClusterState = cloneState(this.live);
  private previousCommitted: ClusterState = cloneState(this.live);
  private readonly attachments = new Map<string, Attachment>();
  private readonly plain = new Set<PlainConnection>();
  private readonly random: SeededRandom;
  private epochTimer: NodeJS.Timeout | null = null;
  /** The epoch timer commits nothing before this (performance.now() milliseconds). */
  private commitsHeldUntilMs = 0;
  private incrsToApplyTwice = 0;
  readonly stats = { commits: 0, failovers: 0, cuts: 0, handshakes: 0, resumes: 0, gaps: 0, busy: 0, notServing: 0 };

  private constructor(private readonly options: FakeClusterOptions) {
    this.random = options.random ?? new SeededRandom(1);
    this.generation = options.generation ?? 1;
  }

  static async start(options: FakeClusterOptions = {}): Promise<FakeCluster> {
    const cluster = new FakeCluster(options);
    for (let index = 0; index < (options.nodes ?? 2); index++) {
      const node: FakeNode = {
        index,
        port: 0,
        server: net.createServer(),
        mode: index === 0 ? 'serving' : 'notServing',
        sockets: new Set(),
        sessionConnections: 0,
      };
      node.server.on('connection', (socket) => cluster.onConnection(node, socket));
      node.server.listen(0, '127.0.0.1');
      await once(node.server, 'listening');
      node.port = (node.server.address() as net.AddressInfo).port;
      cluster.nodes.push(node);
    }
    if (options.epochMs)
      cluster.epochTimer = setInterval(() => {
        if (performance.now() >= cluster.commitsHeldUntilMs) cluster.commit();
      }, options.epochMs);
    return cluster;
  }

  get addresses(): string[] {
    return this.nodes.map((node) => `127.0.0.1:${node.port}`);
  }

  get servingIndex(): number {
    return this.nodes.findIndex((node) => node.mode === 'serving');
  }

  /** The committed value of `key` (what a client could have seen). */
  committedValue(key: string): string | undefined {
    return this.committed.store.get(key);
  }

  /** The backup acknowledges a checkpoint: snapshot the live state, release output, ACK input. */
  commit(): void {
    this.previousCommitted = this.committed;
    this.committed = cloneState(this.live);
    this.stats.commits++;
    for (const [id, attachment] of this.attachments) this.releaseTo(id, attachment);
    for (const connection of this.plain) {
      for (const bytes of connection.held) connection.socket.write(bytes);
      connection.held = [];
    }
  }

  /**
   * The serving node dies: connections drop, uncommitted state is lost, another node (the next one
   * by default) serves the committed state under a new generation. The old node answers "not
   * serving" or, with `oldNode: 'down'`, refuses connections.
   */
  async failover(options: { to?: number; oldNode?: 'notServing' | 'down' } = {}): Promise<void> {
    const from = this.servingIndex;
    const to = options.to ?? (from + 1) % this.nodes.length;
    this.dropAllConnections();
    this.live = cloneState(this.options.restoreStaleSnapshot ? this.previousCommitted : this.committed);
    this.committed = cloneState(this.live);
    this.generation++;
    this.stats.failovers++;
    if (from >= 0 && from !== to) await this.setMode(from, options.oldNode ?? 'notServing');
    await this.setMode(to, 'serving');
  }

  async setMode(index: number, mode: NodeMode): Promise<void> {
    const node = this.nodes[index]!;
    if (node.mode === mode) return;
    const wasDown = node.mode === 'down';
    node.mode = mode;
    if (mode === 'down') {
      for (const socket of node.sockets) socket.destroy();
      await new Promise<void>((resolve) => node.server.close(() => resolve()));
    } else if (wasDown) {
      node.server.listen(node.port, '127.0.0.1');
      await once(node.server, 'listening');
    }
  }

  /** Cuts every connection without losing any state (a network blip). */
  dropAllConnections(): void {
    for (const node of this.nodes) for (const socket of node.sockets) socket.destroy();
    this.attachments.clear();
    this.plain.clear();
  }

  /** Forgets every session: the next resume gets status 1 (gap). */
  forgetSessions(): void {
    this.live.sessions.clear();
    this.committed.sessions.clear();
  }

  /** The epochs stall for `ms`: commands still run, but no reply is released (a backup that stopped acking). */
  holdCommits(ms: number): void {
    this.commitsHeldUntilMs = performance.now() + ms;
  }

  /** Deliberate bug: each of the next `count` INCRs adds 2 and answers as if it had added 1. */
  applyNextIncrsTwice(count: number): void {
    this.incrsToApplyTwice = count;
  }

  setMaxConnections(max: number | undefined): void {
    this.options.maxConnections = max;
  }

  async close(): Promise<void> {
    if (this.epochTimer) clearInterval(this.epochTimer);
    this.dropAllConnections();
    await Promise.all(
      this.nodes.filter((node) => node.mode !== 'down').map((node) => new Promise<void>((resolve) => node.server.close(() => resolve()))),
    );
  }

  // --- connections ---------------------------------------------------------------------------

  private onConnection(node: FakeNode, socket: net.Socket): void {
    node.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('close', () => node.sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      if (isSessionConnection(first[0]!)) this.serveSession(node, socket, first);
      else this.servePlain(node, socket, first);
    });
  }

  private servePlain(node: FakeNode, socket: net.Socket, first: Buffer): void {
    if (node.mode !== 'serving') {
      socket.destroy();
      return;
    }
    const connection: PlainConnection = { socket, pending: Buffer.alloc(0), held: [] };
    this.plain.add(connection);
    socket.on('close', () => this.plain.delete(connection));
    const onBytes = (bytes: Buffer) => {
      if (!this.plain.has(connection)) return;
      connection.pending = Buffer.concat([connection.pending, bytes]);
      const { replies, rest } = this.executeAll(connection.pending);
      connection.pending = rest;
      if (replies.length > 0) connection.held.push(replies);
    };
    onBytes(first);
    socket.on('data', onBytes);
  }

  private serveSession(node: FakeNode, socket: net.Socket, first: Buffer): void {
    const decoder = new SessionDecoder('server');
    let sessionId: string | null = null;
    let counted = false;
    socket.on('close', () => {
      if (counted) node.sessionConnections--;
      if (sessionId && this.attachments.get(sessionId)?.socket === socket) this.attachments.delete(sessionId);
    });
    const onBytes = (bytes: Buffer) => {
      const result = decoder.push(bytes);
      for (const message of result.messages) {
        if (socket.destroyed) return;
        switch (message.kind) {
          case 'clientHandshake':
            sessionId = this.onHandshake(node, socket, message);
            if (sessionId) {
              counted = true;
              node.sessionConnections++;
            }
            break;
          case 'data':
            if (sessionId && this.attachments.get(sessionId)?.socket === socket) this.onInput(sessionId, message.payload);
            break;
          case 'ack':
            if (sessionId && this.attachments.get(sessionId)?.socket === socket) this.onOutputAck(sessionId, message.offset);
            break;
          case 'ping':
            socket.write(encodePongFrame());
            break;
          default:
            socket.destroy();
            return;
        }
      }
      if (result.error) {
        if (!sessionId) socket.write(this.reply(HandshakeStatus.badRequest));
        socket.destroy();
      }
    };
    onBytes(first);
    socket.on('data', onBytes);
  }

  private reply(status: HandshakeStatus, inputAccepted = 0, outputStart = 0): Uint8Array {
    return encodeServerHandshake({ status, generation: this.generation, inputAccepted, outputStart });
  }

  /** Answers a handshake; returns the session id when the session is attached. */
  private onHandshake(node: FakeNode, socket: net.Socket, handshake: ClientHandshake): string | null {
    this.stats.handshakes++;
    const refuse = (status: HandshakeStatus) => {
      socket.end(this.reply(status));
      return null;
    };
    if (node.mode !== 'serving') {
      this.stats.notServing++;
      return refuse(HandshakeStatus.notServing);
    }
    if (this.options.maxConnections !== undefined && node.sessionConnections >= this.options.maxConnections) {
      this.stats.busy++;
      return refuse(HandshakeStatus.busy);
    }
    const id = Buffer.from(handshake.sessionId).toString('hex');
    let session = this.live.sessions.get(id);
    const committedSession = this.committed.sessions.get(id);
    const committedEnd = committedSession ? outputEnd(committedSession) : 0;
    if (!session) {
      if (handshake.outputReceived !== 0) {
        this.stats.gaps++;
        return refuse(HandshakeStatus.gap);
      }
      session = { inputAccepted: 0, inputPending: Buffer.alloc(0), output: Buffer.alloc(0), outputStart: 0 };
      this.live.sessions.set(id, session);
    } else if (handshake.outputReceived < session.outputStart || handshake.outputReceived > committedEnd) {
      this.stats.gaps++;
      return refuse(HandshakeStatus.gap);
    } else {
      this.stats.resumes++;
    }
    this.attachments.get(id)?.socket.destroy();
    socket.write(this.reply(HandshakeStatus.ok, session.inputAccepted, handshake.outputReceived));
    const attachment: Attachment = { socket, node, outputSentEnd: handshake.outputReceived, inputAckSent: 0 };
    this.attachments.set(id, attachment);
    this.releaseTo(id, attachment);
    return id;
  }

  private onInput(id: string, payload: Uint8Array): void {
    const session = this.live.sessions.get(id)!;
    session.inputAccepted += payload.length;
    const { replies, rest } = this.executeAll(Buffer.concat([session.inputPending, payload]));
    session.inputPending = rest;
    if (replies.length > 0) session.output = Buffer.concat([session.output, replies]);
  }

  private onOutputAck(id: string, offset: number): void {
    const session = this.live.sessions.get(id)!;
    if (offset > session.outputStart && offset <= outputEnd(session)) {
      session.output = session.output.subarray(offset - session.outputStart);
      session.outputStart = offset;
    }
  }

  /** Sends committed output this attachment has not carried yet, and ACKs committed input. */
  private releaseTo(id: string, attachment: Attachment): void {
    const session = this.committed.sessions.get(id);
    if (!session || attachment.socket.destroyed) return;
    const end = outputEnd(session);
    const pieceMax = this.options.outputPieceBytesMax ?? 64 * 1024;
    while (attachment.outputSentEnd < end) {
      const from = attachment.outputSentEnd - session.outputStart;
      const length = Math.min(end - attachment.outputSentEnd, 1 + this.random.below(pieceMax));
      const frame = encodeDataFrame(session.output.subarray(from, from + length));
      if (this.options.cutProbability && this.random.chance(this.options.cutProbability)) {
        // The connection dies with part of a frame on the wire: the client must discard it.
        this.stats.cuts++;
        attachment.socket.write(frame.subarray(0, this.random.below(frame.length)));
        attachment.socket.destroy();
        this.attachments.delete(id);
        return;
      }
      attachment.socket.write(frame);
      attachment.outputSentEnd += length;
    }
    if (session.inputAccepted > attachment.inputAckSent) {
      attachment.inputAckSent = session.inputAccepted;
      attachment.socket.write(encodeAckFrame(session.inputAccepted));
    }
  }

  // --- the key–value store -------------------------------------------------------------------

  private executeAll(bytes: Buffer): { replies: Buffer; rest: Buffer } {
    const replies: Buffer[] = [];
    let at = 0;
    for (;;) {
      const parsed = parseReply(bytes, at);
      if (parsed === 'incomplete') break;
      if ('error' in parsed) {
        replies.push(Buffer.from(`-ERR Protocol error: ${parsed.error}\r\n`));
        at = bytes.length;
        break;
      }
      at += parsed.length;
      replies.push(this.execute(parsed.value));
    }
    return { replies: Buffer.concat(replies), rest: bytes.subarray(at) };
  }

  private execute(command: RespValue): Buffer {
    if (!Array.isArray(command) || command.length === 0 || !command.every((arg) => typeof arg === 'string'))
      return Buffer.from('-ERR expected an array of bulk strings\r\n');
    const [name, ...args] = command as string[];
    const store = this.live.store;
    const bulk = (value: string | undefined) =>
      value === undefined ? '$-1\r\n' : `$${Buffer.byteLength(value, 'latin1')}\r\n${value}\r\n`;
    const arity = (n: number) => args.length !== n;
    switch (name!.toLowerCase()) {
      case 'ping':
        return Buffer.from(args.length ? bulk(args[0]) : '+PONG\r\n', 'latin1');
      case 'echo':
        return arity(1) ? wrongArity('echo') : Buffer.from(bulk(args[0]), 'latin1');
      case 'get':
        return arity(1) ? wrongArity('get') : Buffer.from(bulk(store.get(args[0]!)), 'latin1');
      case 'set':
        if (arity(2)) return wrongArity('set');
        store.set(args[0]!, args[1]!);
        return Buffer.from('+OK\r\n');
      case 'incr': {
        if (arity(1)) return wrongArity('incr');
        const value = Number(store.get(args[0]!) ?? '0');
        if (!Number.isSafeInteger(value)) return Buffer.from('-ERR value is not an integer or out of range\r\n');
        const twice = this.incrsToApplyTwice > 0;
        if (twice) this.incrsToApplyTwice--;
        store.set(args[0]!, String(value + (twice ? 2 : 1)));
        return Buffer.from(`:${value + 1}\r\n`);
      }
      case 'del': {
        let removed = 0;
        for (const key of args) if (store.delete(key)) removed++;
        return Buffer.from(`:${removed}\r\n`);
      }
      case 'mget':
        return Buffer.from(`*${args.length}\r\n${args.map((key) => bulk(store.get(key))).join('')}`, 'latin1');
      case 'dbsize':
        return Buffer.from(`:${store.size}\r\n`);
      default:
        return Buffer.from(`-ERR unknown command '${name}'\r\n`);
    }
  }
}

function wrongArity(name: string): Buffer {
  return Buffer.from(`-ERR wrong number of arguments for '${name}' command\r\n`);
}
