// Exempt from Biome's noNonNullAssertion (biome.json): checkpoint capture: every `x[i]!` indexes the dirty-
// page list within its length by construction, on the per-page copy path.
import { PAGE_BYTES, PAGE_SHIFT } from '../guest/addressMap.ts';
import type { Machine } from '../guest/machine.ts';
import type { MapperStats, PageMapper } from '../tracking/mapper.ts';
import type { DirtyTracker, EpochTrackingStats } from '../tracking/tracker.ts';
import type { StagingAllocation, StagingRing } from './staging.ts';

/** One incremental checkpoint as captured at the pause: pages in staging, state alongside. */
export interface CapturedCheckpoint {
  epoch: number;
  /** RAM page numbers, ascending; page i's bytes are staging slot allocation.start + i. */
  pages: Uint32Array;
  allocation: StagingAllocation;
  /** CPU and device state (Machine.getState). */
  state: Uint8Array;
  /** Instructions retired when the epoch ended. */
  instret: number;
  tracking: EpochTrackingStats;
  mapping: MapperStats;
  /** How long the guest was stopped for this capture, from the request seen to the resume. */
  pauseNs: number;
  /** Part of the pause spent waiting for staging space (the backup falling behind). */
  stallNs: number;
  copyNs: number;
}

/**
 * Takes incremental checkpoints at epoch boundaries (design.md §3, Remus-style): with the guest
 * stopped, ask the tracker for the epoch's dirty pages, copy each through the mapper into staging,
 * save CPU and device state, and re-arm tracking for the next epoch. The guest resumes as soon as
 * this returns; sending happens elsewhere, in the background.
 */
export class CheckpointCapturer {
  private readonly machine: Machine;
  private readonly tracker: DirtyTracker;
  private readonly mapper: PageMapper;
  private readonly staging: StagingRing;

  /** `tracker` is the fault handler installed in the machine's MMU (tracking/strategies.ts trackMemory). */
  constructor(machine: Machine, tracker: DirtyTracker, mapper: PageMapper, staging: StagingRing) {
    this.machine = machine;
    this.tracker = tracker;
    this.mapper = mapper;
    this.staging = staging;
  }

  capture(epoch: number): CapturedCheckpoint {
    const started = performance.now();
    const result = this.tracker.endEpoch();
    const pages = result.dirtyPages;
    const stallStarted = performance.now();
    const allocation = this.staging.allocateBlocking(pages.length);
    const stallNs = (performance.now() - stallStarted) * 1e6;
    const copyStarted = performance.now();
    this.mapper.resetStats();
    const ram = this.machine.memory.u8;
    const staged = this.staging.bytes;
    // Copy runs of consecutive pages with one call each (no per-page allocation for long runs).
    let slotOffset = allocation.start * PAGE_BYTES;
    for (let i = 0; i < pages.length; ) {
      let end = i + 1;
      while (end < pages.length && pages[end] === pages[end - 1]! + 1) end++;
      for (let j = i; j < end; j++) this.mapper.map(pages[j]!);
      const from = pages[i]! << PAGE_SHIFT;
      const length = (end - i) * PAGE_BYTES;
      staged.set(ram.subarray(from, from + length), slotOffset);
      slotOffset += length;
      i = end;
    }
    this.mapper.finishCheckpoint();
    const copyNs = (performance.now() - copyStarted) * 1e6;
    const state = this.machine.getState();
    this.tracker.beginEpoch();
    return {
      epoch,
      // The tracker reuses its arrays; the checkpoint keeps its own copy of the page list.
      pages: Uint32Array.from(pages),
      allocation,
      state,
      instret: this.machine.cpu.instret,
      tracking: result.stats,
      mapping: this.mapper.stats(),
      pauseNs: (performance.now() - started) * 1e6,
      stallNs,
      copyNs,
    };
  }
}
