/**
 * The toxics acting on one direction of one connection, chained in the order they were added (as in
 * Toxiproxy). A pure component: the driver pushes what it reads with the time, takes what is due and
 * writes it, and sets a timer for `wakeAtMs()`. Tests drive it with a fake clock.
 *
 * Backpressure: `canAccept()` is false while the first stage (or the ready queue) is full, and the
 * driver then stops reading the source socket. Each stage moves items on only while the next one
 * accepts, so the bytes held are bounded by the sum of the stages' bounds plus one read per stage.
 */
import { Fifo } from './fifo.ts';
import { chaosReadyBytesMax } from '../limits.ts';
import type { Toxic } from './model.ts';
import type { RandomSource } from './random.ts';
import { createStage, itemBytes, type StreamItem, type ToxicStage } from './stages.ts';

export class ToxicPipeline {
  private stages: ToxicStage[] = [];
  /** Whether each toxic (by name) applies to this connection, drawn once from its toxicity. */
  private readonly draws = new Map<string, { toxicity: number; applies: boolean }>();
  /** Items that have left the last stage, waiting for the destination to take them. */
  private readonly ready = new Fifo<StreamItem>();
  private readyBytes = 0;
  private held = false;
  /** A `close` or `reset` has been handed out: the connection is over and nothing else passes. */
  private finished = false;
  private abort: StreamItem | null = null;

  constructor(private readonly random: RandomSource) {}

  get bufferedBytes(): number {
    return this.stages.reduce((sum, stage) => sum + stage.bufferedBytes, this.readyBytes);
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** Names of the toxics that apply to this connection, in chain order. */
  get activeToxicNames(): string[] {
    return this.stages.map((stage) => stage.toxicName);
  }

  /**
   * Sets the toxics of this direction (in the order they were added). A new toxic, or one whose
   * toxicity changed, draws whether it applies. A removed toxic hands what it holds to the next stage
   * (as if released now), so removing a toxic never drops or reorders bytes.
   */
  setToxics(toxics: readonly Toxic[], nowMs: number): void {
    const wanted = new Map<string, Toxic>();
    for (const toxic of toxics) {
      let draw = this.draws.get(toxic.name);
      if (!draw || draw.toxicity !== toxic.toxicity) {
        draw = { toxicity: toxic.toxicity, applies: this.random() < toxic.toxicity };
        this.draws.set(toxic.name, draw);
      }
      if (draw.applies) wanted.set(toxic.name, toxic);
    }
    for (const name of this.draws.keys()) {
      if (!toxics.some((toxic) => toxic.name === name)) this.draws.delete(name);
    }

    // Remove from the end backwards, so that when two neighbours go, the older bytes (further down
    // the chain) reach the surviving stage first.
    for (const [index, stage] of [...this.stages.entries()].reverse()) {
      const toxic = wanted.get(stage.toxicName);
      if (toxic) {
        stage.update(toxic);
        continue;
      }
      this.stages.splice(index, 1);
      const next = this.stages[index];
      for (const item of stage.drain()) {
        if (next) next.push(item, nowMs);
        else this.pushReady(item);
      }
    }
    for (const toxic of wanted.values()) {
      if (!this.stages.some((stage) => stage.toxicName === toxic.name)) {
        this.stages.push(createStage(toxic, nowMs, this.random));
      }
    }
  }

  /** Stall: nothing is released and no input is wanted until `setHeld(false)`. Time keeps running. */
  setHeld(held: boolean): void {
    this.held = held;
  }

  canAccept(): boolean {
    if (this.held || this.finished) return false;
    const first = this.stages[0];
    return first ? first.canAccept() : this.readyBytes < chaosReadyBytesMax;
  }

  push(item: StreamItem, nowMs: number): void {
    if (this.finished) return; // the connection is ending; late bytes have nowhere to go
    const first = this.stages[0];
    if (first) first.push(item, nowMs);
    else this.pushReady(item);
  }

  /** The next item due at `nowMs` for the destination, or null. Call again until null. */
  take(nowMs: number): StreamItem | null {
    if (this.held || this.finished) return null;
    this.advance(nowMs);
    if (this.abort) {
      const abort = this.abort;
      this.finish();
      return abort;
    }
    const item = this.ready.shift();
    if (!item) return null;
    this.readyBytes -= itemBytes(item);
    if (item.kind === 'close' || item.kind === 'reset') this.finish();
    return item;
  }

  /**
   * When `take` may next have something, for the driver's timer; Infinity when only new input (or
   * the destination draining) can change anything. Call right after `take` has returned null.
   */
  wakeAtMs(): number {
    if (this.held || this.finished) return Infinity;
    let wakeMs = Infinity;
    for (const [index, stage] of this.stages.entries()) {
      wakeMs = Math.min(wakeMs, stage.abortAtMs());
      // A stage whose next stage is full waits for that one, which has its own wake time.
      if (this.acceptsAfter(index)) wakeMs = Math.min(wakeMs, stage.readyAtMs());
    }
    return wakeMs;
  }

  private acceptsAfter(index: number): boolean {
    const next = this.stages[index + 1];
    return next ? next.canAccept() : this.readyBytes < chaosReadyBytesMax;
  }

  private pushReady(item: StreamItem): void {
    this.ready.push(item);
    this.readyBytes += itemBytes(item);
  }

  /** Moves every due item down the chain as far as room allows. */
  private advance(nowMs: number): void {
    for (const stage of this.stages) {
      if (stage.abortAtMs() <= nowMs && !this.abort) this.abort = { kind: stage.abortKind };
    }
    if (this.abort) return;
    let moved = true;
    while (moved) {
      moved = false;
      for (const [index, stage] of this.stages.entries()) {
        while (this.acceptsAfter(index)) {
          const item = stage.take(nowMs);
          if (!item) break;
          moved = true;
          const next = this.stages[index + 1];
          if (next) next.push(item, nowMs);
          else this.pushReady(item);
        }
      }
    }
  }

  private finish(): void {
    this.finished = true;
    this.abort = null;
    for (const stage of this.stages) stage.drain();
    this.ready.drain();
    this.readyBytes = 0;
  }
}
