// Exempt from Biome's noNonNullAssertion (biome.json): dirty tracking: every `x[i]!` indexes the page table
// with a page number in range by construction, on the fault path.
import { BusyWaitCost } from './costModel.ts';
import { L1_SHIFT, PTE_DIRTY, PTE_PRESENT, PTE_WRITABLE, type ShadowPageTable } from '../guest/shadowPageTable.ts';
import { emptyStats, type DirtyTracker, type EpochResult, type EpochTrackingStats, type TrackingStrategyName } from './tracker.ts';
import type { WriteSource } from '../guest/shadowPageTable.ts';
import { assert } from '../errors.ts';

export interface TrackerOptions {
  /** Modelled cost of one VM exit (default 0). */
  exitCostNs?: number;
  /** Histase's α (default 0.7). */
  histaseAlpha?: number;
}

/** Growable list of page numbers without per-page allocation. */
export class PageList {
  private pages: Uint32Array;
  length = 0;

  constructor(capacity = 1024) {
    this.pages = new Uint32Array(capacity);
  }

  push(page: number): void {
    if (this.length === this.pages.length) {
      const grown = new Uint32Array(this.pages.length * 2);
      grown.set(this.pages);
      this.pages = grown;
    }
    this.pages[this.length++] = page;
  }

  clear(): void {
    this.length = 0;
  }

  /** A view of the pages (valid until the list changes). */
  view(): Uint32Array {
    return this.pages.subarray(0, this.length);
  }

  /** A copy, sorted ascending. */
  sortedCopy(): Uint32Array {
    return this.pages.slice(0, this.length).sort();
  }
}

/** What every tracking strategy shares: the table, the statistics and the exit cost model. */
export abstract class BaseTracker implements DirtyTracker {
  abstract readonly name: TrackingStrategyName;
  readonly tracksNothing = false;
  protected table!: ShadowPageTable;
  protected stats: EpochTrackingStats = emptyStats();
  protected readonly exitCost: BusyWaitCost;

  constructor(options: TrackerOptions = {}) {
    this.exitCost = new BusyWaitCost(options.exitCostNs ?? 0, 'exit-cost-ns');
  }

  attach(table: ShadowPageTable): void {
    this.table = table;
    this.reset();
  }

  /** Puts the table into the strategy's initial state (protection starting). */
  protected abstract reset(): void;

  beginEpoch(): void {
    this.stats = emptyStats();
    this.exitCost.chargedNs = 0;
  }

  /** Counts one VM exit and charges its modelled cost. */
  protected exit(): void {
    this.stats.exits++;
    this.exitCost.charge();
  }

  /**
   * The shadow-fault handlers of the trapping strategies: one exit, and the entry rebuilt present
   * (read-only, so a later write still traps) or present, writable and dirty.
   */
  protected faultInReadOnly(page: number): void {
    this.stats.readFaults++;
    this.exit();
    this.table.entries[page] = this.table.entries[page]! | PTE_PRESENT;
    this.table.l1Present[page >>> L1_SHIFT] = 1;
  }

  protected faultInDirty(page: number): void {
    this.stats.writeFaults++;
    this.exit();
    this.table.entries[page] = this.table.entries[page]! | PTE_PRESENT | PTE_WRITABLE | PTE_DIRTY;
    this.table.l1Present[page >>> L1_SHIFT] = 1;
  }

  onReadFault(page: number): void {
    assert(false, `${this.name}: unexpected read fault on page ${page}`);
  }

  onWriteFault(page: number, _source: WriteSource): void {
    assert(false, `${this.name}: unexpected write fault on page ${page}`);
  }

  onCleanWrite(page: number, _source: WriteSource): void {
    assert(false, `${this.name}: unexpected clean write on page ${page}`);
  }

  abstract endEpoch(): EpochResult;

  /** Completes the statistics at the end of an epoch. */
  protected finishStats(dirtyPages: number, scanStartMs: number): EpochTrackingStats {
    const stats = this.stats;
    stats.dirtyPages = dirtyPages;
    stats.recall = dirtyPages > 0 ? stats.truePredictions / dirtyPages : NaN;
    stats.precision = stats.pagesPredicted > 0 ? stats.truePredictions / stats.pagesPredicted : NaN;
    stats.scanNs = (performance.now() - scanStartMs) * 1e6;
    stats.exitCostChargedNs = this.exitCost.chargedNs;
    return stats;
  }
}
