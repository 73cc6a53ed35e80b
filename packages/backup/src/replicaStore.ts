import { PAGE_BYTES } from '@hbft/common/guest/addressMap.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import { applyPageRecords, checkPageRecords } from '@hbft/common/checkpoint/pageCodec.ts';
import { StateFormatError } from '@hbft/common/errors.ts';
import { ProtocolErrorCode } from '@hbft/common/protocol/codes.ts';

/** Why a checkpoint or full sync could not be applied (nothing of it was). */
export interface ApplyRefusal {
  code: ProtocolErrorCode;
  reason: string;
}

/**
 * The backup's copy of the guest: RAM (shared, so a worker can run it after a promotion) and the
 * CPU and device state of the last checkpoint applied. A Machine over the same RAM, never run,
 * validates and holds that state. Applying is all or nothing: every record and the state are
 * checked first, and only then is anything written.
 */
export class ReplicaStore {
  readonly memory: SharedArrayBuffer;
  readonly ram: Uint8Array;
  readonly pageCount: number;
  private readonly machine: Machine;
  private stateBytes: Uint8Array | null = null;
  private appliedEpochValue: number | null = null;
  /** Whether RAM is being rewritten by a full synchronisation (no consistent state then). */
  private syncing = false;
  /** Pages this replica has ever written (RAM starts zero): only these can need zeroing. */
  private readonly written: Uint8Array;
  /** Pages the current full synchronisation has sent. */
  private readonly syncSent: Uint8Array;

  constructor(memoryBytes: number) {
    this.memory = new SharedArrayBuffer(memoryBytes);
    this.ram = new Uint8Array(this.memory);
    this.pageCount = memoryBytes / PAGE_BYTES;
    this.machine = new Machine({ memoryBuffer: this.memory });
    this.written = new Uint8Array(this.pageCount);
    this.syncSent = new Uint8Array(this.pageCount);
  }

  /** Applies checked records, remembering which pages were written. */
  private apply(records: Uint8Array, sync: boolean): void {
    applyPageRecords(records, this.ram, (page) => {
      this.written[page] = 1;
      if (sync) this.syncSent[page] = 1;
    });
  }

  /** True when RAM plus state form a checkpoint the guest can resume from. */
  get consistent(): boolean {
    return this.stateBytes !== null && !this.syncing;
  }

  get appliedEpoch(): number | null {
    return this.consistent ? this.appliedEpochValue : null;
  }

  /** The state of the last applied checkpoint (for a promotion). */
  get state(): Uint8Array | null {
    return this.consistent ? this.stateBytes : null;
  }

  /**
   * A full synchronisation starts: RAM is rebuilt; the old state is void. Pages the primary does
   * not send are zero there, so at the end the pages this replica wrote before and did not get
   * again are zeroed (a fresh replica has none: nothing to clear, no stall).
   */
  beginFullSync(): void {
    this.syncing = true;
    this.stateBytes = null;
    this.appliedEpochValue = null;
    this.syncSent.fill(0);
  }

  /** Full-sync pages go straight into RAM (nothing consistent to protect yet). */
  applyFullSyncPart(records: Uint8Array): ApplyRefusal | null {
    if (!this.syncing) return { code: ProtocolErrorCode.SYNC_ORDER, reason: 'full-sync pages outside a full synchronisation' };
    const check = checkPageRecords(records, this.pageCount);
    if (!check.ok) return { code: ProtocolErrorCode.PAGE_RECORDS, reason: check.reason };
    this.apply(records, true);
    return null;
  }

  /** The full synchronisation's pages are all here; the first checkpoint will make RAM consistent. */
  endFullSync(): void {
    for (let page = 0; page < this.pageCount; page++) {
      if (this.written[page] === 1 && this.syncSent[page] === 0) {
        this.ram.fill(0, page * PAGE_BYTES, (page + 1) * PAGE_BYTES);
        this.written[page] = 0;
      }
    }
    this.syncing = false;
  }

  /** Applies a whole checkpoint, or nothing of it. */
  applyCheckpoint(epoch: number, state: Uint8Array, parts: Uint8Array[]): ApplyRefusal | null {
    if (this.syncing) return { code: ProtocolErrorCode.SYNC_ORDER, reason: 'a checkpoint arrived before the full synchronisation ended' };
    for (const [index, records] of parts.entries()) {
      const check = checkPageRecords(records, this.pageCount);
      if (!check.ok) return { code: ProtocolErrorCode.PAGE_RECORDS, reason: `part ${index}: ${check.reason}` };
    }
    try {
      // Validates all of the state before changing anything (Machine.setState).
      this.machine.setState(state);
    } catch (error) {
      // The state came from the network: whatever setState throws on it is a refusal, not a crash
      // (a malformed blob may fail deeper than its format checks, a RangeError from a DataView, say).
      // Nothing was applied: RAM is written below, and the state kept here only after that.
      const reason = error instanceof StateFormatError ? error.message : `malformed state: ${(error as Error).message}`;
      return { code: ProtocolErrorCode.STATE, reason };
    }
    for (const records of parts) this.apply(records, false);
    this.stateBytes = Uint8Array.from(state);
    this.appliedEpochValue = epoch;
    return null;
  }

  /** Hash of RAM plus state, for tests that compare with the primary. */
  stateHash(): string {
    return this.machine.stateHash();
  }
}
