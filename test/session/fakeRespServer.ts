/**
 * A reference RESP server for the load generator's tests: one address, a tiny in-memory key–value
 * store, and output commit that behaves like a protected guest's, without a guest.
 *
 * - Commands are applied to the **live** state at once; their replies are held.
 * - `commit()` (every `epochMs`, or by hand) snapshots the live state as **committed** and releases
 *   the held replies: like the backup acknowledging an epoch.
 * - `restart()` is a takeover: every connection drops, the live state is thrown away and the
 *   committed snapshot restored (so held replies are never sent, and their commands may or may not
 *   be in the restored state: indeterminate to the client).
 * - Faults: cut every connection without losing state (`dropAllConnections`), release nothing for a
 *   while (`holdCommits`), and deliberate bugs that the checker must catch: `restoreStaleSnapshot`
 *   restores the snapshot before the last one (acknowledged writes lost), `applyNextIncrsTwice`
 *   applies INCRs twice (a duplicated write).
 */
import net from 'node:net';
import { once } from 'node:events';
import { parseReply, type RespValue } from '@hbft/common/session/resp.ts';

export interface FakeRespServerOptions {
  /** Commit every this many ms; 0 commits only when `commit()` is called (a primary that never releases). */
  epochMs?: number;
  /** Deliberate bug: a restart restores the snapshot before the last one. */
  restoreStaleSnapshot?: boolean;
}

interface Connection {
  socket: net.Socket;
  pending: Buffer;
  held: Buffer[];
}

export class FakeRespServer {
  live = new Map<string, string>();
  committed = new Map<string, string>();
  private previousCommitted = new Map<string, string>();
  private readonly connections = new Set<Connection>();
  private epochTimer: NodeJS.Timeout | null = null;
  /** The epoch timer commits nothing before this (performance.now() milliseconds). */
  private commitsHeldUntilMs = 0;
  private incrsToApplyTwice = 0;
  readonly stats = { commits: 0, restarts: 0, drops: 0 };

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly options: FakeRespServerOptions,
  ) {}

  static async start(options: FakeRespServerOptions = {}): Promise<FakeRespServer> {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const fake = new FakeRespServer(server, (server.address() as net.AddressInfo).port, options);
    server.on('connection', (socket) => fake.onConnection(socket));
    if (options.epochMs)
      fake.epochTimer = setInterval(() => {
        if (performance.now() >= fake.commitsHeldUntilMs) fake.commit();
      }, options.epochMs);
    return fake;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The backup acknowledges an epoch: snapshot the live state and release the held replies. */
  commit(): void {
    this.previousCommitted = this.committed;
    this.committed = new Map(this.live);
    this.stats.commits++;
    for (const connection of this.connections) {
      for (const bytes of connection.held) connection.socket.write(bytes);
      connection.held = [];
    }
  }

  /** A takeover: connections drop, uncommitted state and held replies are gone. */
  restart(): void {
    this.dropAllConnections();
    this.live = new Map(this.options.restoreStaleSnapshot ? this.previousCommitted : this.committed);
    this.committed = new Map(this.live);
    this.stats.restarts++;
  }

  /** Cuts every connection without losing any state (a network blip); held replies are lost with them. */
  dropAllConnections(): void {
    for (const connection of this.connections) connection.socket.destroy();
    this.connections.clear();
    this.stats.drops++;
  }

  /** No reply is released for `ms` (a backup that stopped acking); commands still run. */
  holdCommits(ms: number): void {
    this.commitsHeldUntilMs = performance.now() + ms;
  }

  /** Deliberate bug: each of the next `count` INCRs adds 2 and answers as if it had added 1. */
  applyNextIncrsTwice(count: number): void {
    this.incrsToApplyTwice = count;
  }

  async close(): Promise<void> {
    if (this.epochTimer) clearInterval(this.epochTimer);
    this.dropAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const connection: Connection = { socket, pending: Buffer.alloc(0), held: [] };
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
    socket.on('data', (bytes: Buffer) => {
      if (!this.connections.has(connection)) return;
      connection.pending = Buffer.concat([connection.pending, bytes]);
      const { replies, rest } = this.executeAll(connection.pending);
      connection.pending = rest;
      if (replies.length > 0) connection.held.push(replies);
    });
  }

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
    const store = this.live;
    const bulk = (value: string | undefined) =>
      value === undefined ? '$-1\r\n' : `$${Buffer.byteLength(value, 'latin1')}\r\n${value}\r\n`;
    const wrongArity = () => Buffer.from(`-ERR wrong number of arguments for '${name?.toLowerCase()}' command\r\n`);
    switch (name?.toLowerCase()) {
      case 'ping':
        return Buffer.from('+PONG\r\n');
      case 'get':
        return args.length !== 1 ? wrongArity() : Buffer.from(bulk(store.get(args[0]!)), 'latin1');
      case 'set':
        if (args.length !== 2) return wrongArity();
        store.set(args[0]!, args[1]!);
        return Buffer.from('+OK\r\n');
      case 'incr': {
        if (args.length !== 1) return wrongArity();
        const value = Number(store.get(args[0]!) ?? '0');
        if (!Number.isSafeInteger(value)) return Buffer.from('-ERR value is not an integer or out of range\r\n');
        const twice = this.incrsToApplyTwice > 0;
        if (twice) this.incrsToApplyTwice--;
        store.set(args[0]!, String(value + (twice ? 2 : 1)));
        return Buffer.from(`:${value + 1}\r\n`);
      }
      case 'mget':
        return Buffer.from(`*${args.length}\r\n${args.map((key) => bulk(store.get(key))).join('')}`, 'latin1');
      default:
        return Buffer.from(`-ERR unknown command '${name}'\r\n`);
    }
  }
}
