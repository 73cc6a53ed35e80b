/**
 * The backup's one listening port for both channels. Each accepted socket is peeked at: the frame
 * magic `HBFT` makes it a bulk connection (raw framed TCP); an HTTP `GET ` goes to an internal
 * http.Server (never listening itself) whose upgrade handler gives it to ws as the control
 * channel; anything else is closed with a logged reason. Either way the connection authenticates
 * before the listener reports it.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ProtocolErrorCode, type ProtocolFailure } from '../protocol/codes.ts';
import { frameMagicBytes } from '../protocol/frame.ts';
import { listenerPeekTimeoutMs } from '../protocol/limits.ts';
import { acceptBulk, type BulkConnectionOptions } from './bulk.ts';
import { listenOn } from './listen.ts';
import type { FrameConnection } from './connection.ts';
import { ControlConnection, controlPath, createControlServer, heartbeatPath } from './control.ts';

const httpGet = Buffer.from('GET ', 'latin1');
/** Bytes that decide what a socket speaks. */
const peekBytes = 4;

export type FirstBytesVerdict = 'bulk' | 'http' | 'unknown' | 'need-more';

/** What the first bytes of an accepted socket say it speaks. */
export function classifyFirstBytes(bytes: Buffer): FirstBytesVerdict {
  const seen = bytes.subarray(0, peekBytes);
  if (seen.equals(frameMagicBytes.subarray(0, seen.length))) return seen.length === peekBytes ? 'bulk' : 'need-more';
  if (seen.equals(httpGet.subarray(0, seen.length))) return seen.length === peekBytes ? 'http' : 'need-more';
  return 'unknown';
}

export interface ListenerOptions extends BulkConnectionOptions {
  host: string;
  /** 0 for any free port (see `address()`). */
  port: number;
  peekTimeoutMs?: number;
}

/** A socket refused before it became an authenticated connection. */
export interface RejectedSocket {
  readonly remote: string;
  readonly code: string;
  readonly reason: string;
}

export interface ListenerEvents {
  /** An authenticated connection, on either channel (see `connection.channel`). */
  connection: [connection: FrameConnection];
  rejected: [rejected: RejectedSocket];
}

export class ReplicationListener extends EventEmitter<ListenerEvents> {
  private readonly options: ListenerOptions;
  private readonly server: net.Server;
  private readonly http: http.Server;
  private readonly wss = createControlServer();
  private readonly sockets = new Set<net.Socket>();
  private readonly connections = new Set<FrameConnection>();
  private readonly peekTimeoutMs: number;

  constructor(options: ListenerOptions) {
    super();
    this.options = options;
    this.peekTimeoutMs = options.peekTimeoutMs ?? listenerPeekTimeoutMs;
    this.server = net.createServer((socket) => this.onSocket(socket));
    this.http = http.createServer();
    this.http.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(request, socket as net.Socket, head),
    );
    this.http.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
      this.reject(
        request.socket,
        ProtocolErrorCode.LISTENER_PROTOCOL,
        `HTTP ${request.method} ${request.url?.slice(0, 64)} without a WebSocket upgrade`,
        false,
      );
      response.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      response.end(`this is an hbft replication port: the control channel is a WebSocket at ${controlPath}\n`);
    });
    // With a listener here, ws leaves the bad upgrade's socket to us (it would otherwise answer 400 itself).
    this.wss.on('wsClientError', (error: Error, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      this.reject(socket as net.Socket, ProtocolErrorCode.LISTENER_PROTOCOL, `bad WebSocket upgrade: ${error.message}`, false);
      setTimeout(() => socket.destroy(), 100).unref();
    });
    this.http.on('clientError', (error: Error, socket: Duplex) => {
      this.reject(socket as net.Socket, ProtocolErrorCode.LISTENER_PROTOCOL, `malformed HTTP: ${error.message}`);
    });
  }

  /** Starts listening; resolves when bound. */
  async listen(): Promise<void> {
    await listenOn(this.server, this.options.host, this.options.port, 'listen (replication)');
  }

  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  /** Stops accepting, says GOODBYE on every open connection and drops sockets still being peeked at. */
  close(reason = 'the backup is shutting down'): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.close(reason);
    for (const socket of this.sockets) socket.destroy();
    return closed;
  }

  private onSocket(socket: net.Socket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => {}); // reported through 'close'; the connection takes over errors later
    let peeked: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.removeListener('data', onData);
      this.reject(
        socket,
        ProtocolErrorCode.LISTENER_TIMEOUT,
        `sent ${peeked.length} bytes in ${this.peekTimeoutMs} ms, not enough to tell what it speaks`,
      );
    }, this.peekTimeoutMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      peeked = peeked.length === 0 ? chunk : Buffer.concat([peeked, chunk]);
      const verdict = classifyFirstBytes(peeked);
      if (verdict === 'need-more') return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.pause();
      if (verdict === 'bulk') {
        this.sockets.delete(socket);
        this.track(acceptBulk(socket, this.options, peeked), remote);
      } else if (verdict === 'http') {
        socket.setNoDelay(true);
        socket.unshift(peeked);
        this.http.emit('connection', socket);
        socket.resume();
        // The internal http.Server does not listen, so its own header timeouts do not run.
        const upgradeTimer = setTimeout(() => {
          if (!socket.destroyed && this.sockets.has(socket)) {
            this.reject(
              socket,
              ProtocolErrorCode.LISTENER_TIMEOUT,
              `no complete WebSocket upgrade request within ${this.peekTimeoutMs} ms`,
            );
          }
        }, this.peekTimeoutMs);
        upgradeTimer.unref();
        socket.once('close', () => clearTimeout(upgradeTimer));
      } else {
        this.reject(
          socket,
          ProtocolErrorCode.LISTENER_PROTOCOL,
          `first bytes 0x${peeked.subarray(0, peekBytes).toString('hex')} are neither the frame magic nor an HTTP upgrade`,
        );
      }
    };
    socket.on('data', onData);
  }

  private onUpgrade(request: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const path = (request.url ?? '').split('?')[0];
    if (path !== controlPath && path !== heartbeatPath) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      this.reject(
        socket,
        ProtocolErrorCode.LISTENER_PROTOCOL,
        `WebSocket upgrade for ${path?.slice(0, 64)}, not ${controlPath} or ${heartbeatPath}`,
        false,
      );
      return;
    }
    const channel = path === controlPath ? 'control' : 'heartbeat';
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      this.sockets.delete(socket);
      this.track(new ControlConnection(ws, 'acceptor', this.options, remote, channel), remote);
    });
  }

  /** Reports the connection once authenticated; a failed one is reported as rejected. */
  private track(connection: FrameConnection, remote: string): void {
    this.connections.add(connection);
    connection.once('close', () => this.connections.delete(connection));
    connection.ready.then(
      () => {
        if (connection.isOpen) this.emit('connection', connection);
      },
      () => {
        const info = connection.closed;
        this.emit('rejected', { remote, code: info?.code ?? ProtocolErrorCode.CONNECTION_LOST, reason: info?.reason ?? 'closed' });
      },
    );
  }

  private reject(socket: net.Socket, code: ProtocolFailure['code'], reason: string, destroy = true): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.options.logger.warn({ remote, code }, `refused a connection: ${reason}`);
    this.emit('rejected', { remote, code, reason });
    if (destroy) socket.destroy();
  }
}

/** Creates the shared listener and starts listening. */
export async function listen(options: ListenerOptions): Promise<ReplicationListener> {
  const listener = new ReplicationListener(options);
  await listener.listen();
  return listener;
}
