/**
 * The `/live` WebSocket: streams one node's LiveFeed to dashboard pages. Clients only listen; each
 * gets the history first, then every sample and event as they happen. A client that does not read
 * fast enough is dropped once its unsent bytes pass a bound, rather than buffered without limit.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Logger } from '../../log.ts';
import { requestPath } from '../requestPath.ts';
import type { LiveEvent, LiveFeed, LiveSample } from '../liveFeed.ts';
import {
  CLIENT_MESSAGE_BYTES_MAX,
  eventMessage,
  helloMessage,
  isClientPing,
  pongMessage,
  sampleMessage,
  type LiveMessage,
} from './liveMessages.ts';

/** What the socket needs of a feed: its history and its two events. */
export type LiveSource = Pick<LiveFeed, 'samples' | 'events' | 'on' | 'off'>;

export const LIVE_PATH = '/live';

/**
 * Unsent bytes a client may have queued before it is dropped. A hello with a full history
 * (1,200 samples) is about 0.6 MiB and is always sent whole, so the bound sits above it.
 */
export const LIVE_CLIENT_BUFFERED_BYTES_MAX = 2 * 1024 * 1024;

export interface LiveSocketOptions {
  logger: Logger;
  bufferedBytesMax?: number;
  /** Wall clock for `serverTimeMs` (injected in tests). */
  nowMs?: () => number;
}

export class LiveSocketServer {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: CLIENT_MESSAGE_BYTES_MAX });
  private readonly bufferedBytesMax: number;
  private readonly nowMs: () => number;
  private readonly logger: Logger;
  private droppedClientsTotal = 0;
  private closed = false;

  private readonly onSample = (sample: LiveSample) => this.broadcast(sampleMessage(sample));
  private readonly onEvent = (event: LiveEvent) => this.broadcast(eventMessage(event));

  constructor(
    private readonly source: LiveSource,
    options: LiveSocketOptions,
  ) {
    this.logger = options.logger;
    this.bufferedBytesMax = options.bufferedBytesMax ?? LIVE_CLIENT_BUFFERED_BYTES_MAX;
    this.nowMs = options.nowMs ?? Date.now;
    source.on('sample', this.onSample);
    source.on('event', this.onEvent);
  }

  /** Takes over the server's upgrade requests: `/live` is accepted, every other path gets a 404. */
  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.handleUpgrade(request, socket, head)) rejectUpgrade(socket, 404, `no such socket: ${requestPath(request)}\n`);
    });
  }

  /** Returns false (and leaves the socket alone) when the request is not for `/live`. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (requestPath(request) !== LIVE_PATH) return false;
    if (this.closed) {
      rejectUpgrade(socket, 503, 'shutting down\n');
      return true;
    }
    this.wss.handleUpgrade(request, socket, head, (client) => this.onConnection(client));
    return true;
  }

  get clientCount(): number {
    return this.wss.clients.size;
  }

  /** Clients dropped because they fell more than `bufferedBytesMax` behind. */
  get droppedClients(): number {
    return this.droppedClientsTotal;
  }

  /** Stops streaming and cuts every client (an HTTP server does not close while upgraded sockets live). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.source.off('sample', this.onSample);
    this.source.off('event', this.onEvent);
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onConnection(client: WebSocket): void {
    client.on('error', (error) => this.logger.debug({ err: error.message }, 'dashboard socket error'));
    client.on('message', (data: RawData, isBinary: boolean) => {
      if (isClientPing(toBuffer(data), isBinary)) this.send(client, JSON.stringify(pongMessage(this.nowMs())));
      else client.close(1008, 'this socket only accepts {"type":"ping"}');
    });
    // Built and sent in the same tick as the subscription is live, so no sample falls in between.
    this.send(client, JSON.stringify(helloMessage(this.source, this.nowMs())));
  }

  private broadcast(message: LiveMessage): void {
    if (this.wss.clients.size === 0) return;
    const data = JSON.stringify(message);
    for (const client of this.wss.clients) this.send(client, data);
  }

  private send(client: WebSocket, data: string): void {
    if (client.readyState !== WebSocket.OPEN) return;
    if (client.bufferedAmount > this.bufferedBytesMax) {
      this.droppedClientsTotal++;
      this.logger.warn(
        { bufferedBytes: client.bufferedAmount, bufferedBytesMax: this.bufferedBytesMax },
        'dashboard client too slow: dropped',
      );
      client.terminate();
      return;
    }
    client.send(data);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function rejectUpgrade(socket: Duplex, status: 404 | 503, body: string): void {
  const reason = status === 404 ? 'Not Found' : 'Service Unavailable';
  socket.on('error', () => {});
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
