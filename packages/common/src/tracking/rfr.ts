// Exempt from Biome's noNonNullAssertion (biome.json): RFR tracking: every `x[i]!` indexes the page table or
// marker array with a page or L1 index in range by construction, on the fault path.
import { BaseTracker, PageList } from './baseTracker.ts';
import {
  L1_ENTRIES,
  L1_SHIFT,
  MARKER_BITS,
  MARKER_SEGMENT_ENTRIES,
  MARKER_SEGMENT_SHIFT,
  PTE_DIRTY,
  PTE_PREDICTED,
  PTE_WRITABLE,
} from '../guest/shadowPageTable.ts';
import type { EpochResult } from './tracker.ts';
import type { WriteSource } from '../guest/shadowPageTable.ts';

/**
 * `rfr`, read-fault reduction (seed 001, §4.1.1, Fig. 7): shadow tables survive the epoch
 * boundary, so after its first access a page never read-faults again. To trap first writes, the
 * boundary revokes write permission, but only in L1 segments whose marker bit says they may hold
 * writable entries; a write fault sets its segment's bit.
 *
 * The scan that revokes also collects the dirty pages (ascending, as it walks the tables), and
 * computes each scanned L1's ave_stride for Histase (wfp.ts), which extends this class.
 */
export class RfrTracker extends BaseTracker {
  readonly name: 'rfr' | 'wfp' = 'rfr';
  protected readonly dirty = new PageList();
  protected readonly falseDirty = new PageList();

  protected reset(): void {
    this.table.setAllStrategyBits(0);
    this.table.markers.fill(0);
    this.table.l1Present.fill(0);
  }

  override onReadFault(page: number): void {
    this.faultInReadOnly(page);
  }

  override onWriteFault(page: number, _source: WriteSource): void {
    this.faultInDirty(page);
    const table = this.table;
    table.markers[page >>> L1_SHIFT] = table.markers[page >>> L1_SHIFT]! | (1 << ((page >>> MARKER_SEGMENT_SHIFT) & (MARKER_BITS - 1)));
  }

  /** Histase hook: called with each scanned L1's ave_stride. */
  protected onStride(_l1: number, _aveStride: number): void {}

  endEpoch(): EpochResult {
    const started = performance.now();
    const table = this.table;
    const entries = table.entries;
    const markers = table.markers;
    this.dirty.clear();
    this.falseDirty.clear();
    let scanned = 0;
    let truePredictions = 0;
    for (let l1 = 0; l1 < table.l1Count; l1++) {
      const marker = markers[l1]!;
      if (marker === 0) continue;
      // ave_stride: the mean length of runs of consecutive written entries in this L1 (§3.2).
      let runs = 0;
      let written = 0;
      let inRun = false;
      for (let segment = 0; segment < MARKER_BITS; segment++) {
        if ((marker & (1 << segment)) === 0) {
          inRun = false;
          continue;
        }
        const first = l1 * L1_ENTRIES + segment * MARKER_SEGMENT_ENTRIES;
        const end = first + MARKER_SEGMENT_ENTRIES;
        scanned += MARKER_SEGMENT_ENTRIES;
        for (let page = first; page < end; page++) {
          const entry = entries[page]!;
          if ((entry & PTE_DIRTY) !== 0) {
            this.dirty.push(page);
            written++;
            if (!inRun) runs++;
            inRun = true;
            if ((entry & PTE_PREDICTED) !== 0) truePredictions++;
          } else {
            inRun = false;
            if ((entry & PTE_PREDICTED) !== 0) this.falseDirty.push(page);
          }
          // Revoke write; keep the entry (and PRESENT) for the next epoch.
          entries[page] = entry & ~(PTE_WRITABLE | PTE_DIRTY | PTE_PREDICTED);
        }
      }
      markers[l1] = 0;
      this.onStride(l1, runs === 0 ? 0 : written / runs);
    }
    this.stats.entriesScanned += scanned;
    this.stats.truePredictions = truePredictions;
    this.stats.falseDirty = this.falseDirty.length;
    const stats = this.finishStats(this.dirty.length, started);
    return { dirtyPages: this.dirty.sortedCopy(), falseDirtyPages: this.falseDirty.sortedCopy(), stats };
  }
}
