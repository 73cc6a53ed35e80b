import { cpus } from 'node:os';
import { assert } from '../errors.ts';
import type { GuestName } from '../guest/images.ts';
import type { MapperName } from '../tracking/mapper.ts';
import type { TrackingStrategyName } from '../tracking/tracker.ts';
import { createBenchMachine } from './guestLoad.ts';
import { measureOnFreshThread, runGuest, type EpochTotals, type Measurement, type MeasureJob } from './trackingMeasure.ts';
import { median } from '../stats.ts';

/**
 * The tracking benchmark (issue 3): reproduces the paper's measurements (seed 001, §5.3–5.5) on
 * hbft's own workloads. Every configuration starts from the same warmed-up snapshot of its
 * workload on a fresh thread and runs the same stretch of instructions, epochs are cut on wall time,
 * the boundary work is inside the measured time, and configurations are run round-robin so that
 * each ratio compares runs made side by side.
 */
export interface TrackingBenchOptions {
  workloads: GuestName[];
  strategies: TrackingStrategyName[];
  exitCostsNs: number[];
  epochMs: number;
  /**
   * About how long each configuration is measured: the instructions the workload runs in this
   * time without tracking (each configuration then runs exactly those).
   */
  measureMs: number;
  /** Instructions run before the snapshot, to get past each workload's initialisation. */
  warmupInstructions: number;
  /**
   * About how long each configuration runs with its strategy attached before it is measured (as
   * an instruction count, like measureMs): shadow tables and Histase's history are then built as
   * in a long-running guest, which is what the paper measures, and V8 has settled on the guest's
   * compiled blocks on the fresh thread (in the first second the faults' slow paths still cost
   * deoptimisations, which a long-running daemon no longer pays).
   */
  trackerWarmupMs: number;
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
  exitCostsNs: [1500],
  epochMs: 20,
  measureMs: 1000,
  warmupInstructions: 150_000_000,
  trackerWarmupMs: 1500,
  rounds: 5,
  memoryBytes: 128 * 1024 * 1024,
  sweepEpochsMs: [20, 50, 100, 200],
  mapCostNs: 1500,
  mapSlots: 32,
  progress: () => {},
};

export interface TrackingRow {
  workload: GuestName;
  strategy: TrackingStrategyName;
  exitCostNs: number;
  epochMs: number;
  mips: number;
  /** Throughput relative to `none` in the same round (median over rounds). */
  normalized: number;
  /** Lowest and highest of the per-round ratios (how much the rounds disagreed). */
  normalizedRange: [number, number];
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
  normalizedRange: [number, number];
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

const CALIBRATION_MS = 1000;

/** A workload warmed up once; every measurement starts from this snapshot on its own thread. */
class PreparedWorkload {
  private ram: SharedArrayBuffer | null = null;
  private state: Uint8Array | null = null;
  private instructionsPerMs = 0;

  constructor(
    readonly name: GuestName,
    private readonly memoryBytes: number,
    private readonly trackerWarmupMs: number,
  ) {}

  warmUp(instructions: number): void {
    const machine = createBenchMachine(this.name, this.memoryBytes);
    runGuest(machine, instructions);
    if (machine.halted) throw new Error(`${this.name} ended during warm-up: ${JSON.stringify(machine.exit)}`);
    this.ram = new SharedArrayBuffer(machine.memory.ramBytes);
    new Uint8Array(this.ram).set(machine.memory.u8);
    this.state = machine.getState();
    // The speed of the snapshot's continuation, to turn a measuring time into an instruction count.
    const start = performance.now();
    const startInstret = machine.cpu.instret;
    while (performance.now() - start < CALIBRATION_MS && !machine.halted) machine.run(20_000);
    this.instructionsPerMs = (machine.cpu.instret - startInstret) / (performance.now() - start);
  }

  measure(
    strategy: TrackingStrategyName,
    exitCostNs: number,
    epochMs: number,
    durationMs: number,
    copy?: MeasureJob['copy'],
  ): Promise<Measurement> {
    const { ram, state } = this;
    assert(ram !== null && state !== null, 'a workload is measured only after warmUp() took its snapshot');
    return measureOnFreshThread({
      workload: this.name,
      memoryBytes: this.memoryBytes,
      ram,
      state,
      strategy,
      exitCostNs,
      epochMs,
      instructions: Math.round(this.instructionsPerMs * durationMs),
      timeLimitMs: Math.max(20_000, 20 * durationMs),
      trackerWarmupInstructions: Math.round(this.instructionsPerMs * this.trackerWarmupMs),
      copy,
    });
  }
}

/** What was recorded under `key`: every configuration reported on was measured first. */
function recorded<K, V>(map: ReadonlyMap<K, V>, key: K): V {
  const value = map.get(key);
  assert(value !== undefined, `measurements were recorded for ${String(key)}`);
  return value;
}

function range(values: number[]): [number, number] {
  return [Math.min(...values), Math.max(...values)];
}

/** Throughput of a measurement: instructions per ms (kv too: its load runs inside the guest). */
function throughput(m: Measurement): number {
  return m.instructions / m.wallMs;
}

function ratio(numerator: number, denominator: number): number | null {
  return denominator > 0 ? numerator / denominator : null;
}

export async function runTrackingBench(options: TrackingBenchOptions): Promise<TrackingBenchReport> {
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
    const prepared = new PreparedWorkload(workload, options.memoryBytes, options.trackerWarmupMs);
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
          results.set(strategy, await prepared.measure(strategy, exitCostNs, options.epochMs, options.measureMs));
        }
        const nativeRun = results.get('none') ?? [...results.values()][0];
        assert(nativeRun !== undefined, 'each round measures at least one strategy');
        const native = throughput(nativeRun);
        for (const [strategy, m] of results) {
          perStrategy.set(strategy, [...(perStrategy.get(strategy) ?? []), m]);
          normalized.set(strategy, [...(normalized.get(strategy) ?? []), throughput(m) / native]);
        }
      }
      for (const strategy of options.strategies) {
        const runs = recorded(perStrategy, strategy);
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
          normalized: median(recorded(normalized, strategy)),
          normalizedRange: range(recorded(normalized, strategy)),
          epochs,
          readFaultsPerEpoch: tracked ? sum((t) => t.readFaults) / epochs : 0,
          writeFaultsPerEpoch: tracked ? sum((t) => t.writeFaults) / epochs : 0,
          exitsPerEpoch: tracked ? sum((t) => t.exits) / epochs : 0,
          dirtyPagesPerEpoch: tracked ? sum((t) => t.dirtyPages) / epochs : NaN,
          falseDirtyPerEpoch: sum((t) => t.falseDirty) / epochs,
          predictedPerEpoch: sum((t) => t.pagesPredicted) / epochs,
          recall:
            strategy === 'wfp'
              ? ratio(
                  sum((t) => t.truePredictions),
                  sum((t) => t.dirtyPages),
                )
              : null,
          precision:
            strategy === 'wfp'
              ? ratio(
                  sum((t) => t.truePredictions),
                  sum((t) => t.pagesPredicted),
                )
              : null,
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
      const native = throughput(await prepared.measure('none', 0, options.epochMs, options.measureMs));
      for (const config of rotate(mappingConfigs, round)) {
        const m = await prepared.measure(config.strategy, costNs, options.epochMs, options.measureMs, { mapper: config.mapper, ...copy });
        const key = `${config.strategy}/${config.mapper}`;
        mappingRuns.set(key, [...(mappingRuns.get(key) ?? []), { m, normalized: throughput(m) / native }]);
      }
    }
    for (const config of mappingConfigs) {
      const runs = recorded(mappingRuns, `${config.strategy}/${config.mapper}`);
      const epochs = runs.reduce((s, r) => s + r.m.epochs, 0);
      const sum = (pick: (t: EpochTotals) => number) => runs.reduce((s, r) => s + pick(r.m.totals), 0);
      const pauseNs = sum((t) => t.pauseNs);
      report.mapping.push({
        workload,
        strategy: config.strategy,
        mapper: config.mapper,
        normalized: median(runs.map((r) => r.normalized)),
        normalizedRange: range(runs.map((r) => r.normalized)),
        mips: runs.reduce((s, r) => s + r.m.instructions, 0) / runs.reduce((s, r) => s + r.m.wallMs, 0) / 1000,
        dirtyPagesPerEpoch: sum((t) => t.dirtyPages) / epochs,
        hitRatio:
          config.mapper === 'superpage'
            ? ratio(
                sum((t) => t.mapHits),
                sum((t) => t.mapAccesses),
              )
            : null,
        mapOperationsPerEpoch: sum((t) => t.mapOperations) / epochs,
        pauseUsPerEpoch: pauseNs / epochs / 1000,
        copyUsPerEpoch: sum((t) => t.copyNs) / epochs / 1000,
        scanShareOfPause: ratio(
          sum((t) => t.scanNs),
          pauseNs,
        ),
      });
    }

    // Epoch length sweep (Fig. 13) on jbb.
    if (workload === 'jbb' && options.sweepEpochsMs.length > 0) {
      const sweepStrategies = options.strategies.filter((s) => s !== 'none' && s !== 'pml');
      const sweepMs = Math.max(options.measureMs, 4 * Math.max(...options.sweepEpochsMs));
      const values = new Map<string, number[]>();
      for (let round = 0; round < options.rounds; round++) {
        const native = throughput(await prepared.measure('none', 0, options.epochMs, sweepMs));
        for (const epochMs of options.sweepEpochsMs) {
          for (const strategy of rotate(sweepStrategies, round)) {
            options.progress(`${workload}: sweep ${strategy} at ${epochMs} ms, round ${round + 1}/${options.rounds}`);
            const m = await prepared.measure(strategy, costNs, epochMs, sweepMs);
            const key = `${strategy}/${epochMs}`;
            values.set(key, [...(values.get(key) ?? []), throughput(m) / native]);
          }
        }
      }
      for (const epochMs of options.sweepEpochsMs) {
        for (const strategy of sweepStrategies) {
          report.sweep.push({ workload, strategy, epochMs, normalized: median(recorded(values, `${strategy}/${epochMs}`)) });
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
