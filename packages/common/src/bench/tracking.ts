import { cpus } from 'node:os';
import type { GuestName } from '../guest/images.ts';
import { CheckpointCapturer } from '../checkpoint/capture.ts';
import { StagingRing } from '../checkpoint/staging.ts';
import { createMapper, type MapperName } from '../tracking/mapper.ts';
import { createTracker } from '../tracking/strategies.ts';
import type { EpochTrackingStats, TrackingStrategyName } from '../tracking/tracker.ts';
import { createBenchGuest, type BenchGuest } from './guestLoad.ts';

/**
 * The tracking benchmark (issue 3): reproduces the paper's measurements (seed 001, §5.3–5.5) on
 * hbft's own workloads. Every configuration starts from the same warmed-up snapshot of its
 * workload, epochs are cut on wall time, the boundary work is inside the measured time, and
 * configurations are run round-robin so that each ratio compares runs made side by side.
 */
export interface TrackingBenchOptions {
  workloads: GuestName[];
  strategies: TrackingStrategyName[];
  exitCostsNs: number[];
  epochMs: number;
  /** Measured wall time per configuration and round. */
  measureMs: number;
  /** Instructions run before the snapshot, to get past each workload's initialisation. */
  warmupInstructions: number;
  /**
   * Instructions run with the strategy attached before measuring, so that shadow tables and
   * Histase's history are built as in a long-running guest (the paper measures those).
   */
  trackerWarmupInstructions: number;
  rounds: number;
  memoryBytes: number;
  /** Epoch lengths for the Fig. 13 sweep (on jbb); empty to skip. */
  sweepEpochsMs: number[];
  /** Cost of one map operation in the mapping section (the paper's Domain0 map hypercall). */
  mapCostNs: number;
  mapSlots: number;
  progress: (line: string) => void;
}

export const TRACKING_BENCH_DEFAULTS: TrackingBenchOptions = {
  workloads: ['cfp', 'cint', 'jbb', 'web', 'kv'],
  strategies: ['none', 'origin', 'rfr', 'wfp', 'pml'],
  exitCostsNs: [1500, 0],
  epochMs: 20,
  measureMs: 600,
  warmupInstructions: 150_000_000,
  trackerWarmupInstructions: 120_000_000,
  rounds: 2,
  memoryBytes: 128 * 1024 * 1024,
  sweepEpochsMs: [20, 50, 100, 200],
  mapCostNs: 1500,
  mapSlots: 32,
  progress: () => {},
};

interface Measurement {
  instructions: number;
  requests: number;
  wallMs: number;
  epochs: number;
  totals: EpochTotals;
}

interface EpochTotals {
  readFaults: number;
  writeFaults: number;
  exits: number;
  pagesPredicted: number;
  truePredictions: number;
  falseDirty: number;
  dirtyPages: number;
  entriesScanned: number;
  scanNs: number;
  pauseNs: number;
  copyNs: number;
  mapAccesses: number;
  mapHits: number;
  mapOperations: number;
}

export interface TrackingRow {
  workload: GuestName;
  strategy: TrackingStrategyName;
  exitCostNs: number;
  epochMs: number;
  mips: number;
  /** kv only: requests per second. */
  requestsPerSecond: number | null;
  /** Throughput relative to `none` in the same round (median over rounds). */
  normalized: number;
  epochs: number;
  readFaultsPerEpoch: number;
  writeFaultsPerEpoch: number;
  exitsPerEpoch: number;
  dirtyPagesPerEpoch: number;
  falseDirtyPerEpoch: number;
  predictedPerEpoch: number;
  recall: number | null;
  precision: number | null;
  entriesScannedPerEpoch: number;
  scanUsPerEpoch: number;
}

export interface MappingRow {
  workload: GuestName;
  strategy: TrackingStrategyName;
  mapper: MapperName;
  normalized: number;
  mips: number;
  dirtyPagesPerEpoch: number;
  hitRatio: number | null;
  mapOperationsPerEpoch: number;
  pauseUsPerEpoch: number;
  copyUsPerEpoch: number;
  scanShareOfPause: number | null;
}

export interface SweepRow {
  workload: GuestName;
  strategy: TrackingStrategyName;
  epochMs: number;
  normalized: number;
}

export interface TrackingBenchReport {
  machine: { cpus: number; model: string; node: string };
  options: Omit<TrackingBenchOptions, 'progress'>;
  tracking: TrackingRow[];
  mapping: MappingRow[];
  sweep: SweepRow[];
}

interface Snapshot {
  ram: Uint8Array;
  state: Uint8Array;
}

function emptyTotals(): EpochTotals {
  return {
    readFaults: 0, writeFaults: 0, exits: 0, pagesPredicted: 0, truePredictions: 0, falseDirty: 0, dirtyPages: 0,
    entriesScanned: 0, scanNs: 0, pauseNs: 0, copyNs: 0, mapAccesses: 0, mapHits: 0, mapOperations: 0,
  };
}

function addTracking(totals: EpochTotals, stats: EpochTrackingStats): void {
  totals.readFaults += stats.readFaults;
  totals.writeFaults += stats.writeFaults;
  totals.exits += stats.exits;
  totals.pagesPredicted += stats.pagesPredicted;
  totals.truePredictions += stats.truePredictions;
  totals.falseDirty += stats.falseDirty;
  totals.dirtyPages += stats.dirtyPages;
  totals.entriesScanned += stats.entriesScanned;
  totals.scanNs += stats.scanNs;
}

const SLICE_INSTRUCTIONS = 20_000;

/** A workload prepared once: its machine, and a snapshot after warm-up to restart every run from. */
class PreparedWorkload {
  readonly guest: BenchGuest;
  private snapshot: Snapshot | null = null;

  constructor(
    readonly name: GuestName,
    memoryBytes: number,
    private readonly trackerWarmupInstructions: number,
  ) {
    this.guest = createBenchGuest(name, memoryBytes);
  }

  warmUp(instructions: number): void {
    const machine = this.guest.machine;
    while (machine.cpu.instret < instructions && !machine.halted) {
      this.guest.pump();
      machine.run(SLICE_INSTRUCTIONS);
    }
    if (machine.halted) throw new Error(`${this.name} ended during warm-up: ${JSON.stringify(machine.exit)}`);
    this.quiesce();
    this.snapshot = { ram: machine.memory.u8.slice(), state: machine.getState() };
  }

  /** kv: let the server answer everything outstanding, so a snapshot holds no half-done work. */
  private quiesce(): void {
    if (this.name !== 'kv') return;
    const machine = this.guest.machine;
    for (let i = 0; i < 10_000; i++) if (machine.run(SLICE_INSTRUCTIONS).stop !== 0) break;
  }

  private staging: StagingRing | null = null;

  private stagingRing(): StagingRing {
    this.staging ??= new StagingRing(this.guest.machine.memory.pageCount);
    return this.staging;
  }

  restore(): void {
    const snapshot = this.snapshot!;
    const machine = this.guest.machine;
    machine.memory.u8.set(snapshot.ram);
    machine.setState(snapshot.state);
    this.guest.reset();
  }

  measure(strategy: TrackingStrategyName, exitCostNs: number, epochMs: number, durationMs: number, copy?: { mapper: MapperName; mapCostNs: number; mapSlots: number }): Measurement {
    this.restore();
    const machine = this.guest.machine;
    machine.memory.setTracker(createTracker(strategy, { exitCostNs }));
    machine.memory.tracker.beginEpoch();
    const tracked = strategy !== 'none';
    const staging = copy && tracked ? this.stagingRing() : null;
    const capturer = copy && staging
      ? new CheckpointCapturer(
          machine,
          createMapper({ mapper: copy.mapper, mapCostNs: copy.mapCostNs, mapSlots: copy.mapSlots }, machine.memory.table.l1Count),
          staging,
        )
      : null;
    // Bounded in time as well, in case a workload goes idle before the count is reached.
    this.runEpochs(capturer, staging, tracked, epochMs, this.guest.machine.cpu.instret + this.trackerWarmupInstructions, performance.now() + 20_000, emptyTotals());
    const totals = emptyTotals();
    const startInstret = machine.cpu.instret;
    const startRequests = this.guest.completedRequests();
    const start = performance.now();
    const epochs = this.runEpochs(capturer, staging, tracked, epochMs, Infinity, start + durationMs, totals);
    const now = performance.now();
    if (machine.halted) throw new Error(`${this.name} ended during measurement: ${JSON.stringify(machine.exit)}`);
    return {
      instructions: machine.cpu.instret - startInstret,
      requests: this.guest.completedRequests() - startRequests,
      wallMs: now - start,
      epochs,
      totals,
    };
  }

  /** Runs epochs until the instruction count or the deadline is reached; returns how many. */
  private runEpochs(
    capturer: CheckpointCapturer | null,
    staging: StagingRing | null,
    tracked: boolean,
    epochMs: number,
    untilInstret: number,
    deadline: number,
    totals: EpochTotals,
  ): number {
    const machine = this.guest.machine;
    let epochs = 0;
    let now = performance.now();
    while (now < deadline && machine.cpu.instret < untilInstret && !machine.halted) {
      const epochEnd = Math.min(deadline, now + epochMs);
      while (now < epochEnd && machine.cpu.instret < untilInstret && !machine.halted) {
        this.guest.pump();
        machine.run(SLICE_INSTRUCTIONS);
        now = performance.now();
      }
      if (tracked) {
        const pauseStart = performance.now();
        if (capturer) {
          const checkpoint = capturer.capture(epochs);
          staging!.release(checkpoint.allocation);
          addTracking(totals, checkpoint.tracking);
          totals.copyNs += checkpoint.copyNs;
          totals.mapAccesses += checkpoint.mapping.accesses;
          totals.mapHits += checkpoint.mapping.hits;
          totals.mapOperations += checkpoint.mapping.mapOperations;
        } else {
          addTracking(totals, machine.memory.tracker.endEpoch().stats);
          machine.memory.tracker.beginEpoch();
        }
        totals.pauseNs += (performance.now() - pauseStart) * 1e6;
      }
      epochs++;
      now = performance.now();
    }
    return epochs;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Throughput of a measurement: requests/s for kv (what its clients see), else instructions/s. */
function throughput(workload: GuestName, m: Measurement): number {
  return workload === 'kv' ? m.requests / m.wallMs : m.instructions / m.wallMs;
}

function ratio(numerator: number, denominator: number): number | null {
  return denominator > 0 ? numerator / denominator : null;
}

export function runTrackingBench(options: TrackingBenchOptions): TrackingBenchReport {
  const report: TrackingBenchReport = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
    options: { ...options, progress: undefined } as unknown as TrackingBenchReport['options'],
    tracking: [],
    mapping: [],
    sweep: [],
  };
  delete (report.options as { progress?: unknown }).progress;
  const copy = { mapCostNs: options.mapCostNs, mapSlots: options.mapSlots };
  for (const workload of options.workloads) {
    options.progress(`${workload}: warming up (${(options.warmupInstructions / 1e6).toFixed(0)}M instructions)`);
    const prepared = new PreparedWorkload(workload, options.memoryBytes, options.trackerWarmupInstructions);
    prepared.warmUp(options.warmupInstructions);

    // Tracking only (Fig. 10–12): the boundary scans and re-arms the tables; nothing is copied.
    for (const exitCostNs of options.exitCostsNs) {
      const perStrategy = new Map<TrackingStrategyName, Measurement[]>();
      const normalized = new Map<TrackingStrategyName, number[]>();
      for (let round = 0; round < options.rounds; round++) {
        const order = rotate(options.strategies, round);
        const results = new Map<TrackingStrategyName, Measurement>();
        for (const strategy of order) {
          options.progress(`${workload}: ${strategy} exit cost ${exitCostNs} ns, round ${round + 1}/${options.rounds}`);
          results.set(strategy, prepared.measure(strategy, exitCostNs, options.epochMs, options.measureMs));
        }
        const native = throughput(workload, results.get('none') ?? results.values().next().value!);
        for (const [strategy, m] of results) {
          perStrategy.set(strategy, [...(perStrategy.get(strategy) ?? []), m]);
          normalized.set(strategy, [...(normalized.get(strategy) ?? []), throughput(workload, m) / native]);
        }
      }
      for (const strategy of options.strategies) {
        const runs = perStrategy.get(strategy)!;
        const epochs = runs.reduce((s, m) => s + m.epochs, 0);
        const sum = (pick: (t: EpochTotals) => number) => runs.reduce((s, m) => s + pick(m.totals), 0);
        const wallMs = runs.reduce((s, m) => s + m.wallMs, 0);
        const tracked = strategy !== 'none';
        report.tracking.push({
          workload,
          strategy,
          exitCostNs,
          epochMs: options.epochMs,
          mips: runs.reduce((s, m) => s + m.instructions, 0) / wallMs / 1000,
          requestsPerSecond: workload === 'kv' ? (runs.reduce((s, m) => s + m.requests, 0) / wallMs) * 1000 : null,
          normalized: median(normalized.get(strategy)!),
          epochs,
          readFaultsPerEpoch: tracked ? sum((t) => t.readFaults) / epochs : 0,
          writeFaultsPerEpoch: tracked ? sum((t) => t.writeFaults) / epochs : 0,
          exitsPerEpoch: tracked ? sum((t) => t.exits) / epochs : 0,
          dirtyPagesPerEpoch: tracked ? sum((t) => t.dirtyPages) / epochs : NaN,
          falseDirtyPerEpoch: sum((t) => t.falseDirty) / epochs,
          predictedPerEpoch: sum((t) => t.pagesPredicted) / epochs,
          recall: strategy === 'wfp' ? ratio(sum((t) => t.truePredictions), sum((t) => t.dirtyPages)) : null,
          precision: strategy === 'wfp' ? ratio(sum((t) => t.truePredictions), sum((t) => t.pagesPredicted)) : null,
          entriesScannedPerEpoch: sum((t) => t.entriesScanned) / epochs,
          scanUsPerEpoch: sum((t) => t.scanNs) / epochs / 1000,
        });
      }
    }

    // Mapping (Fig. 9, Table 2): the full pause, dirty pages copied through each mapper.
    const mappingConfigs: { strategy: TrackingStrategyName; mapper: MapperName }[] = [
      { strategy: 'origin', mapper: 'per-page' },
      { strategy: 'wfp', mapper: 'per-page' },
      { strategy: 'wfp', mapper: 'superpage' },
    ];
    const mappingRuns = new Map<string, { m: Measurement; normalized: number }[]>();
    const costNs = Math.max(...options.exitCostsNs);
    for (let round = 0; round < options.rounds; round++) {
      options.progress(`${workload}: mapping round ${round + 1}/${options.rounds}`);
      const native = throughput(workload, prepared.measure('none', 0, options.epochMs, options.measureMs));
      for (const config of rotate(mappingConfigs, round)) {
        const m = prepared.measure(config.strategy, costNs, options.epochMs, options.measureMs, { mapper: config.mapper, ...copy });
        const key = `${config.strategy}/${config.mapper}`;
        mappingRuns.set(key, [...(mappingRuns.get(key) ?? []), { m, normalized: throughput(workload, m) / native }]);
      }
    }
    for (const config of mappingConfigs) {
      const runs = mappingRuns.get(`${config.strategy}/${config.mapper}`)!;
      const epochs = runs.reduce((s, r) => s + r.m.epochs, 0);
      const sum = (pick: (t: EpochTotals) => number) => runs.reduce((s, r) => s + pick(r.m.totals), 0);
      const pauseNs = sum((t) => t.pauseNs);
      report.mapping.push({
        workload,
        strategy: config.strategy,
        mapper: config.mapper,
        normalized: median(runs.map((r) => r.normalized)),
        mips: runs.reduce((s, r) => s + r.m.instructions, 0) / runs.reduce((s, r) => s + r.m.wallMs, 0) / 1000,
        dirtyPagesPerEpoch: sum((t) => t.dirtyPages) / epochs,
        hitRatio: config.mapper === 'superpage' ? ratio(sum((t) => t.mapHits), sum((t) => t.mapAccesses)) : null,
        mapOperationsPerEpoch: sum((t) => t.mapOperations) / epochs,
        pauseUsPerEpoch: pauseNs / epochs / 1000,
        copyUsPerEpoch: sum((t) => t.copyNs) / epochs / 1000,
        scanShareOfPause: ratio(sum((t) => t.scanNs), pauseNs),
      });
    }

    // Epoch length sweep (Fig. 13) on jbb.
    if (workload === 'jbb' && options.sweepEpochsMs.length > 0) {
      const sweepStrategies = options.strategies.filter((s) => s !== 'none' && s !== 'pml');
      const sweepMs = Math.max(options.measureMs, 4 * Math.max(...options.sweepEpochsMs));
      const values = new Map<string, number[]>();
      for (let round = 0; round < options.rounds; round++) {
        const native = throughput(workload, prepared.measure('none', 0, options.epochMs, sweepMs));
        for (const epochMs of options.sweepEpochsMs) {
          for (const strategy of rotate(sweepStrategies, round)) {
            options.progress(`${workload}: sweep ${strategy} at ${epochMs} ms, round ${round + 1}/${options.rounds}`);
            const m = prepared.measure(strategy, costNs, epochMs, sweepMs);
            const key = `${strategy}/${epochMs}`;
            values.set(key, [...(values.get(key) ?? []), throughput(workload, m) / native]);
          }
        }
      }
      for (const epochMs of options.sweepEpochsMs) {
        for (const strategy of sweepStrategies) {
          report.sweep.push({ workload, strategy, epochMs, normalized: median(values.get(`${strategy}/${epochMs}`)!) });
        }
      }
    }
  }
  return report;
}

function rotate<T>(items: T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
