/**
 * One toxic acting on one direction of one connection: a pure queue that is fed items with the time
 * they arrive and hands them back once the time has come. No sockets, no timers: `ToxicPipeline`
 * chains stages and a driver (proxy.ts) moves bytes and sets timers from `readyAtMs`.
 *
 * Ordering rule: a stage never releases an item before the one pushed ahead of it, so no toxic can
 * reorder bytes within a connection (TCP promises order; a proxy that broke it would test nothing).
 */
import { assert } from '../errors.ts';
import { Fifo } from './fifo.ts';
import {
  bandwidthQueueBytesMin,
  bandwidthQueueMs,
  bandwidthSliceMs,
  chaosDelayedBytesMax,
  chaosHeldBytesMax,
  lossSegmentBytes,
} from '../limits.ts';
import { toxicAttribute, type Toxic, type ToxicType } from './model.ts';
import type { RandomSource } from './random.ts';

/**
 * What flows through a direction. `end`: the source half-closed (FIN), so end the destination after
 * the bytes ahead of it. `close` and `reset`: the whole connection ends (gracefully, or with RST).
 */
export type StreamItem = { kind: 'data'; bytes: Buffer } | { kind: 'end' } | { kind: 'close' } | { kind: 'reset' };

export function itemBytes(item: StreamItem): number {
  return item.kind === 'data' ? item.bytes.length : 0;
}

export interface ToxicStage {
  readonly toxicName: string;
  /** Bytes held by this stage. */
  readonly bufferedBytes: number;
  /** Whether the stage wants more input; pushing anyway is allowed but overshoots the bound. */
  canAccept(): boolean;
  push(item: StreamItem, nowMs: number): void;
  /** The next item if it is due at `nowMs`, else null. */
  take(nowMs: number): StreamItem | null;
  /** When `take` will next return an item; Infinity when empty or holding indefinitely. */
  readyAtMs(): number;
  /** When this toxic ends the whole connection by itself, ahead of any queued data; Infinity if never. */
  abortAtMs(): number;
  readonly abortKind: 'close' | 'reset';
  /** Removes and returns everything held, oldest first (the toxic is being removed). */
  drain(): StreamItem[];
  /** New attributes; items already scheduled keep their times. */
  update(toxic: Toxic): void;
}

interface Scheduled {
  item: StreamItem;
  releaseAtMs: number;
}

/** A queue whose items carry release times; subclasses decide the times in `schedule`. */
abstract class ScheduledStage implements ToxicStage {
  readonly abortKind: 'close' | 'reset' = 'close';
  bufferedBytes = 0;
  private readonly queue = new Fifo<Scheduled>();
  protected lastReleaseAtMs = -Infinity;

  constructor(
    readonly toxicName: string,
    private readonly bytesMax: number,
  ) {}

  canAccept(): boolean {
    return this.bufferedBytes < this.bytesMax;
  }

  push(item: StreamItem, nowMs: number): void {
    this.schedule(item, nowMs);
  }

  protected abstract schedule(item: StreamItem, nowMs: number): void;

  /** Queues an item no earlier than the one before it: this is what keeps bytes in order. */
  protected enqueue(item: StreamItem, releaseAtMs: number): void {
    const atMs = Math.max(releaseAtMs, this.lastReleaseAtMs);
    this.lastReleaseAtMs = atMs;
    this.queue.push({ item, releaseAtMs: atMs });
    this.bufferedBytes += itemBytes(item);
  }

  take(nowMs: number): StreamItem | null {
    const head = this.queue.peek();
    if (!head || head.releaseAtMs > nowMs) return null;
    this.queue.shift();
    this.bufferedBytes -= itemBytes(head.item);
    return head.item;
  }

  readyAtMs(): number {
    return this.queue.peek()?.releaseAtMs ?? Infinity;
  }

  abortAtMs(): number {
    return Infinity;
  }

  drain(): StreamItem[] {
    this.bufferedBytes = 0;
    return this.queue.drain().map((entry) => entry.item);
  }

  abstract update(toxic: Toxic): void;
}

/** `latency`: every item waits latency ± jitter, and never overtakes the item before it. */
export class LatencyStage extends ScheduledStage {
  private latencyMs = 0;
  private jitterMs = 0;

  constructor(
    toxic: Toxic,
    private readonly random: RandomSource,
  ) {
    super(toxic.name, chaosDelayedBytesMax);
    this.update(toxic);
  }

  update(toxic: Toxic): void {
    this.latencyMs = toxicAttribute(toxic, 'latency');
    this.jitterMs = toxicAttribute(toxic, 'jitter');
  }

  protected schedule(item: StreamItem, nowMs: number): void {
    const jitterMs = this.jitterMs === 0 ? 0 : (2 * this.random() - 1) * this.jitterMs;
    this.enqueue(item, nowMs + Math.max(0, this.latencyMs + jitterMs));
  }
}

/** `slicer`: data is cut into slices of average_size ± size_variation bytes, `delay` µs apart. */
export class SlicerStage extends ScheduledStage {
  private averageBytes = 1;
  private variationBytes = 0;
  private gapMs = 0;

  constructor(
    toxic: Toxic,
    private readonly random: RandomSource,
  ) {
    super(toxic.name, chaosDelayedBytesMax);
    this.update(toxic);
  }

  update(toxic: Toxic): void {
    this.averageBytes = toxicAttribute(toxic, 'average_size');
    this.variationBytes = toxicAttribute(toxic, 'size_variation');
    this.gapMs = toxicAttribute(toxic, 'delay') / 1000;
  }

  protected schedule(item: StreamItem, nowMs: number): void {
    if (item.kind !== 'data') {
      this.enqueue(item, nowMs);
      return;
    }
    let offset = 0;
    while (offset < item.bytes.length) {
      const sizeBytes = this.averageBytes + Math.round((2 * this.random() - 1) * this.variationBytes);
      assert(sizeBytes >= 1, 'validation keeps size_variation below average_size');
      const slice = item.bytes.subarray(offset, offset + sizeBytes);
      offset += slice.length;
      this.enqueue({ kind: 'data', bytes: slice }, Math.max(nowMs, this.lastReleaseAtMs + this.gapMs));
    }
  }
}

/**
 * `loss` (an hbft extension). TCP cannot lose bytes without breaking the stream, so a lost segment
 * shows up the way it does on a real link: the bytes from that segment on arrive one retransmission
 * delay late (and everything behind them waits, since TCP delivers in order). Losses are drawn per
 * 1460-byte segment with the given probability; several losses in one chunk share one stall, as a
 * selective-acknowledgement retransmission would.
 */
export class LossStage extends ScheduledStage {
  private probability = 0;
  private retransmitMs = 0;
  /** Bytes that will pass before the next lost segment. */
  private bytesUntilLoss = Infinity;

  constructor(
    toxic: Toxic,
    private readonly random: RandomSource,
  ) {
    super(toxic.name, chaosDelayedBytesMax);
    this.update(toxic);
  }

  update(toxic: Toxic): void {
    this.probability = toxicAttribute(toxic, 'probability');
    this.retransmitMs = toxicAttribute(toxic, 'retransmit');
    this.bytesUntilLoss = this.drawBytesUntilLoss();
  }

  /** Geometric draw: the number of good segments before the next lost one. */
  private drawBytesUntilLoss(): number {
    if (this.probability <= 0) return Infinity;
    if (this.probability >= 1) return 0;
    const goodSegments = Math.floor(Math.log(1 - this.random()) / Math.log(1 - this.probability));
    return goodSegments * lossSegmentBytes;
  }

  protected schedule(item: StreamItem, nowMs: number): void {
    if (item.kind !== 'data') {
      this.enqueue(item, nowMs);
      return;
    }
    const length = item.bytes.length;
    if (this.bytesUntilLoss >= length) {
      this.bytesUntilLoss -= length;
      this.enqueue(item, nowMs);
      return;
    }
    const lostAt = this.bytesUntilLoss;
    if (lostAt > 0) this.enqueue({ kind: 'data', bytes: item.bytes.subarray(0, lostAt) }, nowMs);
    this.enqueue({ kind: 'data', bytes: item.bytes.subarray(lostAt) }, nowMs + this.retransmitMs);
    // Later losses inside this chunk fall in the same stall; only the countdown moves on.
    let position = lostAt + lossSegmentBytes;
    this.bytesUntilLoss = this.drawBytesUntilLoss();
    while (position + this.bytesUntilLoss < length) {
      position += this.bytesUntilLoss + lossSegmentBytes;
      this.bytesUntilLoss = this.drawBytesUntilLoss();
    }
    this.bytesUntilLoss -= Math.max(0, length - position);
  }
}

/** `slow_close`: data passes at once; the close (FIN) waits `delay` ms. */
export class SlowCloseStage extends ScheduledStage {
  private delayMs = 0;

  constructor(toxic: Toxic) {
    super(toxic.name, chaosDelayedBytesMax);
    this.update(toxic);
  }

  update(toxic: Toxic): void {
    this.delayMs = toxicAttribute(toxic, 'delay');
  }

  protected schedule(item: StreamItem, nowMs: number): void {
    const closes = item.kind === 'end' || item.kind === 'close';
    this.enqueue(item, closes ? nowMs + this.delayMs : nowMs);
  }
}

/** `reset_peer`: data passes until `timeout` ms after the toxic met the connection; then RST. */
export class ResetPeerStage extends ScheduledStage {
  override readonly abortKind = 'reset';
  private timeoutMs = 0;

  constructor(
    toxic: Toxic,
    private readonly startedAtMs: number,
  ) {
    super(toxic.name, chaosDelayedBytesMax);
    this.update(toxic);
  }

  update(toxic: Toxic): void {
    this.timeoutMs = toxicAttribute(toxic, 'timeout');
  }

  protected schedule(item: StreamItem, nowMs: number): void {
    this.enqueue(item, nowMs);
  }

  override abortAtMs(): number {
    return this.startedAtMs + this.timeoutMs;
  }
}

/** `limit_data`: passes `bytes` bytes in this direction, then closes the connection. */
export class LimitDataStage extends ScheduledStage {
  private limitBytes = 0;
  private passedBytes = 0;
  private closed = false;

  constructor(toxic: Toxic, nowMs: number) {
    super(toxic.name, chaosDelayedBytesMax);
    this.update(toxic);
    this.closeIfReached(nowMs);
  }

  update(toxic: Toxic): void {
    this.limitBytes = toxicAttribute(toxic, 'bytes');
  }

  private closeIfReached(nowMs: number): void {
    if (!this.closed && this.passedBytes >= this.limitBytes) {
      this.closed = true;
      this.enqueue({ kind: 'close' }, nowMs);
    }
  }

  protected schedule(item: StreamItem, nowMs: number): void {
    if (this.closed) return; // the connection is closing; nothing more goes through
    if (item.kind === 'data') {
      const bytes = item.bytes.subarray(0, this.limitBytes - this.passedBytes);
      this.passedBytes += bytes.length;
      if (bytes.length > 0) this.enqueue({ kind: 'data', bytes }, nowMs);
      this.closeIfReached(nowMs);
    } else {
      this.enqueue(item, nowMs);
    }
  }
}

/**
 * `timeout`: no data passes; after `timeout` ms (0 = never) the connection is closed. Held bytes are
 * kept (and the source is paused once `chaosHeldBytesMax` is reached) rather than dropped, so removing the
 * toxic before the timeout resumes an intact stream, as a healed link would.
 */
export class TimeoutStage implements ToxicStage {
  readonly abortKind = 'close';
  bufferedBytes = 0;
  private readonly held = new Fifo<StreamItem>();
  private timeoutMs = 0;

  constructor(
    toxic: Toxic,
    private readonly startedAtMs: number,
  ) {
    this.toxicName = toxic.name;
    this.update(toxic);
  }

  readonly toxicName: string;

  update(toxic: Toxic): void {
    this.timeoutMs = toxicAttribute(toxic, 'timeout');
  }

  canAccept(): boolean {
    return this.bufferedBytes < chaosHeldBytesMax;
  }

  push(item: StreamItem): void {
    this.held.push(item);
    this.bufferedBytes += itemBytes(item);
  }

  take(): StreamItem | null {
    return null;
  }

  readyAtMs(): number {
    return Infinity;
  }

  abortAtMs(): number {
    return this.timeoutMs === 0 ? Infinity : this.startedAtMs + this.timeoutMs;
  }

  drain(): StreamItem[] {
    this.bufferedBytes = 0;
    return this.held.drain();
  }
}

/**
 * `bandwidth`: a link that serialises `rate` KB/s (1 KB = 1000 bytes, Toxiproxy's unit). A slice is
 * released when its last byte would have crossed the link, so the rate holds without a burst. Slices
 * are `bandwidthSliceMs` worth of bytes so that a slow link trickles rather than lurches. The queue
 * holds about `bandwidthQueueMs` of bytes; beyond that the stage refuses input and the driver stops
 * reading the source socket, which is what bounds memory behind a slow link.
 */
export class BandwidthStage implements ToxicStage {
  readonly abortKind = 'close';
  readonly toxicName: string;
  bufferedBytes = 0;
  private readonly queue = new Fifo<{ item: StreamItem; arrivedAtMs: number }>();
  /** Bytes of the head item already released. */
  private headOffsetBytes = 0;
  /** When the link finishes sending what it has released so far. */
  private linkFreeAtMs = -Infinity;
  /** Release time and size of the next slice; NaN when not yet computed. */
  private nextReleaseAtMs = NaN;
  private nextSliceBytes = 0;
  private bytesPerMs = 1;

  constructor(toxic: Toxic) {
    this.toxicName = toxic.name;
    this.update(toxic);
  }

  update(toxic: Toxic): void {
    // KB/s with KB = 1000 bytes is numerically bytes per millisecond.
    this.bytesPerMs = toxicAttribute(toxic, 'rate');
    this.nextReleaseAtMs = NaN;
  }

  private get queueBytesMax(): number {
    return Math.max(bandwidthQueueBytesMin, this.bytesPerMs * bandwidthQueueMs);
  }

  canAccept(): boolean {
    return this.bufferedBytes < this.queueBytesMax;
  }

  push(item: StreamItem, nowMs: number): void {
    this.queue.push({ item, arrivedAtMs: nowMs });
    this.bufferedBytes += itemBytes(item);
    // An empty queue planned "never"; the new head needs a plan.
    if (this.nextReleaseAtMs === Infinity) this.nextReleaseAtMs = NaN;
  }

  private planNextSlice(): void {
    if (!Number.isNaN(this.nextReleaseAtMs)) return;
    const head = this.queue.peek();
    if (!head) {
      this.nextReleaseAtMs = Infinity;
      return;
    }
    const sliceBytesMax = Math.max(1, Math.floor(this.bytesPerMs * bandwidthSliceMs));
    this.nextSliceBytes = Math.min(itemBytes(head.item) - this.headOffsetBytes, sliceBytesMax);
    const startMs = Math.max(head.arrivedAtMs, this.linkFreeAtMs);
    this.nextReleaseAtMs = startMs + this.nextSliceBytes / this.bytesPerMs;
  }

  take(nowMs: number): StreamItem | null {
    this.planNextSlice();
    if (this.nextReleaseAtMs > nowMs) return null;
    const head = this.queue.peek();
    assert(head !== undefined, 'planNextSlice plans a release time only for a queued item');
    this.linkFreeAtMs = this.nextReleaseAtMs;
    this.nextReleaseAtMs = NaN;
    if (head.item.kind !== 'data') {
      this.queue.shift();
      return head.item;
    }
    const bytes = head.item.bytes.subarray(this.headOffsetBytes, this.headOffsetBytes + this.nextSliceBytes);
    this.headOffsetBytes += bytes.length;
    this.bufferedBytes -= bytes.length;
    if (this.headOffsetBytes === head.item.bytes.length) {
      this.queue.shift();
      this.headOffsetBytes = 0;
    }
    return { kind: 'data', bytes };
  }

  readyAtMs(): number {
    this.planNextSlice();
    return this.nextReleaseAtMs;
  }

  abortAtMs(): number {
    return Infinity;
  }

  drain(): StreamItem[] {
    const entries = this.queue.drain();
    const items = entries.map((entry) => entry.item);
    const first = items[0];
    if (first?.kind === 'data' && this.headOffsetBytes > 0) {
      items[0] = { kind: 'data', bytes: first.bytes.subarray(this.headOffsetBytes) };
    }
    this.headOffsetBytes = 0;
    this.bufferedBytes = 0;
    this.nextReleaseAtMs = NaN;
    return items;
  }
}

/** Builds the stage for a toxic that has just met a connection at `nowMs`. */
export function createStage(toxic: Toxic, nowMs: number, random: RandomSource): ToxicStage {
  const byType: Record<ToxicType, () => ToxicStage> = {
    latency: () => new LatencyStage(toxic, random),
    bandwidth: () => new BandwidthStage(toxic),
    slow_close: () => new SlowCloseStage(toxic),
    timeout: () => new TimeoutStage(toxic, nowMs),
    reset_peer: () => new ResetPeerStage(toxic, nowMs),
    slicer: () => new SlicerStage(toxic, random),
    limit_data: () => new LimitDataStage(toxic, nowMs),
    loss: () => new LossStage(toxic, random),
  };
  return byType[toxic.type]();
}
