// Exempt from Biome's noNonNullAssertion (biome.json): PML tracking: every `x[i]!` indexes the page table or
// log within its length by construction, on the fault path.
import { BaseTracker, PageList } from './baseTracker.ts';
import { PTE_DIRTY, PTE_GUEST_WRITABLE, PTE_PRESENT, PTE_WRITABLE } from '../guest/shadowPageTable.ts';
import type { EpochResult } from './tracker.ts';
import type { WriteSource } from '../guest/shadowPageTable.ts';

/** Entries in Intel's page-modification log (seed 003). */
export const PML_LOG_ENTRIES = 512;

/**
 * `pml`, page-modification logging after seed 003: entries stay present and writable; the first
 * write to a clean page sets its dirty bit and appends the page to a 512-entry log without an exit;
 * a full log is one exit, which drains it. The boundary drains the rest and clears the dirty bits.
 */
export class PmlTracker extends BaseTracker {
  readonly name = 'pml' as const;
  private readonly log = new Uint32Array(PML_LOG_ENTRIES);
  private logLength = 0;
  private readonly dirty = new PageList();

  protected reset(): void {
    const entries = this.table.entries;
    for (let page = 0; page < entries.length; page++) {
      const entry = entries[page]!;
      entries[page] = (entry & ~(PTE_WRITABLE | PTE_DIRTY)) | PTE_PRESENT | ((entry & PTE_GUEST_WRITABLE) !== 0 ? PTE_WRITABLE : 0);
    }
    this.logLength = 0;
    this.dirty.clear();
  }

  override onCleanWrite(page: number, _source: WriteSource): void {
    this.table.entries[page] = this.table.entries[page]! | PTE_DIRTY;
    this.log[this.logLength++] = page;
    if (this.logLength === PML_LOG_ENTRIES) {
      this.stats.logFullExits++;
      this.exit();
      this.drainLog();
    }
  }

  /** A device writing a page the guest may not write: logged like any first write. */
  override onWriteFault(page: number, source: WriteSource): void {
    this.table.entries[page] = this.table.entries[page]! | PTE_WRITABLE;
    this.onCleanWrite(page, source);
  }

  private drainLog(): void {
    for (let i = 0; i < this.logLength; i++) this.dirty.push(this.log[i]!);
    this.logLength = 0;
  }

  endEpoch(): EpochResult {
    const started = performance.now();
    this.drainLog();
    const dirtyPages = this.dirty.sortedCopy();
    this.dirty.clear();
    const entries = this.table.entries;
    for (let i = 0; i < dirtyPages.length; i++) {
      const page = dirtyPages[i]!;
      const entry = entries[page]!;
      // Clean again; a page only a device may write loses the write permission it was lent.
      entries[page] = (entry & PTE_GUEST_WRITABLE) !== 0 ? entry & ~PTE_DIRTY : entry & ~(PTE_DIRTY | PTE_WRITABLE);
    }
    this.stats.entriesScanned += dirtyPages.length;
    const stats = this.finishStats(dirtyPages.length, started);
    return { dirtyPages, falseDirtyPages: new Uint32Array(0), stats };
  }
}
