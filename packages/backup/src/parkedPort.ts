import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '@hbft/common/log.ts';
import { listenOn } from '@hbft/common/transport/listen.ts';
import { parkedClientBytesMax } from '@hbft/common/limits.ts';

interface Parked {
  socket: Socket;
  chunks: Buffer[];
  bytes: number;
  timer: NodeJS.Timeout;
}

/**
 * The backup's --serve port, bound from the start. A client that arrives before a takeover (it
 * lost the primary and tries the next address) is held, not refused: at the takeover its
 * connection and what it has sent go to the new primary at once, so it neither sees "connection
 * refused" nor backs off. A connection still waiting after `parkMs` (the primary is alive after
 * all) is closed, and the client returns to the primary.
 */
export class ParkedPort {
  readonly server: Server;
  private readonly parked = new Set<Parked>();
  private active = true;

  constructor(
    private readonly parkMs: number,
    private readonly logger: Logger,
  ) {
    this.server = createServer({ noDelay: true }, (socket) => this.park(socket));
  }

  async listen(host: string, port: number): Promise<void> {
    await listenOn(this.server, host, port, 'serve (clients, after a takeover)');
  }

  get waiting(): number {
    return this.parked.size;
  }

  private park(socket: Socket): void {
    const entry: Parked = {
      socket,
      chunks: [],
      bytes: 0,
      timer: setTimeout(() => this.release(entry, 'the primary is alive: this backup is not serving'), this.parkMs),
    };
    this.parked.add(entry);
    socket.on('data', (chunk: Buffer) => {
      entry.chunks.push(chunk);
      entry.bytes += chunk.length;
      if (entry.bytes > parkedClientBytesMax) this.release(entry, 'too much input before a takeover');
    });
    socket.on('error', () => {});
    socket.on('close', () => this.forget(entry));
  }

  private forget(entry: Parked): void {
    clearTimeout(entry.timer);
    this.parked.delete(entry);
  }

  private release(entry: Parked, reason: string): void {
    this.forget(entry);
    this.logger.debug({ reason }, 'parked client connection closed');
    entry.socket.destroy();
  }

  /** The takeover: stop parking, and hand over the port and the waiting connections. */
  handOver(): { server: Server; connections: { socket: Socket; received: Buffer }[] } {
    this.active = false;
    this.server.removeAllListeners('connection');
    const connections = [...this.parked].map((entry) => {
      this.forget(entry);
      entry.socket.removeAllListeners('data');
      entry.socket.removeAllListeners('close');
      return { socket: entry.socket, received: Buffer.concat(entry.chunks) };
    });
    return { server: this.server, connections };
  }

  async close(): Promise<void> {
    if (!this.active) return;
    for (const entry of [...this.parked]) this.release(entry, 'shutting down');
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
