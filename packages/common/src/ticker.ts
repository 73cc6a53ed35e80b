import type { Logger } from './log.ts';

/**
 * Drives a state machine's `tick` every `intervalMs`. The tick runs in setImmediate, i.e. after
 * the event loop has delivered any I/O that was waiting: after a stall of this thread, frames
 * already in the socket are processed before silence is judged, so a node does not declare its
 * peer dead for its own stall. Stalls longer than `stallWarnMs` are logged.
 */
export class Ticker {
  private timer: NodeJS.Timeout | null = null;
  private lastMs = performance.now();
  private pending = false;

  constructor(
    private readonly intervalMs: number,
    private readonly tick: (nowMs: number) => void,
    private readonly logger: Logger,
    private readonly stallWarnMs = 50,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.pending) return;
      this.pending = true;
      setImmediate(() => {
        this.pending = false;
        const now = performance.now();
        const gap = now - this.lastMs;
        this.lastMs = now;
        if (gap > this.stallWarnMs) this.logger.warn({ stallMs: Math.round(gap) }, 'event loop stalled');
        this.tick(now);
      });
    }, this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
