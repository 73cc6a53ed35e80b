import { BaseTracker, PageList } from './baseTracker.ts';
import { L1_ENTRIES } from '../guest/shadowPageTable.ts';
import type { EpochResult } from './tracker.ts';
import type { WriteSource } from '../guest/shadowPageTable.ts';

/**
 * `origin`: Xen's log-dirty mode as used by Remus and the paper's baseline (seed 001, §2.2). At
 * every epoch boundary all L1 shadow tables are destroyed, so the first read and the first write
 * of every page in the next epoch fault; a write fault marks the page dirty.
 */
export class OriginTracker extends BaseTracker {
  readonly name = 'origin' as const;
  private readonly dirty = new PageList();

  protected reset(): void {
    this.table.setAllStrategyBits(0);
    this.table.l1Present.fill(0);
    this.dirty.clear();
  }

  override onReadFault(page: number): void {
    // Rebuilt read-only: log-dirty revokes write on every entry it constructs.
    this.faultInReadOnly(page);
  }

  override onWriteFault(page: number, _source: WriteSource): void {
    this.faultInDirty(page);
    this.dirty.push(page);
  }

  endEpoch(): EpochResult {
    const started = performance.now();
    const dirtyPages = this.dirty.sortedCopy();
    this.dirty.clear();
    const table = this.table;
    for (let l1 = 0; l1 < table.l1Count; l1++) {
      if (table.l1Present[l1] === 0) continue;
      table.destroyL1(l1);
      this.stats.entriesScanned += L1_ENTRIES;
    }
    const stats = this.finishStats(dirtyPages.length, started);
    return { dirtyPages, falseDirtyPages: new Uint32Array(0), stats };
  }
}
