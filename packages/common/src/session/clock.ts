/**
 * The time source of the session layer, injected so that tests drive timeouts with a manual clock
 * (style.md: no hidden global state). Times are monotonic milliseconds.
 */
export interface Clock {
  nowMs(): number;
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  nowMs: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A clock that moves only when told to; timers fire in time order during `advance`. */
export class ManualClock implements Clock {
  private now = 0;
  private nextHandle = 1;
  private readonly timers = new Map<number, { atMs: number; callback: () => void }>();

  nowMs(): number {
    return this.now;
  }

  setTimeout(callback: () => void, delayMs: number): unknown {
    const handle = this.nextHandle++;
    this.timers.set(handle, { atMs: this.now + Math.max(0, delayMs), callback });
    return handle;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward by `ms`, firing due timers (including ones they set) in order. */
  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      let due: [number, { atMs: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].atMs <= target && (!due || entry[1].atMs < due[1].atMs)) due = entry;
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = Math.max(this.now, due[1].atMs);
      due[1].callback();
    }
    this.now = target;
  }
}
