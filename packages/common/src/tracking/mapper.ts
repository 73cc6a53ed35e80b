// Exempt from Biome's noNonNullAssertion (biome.json): the page mapper: every `x[i]!` indexes a slot or range
// array within its length by construction, on the per-page map path.
import { SettingError } from '../errors.ts';
import { BusyWaitCost } from './costModel.ts';
import { L1_SHIFT } from '../guest/shadowPageTable.ts';

export const MAPPERS = ['superpage', 'per-page'] as const;
export type MapperName = (typeof MAPPERS)[number];
export const MAP_SLOTS_DEFAULT = 32;

export interface MapperStats {
  /** Dirty pages reached through the mapper. */
  accesses: number;
  /** Accesses whose range was already mapped. */
  hits: number;
  /** Map operations performed (each implies an unmap, now or at eviction). */
  mapOperations: number;
  hitRatio: number;
  mapCostChargedNs: number;
}

/**
 * How the checkpoint copier reaches guest pages (seed 001, §4.2). In Xen, Domain0 must map a
 * page of the guest into its own address space before copying it; the paper replaces per-page
 * map/unmap with a few 2 MiB "superpage" slots kept under LRU. Here the memory is shared, so a
 * map is a bookkeeping step charged a modelled cost (`--map-cost-ns`), and the counts are exact.
 */
export interface PageMapper {
  readonly name: MapperName;
  /** Makes `page` reachable for copying. */
  map(page: number): void;
  /** Ends the copy of one checkpoint (the per-page mapper unmaps everything here). */
  finishCheckpoint(): void;
  stats(): MapperStats;
  resetStats(): void;
}

abstract class CountingMapper {
  protected accesses = 0;
  protected hits = 0;
  protected mapOperations = 0;
  protected readonly cost: BusyWaitCost;

  constructor(mapCostNs: number) {
    this.cost = new BusyWaitCost(mapCostNs, 'map-cost-ns');
  }

  stats(): MapperStats {
    return {
      accesses: this.accesses,
      hits: this.hits,
      mapOperations: this.mapOperations,
      hitRatio: this.accesses > 0 ? this.hits / this.accesses : NaN,
      mapCostChargedNs: this.cost.chargedNs,
    };
  }

  resetStats(): void {
    this.accesses = this.hits = this.mapOperations = 0;
    this.cost.chargedNs = 0;
  }
}

/** Software superpage: `slots` mappings of one L1 range (2 MiB) each, least recently used replaced. */
export class SuperpageMapper extends CountingMapper implements PageMapper {
  readonly name = 'superpage' as const;
  private readonly slotRange: Int32Array;
  private readonly slotLastUse: Float64Array;
  private readonly slotOfRange: Int32Array;
  private clock = 0;

  constructor(slots: number, rangeCount: number, mapCostNs = 0) {
    super(mapCostNs);
    if (!Number.isInteger(slots) || slots < 1) throw new SettingError('map-slots', `must be a whole number ≥ 1, got ${slots}`);
    this.slotRange = new Int32Array(slots).fill(-1);
    this.slotLastUse = new Float64Array(slots);
    this.slotOfRange = new Int32Array(rangeCount).fill(-1);
  }

  map(page: number): void {
    this.accesses++;
    const range = page >>> L1_SHIFT;
    const slot = this.slotOfRange[range]!;
    if (slot >= 0) {
      this.hits++;
      this.slotLastUse[slot] = ++this.clock;
      return;
    }
    // Install the range in the least recently used slot (an empty slot is oldest of all).
    let victim = 0;
    for (let s = 1; s < this.slotRange.length; s++) if (this.slotLastUse[s]! < this.slotLastUse[victim]!) victim = s;
    const evicted = this.slotRange[victim]!;
    if (evicted >= 0) this.slotOfRange[evicted] = -1;
    this.slotRange[victim] = range;
    this.slotOfRange[range] = victim;
    this.slotLastUse[victim] = ++this.clock;
    this.mapOperations++;
    this.cost.charge();
  }

  finishCheckpoint(): void {}
}

/** The unoptimised copier: maps and unmaps every dirty page in every checkpoint. */
export class PerPageMapper extends CountingMapper implements PageMapper {
  readonly name = 'per-page' as const;

  map(_page: number): void {
    this.accesses++;
    this.mapOperations++;
    this.cost.charge();
  }

  finishCheckpoint(): void {}
}

export interface MapperOptions {
  mapper?: string;
  mapSlots?: number;
  mapCostNs?: number;
}

export function createMapper(options: MapperOptions, rangeCount: number): PageMapper {
  const name = options.mapper ?? 'superpage';
  if (name === 'superpage') return new SuperpageMapper(options.mapSlots ?? MAP_SLOTS_DEFAULT, rangeCount, options.mapCostNs ?? 0);
  if (name === 'per-page') return new PerPageMapper(options.mapCostNs ?? 0);
  throw new SettingError('mapper', `unknown mapper "${name}"; accepted: ${MAPPERS.join(', ')}`);
}
