import { PAGE_BYTES } from '../guest/addressMap.ts';
import { assert } from '../errors.ts';

const CONTROL_BYTES = 64;
/** Pages in use (allocated and not yet released): the only word both threads modify. */
const USED = 0;
/** Bumped on every release, so a producer waiting for space can sleep on it. */
const RELEASES = 1;

/** Where a checkpoint's pages sit in the ring; released as a whole, in allocation order. */
export interface StagingAllocation {
  /** First page slot. */
  start: number;
  count: number;
  /** Slots skipped at the end of the ring to keep this allocation contiguous. */
  skipped: number;
}

/**
 * The staging buffer between the guest's thread and Domain0 (the main thread): a ring of page
 * slots in a SharedArrayBuffer. At the epoch boundary the paused guest's thread copies the dirty
 * pages into one contiguous allocation; the main thread sends them from there and releases the
 * allocation when the socket has taken the bytes. Allocations are released in the order they were
 * made, so a single shared `used` counter is enough.
 *
 * Capacity is at least the guest's memory, so any one checkpoint fits once the ring has drained:
 * the primary's memory for checkpoints in flight is bounded by it.
 */
export class StagingRing {
  readonly buffer: SharedArrayBuffer;
  readonly capacityPages: number;
  readonly bytes: Uint8Array;
  private readonly control: Int32Array;
  /** Producer-private: the next free slot. */
  private head = 0;

  constructor(capacityPages: number, buffer?: SharedArrayBuffer) {
    assert(capacityPages > 0, 'staging holds at least one page');
    this.capacityPages = capacityPages;
    this.buffer = buffer ?? new SharedArrayBuffer(CONTROL_BYTES + capacityPages * PAGE_BYTES);
    assert(this.buffer.byteLength === CONTROL_BYTES + capacityPages * PAGE_BYTES, 'staging buffer size matches');
    this.control = new Int32Array(this.buffer, 0, CONTROL_BYTES / 4);
    this.bytes = new Uint8Array(this.buffer, CONTROL_BYTES);
  }

  /** Bytes needed for a ring of `capacityPages` (to size the SharedArrayBuffer). */
  static byteLengthFor(capacityPages: number): number {
    return CONTROL_BYTES + capacityPages * PAGE_BYTES;
  }

  get usedPages(): number {
    return Atomics.load(this.control, USED);
  }

  /** Producer: a contiguous run of `count` slots, or null when the ring is too full now. */
  tryAllocate(count: number): StagingAllocation | null {
    assert(count <= this.capacityPages, 'a checkpoint fits in staging');
    const used = Atomics.load(this.control, USED);
    if (used === 0) this.head = 0; // drained: start again at the front
    const skipped = this.head + count > this.capacityPages ? this.capacityPages - this.head : 0;
    if (this.capacityPages - used < skipped + count) return null;
    const start = skipped > 0 ? 0 : this.head;
    this.head = start + count;
    Atomics.add(this.control, USED, skipped + count);
    return { start, count, skipped };
  }

  /** Producer: waits (blocking the guest's thread) until `count` slots can be allocated. */
  allocateBlocking(count: number, timeoutMs = 10): StagingAllocation {
    for (;;) {
      const allocation = this.tryAllocate(count);
      if (allocation !== null) return allocation;
      Atomics.wait(this.control, RELEASES, Atomics.load(this.control, RELEASES), timeoutMs);
    }
  }

  /** Consumer: gives the allocation's slots back. */
  release(allocation: StagingAllocation): void {
    Atomics.sub(this.control, USED, allocation.count + allocation.skipped);
    assert(Atomics.load(this.control, USED) >= 0, 'staging releases match allocations');
    Atomics.add(this.control, RELEASES, 1);
    Atomics.notify(this.control, RELEASES);
  }

  /** The bytes of slot `slot`. */
  page(slot: number): Uint8Array {
    return this.bytes.subarray(slot * PAGE_BYTES, (slot + 1) * PAGE_BYTES);
  }

  /** The bytes of a whole allocation. */
  region(allocation: StagingAllocation): Uint8Array {
    return this.bytes.subarray(allocation.start * PAGE_BYTES, (allocation.start + allocation.count) * PAGE_BYTES);
  }
}
