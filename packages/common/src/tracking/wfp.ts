// Exempt from Biome's noNonNullAssertion (biome.json): WFP tracking: every `x[i]!` indexes the page table,
// markers or stride history with a page or L1 index in range by construction, on the fault path.
import { SettingError } from '../errors.ts';
import type { TrackerOptions } from './baseTracker.ts';
import { RfrTracker } from './rfr.ts';
import {
  L1_ENTRIES,
  L1_SHIFT,
  MARKER_BITS,
  MARKER_SEGMENT_SHIFT,
  PTE_DIRTY,
  PTE_GUEST_WRITABLE,
  PTE_PREDICTED,
  PTE_PRESENT,
  PTE_WRITABLE,
} from '../guest/shadowPageTable.ts';
import type { WriteSource } from '../guest/shadowPageTable.ts';

export const HISTASE_ALPHA_DEFAULT = 0.7;

/**
 * `wfp`, write-fault prediction with Histase (seed 001, §4.1.2): rfr, plus on every write fault
 * grant write to the entries within his_stride forwards (the faulting entry counts as the first)
 * and his_stride/3 backwards (same L1, guest-writable only), marked PREDICTED with DIRTY clear. A predicted page that is then
 * written gets its DIRTY bit from the "hardware" (onCleanWrite, no exit); one still clean at the
 * boundary is a false dirty page and is left out of the checkpoint.
 *
 * his_stride = α·his_stride + (1−α)·ave_stride per L1, starting at the first ave_stride.
 */
export class WfpTracker extends RfrTracker {
  override readonly name = 'wfp' as const;
  readonly alpha: number;
  private hisStride = new Float64Array(0);
  private hasHistory = new Uint8Array(0);

  constructor(options: TrackerOptions = {}) {
    super(options);
    const alpha = options.histaseAlpha ?? HISTASE_ALPHA_DEFAULT;
    if (!(alpha >= 0 && alpha < 1)) throw new SettingError('histase-alpha', `must be in [0, 1), got ${alpha}`);
    this.alpha = alpha;
  }

  protected override reset(): void {
    super.reset();
    this.hisStride = new Float64Array(this.table.l1Count);
    this.hasHistory = new Uint8Array(this.table.l1Count);
  }

  /** The current his_stride of an L1 (for tests and reports). */
  historyStride(l1: number): number {
    return this.hisStride[l1]!;
  }

  protected override onStride(l1: number, aveStride: number): void {
    if (this.hasHistory[l1] === 0) {
      this.hisStride[l1] = aveStride;
      this.hasHistory[l1] = 1;
    } else {
      this.hisStride[l1] = this.alpha * this.hisStride[l1]! + (1 - this.alpha) * aveStride;
    }
  }

  override onWriteFault(page: number, source: WriteSource): void {
    super.onWriteFault(page, source);
    const l1 = page >>> L1_SHIFT;
    const stride = this.hisStride[l1]!;
    // The window is his_stride entries long and the faulting entry is the first of them: a run
    // of `stride` written pages starting here. An L1 of isolated writes (his_stride ≈ 1, the
    // paper's SPECweb) therefore predicts nothing, which keeps Histase precise (§5.3, Fig. 12).
    const forward = Math.floor(stride) - 1;
    const backward = Math.floor(stride / 3);
    if (forward <= 0 && backward <= 0) return;
    const l1First = l1 * L1_ENTRIES;
    const l1Last = l1First + L1_ENTRIES - 1;
    const last = Math.min(page + forward, l1Last);
    for (let p = page + 1; p <= last; p++) this.predict(p, l1);
    const first = Math.max(page - backward, l1First);
    for (let p = first; p < page; p++) this.predict(p, l1);
  }

  private predict(page: number, l1: number): void {
    const table = this.table;
    const entry = table.entries[page]!;
    if ((entry & PTE_GUEST_WRITABLE) === 0 || (entry & PTE_WRITABLE) !== 0) return;
    table.entries[page] = (entry & ~PTE_DIRTY) | PTE_PRESENT | PTE_WRITABLE | PTE_PREDICTED;
    table.markers[l1] = table.markers[l1]! | (1 << ((page >>> MARKER_SEGMENT_SHIFT) & (MARKER_BITS - 1)));
    table.l1Present[l1] = 1;
    this.stats.pagesPredicted++;
  }

  /** A predicted page's first write: the MMU sets DIRTY; not an exit (§4.1.2). */
  override onCleanWrite(page: number, _source: WriteSource): void {
    this.table.entries[page] = this.table.entries[page]! | PTE_DIRTY;
  }
}
