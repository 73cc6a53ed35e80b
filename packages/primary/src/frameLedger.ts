import { assert } from '@hbft/common/errors.ts';

/** What the ledger did with a frame handed to it. */
export type LedgerOutcome = 'held' | 'dropped';

export interface FrameLedgerCounters {
  framesHeld: number;
  framesReleased: number;
  /** Beyond the ledger's bounds, or after it was fenced: the guest's TCP retransmits them. */
  framesDropped: number;
}

export interface FrameLedgerLimits {
  heldBytesMax: number;
  heldFramesMax: number;
}

/** A frame output commit held, and when the guest transmitted it (how long commit held it). */
export interface HeldFrame {
  frame: Uint8Array;
  heldAtMs: number;
}

interface EpochFrames {
  epoch: number;
  frames: HeldFrame[];
}

/**
 * Output commit (Remus's rule, per frame): the frames the guest transmits on its packet NIC in
 * epoch e are held in e's entry of the ledger until e is committed, then go out in the order the
 * guest sent them. This is the primary's only held output and its only per-epoch bookkeeping
 * besides the replicator's checkpoints in flight. A pure structure: the driver says when an epoch is committed (the replicator
 * decides that from every backup's acks, or releases at once when no node could take over), and
 * writes what commitThrough returns to the TAP.
 *
 * One entry per epoch, so that an epoch can also be closed early (commit on demand: end the epoch
 * now to release a reply sooner) without changing the ledger: whatever ends epochs, commit is
 * "every entry up to e". Bounded in bytes and frames; beyond the bounds a frame is dropped and
 * counted, never queued. A fenced ledger (this node learned it is no longer the primary) drops
 * what it holds and every frame after.
 */
export class FrameLedger {
  private readonly limits: FrameLedgerLimits;
  /** Ascending by epoch. */
  private readonly entries: EpochFrames[] = [];
  private heldBytesNow = 0;
  private heldFramesNow = 0;
  private committedEpoch: number;
  private isFenced = false;
  readonly counters: FrameLedgerCounters = { framesHeld: 0, framesReleased: 0, framesDropped: 0 };

  /** `committedThrough`: the last epoch already committed when the ledger starts (first epoch − 1). */
  constructor(limits: FrameLedgerLimits, committedThrough: number) {
    assert(limits.heldBytesMax > 0 && limits.heldFramesMax > 0, 'a frame ledger holds something');
    this.limits = limits;
    this.committedEpoch = committedThrough;
  }

  get heldBytes(): number {
    return this.heldBytesNow;
  }

  get heldFrames(): number {
    return this.heldFramesNow;
  }

  get fenced(): boolean {
    return this.isFenced;
  }

  /** The last committed epoch: frames of it and before have been handed out. */
  get committedThrough(): number {
    return this.committedEpoch;
  }

  /**
   * Whether a frame that needs no commit (no other node could take over with a later state: the
   * replicator releases without acks) may go out at once: only when nothing held waits before it.
   * Counted as released when it may; otherwise the caller holds it.
   */
  releaseAtOnce(): boolean {
    if (this.isFenced || this.heldFramesNow > 0) return false;
    this.counters.framesReleased++;
    return true;
  }

  /** Holds a frame of `epoch`, transmitted by the guest at `nowMs`, until that epoch is committed. */
  hold(epoch: number, frame: Uint8Array, nowMs: number): LedgerOutcome {
    assert(epoch > this.committedEpoch, `a frame of epoch ${epoch} arrives before its epoch is committed (${this.committedEpoch})`);
    if (
      this.isFenced ||
      this.heldBytesNow + frame.length > this.limits.heldBytesMax ||
      this.heldFramesNow + 1 > this.limits.heldFramesMax
    ) {
      this.counters.framesDropped++;
      return 'dropped';
    }
    let last = this.entries.at(-1);
    if (last === undefined || last.epoch < epoch) {
      last = { epoch, frames: [] };
      this.entries.push(last);
    }
    assert(last.epoch === epoch, `frames arrive in epoch order (epoch ${epoch} after ${last.epoch})`);
    last.frames.push({ frame, heldAtMs: nowMs });
    this.heldBytesNow += frame.length;
    this.heldFramesNow++;
    this.counters.framesHeld++;
    return 'held';
  }

  /** Epoch `epoch` and every one before it are committed: their frames, in order, to transmit now. */
  commitThrough(epoch: number): HeldFrame[] {
    if (epoch <= this.committedEpoch) return [];
    this.committedEpoch = epoch;
    const released: HeldFrame[] = [];
    while (this.entries.length > 0 && (this.entries[0]?.epoch ?? Infinity) <= epoch) {
      const entry = this.entries.shift();
      if (entry === undefined) break;
      for (const held of entry.frames) {
        released.push(held);
        this.heldBytesNow -= held.frame.length;
      }
      this.heldFramesNow -= entry.frames.length;
    }
    this.counters.framesReleased += released.length;
    return released;
  }

  /** This node is no longer the primary: nothing it holds or gets from now on may leave it. */
  fence(): number {
    const dropped = this.heldFramesNow;
    this.isFenced = true;
    this.entries.length = 0;
    this.heldBytesNow = 0;
    this.heldFramesNow = 0;
    this.counters.framesDropped += dropped;
    return dropped;
  }
}
