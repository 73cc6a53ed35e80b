import { SettingError } from '../errors.ts';

/**
 * Charges a modelled cost by busy-waiting on the high-resolution clock. Our interpreted fault
 * path is far cheaper than a real VM exit (≈1–2 µs on bare metal: design.md §2), so benchmarks
 * that reproduce the paper set the exit and map costs explicitly; counts are exact either way.
 */
export class BusyWaitCost {
  readonly costNs: number;
  chargedNs = 0;

  constructor(costNs: number, setting: string) {
    if (!Number.isFinite(costNs) || costNs < 0) throw new SettingError(setting, `must be a number of nanoseconds ≥ 0, got ${costNs}`);
    this.costNs = costNs;
  }

  /** Spends `count` × costNs of wall time (nothing when the cost is 0). */
  charge(count = 1): void {
    if (this.costNs === 0) return;
    const ns = this.costNs * count;
    const start = performance.now();
    const end = start + ns / 1e6;
    let now = start;
    while (now < end) now = performance.now();
    this.chargedNs += (now - start) * 1e6;
  }
}
