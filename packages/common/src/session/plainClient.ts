/**
 * A plain RESP client over one ordinary TCP connection (what redis-cli is). When the guest's own
 * TCP stack carries the connection, it survives a takeover; when the connection breaks anyway, a
 * command sent on it before the reply may or may not have run (Jepsen's indeterminate operation).
 *
 * It connects to the first address that answers a PING (usually there is one: the guest's IP),
 * sends commands on that connection, and reconnects on the next request after a failure. It never resends a command. With a response timeout, a command whose reply does
 * not come in time breaks the connection (a reply arriving later could no longer be matched to its
 * command), and the command is indeterminate like any other whose connection broke.
 */
import net from 'node:net';
import { HbftError } from '../errors.ts';
import { parseHostPort } from '../units.ts';
import { systemClock, type Clock } from './clock.ts';
import { encodeCommand, parseTypedReply, ReplyReader, type TypedReply } from './resp.ts';

export interface Endpoint {
  host: string;
  port: number;
}

/** The part of a socket the client uses; `net.Socket` is one. */
export interface ClientSocket {
  write(bytes: Uint8Array): unknown;
  destroy(): unknown;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** Opens a connection; failures are reported through the socket's `error`/`close` events. */
export type ConnectFunction = (endpoint: Endpoint) => ClientSocket;

export const tcpConnect: ConnectFunction = (endpoint) => {
  const socket = net.connect({ host: endpoint.host, port: endpoint.port });
  socket.setNoDelay(true);
  return socket;
};

interface Waiter {
  resolve: (reply: TypedReply) => void;
  reject: (error: Error) => void;
}

interface PlainConnection {
  socket: ClientSocket;
  address: string;
  reader: ReplyReader<TypedReply>;
  waiters: Waiter[];
  broken: boolean;
  brokenReason?: string;
  breakWith: (reason: string) => void;
  /** The response timer of the oldest waiter, if a response timeout is set. */
  responseTimer: unknown;
}

export class PlainClient {
  /** The address of the connected node, if any. */
  address: string | null = null;
  private readonly servers: Endpoint[];
  private readonly connectFunction: ConnectFunction;
  /** How long a node may take to answer the PING that opens a connection. */
  private readonly probeTimeoutMs: number;
  /** A command unanswered for this long breaks its connection (no limit when left out). */
  private readonly responseTimeoutMs: number | undefined;
  private readonly clock: Clock;
  private connection: Promise<PlainConnection> | null = null;

  constructor(options: {
    servers: readonly string[];
    connect?: ConnectFunction;
    probeTimeoutMs?: number;
    responseTimeoutMs?: number;
    clock?: Clock;
  }) {
    this.servers = options.servers.map((server) => parseHostPort(server, 'server address'));
    this.connectFunction = options.connect ?? tcpConnect;
    this.probeTimeoutMs = options.probeTimeoutMs ?? 2000;
    this.responseTimeoutMs = options.responseTimeoutMs;
    this.clock = options.clock ?? systemClock;
  }

  /** Sends one command; rejects (E_PLAIN_CONNECTION) when no node answers or the connection breaks. */
  async request(args: readonly (string | number | Uint8Array)[]): Promise<TypedReply> {
    return this.send(await this.openConnection(), args);
  }

  /**
   * Opens a connection unless one is open: resolves once a node has answered the PING, rejects
   * (E_PLAIN_CONNECTION) when none does. Sends nothing else, so a failure here ran no command.
   */
  async connect(): Promise<void> {
    await this.openConnection();
  }

  private async openConnection(): Promise<PlainConnection> {
    this.connection ??= this.connectAny();
    const connection = await this.connection;
    if (!connection.broken) return connection;
    this.connection = this.connectAny();
    return this.connection;
  }

  close(): void {
    void this.connection?.then(
      (connection) => connection.socket.destroy(),
      () => {},
    );
    this.connection = null;
    this.address = null;
  }

  private send(connection: PlainConnection, args: readonly (string | number | Uint8Array)[]): Promise<TypedReply> {
    return new Promise((resolve, reject) => {
      if (connection.broken) {
        reject(new HbftError('E_PLAIN_CONNECTION', `${connection.address}: ${connection.brokenReason}; the command was not sent`));
        return;
      }
      connection.waiters.push({ resolve, reject });
      if (connection.waiters.length === 1) this.armResponseTimer(connection);
      connection.socket.write(encodeCommand([...args]));
    });
  }

  /** Times the oldest unanswered command, if a response timeout is set. */
  private armResponseTimer(connection: PlainConnection): void {
    if (this.responseTimeoutMs === undefined || connection.waiters.length === 0) return;
    const timeoutMs = this.responseTimeoutMs;
    connection.responseTimer = this.clock.setTimeout(
      () => connection.breakWith(`the response timeout (${timeoutMs} ms) passed`),
      timeoutMs,
    );
  }

  private disarmResponseTimer(connection: PlainConnection): void {
    if (connection.responseTimer !== null) this.clock.clearTimeout(connection.responseTimer);
    connection.responseTimer = null;
  }

  private async connectAny(): Promise<PlainConnection> {
    const failures: string[] = [];
    for (const server of this.servers) {
      const address = `${server.host}:${server.port}`;
      let connection: PlainConnection | undefined;
      try {
        connection = this.open(server, address);
        const probe = this.send(connection, ['PING']);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.probeTimeoutMs} ms`)), this.probeTimeoutMs);
        });
        try {
          const reply = await Promise.race([probe, timeout]);
          if (reply.type === 'error') throw new Error(reply.text);
        } catch (error) {
          connection.socket.destroy();
          throw error;
        } finally {
          clearTimeout(timer);
        }
        this.address = address;
        return connection;
      } catch (error) {
        failures.push(`${address}: ${connection?.brokenReason ?? (error as Error).message}`);
      }
    }
    this.connection = null;
    throw new HbftError('E_PLAIN_CONNECTION', `no node accepted a plain connection (${failures.join('; ')})`);
  }

  private open(server: Endpoint, address: string): PlainConnection {
    const socket = this.connectFunction(server);
    const breakWith = (reason: string) => {
      if (connection.broken) return;
      connection.broken = true;
      connection.brokenReason = reason;
      this.disarmResponseTimer(connection);
      socket.destroy();
      if (this.address === address) this.address = null;
      for (const waiter of connection.waiters.splice(0)) {
        waiter.reject(new HbftError('E_PLAIN_CONNECTION', `${address}: ${reason} before the reply; the command may or may not have run`));
      }
    };
    const connection: PlainConnection = {
      socket,
      address,
      reader: new ReplyReader(parseTypedReply),
      waiters: [],
      broken: false,
      breakWith,
      responseTimer: null,
    };
    socket.on('data', (chunk) => {
      connection.reader.push(chunk);
      try {
        for (let reply = connection.reader.next(); reply !== undefined; reply = connection.reader.next()) {
          const waiter = connection.waiters.shift();
          if (waiter === undefined) {
            breakWith('a reply nobody asked for');
            return;
          }
          this.disarmResponseTimer(connection);
          this.armResponseTimer(connection);
          waiter.resolve(reply);
        }
      } catch (error) {
        breakWith(`malformed reply (${(error as Error).message})`);
      }
    });
    socket.on('error', (error) => breakWith(`connection error (${error.message})`));
    socket.on('close', () => breakWith('connection closed'));
    return connection;
  }
}
