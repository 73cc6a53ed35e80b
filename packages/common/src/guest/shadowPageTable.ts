// Exempt from Biome's noNonNullAssertion (biome.json): the shadow page table: every `x[i]!` indexes the entry
// array with a page number below its length by construction, on the fault path.
import { PAGE_SHIFT, RAM_BASE } from './addressMap.ts';
import { assert } from '../errors.ts';

/*
 * The shadow page table (seed 001, §2.2, Fig. 3): one entry per 4 KiB guest-physical page,
 * grouped into L1 tables of 512 entries (2 MiB each) under an L2 directory. The emulated MMU
 * consults it on every access; the tracking strategies manipulate it.
 *
 * One byte per page. The CPU's fast paths test it without a call: a load or fetch needs PRESENT,
 * a store needs WRITABLE and DIRTY and none of WATCHED, CODE and RESERVED. Anything else goes to the slow
 * path, where a missing PRESENT is a read fault, a missing WRITABLE a write fault (both VM exits),
 * and WRITABLE without DIRTY is the "hardware" setting the dirty bit (no exit; PML logs the page
 * there).
 */
export const PTE_PRESENT = 0x01;
export const PTE_WRITABLE = 0x02;
export const PTE_DIRTY = 0x04;
/** Granted writable by Histase's prediction rather than by a fault (seed 001, §4.1.2). */
export const PTE_PREDICTED = 0x08;
/** The guest allows writes to this page at all (its own page tables would say so). */
export const PTE_GUEST_WRITABLE = 0x10;
/** The host observes every store to this page (tohost, ground-truth recording). Not a strategy bit. */
export const PTE_WATCHED = 0x20;
/**
 * The CPU holds code compiled from this page (guest/blockCompiler.ts). Not a strategy bit: a store
 * here takes the slow path, where GuestMemory drops the compiled code and clears the bit, so the
 * next fetch sees the new instructions. It never causes a fault or changes what the tracker sees.
 */
export const PTE_CODE = 0x40;
/**
 * The page holds the hart's LR.W reservation (guest/memory.ts). Not a strategy bit: a store here
 * takes the slow path, where GuestMemory clears the reservation and the bit, whichever path the
 * store came by (CPU store, AMO, SC.W or device DMA).
 */
export const PTE_RESERVED = 0x80;

/** Bits a strategy owns; the others (GUEST_WRITABLE, WATCHED, CODE, RESERVED) survive every strategy operation. */
export const PTE_STRATEGY_BITS = PTE_PRESENT | PTE_WRITABLE | PTE_DIRTY | PTE_PREDICTED;
export const PTE_STORE_FAST_MASK = PTE_WRITABLE | PTE_DIRTY | PTE_WATCHED | PTE_CODE | PTE_RESERVED;
export const PTE_STORE_FAST_VALUE = PTE_WRITABLE | PTE_DIRTY;

export const L1_ENTRIES = 512;
export const L1_SHIFT = 9;
/** Read-fault reduction's marker: 8 bits per L1, one per 64-entry segment (seed 001, §4.1.1). */
export const MARKER_SEGMENT_ENTRIES = 64;
export const MARKER_SEGMENT_SHIFT = 6;
export const MARKER_BITS = L1_ENTRIES / MARKER_SEGMENT_ENTRIES;

/** Frames in the 32-bit guest-physical address space. */
const FRAME_COUNT = 1 << (32 - PAGE_SHIFT);
const RAM_FIRST_FRAME = RAM_BASE >>> PAGE_SHIFT;

export class ShadowPageTable {
  /**
   * Entries indexed by guest-physical frame number (`address >>> 12`) over the whole 4 GiB space,
   * so the CPU needs no range check: frames outside RAM stay 0 and every access to them takes the
   * slow path, which dispatches to devices.
   */
  readonly entriesByFrame: Uint8Array;
  /** The RAM part of the same storage, indexed by RAM page number (0 = the page at RAM_BASE). */
  readonly entries: Uint8Array;
  readonly pageCount: number;
  readonly l1Count: number;
  /** The L2 directory: 1 where the L1 table exists (origin destroys them every epoch). */
  readonly l1Present: Uint8Array;
  /** Per-L1 segment marker bits: a segment may hold writable entries. */
  readonly markers: Uint8Array;

  constructor(pageCount: number) {
    assert(pageCount > 0 && pageCount % L1_ENTRIES === 0, 'RAM is a whole number of L1 tables');
    assert(RAM_FIRST_FRAME + pageCount <= FRAME_COUNT, 'RAM fits in the address space');
    this.pageCount = pageCount;
    this.l1Count = pageCount / L1_ENTRIES;
    this.entriesByFrame = new Uint8Array(FRAME_COUNT);
    this.entries = this.entriesByFrame.subarray(RAM_FIRST_FRAME, RAM_FIRST_FRAME + pageCount);
    this.l1Present = new Uint8Array(this.l1Count);
    this.markers = new Uint8Array(this.l1Count);
    this.entries.fill(PTE_GUEST_WRITABLE);
  }

  /** Sets every RAM entry's strategy bits to `bits`, keeping the others. */
  setAllStrategyBits(bits: number): void {
    const entries = this.entries;
    for (let page = 0; page < entries.length; page++) {
      entries[page] = (entries[page]! & ~PTE_STRATEGY_BITS) | bits;
    }
  }

  /** Destroys one L1 table: its entries lose every strategy bit (Xen's "blow away shadows"). */
  destroyL1(l1: number): void {
    const entries = this.entries;
    const end = (l1 + 1) * L1_ENTRIES;
    for (let page = l1 * L1_ENTRIES; page < end; page++) entries[page] = entries[page]! & ~PTE_STRATEGY_BITS;
    this.l1Present[l1] = 0;
    this.markers[l1] = 0;
  }

  setWatched(page: number, watched: boolean): void {
    this.entries[page] = watched ? this.entries[page]! | PTE_WATCHED : this.entries[page]! & ~PTE_WATCHED;
  }

  setGuestWritable(page: number, writable: boolean): void {
    const entries = this.entries;
    entries[page] = writable ? entries[page]! | PTE_GUEST_WRITABLE : entries[page]! & ~PTE_GUEST_WRITABLE;
  }
}

/** Who wrote: the guest CPU or a device's DMA into guest memory (virtual NIC receive). */
export type WriteSource = 'cpu' | 'device';

/**
 * What the MMU calls when its fast check refuses an access: a VM exit (seed 001, §2.2). The
 * dirty-tracking strategies (tracking/) implement it from above; the machine knows only this.
 *
 * Contract: after onReadFault the entry is PRESENT; after onWriteFault or onCleanWrite it is
 * PRESENT | WRITABLE | DIRTY (the store then completes).
 */
export interface ShadowFaultHandler {
  /** Takes over the whole table: sets every entry as the handler's epoch start wants it. */
  attach(table: ShadowPageTable): void;
  onReadFault(page: number): void;
  onWriteFault(page: number, source: WriteSource): void;
  onCleanWrite(page: number, source: WriteSource): void;
}

/**
 * No tracking: every entry is present, writable and dirty, so no access ever faults. The MMU of a
 * machine nobody tracks; the tracking layer's `none` strategy builds on it.
 */
export class MapEverything implements ShadowFaultHandler {
  protected table: ShadowPageTable | null = null;

  attach(table: ShadowPageTable): void {
    this.table = table;
    const entries = table.entries;
    for (let page = 0; page < entries.length; page++) {
      const entry = entries[page]!;
      entries[page] = (entry & ~PTE_STRATEGY_BITS) | PTE_PRESENT | ((entry & PTE_GUEST_WRITABLE) !== 0 ? PTE_WRITABLE | PTE_DIRTY : 0);
    }
  }

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
}
