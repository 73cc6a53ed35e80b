import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '@hbft/common/log.ts';
import { listenOn } from '@hbft/common/transport/listen.ts';
import { isSessionConnection } from '@hbft/common/session/protocol.ts';
import type { GuestNic } from './guestNic.ts';
import { SessionManager } from './sessions.ts';
import type { ClientFlow } from './clientFlow.ts';

/**
 * Plain TCP connections are tagged `p:<generation>:<n>` (the generation keeps a promoted node's
 * new connections apart from the old primary's orphans); session connections are `s:<id>`.
 */
export const PLAIN_TAG_PREFIX = 'p:';

interface ClientConnection {
  tag: string;
  socket: Socket;
  /** Output written to the socket: the end of the connection's output stream so far. */
  outputWritten: number;
}

/**
 * The `--serve` port: clients reach the guest's virtual NIC here. Input goes to the guest at once;
 * output arrives only through `writeReleased`, i.e. after output commit. A plain client (redis-cli)
 * is one NIC connection for as long as its TCP connection lasts.
 */
export class ClientServer {
  private server: Server;
  private readonly connections = new Map<string, ClientConnection>();
  private nextPlainId = 1;
  private readonly nic: GuestNic;
  private readonly logger: Logger;
  private readonly generation: number;
  readonly sessions: SessionManager;
  private readonly flow: ClientFlow;

  constructor(nic: GuestNic, logger: Logger, generation: number, sessions: SessionManager, flow: ClientFlow) {
    this.nic = nic;
    this.logger = logger;
    this.generation = generation;
    this.sessions = sessions;
    this.flow = flow;
    this.server = createServer({ noDelay: true }, (socket) => this.adopt(socket, Buffer.alloc(0)));
  }

  /**
   * Serves a connection, whose first `received` bytes (possibly none) were read before this
   * server took it over (a backup parks client connections until it takes over).
   */
  adopt(socket: Socket, received: Buffer): void {
    socket.setNoDelay(true);
    socket.on('error', (error) => this.logger.debug({ err: error.message }, 'client connection error'));
    const dispatch = (first: Buffer) => {
      const firstByte = first[0];
      if (firstByte !== undefined && isSessionConnection(firstByte)) this.sessions.accept(socket, first, () => performance.now());
      else this.accept(socket, first);
    };
    if (received.length > 0) dispatch(received);
    else socket.once('data', dispatch);
  }

  /** Serves on a listening server that someone else bound (the backup's parked port). */
  takeOver(server: Server): void {
    this.server = server;
    server.on('connection', (socket) => this.adopt(socket, Buffer.alloc(0)));
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    if (this.server.listening) {
      const address = this.server.address();
      return { host, port: typeof address === 'object' && address ? address.port : port };
    }
    return { host, port: await listenOn(this.server, host, port, 'serve (clients)') };
  }

  get connectionCount(): number {
    return this.connections.size + this.sessions.count;
  }

  /** A plain client: one NIC connection for the life of its TCP connection. */
  private accept(socket: Socket, first: Buffer): void {
    const tag = `${PLAIN_TAG_PREFIX}${this.generation}:${this.nextPlainId++}`;
    const connection: ClientConnection = { tag, socket, outputWritten: 0 };
    this.connections.set(tag, connection);
    this.nic.open(tag);
    this.flow.add(tag, socket);
    const onData = (chunk: Buffer) => this.flow.push(tag, chunk);
    onData(first);
    socket.on('data', onData);
    socket.on('close', () => {
      if (this.connections.get(tag) === connection) {
        this.connections.delete(tag);
        // Flow control keeps counting what it handed over until the guest closes the slot: that
        // input is still in the NIC's queue, and the queue's bound is for all of it.
        this.flow.setSocket(tag, null);
        this.nic.hangUp(tag);
      }
    });
  }

  /** Every NIC slot was taken: tell a plain (RESP) client and close. */
  onRefused(tag: string, reason: string): void {
    this.flow.remove(tag);
    if (SessionManager.isSessionTag(tag)) {
      this.logger.warn({ tag, reason }, 'session refused');
      this.sessions.onGuestClose(tag);
      return;
    }
    const connection = this.connections.get(tag);
    if (!connection) return;
    this.connections.delete(tag);
    this.logger.warn({ tag, reason }, 'client connection refused');
    connection.socket.end(`-ERR ${reason}\r\n`);
  }

  /** Disconnects clients that have not read their replies for too long (clientOutputStalledMsMax). */
  closeStalled(nowMs: number): void {
    this.flow.closeStalled(nowMs);
  }

  /** Progress of the guest's NIC at a capture: input waiting for room may go in now. */
  onCaptured(connections: { tag: string; rxDelivered: number }[]): void {
    this.flow.onCaptured(connections);
  }

  /** Committed output: write it to the client if it is still connected (sessions keep it too). */
  writeReleased(tag: string, bytes: Uint8Array): void {
    if (SessionManager.isSessionTag(tag)) {
      this.sessions.onReleased(tag, bytes);
      return;
    }
    const connection = this.connections.get(tag);
    if (connection === undefined) return;
    connection.outputWritten += bytes.length;
    this.flow.write(tag, [bytes], connection.outputWritten);
  }

  /** The guest closed the connection: close it once the released output has been written. */
  onGuestClose(tag: string): void {
    this.flow.remove(tag);
    if (SessionManager.isSessionTag(tag)) {
      this.sessions.onGuestClose(tag);
      return;
    }
    const connection = this.connections.get(tag);
    if (!connection) return;
    this.connections.delete(tag);
    connection.socket.end();
  }

  /**
   * The old primary's plain connection, hung up after a takeover: what it still has queued in the
   * NIC counts towards the queue's bound until the guest closes it.
   */
  trackOrphan(offsets: { tag: string; rxAccepted: number; rxDelivered: number; txProduced: number }): void {
    this.flow.add(offsets.tag, null, undefined, {
      inputHanded: offsets.rxAccepted,
      inputInRing: offsets.rxDelivered,
      outputTaken: offsets.txProduced,
    });
  }

  /** Tags of live plain connections, so that a promoted node can hang up the orphans. */
  hasConnection(tag: string): boolean {
    return this.connections.has(tag);
  }

  async close(): Promise<void> {
    this.sessions.closeAll();
    for (const connection of this.connections.values()) {
      connection.socket.destroy();
      this.flow.remove(connection.tag);
    }
    this.connections.clear();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
