import type { ShadowFaultHandler } from '../guest/shadowPageTable.ts';

export const TRACKING_STRATEGIES = ['none', 'origin', 'rfr', 'wfp', 'pml'] as const;
export type TrackingStrategyName = (typeof TRACKING_STRATEGIES)[number];

/** What one epoch of tracking saw, as the paper measures it (seed 001, §5.3.2). */
export interface EpochTrackingStats {
  readFaults: number;
  writeFaults: number;
  /** PML: exits caused by a full log. */
  logFullExits: number;
  /** Exits in all: read faults + write faults + log-full exits. */
  exits: number;
  /** Pages granted write permission by prediction. */
  pagesPredicted: number;
  /** Predicted pages that were then written (true predictions). */
  truePredictions: number;
  /** Predicted pages never written: dropped from the checkpoint. */
  falseDirty: number;
  /** Shadow entries examined at the epoch boundary. */
  entriesScanned: number;
  dirtyPages: number;
  /** truePredictions / dirtyPages (NaN without dirty pages). */
  recall: number;
  /** truePredictions / pagesPredicted (NaN without predictions). */
  precision: number;
  /** Time spent scanning and resetting the table at the boundary. */
  scanNs: number;
  /** Time charged to exits by the cost model during the epoch. */
  exitCostChargedNs: number;
}

export interface EpochResult {
  /** Pages written during the epoch, ascending RAM page numbers; valid until the next endEpoch. */
  dirtyPages: Uint32Array;
  /** Pages granted by prediction and never written (not in dirtyPages); for checking and stats. */
  falseDirtyPages: Uint32Array;
  stats: EpochTrackingStats;
}

/**
 * A dirty-page tracking strategy: the MMU's fault handler (guest/shadowPageTable.ts) plus the
 * epoch API. The checkpointer calls endEpoch() at the pause and then beginEpoch() before the guest
 * resumes; endEpoch() returns every page written since the last beginEpoch().
 */
export interface DirtyTracker extends ShadowFaultHandler {
  readonly name: TrackingStrategyName;
  /** True when every page counts as dirty (no tracking). */
  readonly tracksNothing: boolean;
  beginEpoch(): void;
  endEpoch(): EpochResult;
}

export function emptyStats(): EpochTrackingStats {
  return {
    readFaults: 0,
    writeFaults: 0,
    logFullExits: 0,
    exits: 0,
    pagesPredicted: 0,
    truePredictions: 0,
    falseDirty: 0,
    entriesScanned: 0,
    dirtyPages: 0,
    recall: NaN,
    precision: NaN,
    scanNs: 0,
    exitCostChargedNs: 0,
  };
}
