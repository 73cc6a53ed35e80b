/**
 * The driver of one named proxy: a listen socket, one upstream connection per accepted client, and
 * for each connection two `ToxicPipeline`s (client → upstream is `upstream`, the reverse is
 * `downstream`). All timing decisions live in the pipelines; this file only reads and writes sockets,
 * pauses and resumes them, and sets one timer per direction.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.ts';
import { ChaosConflictError, InvalidFieldError } from './errors.ts';
import { connectionsPerProxyMax } from '../limits.ts';
import type { Endpoint, PartitionMode, StreamName, Toxic } from './model.ts';
import { ToxicPipeline } from './pipeline.ts';
import type { RandomSource } from './random.ts';
import type { StreamItem } from './stages.ts';
import { formatEndpoint } from '../units.ts';
import { listenOn, type ListenError } from '../transport/listen.ts';

export interface ChaosProxyOptions {
  name: string;
  listen: Endpoint;
  upstream: Endpoint;
  logger: Logger;
  /** Milliseconds, monotonic; `performance.now` unless a test passes another. */
  clock?: () => number;
  random?: RandomSource;
}

export interface ProxyStats {
  connections: number;
  /** Bytes delivered per direction since the proxy was created. */
  upstreamBytes: number;
  downstreamBytes: number;
  /** Bytes the proxy holds right now: in toxics, in sockets' write buffers and read buffers. */
  bufferedBytes: number;
}

/** What the connections of a proxy need from it. */
interface ProxyContext {
  clock: () => number;
  random: RandomSource;
  logger: Logger;
  toxicsFor(stream: StreamName): Toxic[];
  isStalled(): boolean;
  countDelivered(stream: StreamName, bytes: number): void;
  onClosed(connection: ProxyConnection): void;
}

export class ChaosProxy {
  readonly name: string;
  private listenAt: Endpoint;
  private upstreamAt: Endpoint;
  private enabled = true;
  private partition: PartitionMode = 'cut';
  private readonly toxics: Toxic[] = [];
  private readonly connections = new Set<ProxyConnection>();
  private server: net.Server | null = null;
  private readonly context: ProxyContext;
  private readonly logger: Logger;
  private readonly delivered = { upstream: 0, downstream: 0 };
  private nextConnectionId = 1;

  constructor(options: ChaosProxyOptions) {
    this.name = options.name;
    this.listenAt = options.listen;
    this.upstreamAt = options.upstream;
    this.logger = options.logger.child({ proxy: options.name });
    this.context = {
      clock: options.clock ?? (() => performance.now()),
      random: options.random ?? Math.random,
      logger: this.logger,
      toxicsFor: (stream) => this.toxics.filter((toxic) => toxic.stream === stream),
      isStalled: () => !this.enabled && this.partition === 'stall',
      countDelivered: (stream, bytes) => {
        this.delivered[stream] += bytes;
      },
      onClosed: (connection) => this.connections.delete(connection),
    };
  }

  /** Opens the listen socket (unless created disabled in `cut` mode). */
  async start(enabled = true, partition: PartitionMode = 'cut'): Promise<void> {
    if (enabled || partition === 'stall') await this.openListener();
    this.enabled = enabled;
    this.partition = partition;
    this.logger.info(
      { listen: formatEndpoint(this.listenAt), upstream: formatEndpoint(this.upstreamAt), enabled, partition },
      'proxy started',
    );
  }

  get listen(): Endpoint {
    return this.listenAt;
  }

  get upstream(): Endpoint {
    return this.upstreamAt;
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  /** The partition mode while disabled; null while enabled. */
  get partitionMode(): PartitionMode | null {
    return this.enabled ? null : this.partition;
  }

  /**
   * Enables the proxy, or partitions it. `cut` closes every connection and the listen socket;
   * `stall` holds every connection (open, silent) and accepts but holds new ones. Enabling again
   * reopens the listen socket on the same port and releases whatever was held, in order.
   */
  async setEnabled(enabled: boolean, partition: PartitionMode = 'cut'): Promise<void> {
    if (enabled) {
      if (this.enabled) return;
      if (!this.server) await this.openListener();
      this.enabled = true;
      for (const connection of this.connections) connection.setStalled(false, this.upstreamAt);
      this.logger.info('proxy enabled (partition healed)');
      return;
    }
    this.enabled = false;
    this.partition = partition;
    if (partition === 'cut') {
      await this.closeListener();
      for (const connection of this.connections) connection.destroy();
    } else {
      if (!this.server) await this.openListener();
      for (const connection of this.connections) connection.setStalled(true, this.upstreamAt);
    }
    this.logger.info({ partition }, 'proxy disabled (partitioned)');
  }

  /** Moves the listen socket; existing connections are kept. */
  async setListen(listen: Endpoint): Promise<void> {
    const previous = this.listenAt;
    const listening = this.server !== null;
    await this.closeListener();
    this.listenAt = listen;
    if (!listening) return;
    try {
      await this.openListener();
    } catch (error) {
      this.listenAt = previous;
      await this.openListener().catch(() => undefined);
      throw error;
    }
  }

  /** New connections go to `upstream`; existing ones keep theirs. */
  setUpstream(upstream: Endpoint): void {
    this.upstreamAt = upstream;
  }

  getToxics(): readonly Toxic[] {
    return this.toxics;
  }

  getToxic(name: string): Toxic | undefined {
    return this.toxics.find((toxic) => toxic.name === name);
  }

  /** Adds or replaces (keeping its place in the chain) a toxic, and applies it to live connections. */
  putToxic(toxic: Toxic): void {
    const index = this.toxics.findIndex((existing) => existing.name === toxic.name);
    if (index >= 0) this.toxics[index] = toxic;
    else this.toxics.push(toxic);
    this.applyToxics();
  }

  removeToxic(name: string): boolean {
    const index = this.toxics.findIndex((toxic) => toxic.name === name);
    if (index < 0) return false;
    this.toxics.splice(index, 1);
    this.applyToxics();
    return true;
  }

  removeAllToxics(): void {
    this.toxics.length = 0;
    this.applyToxics();
  }

  private applyToxics(): void {
    for (const connection of this.connections) connection.applyToxics();
    this.logger.info({ toxics: this.toxics.map((toxic) => toxic.name) }, 'toxics changed');
  }

  stats(): ProxyStats {
    let bufferedBytes = 0;
    for (const connection of this.connections) bufferedBytes += connection.bufferedBytes();
    return {
      connections: this.connections.size,
      upstreamBytes: this.delivered.upstream,
      downstreamBytes: this.delivered.downstream,
      bufferedBytes,
    };
  }

  /** Toxiproxy's proxy shape, plus `partition` and `stats`. */
  toJSON(): object {
    return {
      name: this.name,
      listen: formatEndpoint(this.listenAt),
      upstream: formatEndpoint(this.upstreamAt),
      enabled: this.enabled,
      partition: this.partitionMode,
      toxics: this.toxics,
      stats: this.stats(),
    };
  }

  /** Closes the listen socket and every connection; the port is free when this resolves. */
  async close(): Promise<void> {
    for (const connection of this.connections) connection.destroy();
    await this.closeListener();
    this.logger.info('proxy closed');
  }

  private async openListener(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    server.on('connection', (socket) => this.onConnection(socket));
    const port = await listenOn(server, this.listenAt.host, this.listenAt.port, 'listen').catch((error: ListenError) => {
      // The API answers a taken address as a conflict (409), anything else as a bad field (400).
      if (error.errno === 'EADDRINUSE') throw new ChaosConflictError('listen', error.message);
      throw new InvalidFieldError('listen', error.message);
    });
    server.on('error', (error) => this.logger.error({ err: error }, 'listen socket failed'));
    // Remember the port the kernel picked, so that healing a cut reopens the same address.
    this.listenAt = { host: this.listenAt.host, port };
    this.server = server;
  }

  private async closeListener(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    // The listen socket closes at once (the port is free on the next turn of the event loop);
    // close()'s callback would also wait for the accepted connections, which are ours to keep
    // (stall, a moved listen address) or to destroy (cut, shutdown), so it is not awaited.
    server.close();
    await new Promise((resolve) => setImmediate(resolve));
  }

  private onConnection(client: net.Socket): void {
    if (this.connections.size >= connectionsPerProxyMax) {
      this.logger.warn({ connectionsMax: connectionsPerProxyMax }, 'too many connections; refusing one');
      client.destroy();
      return;
    }
    if (!this.enabled && this.partition === 'cut') {
      client.destroy();
      return;
    }
    const connection = new ProxyConnection(this.nextConnectionId++, client, this.context);
    this.connections.add(connection);
    connection.setStalled(this.context.isStalled(), this.upstreamAt);
  }
}

/**
 * Closes a socket with an RST where Node can. Node 20 cannot reset a socket whose writing side was
 * already ended (libuv refuses uv_tcp_close_reset after a shutdown with EINVAL, and the handle then
 * leaks and makes process exit spin forever), so such a socket, or one still connecting, is closed
 * plainly; its peer has had, or never needed, a FIN.
 */
function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded || socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

/** One accepted client and its upstream connection. */
class ProxyConnection {
  private upstream: net.Socket | null = null;
  private directions: Direction[] = [];
  private stalled = true;
  private closed = false;
  private readonly logger: Logger;

  constructor(
    readonly id: number,
    private readonly client: net.Socket,
    private readonly context: ProxyContext,
  ) {
    this.logger = context.logger.child({ connection: id });
    client.setNoDelay(true);
    client.on('error', (error) => this.onSocketError(client, error));
    client.on('close', () => this.onSocketClose());
    this.logger.debug({ from: `${client.remoteAddress}:${client.remotePort}` }, 'connection accepted');
  }

  /** Holds (or releases) the connection; a held connection that never reached upstream connects now. */
  setStalled(stalled: boolean, upstreamAt: Endpoint): void {
    if (this.closed) return;
    this.stalled = stalled;
    if (!stalled && !this.upstream) this.connectUpstream(upstreamAt);
    for (const direction of this.directions) direction.setHeld(stalled);
  }

  private connectUpstream(upstreamAt: Endpoint): void {
    const upstream = net.connect({ host: upstreamAt.host, port: upstreamAt.port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', (error) => this.onSocketError(upstream, error));
    upstream.on('close', () => this.onSocketClose());
    upstream.once('connect', () => {
      if (this.closed) return;
      this.logger.debug({ upstream: formatEndpoint(upstreamAt) }, 'upstream connected');
      this.directions = [
        new Direction('upstream', this.client, upstream, this.context, this),
        new Direction('downstream', upstream, this.client, this.context, this),
      ];
      for (const direction of this.directions) {
        direction.setHeld(this.stalled);
        direction.setToxics();
      }
    });
  }

  applyToxics(): void {
    for (const direction of this.directions) direction.setToxics();
  }

  bufferedBytes(): number {
    let bytes = this.client.readableLength + this.client.writableLength;
    if (this.upstream) bytes += this.upstream.readableLength + this.upstream.writableLength;
    for (const direction of this.directions) bytes += direction.pipeline.bufferedBytes;
    return bytes;
  }

  private onSocketError(socket: net.Socket, error: Error): void {
    this.logger.debug({ err: error, side: socket === this.client ? 'client' : 'upstream' }, 'socket error');
    if (this.closed) return;
    if (this.directions.length === 0) {
      // Upstream unreachable (or the client gave up first): the client sees a reset, the nearest a
      // proxy can come to the refused connection it would have seen without us.
      if (socket === this.upstream) this.logger.warn({ err: error }, 'cannot reach upstream');
      this.reset();
      return;
    }
    // The peer of a failed socket learns of it with an RST, after the bytes ahead of it.
    const direction = this.directions.find((candidate) => candidate.source === socket);
    direction?.onSourceFailed();
  }

  private onSocketClose(): void {
    const upstreamGone = !this.upstream || this.upstream.destroyed;
    if (this.client.destroyed && upstreamGone) this.finish();
  }

  /** Ends both sides after the bytes already written (a toxic closed the connection). */
  closeGracefully(): void {
    for (const direction of this.directions) direction.stop();
    this.client.destroySoon();
    this.upstream?.destroySoon();
  }

  /** Both sides get an RST. */
  reset(): void {
    for (const direction of this.directions) direction.stop();
    for (const socket of [this.client, this.upstream]) if (socket) resetSocket(socket);
    this.finish();
  }

  /** Closes both sockets now (a `cut` partition or shutdown). */
  destroy(): void {
    for (const direction of this.directions) direction.stop();
    this.client.destroy();
    this.upstream?.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const direction of this.directions) direction.stop();
    this.logger.debug('connection closed');
    this.context.onClosed(this);
  }
}

/** One direction of a connection: reads `source`, runs the pipeline, writes `destination`. */
class Direction {
  readonly pipeline: ToxicPipeline;
  private timer: NodeJS.Timeout | null = null;
  /** `destination.write` returned false; wait for 'drain'. */
  private blocked = false;
  private sourcePaused = true;
  private held = false;
  private stopped = false;

  constructor(
    readonly stream: StreamName,
    readonly source: net.Socket,
    private readonly destination: net.Socket,
    private readonly context: ProxyContext,
    private readonly connection: ProxyConnection,
  ) {
    this.pipeline = new ToxicPipeline(context.random);
    source.pause();
    source.on('data', (bytes: Buffer) => this.onData(bytes));
    source.on('end', () => this.onInput({ kind: 'end' }));
    destination.on('drain', () => {
      this.blocked = false;
      this.pump();
    });
  }

  setToxics(): void {
    this.pipeline.setToxics(this.context.toxicsFor(this.stream), this.context.clock());
    this.pump();
  }

  setHeld(held: boolean): void {
    this.held = held;
    this.pipeline.setHeld(held);
    this.pump();
  }

  onSourceFailed(): void {
    this.onInput({ kind: 'reset' });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private onData(bytes: Buffer): void {
    this.onInput({ kind: 'data', bytes });
  }

  private onInput(item: StreamItem): void {
    if (this.stopped) return;
    this.pipeline.push(item, this.context.clock());
    this.pump();
  }

  /** Writes whatever is due, then decides whether to read on and when to look again. */
  private pump(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const nowMs = this.context.clock();
    while (!this.blocked && !this.stopped) {
      const item = this.pipeline.take(nowMs);
      if (!item) break;
      this.deliver(item);
    }
    if (this.stopped) return;
    const wantsInput = !this.held && this.pipeline.canAccept();
    if (wantsInput && this.sourcePaused) {
      this.sourcePaused = false;
      this.source.resume();
    } else if (!wantsInput && !this.sourcePaused) {
      this.sourcePaused = true;
      this.source.pause();
    }
    // While blocked, 'drain' calls pump; a timer then would only spin.
    if (this.blocked) return;
    const wakeAtMs = this.pipeline.wakeAtMs();
    if (wakeAtMs !== Infinity) {
      const delayMs = Math.max(0, Math.ceil(wakeAtMs - this.context.clock()));
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, delayMs);
    }
  }

  private deliver(item: StreamItem): void {
    switch (item.kind) {
      case 'data':
        if (this.destination.destroyed || this.destination.writableEnded) return;
        this.context.countDelivered(this.stream, item.bytes.length);
        if (!this.destination.write(item.bytes)) this.blocked = true;
        return;
      case 'end':
        if (!this.destination.destroyed) this.destination.end();
        return;
      case 'close':
        this.connection.closeGracefully();
        return;
      case 'reset':
        this.connection.reset();
        return;
    }
  }
}
