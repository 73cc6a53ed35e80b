/**
 * The bulk channel: frames back to back over a raw TCP socket, for checkpoint data. Raw TCP,
 * because ws masks client-to-server frames in JavaScript (0.13–0.2 GB/s, design.md §5) while a
 * plain socket carries ≈1.9 GB/s. A frame's header+meta and its payload are written as two
 * buffers under cork/uncork (one writev), so page data is never copied on the way out.
 *
 * Backpressure: `send(...).backpressure` is true at or above `writeBufferBytesHigh` queued bytes
 * and `drained()` resolves when the queue is below it again; a producer (the checkpoint sender)
 * stops when told to.
 */
import net from 'node:net';
import type { EncodedFrame } from '../protocol/frame.ts';
import { bulkWriteBufferBytesHigh } from '../protocol/limits.ts';
import type { AuthRole } from '../protocol/seal.ts';
import { FrameConnection, closeLingerMs, type CloseInfo, type ConnectionOptions } from './connection.ts';

export interface BulkConnectionOptions extends ConnectionOptions {
  /** Queued bytes at or above which `send` reports backpressure; defaults to bulkWriteBufferBytesHigh. */
  writeBufferBytesHigh?: number;
  /** See FrameDecoderOptions.allocateBody: where received frame bodies are assembled. */
  allocateBody?: (bytes: number) => Buffer;
}

export class BulkConnection extends FrameConnection {
  private readonly socket: net.Socket;
  private lingerTimer: NodeJS.Timeout | null = null;

  /**
   * Wraps a connected socket and starts authentication. `initialBytes` are bytes already read from
   * the socket (the listener's peek); they are decoded first.
   */
  constructor(socket: net.Socket, role: AuthRole, options: BulkConnectionOptions, initialBytes?: Buffer) {
    super(
      'bulk',
      role,
      options,
      options.writeBufferBytesHigh ?? bulkWriteBufferBytesHigh,
      { peer: `${socket.remoteAddress}:${socket.remotePort}` },
      options.allocateBody,
    );
    this.socket = socket;
    // Checkpoint ends (small END frames after large PAGES) must not wait for Nagle.
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.closed === null) this.receive(this.decoder.push(chunk));
    });
    socket.on('end', () => {
      const failure = this.decoder.end();
      this.transportClosed('the peer ended the stream', failure);
      if (!socket.writableEnded) socket.end();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => this.transportClosed(`socket error ${error.code ?? error.message}`));
    socket.on('close', () => {
      if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
      this.transportClosed('the socket closed');
    });
    this.startAuthentication();
    if (initialBytes !== undefined && initialBytes.length > 0) this.receive(this.decoder.push(initialBytes));
    socket.resume();
  }

  /** The socket's own write buffer plus frames not yet handed to it. */
  get socketBufferedBytes(): number {
    return this.socket.writableLength;
  }

  protected writeFrame(frame: EncodedFrame): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) {
      this.written(frame.bytes);
      return;
    }
    const done = (): void => this.written(frame.bytes);
    if (frame.payload.length === 0) {
      socket.write(frame.head, done);
      return;
    }
    socket.cork();
    socket.write(frame.head);
    socket.write(frame.payload, done);
    socket.uncork();
  }

  protected endTransport(_info: CloseInfo): void {
    if (this.socket.destroyed) return;
    // Flush what is queued (an ERROR or GOODBYE for the peer), then give the peer a moment to
    // read it and close its side, so that our close does not reset the connection under it.
    if (!this.socket.writableEnded) this.socket.end();
    this.lingerTimer = setTimeout(() => this.socket.destroy(), closeLingerMs);
    this.lingerTimer.unref();
  }
}

export interface ConnectBulkOptions extends BulkConnectionOptions {
  host: string;
  port: number;
}

/** Connects the bulk channel to a backup and authenticates; resolves when authenticated. */
export function connectBulk(options: ConnectBulkOptions): Promise<BulkConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.host, port: options.port });
    const onError = (error: Error): void => reject(error);
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.removeListener('error', onError);
      const connection = new BulkConnection(socket, 'initiator', options);
      connection.ready.then(() => resolve(connection), reject);
    });
  });
}

/** For the listener: a peeked socket that started with the frame magic. */
export function acceptBulk(socket: net.Socket, options: BulkConnectionOptions, peeked: Buffer): BulkConnection {
  return new BulkConnection(socket, 'acceptor', options, peeked);
}
