import { Machine } from '@hbft/common/guest/machine.ts';
import { applyPageRecords, checkPageRecords } from '@hbft/common/checkpoint/pageCodec.ts';
import { StateFormatError } from '@hbft/common/errors.ts';

/** Why a checkpoint or full sync could not be applied (nothing of it was). */
export interface ApplyRefusal {
  code: string;
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

  constructor(memoryBytes: number) {
    this.memory = new SharedArrayBuffer(memoryBytes);
    this.ram = new Uint8Array(this.memory);
    this.pageCount = memoryBytes / 4096;
    this.machine = new Machine({ memoryBuffer: this.memory });
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

  /** A full synchronisation starts: RAM is rebuilt from zero; the old state is void. */
  beginFullSync(): void {
    this.syncing = true;
    this.stateBytes = null;
    this.appliedEpochValue = null;
    this.ram.fill(0);
  }

  /** Full-sync pages go straight into RAM (nothing consistent to protect yet). */
  applyFullSyncPart(records: Uint8Array): ApplyRefusal | null {
    if (!this.syncing) return { code: 'E_SYNC_ORDER', reason: 'full-sync pages outside a full synchronisation' };
    const check = checkPageRecords(records, this.pageCount);
    if (!check.ok) return { code: 'E_PAGE_RECORDS', reason: check.reason! };
    applyPageRecords(records, this.ram);
    return null;
  }

  /** The full synchronisation's pages are all here; the first checkpoint will make RAM consistent. */
  endFullSync(): void {
    this.syncing = false;
  }

  /** Applies a whole checkpoint, or nothing of it. */
  applyCheckpoint(epoch: number, state: Uint8Array, parts: Uint8Array[]): ApplyRefusal | null {
    if (this.syncing) return { code: 'E_SYNC_ORDER', reason: 'a checkpoint arrived before the full synchronisation ended' };
    for (const [index, records] of parts.entries()) {
      const check = checkPageRecords(records, this.pageCount);
      if (!check.ok) return { code: 'E_PAGE_RECORDS', reason: `part ${index}: ${check.reason}` };
    }
    try {
      // Validates all of the state before changing anything (Machine.setState).
      this.machine.setState(state);
    } catch (error) {
      if (error instanceof StateFormatError) return { code: 'E_STATE', reason: error.message };
      throw error;
    }
    for (const records of parts) applyPageRecords(records, this.ram);
    this.stateBytes = Uint8Array.from(state);
    this.appliedEpochValue = epoch;
    return null;
  }

  /** Hash of RAM plus state, for tests that compare with the primary. */
  stateHash(): string {
    return this.machine.stateHash();
  }
}
