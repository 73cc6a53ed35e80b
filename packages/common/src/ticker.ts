import type { Logger } from './log.ts';
import { TICK_WAIT_MS_MAX } from './constants.ts';

export interface TickerOptions {
  /** A gap between ticks longer than this is logged as a stall of this thread. */
  stallWarnMs?: number;
  /**
   * When the state machine next has something to do (its `nextDeadlineMs`). With it the ticker
   * sleeps until then, at least `intervalMs` and at most `maxWaitMs`, instead of waking every
   * `intervalMs`: a 1 ms poll costs an idle daemon about 8 % of a core.
   */
  nextDeadlineMs?: () => number;
  /** The longest sleep: bounds how late anything the deadline does not cover is noticed. */
  maxWaitMs?: number;
}

/**
 * Drives a state machine's `tick`. The tick runs in setImmediate, i.e. after the event loop has
 * delivered any I/O that was waiting: after a stall of this thread, frames already in the socket
 * are processed before silence is judged, so a node does not declare its peer dead for its own
 * stall. Stalls longer than `stallWarnMs` are logged.
 */
export class Ticker {
  private timer: NodeJS.Timeout | null = null;
  private lastMs = performance.now();
  private pending = false;
  private running = false;
  private readonly stallWarnMs: number;
  private readonly nextDeadlineMs: (() => number) | undefined;
  private readonly maxWaitMs: number;

  constructor(
    private readonly intervalMs: number,
    private readonly tick: (nowMs: number) => void,
    private readonly logger: Logger,
    options: TickerOptions = {},
  ) {
    this.stallWarnMs = options.stallWarnMs ?? 50;
    this.nextDeadlineMs = options.nextDeadlineMs;
    this.maxWaitMs = options.maxWaitMs ?? TICK_WAIT_MS_MAX;
  }

  start(): void {
    this.running = true;
    if (this.nextDeadlineMs === undefined) {
      this.timer = setInterval(() => this.fire(), this.intervalMs);
      return;
    }
    this.schedule(this.nextDeadlineMs);
  }

  stop(): void {
    this.running = false;
    if (this.timer) {
      clearTimeout(this.timer);
      clearInterval(this.timer);
    }
    this.timer = null;
  }

  private schedule(nextDeadlineMs: () => number): void {
    const untilDeadline = nextDeadlineMs() - performance.now();
    const waitMs = Math.min(this.maxWaitMs, Math.max(this.intervalMs, untilDeadline));
    this.timer = setTimeout(() => this.fire(), waitMs);
  }

  private fire(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      if (!this.running) return;
      const now = performance.now();
      const gap = now - this.lastMs;
      this.lastMs = now;
      if (gap > this.stallWarnMs) this.logger.warn({ stallMs: Math.round(gap) }, 'event loop stalled');
      this.tick(now);
      if (this.running && this.nextDeadlineMs !== undefined) this.schedule(this.nextDeadlineMs);
    });
  }
}
