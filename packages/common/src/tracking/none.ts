import { assert } from '../errors.ts';
import { PTE_DIRTY, PTE_GUEST_WRITABLE, PTE_PRESENT, PTE_STRATEGY_BITS, PTE_WRITABLE, type ShadowPageTable } from './shadowPageTable.ts';
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
    const entries = table.entries;
    for (let page = 0; page < entries.length; page++) {
      const entry = entries[page]!;
      entries[page] = (entry & ~PTE_STRATEGY_BITS) | PTE_PRESENT | ((entry & PTE_GUEST_WRITABLE) !== 0 ? PTE_WRITABLE | PTE_DIRTY : 0);
    }
    this.allPages = Uint32Array.from({ length: table.pageCount }, (_, page) => page);
  }

  beginEpoch(): void {}

  onReadFault(page: number): never {
    assert(false, `no read fault can happen without tracking (page ${page})`);
  }

  /** Only a device writing a page the guest may not write gets here. */
  onWriteFault(page: number): void {
    assert(this.table !== null, 'attached before use');
    this.table.entries[page] = this.table.entries[page]! | PTE_WRITABLE | PTE_DIRTY;
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
