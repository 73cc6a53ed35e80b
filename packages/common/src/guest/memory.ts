// Exempt from Biome's noNonNullAssertion (biome.json): guest RAM and its page table: every `x[i]!` indexes
// the page table or RAM with a page number or offset bounds-checked on entry, in range by construction, on
// the per-access and fault path.
import { assert, SettingError } from '../errors.ts';
import { formatBytes } from '../units.ts';
import { MEMORY_BYTES_MAX, MEMORY_BYTES_MIN, PAGE_BYTES, PAGE_SHIFT, RAM_BASE } from './addressMap.ts';
import {
  L1_ENTRIES,
  PTE_CODE,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_RESERVED,
  PTE_STORE_FAST_MASK,
  PTE_STORE_FAST_VALUE,
  PTE_WATCHED,
  PTE_WRITABLE,
  MapEverything,
  ShadowPageTable,
  type ShadowFaultHandler,
  type WriteSource,
} from './shadowPageTable.ts';

/** Called after every store to a watched page (tohost, ground-truth recorders). */
export type StoreObserver = (ramOffset: number, sizeBytes: number, source: WriteSource) => void;

/** The CPU's cache of code compiled from RAM (blockCompiler.ts), told when that code goes stale. */
export interface CodeCache {
  /** A write is about to change RAM page `page`, which holds compiled code (PTE_CODE). */
  onCodeWrite(page: number): void;
  /** RAM may have changed anywhere: drop everything. */
  onCodeInvalidateAll(): void;
}

/** Checks a guest memory size: 16 MiB to 2 GiB, a whole number of 2 MiB L1 ranges. */
export function validateMemoryBytes(bytes: number, setting = 'memory'): number {
  const granule = L1_ENTRIES * PAGE_BYTES;
  if (!Number.isSafeInteger(bytes) || bytes < MEMORY_BYTES_MIN || bytes > MEMORY_BYTES_MAX) {
    throw new SettingError(
      setting,
      `${formatBytes(bytes)} is out of range; guest memory must be from ${formatBytes(MEMORY_BYTES_MIN)} to ${formatBytes(MEMORY_BYTES_MAX)}`,
    );
  }
  if (bytes % granule !== 0) {
    throw new SettingError(setting, `${formatBytes(bytes)} is not a multiple of 2MiB`);
  }
  return bytes;
}

/**
 * Guest-physical RAM: one SharedArrayBuffer (so a worker thread can run the CPU over it while the
 * main thread reads pages at a pause), typed-array views of every width, and the shadow page
 * table consulted on each access.
 *
 * Every write into RAM goes through here or through the CPU's inlined fast path, which performs
 * exactly the check in `isStoreFast`; whenever that check fails the CPU calls `prepareStore`.
 * So dirty tracking sees each CPU store and each device DMA write alike, and so does the CPU's
 * compiled-code cache: a page holding compiled code has PTE_CODE, which fails the fast check. The
 * LR.W reservation works the same way: its page has PTE_RESERVED, so the first store to it from
 * any path (CPU store, AMO, SC.W, device DMA) reaches `prepareStore`, which clears it.
 *
 * Anything that changes RAM without this path (restoring a checkpoint into the buffer, filling
 * .bss) must call `invalidateCode()` before the CPU runs again.
 */
export class GuestMemory {
  readonly buffer: SharedArrayBuffer;
  readonly ramBytes: number;
  readonly pageCount: number;
  readonly u8: Uint8Array;
  readonly i8: Int8Array;
  readonly u16: Uint16Array;
  readonly i16: Int16Array;
  readonly i32: Int32Array;
  readonly table: ShadowPageTable;
  private faultHandlerInUse: ShadowFaultHandler;
  private observer: StoreObserver | null = null;
  private codeCache: CodeCache | null = null;
  /**
   * The RAM page of the hart's LR.W reservation, or -1. The reservation set is the whole page, which
   * the A extension allows ("an arbitrary subset of memory that subsumes the addressed word",
   * Unprivileged ISA v20191213 §8.2): any store to the page clears it, so an SC.W after one fails.
   */
  private reservedPage = -1;

  constructor(ramBytes: number, buffer?: SharedArrayBuffer) {
    validateMemoryBytes(ramBytes);
    assert(buffer === undefined || buffer.byteLength === ramBytes, 'shared buffer matches the RAM size');
    this.buffer = buffer ?? new SharedArrayBuffer(ramBytes);
    this.ramBytes = ramBytes;
    this.pageCount = ramBytes >>> PAGE_SHIFT;
    this.u8 = new Uint8Array(this.buffer);
    this.i8 = new Int8Array(this.buffer);
    this.u16 = new Uint16Array(this.buffer);
    this.i16 = new Int16Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.table = new ShadowPageTable(this.pageCount);
    this.faultHandlerInUse = new MapEverything();
    this.faultHandlerInUse.attach(this.table);
  }

  /** Installs the MMU's fault handler (a tracking strategy); it takes over the whole table. */
  setFaultHandler(handler: ShadowFaultHandler): void {
    this.faultHandlerInUse = handler;
    handler.attach(this.table);
  }

  /** Installs the observer called after stores to watched pages (one at a time). */
  setStoreObserver(observer: StoreObserver | null): void {
    this.observer = observer;
  }

  /** Installs the CPU's compiled-code cache (one at a time). */
  setCodeCache(cache: CodeCache | null): void {
    this.codeCache = cache;
  }

  /** Marks RAM page `page` as holding compiled code: every write to it now takes the slow path. */
  markCode(page: number): void {
    assert(this.codeCache !== null, 'a code cache is installed before code is marked');
    this.table.entries[page] = this.table.entries[page]! | PTE_CODE;
  }

  /**
   * RAM changed behind the write path: forgets every compiled block, and the LR.W reservation (an
   * SC.W may fail for any reason, §8.2; a restored state holds none).
   */
  invalidateCode(): void {
    this.clearReservation();
    const entries = this.table.entries;
    for (let page = 0; page < entries.length; page++) entries[page] = entries[page]! & ~PTE_CODE;
    this.codeCache?.onCodeInvalidateAll();
  }

  /** LR.W: the reservation set becomes RAM page `page` (replacing any earlier one). */
  reserve(page: number): void {
    this.clearReservation();
    this.reservedPage = page;
    this.table.entries[page] = this.table.entries[page]! | PTE_RESERVED;
  }

  /** SC.W: whether the reservation still covers RAM page `page`; the reservation ends either way. */
  takeReservation(page: number): boolean {
    const held = this.reservedPage === page;
    this.clearReservation();
    return held;
  }

  /** Whether a reservation is held (for tests). */
  get reservationHeld(): boolean {
    return this.reservedPage >= 0;
  }

  private clearReservation(): void {
    if (this.reservedPage < 0) return;
    this.table.entries[this.reservedPage] = this.table.entries[this.reservedPage]! & ~PTE_RESERVED;
    this.reservedPage = -1;
  }

  /** Offset into RAM of a guest-physical address, or -1 when the address is not RAM. */
  ramOffset(address: number): number {
    const offset = (address - RAM_BASE) >>> 0;
    return offset < this.ramBytes ? offset : -1;
  }

  /** The check the CPU inlines: may a store to this RAM page proceed without the slow path? */
  isStoreFast(page: number): boolean {
    return (this.table.entries[page]! & PTE_STORE_FAST_MASK) === PTE_STORE_FAST_VALUE;
  }

  /**
   * The slow path of a store to RAM page `page`: lets the tracker handle the fault (or the dirty
   * bit update) so that afterwards the entry allows the write. Call before writing.
   */
  prepareStore(page: number, source: WriteSource): void {
    const entries = this.table.entries;
    let entry = entries[page]!;
    if ((entry & PTE_RESERVED) !== 0) {
      // A store to the reservation set, from whichever path: the next SC.W fails (§8.2).
      this.clearReservation();
      entry = entries[page]!;
    }
    if ((entry & PTE_CODE) !== 0) {
      // Self-modifying code or DMA over code: the compiled blocks of this page go stale.
      entry &= ~PTE_CODE;
      entries[page] = entry;
      this.codeCache?.onCodeWrite(page);
    }
    if ((entry & PTE_WRITABLE) === 0) this.faultHandlerInUse.onWriteFault(page, source);
    else if ((entry & PTE_DIRTY) === 0) this.faultHandlerInUse.onCleanWrite(page, source);
    assert((entries[page]! & (PTE_PRESENT | PTE_WRITABLE | PTE_DIRTY)) === 7, 'tracker left the page writable');
  }

  /** After a store that took the slow path: tells the observer when the page is watched. */
  finishStore(page: number, ramOffset: number, sizeBytes: number, source: WriteSource): void {
    if ((this.table.entries[page]! & PTE_WATCHED) !== 0 && this.observer !== null) {
      this.observer(ramOffset, sizeBytes, source);
    }
  }

  /** The slow path of a load or fetch from RAM page `page`: a read fault when not present. */
  prepareLoad(page: number): void {
    if ((this.table.entries[page]! & PTE_PRESENT) === 0) this.faultHandlerInUse.onReadFault(page);
  }

  /** Device DMA into RAM (and image loading): tracked page by page like CPU stores. */
  writeBytes(ramOffset: number, bytes: Uint8Array, source: WriteSource = 'device'): void {
    assert(ramOffset >= 0 && ramOffset + bytes.length <= this.ramBytes, 'DMA stays inside RAM');
    let done = 0;
    while (done < bytes.length) {
      const offset = ramOffset + done;
      const page = offset >>> PAGE_SHIFT;
      const chunk = Math.min(bytes.length - done, PAGE_BYTES - (offset & (PAGE_BYTES - 1)));
      const fast = this.isStoreFast(page);
      if (!fast) this.prepareStore(page, source);
      this.u8.set(bytes.subarray(done, done + chunk), offset);
      if (!fast) this.finishStore(page, offset, chunk, source);
      done += chunk;
    }
  }

  /** Device DMA of one little-endian 32-bit word (aligned). */
  writeU32(ramOffset: number, value: number, source: WriteSource = 'device'): void {
    assert((ramOffset & 3) === 0 && ramOffset + 4 <= this.ramBytes, 'aligned word inside RAM');
    const page = ramOffset >>> PAGE_SHIFT;
    const fast = this.isStoreFast(page);
    if (!fast) this.prepareStore(page, source);
    this.i32[ramOffset >>> 2] = value;
    if (!fast) this.finishStore(page, ramOffset, 4, source);
  }

  /** Reads without tracking effects (host-side reads, like Domain0 mapping pages read-only). */
  readBytes(ramOffset: number, length: number): Uint8Array {
    assert(ramOffset >= 0 && ramOffset + length <= this.ramBytes, 'read stays inside RAM');
    return this.u8.subarray(ramOffset, ramOffset + length);
  }

  readU32(ramOffset: number): number {
    assert((ramOffset & 3) === 0 && ramOffset + 4 <= this.ramBytes, 'aligned word inside RAM');
    return this.i32[ramOffset >>> 2]! >>> 0;
  }
}
