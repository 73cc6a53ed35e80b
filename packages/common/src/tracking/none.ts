import { assert } from '../errors.ts';
import { MapEverything, type ShadowPageTable } from '../guest/shadowPageTable.ts';
import { emptyStats, type DirtyTracker, type EpochResult } from './tracker.ts';

/**
 * No tracking: the MMU maps everything (no access ever faults). This is the native baseline; a
 * checkpoint taken under it has to treat all of memory as dirty.
 */
export class NoTracking extends MapEverything implements DirtyTracker {
  readonly name = 'none' as const;
  readonly tracksNothing = true;
  private allPages = new Uint32Array(0);

  override attach(table: ShadowPageTable): void {
    super.attach(table);
    this.allPages = Uint32Array.from({ length: table.pageCount }, (_, page) => page);
  }

  beginEpoch(): void {}

  endEpoch(): EpochResult {
    assert(this.table !== null, 'attached before use');
    const stats = emptyStats();
    stats.dirtyPages = this.allPages.length;
    return { dirtyPages: this.allPages, falseDirtyPages: new Uint32Array(0), stats };
  }
}
