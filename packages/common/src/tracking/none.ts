import { assert } from '../errors.ts';
import { PTE_DIRTY, PTE_PRESENT, PTE_WRITABLE, type ShadowPageTable } from './shadowPageTable.ts';
import { emptyStats, type DirtyTracker, type EpochResult } from './tracker.ts';

/**
 * No tracking: every entry is present, writable and dirty, so no access ever faults. This is the
 * native baseline; a checkpoint taken under it has to treat all of memory as dirty.
 */
export class NoTracking implements DirtyTracker {
  readonly name = 'none' as const;
  readonly tracksNothing = true;
  private table: ShadowPageTable | null = null;
  private allPages = new Uint32Array(0);

  attach(table: ShadowPageTable): void {
    this.table = table;
    table.setAllStrategyBits(PTE_PRESENT | PTE_WRITABLE | PTE_DIRTY);
    this.allPages = Uint32Array.from({ length: table.pageCount }, (_, page) => page);
  }

  beginEpoch(): void {}

  onReadFault(page: number): never {
    assert(false, `no read fault can happen without tracking (page ${page})`);
  }

  onWriteFault(page: number): never {
    assert(false, `no write fault can happen without tracking (page ${page})`);
  }

  onCleanWrite(page: number): never {
    assert(false, `no clean write can happen without tracking (page ${page})`);
  }

  endEpoch(): EpochResult {
    assert(this.table !== null, 'attached before use');
    const stats = emptyStats();
    stats.dirtyPages = this.allPages.length;
    return { dirtyPages: this.allPages, falseDirtyPages: new Uint32Array(0), stats };
  }
}
