import { readFileSync } from 'node:fs';
import { assert } from '../errors.ts';
import { median } from '../stats.ts';
import { BENCH_WORKLOAD_ARGS } from './guestLoad.ts';
import { ContenderThread, type ContenderJob } from './cpuContender.ts';
import { CPU_ENGINES, type CpuEngine } from '../guest/cpu.ts';
import { resolveGuestImage, type GuestName } from '../guest/images.ts';

/**
 * The CPU benchmark: guest instructions per second of each engine on each workload, natively (no
 * tracking), for the rv32im build of each workload and its rv32imac build (compressed code, the
 * same instructions executed). With a baseline (the engines of an earlier revision, located by the
 * caller), the baseline's two engines run the rv32im build too, so that a change to the engines
 * is measured against the code before it in the same run.
 *
 * Each engine runs on a fresh thread of its own (cpuContender.ts: no engine inherits JIT state
 * from another's runs), which loads the image and runs the same instructions past start-up; the
 * threads then take turns in short rounds, so that ratios compare runs made side by side on a
 * machine whose load drifts.
 */
export interface CpuBenchOptions {
  workloads: GuestName[];
  /** Measured wall time per workload, image and engine, split over the rounds. */
  seconds: number;
  rounds: number;
  /** Instructions each contender runs before its turns: past the program's start-up. */
  warmupInstructions: number;
  /** Wall time each engine runs after the copy before measuring (V8 compiles the hot code). */
  engineWarmupSeconds: number;
  memoryBytes: number;
  /** Instructions per Machine.run() call, as a worker runs them. */
  sliceInstructions: number;
  progress: (line: string) => void;
  /** The engines of an earlier revision, run beside these on the rv32im images. */
  baseline?: CpuBenchBaseline;
}

export interface CpuBenchBaseline {
  /** Says which revision it is (a git revision, as given). */
  label: string;
  /** The URL of that revision's `guest/machine.ts`, which exports its Machine. */
  machineModuleUrl: string;
}

/** This revision's Machine, for the contender threads. */
const MACHINE_MODULE_URL = new URL('../guest/machine.ts', import.meta.url).href;

export const CPU_BENCH_WORKLOADS: GuestName[] = ['cfp', 'cint', 'jbb', 'web'];

export const CPU_BENCH_DEFAULTS: CpuBenchOptions = {
  workloads: CPU_BENCH_WORKLOADS,
  seconds: 3,
  rounds: 12,
  warmupInstructions: 150_000_000,
  engineWarmupSeconds: 0.3,
  memoryBytes: 128 * 1024 * 1024,
  sliceInstructions: 1_000_000,
  progress: () => {},
};

export interface EngineMeasurement {
  /** Millions of guest instructions per CPU second of the process (see cpuContender.ts's Turn). */
  mips: number;
  instructions: number;
  /** Wall time of the turns. */
  seconds: number;
  /** CPU time of the turns. */
  cpuSeconds: number;
  /** MIPS of each round's turn. */
  roundMips: number[];
}

/** This revision's MIPS over the baseline's, per round (the two engines' turns are adjacent in each round). */
export interface RoundRatios {
  median: number;
  lowest: number;
  highest: number;
}

export interface WorkloadMeasurement {
  workload: GuestName;
  args: string;
  /** This revision's engines on the rv32im build. */
  engines: Record<CpuEngine, EngineMeasurement>;
  /** The same engines on the rv32imac build. */
  rv32imac: Record<CpuEngine, EngineMeasurement>;
  /** The baseline's engines on the rv32im build, when there is a baseline. */
  baseline?: Record<CpuEngine, EngineMeasurement>;
  /** Against the baseline, per engine: the ratios of the rounds, which saw the same machine load. */
  vsBaseline?: Record<CpuEngine, RoundRatios>;
  /** blocks MIPS / interpreter MIPS (rv32im). */
  ratio: number;
}

export interface CpuBenchResult {
  options: Omit<CpuBenchOptions, 'progress' | 'workloads' | 'baseline'>;
  baseline?: string;
  workloads: WorkloadMeasurement[];
  /** Geometric means over the workloads. */
  overall: {
    interpreterMips: number;
    blocksMips: number;
    ratio: number;
    rv32imac: Record<CpuEngine, number>;
    baseline?: Record<CpuEngine, number>;
    /** The geometric mean of the workloads' median round ratios. */
    vsBaseline?: Record<CpuEngine, number>;
  };
  node: string;
}

function geometricMean(values: number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

/** One engine of one revision the rounds take turns on. */
interface Contender {
  name: string;
  engine: CpuEngine;
  machineModuleUrl: string;
  instructions: number;
  seconds: number;
  cpuSeconds: number;
  roundMips: number[];
}

/** Starts each contender's thread on `image`, and lets them take turns; fills in their totals. */
async function measureImage(
  options: CpuBenchOptions,
  label: string,
  args: string,
  image: Uint8Array,
  contenders: Contender[],
): Promise<void> {
  options.progress(`${label}: each engine runs ${options.warmupInstructions / 1e6}M instructions past start-up`);
  const threads: ContenderThread[] = [];
  try {
    // One at a time: each thread's warm-up runs alone, as its turns do.
    for (const contender of contenders) {
      const job: ContenderJob = {
        machineModuleUrl: contender.machineModuleUrl,
        engine: contender.engine,
        memoryBytes: options.memoryBytes,
        args,
        image,
        imageName: `${label}.elf`,
        warmupInstructions: options.warmupInstructions,
        sliceInstructions: options.sliceInstructions,
        warmupSeconds: options.engineWarmupSeconds,
      };
      threads.push(await ContenderThread.start(`${label} ${contender.name}`, job));
    }
    for (let round = 0; round < options.rounds; round++) {
      // Alternate the order, so that no engine always follows another.
      const order = contenders.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        const contender = contenders[i];
        const thread = threads[i];
        assert(contender !== undefined && thread !== undefined, 'one thread per contender');
        const run = await thread.turn(options.seconds / options.rounds);
        contender.instructions += run.instructions;
        contender.seconds += run.seconds;
        contender.cpuSeconds += run.cpuSeconds;
        const mips = run.instructions / run.cpuSeconds / 1e6;
        contender.roundMips.push(mips);
        options.progress(
          `${label}: round ${round + 1}/${options.rounds} ${contender.name}: ${mips.toFixed(0)} MIPS (${((100 * run.cpuSeconds) / run.seconds).toFixed(0)} % of the wall time on a CPU)`,
        );
      }
    }
  } finally {
    await Promise.all(threads.map((thread) => thread.stop()));
  }
}

function measurementOf(contender: Contender): EngineMeasurement {
  return {
    instructions: contender.instructions,
    seconds: contender.seconds,
    cpuSeconds: contender.cpuSeconds,
    mips: contender.instructions / contender.cpuSeconds / 1e6,
    roundMips: contender.roundMips,
  };
}

function roundRatios(current: EngineMeasurement, previous: EngineMeasurement): RoundRatios {
  const ratios = current.roundMips.map((mips, round) => {
    const before = previous.roundMips[round];
    assert(before !== undefined, 'both revisions ran every round');
    return mips / before;
  });
  return { median: median(ratios), lowest: Math.min(...ratios), highest: Math.max(...ratios) };
}

export async function runCpuBench(options: CpuBenchOptions): Promise<CpuBenchResult> {
  assert(options.seconds > 0 && options.rounds > 0 && options.workloads.length > 0, 'a benchmark measures something');
  const measurements: WorkloadMeasurement[] = [];
  const contender = (name: string, engine: CpuEngine, machineModuleUrl: string): Contender => ({
    name,
    engine,
    machineModuleUrl,
    instructions: 0,
    seconds: 0,
    cpuSeconds: 0,
    roundMips: [],
  });
  for (const workload of options.workloads) {
    const args = BENCH_WORKLOAD_ARGS[workload];
    const engines: CpuEngine[] = ['blocks', 'interpreter'];
    assert(CPU_ENGINES.length === engines.length, 'the bench measures every engine');

    const current = engines.map((engine) => contender(engine, engine, MACHINE_MODULE_URL));
    const baseline = options.baseline;
    const previous =
      baseline === undefined ? [] : engines.map((engine) => contender(`${engine} (${baseline.label})`, engine, baseline.machineModuleUrl));
    options.progress(`${workload}: args "${args}"`);
    // Each engine beside its baseline: their turns follow each other in every round.
    const paired = engines.flatMap((_, i) => [current[i], previous[i]].filter((c): c is Contender => c !== undefined));
    await measureImage(options, workload, args, readFileSync(resolveGuestImage(workload)), paired);
    const compressed = engines.map((engine) => contender(engine, engine, MACHINE_MODULE_URL));
    await measureImage(options, `${workload}.rv32imac`, args, readFileSync(resolveGuestImage(`${workload}.rv32imac`)), compressed);

    const byEngine = (list: Contender[]): Record<CpuEngine, EngineMeasurement> =>
      Object.fromEntries(
        engines.map((engine, i) => {
          const measured = list[i];
          assert(measured !== undefined, 'one contender per engine, in the order of engines');
          return [engine, measurementOf(measured)];
        }),
      ) as Record<CpuEngine, EngineMeasurement>;
    const measured = byEngine(current);
    const before = previous.length > 0 ? byEngine(previous) : undefined;
    measurements.push({
      workload,
      args,
      engines: measured,
      rv32imac: byEngine(compressed),
      ...(before !== undefined
        ? {
            baseline: before,
            vsBaseline: {
              blocks: roundRatios(measured.blocks, before.blocks),
              interpreter: roundRatios(measured.interpreter, before.interpreter),
            },
          }
        : {}),
      ratio: measured.blocks.mips / measured.interpreter.mips,
    });
  }
  const mean = (pick: (m: WorkloadMeasurement) => EngineMeasurement): number => geometricMean(measurements.map((m) => pick(m).mips));
  const baselineOf = (m: WorkloadMeasurement): Record<CpuEngine, EngineMeasurement> => {
    assert(m.baseline !== undefined, 'with a baseline, every workload is measured against it');
    return m.baseline;
  };
  const ratiosOf = (m: WorkloadMeasurement): Record<CpuEngine, RoundRatios> => {
    assert(m.vsBaseline !== undefined, 'with a baseline, every workload is compared with it');
    return m.vsBaseline;
  };
  const meanRatio = (engine: CpuEngine): number => geometricMean(measurements.map((m) => ratiosOf(m)[engine].median));
  const interpreterMips = mean((m) => m.engines.interpreter);
  const blocksMips = mean((m) => m.engines.blocks);
  const { progress: _progress, workloads: _workloads, baseline, ...recorded } = options;
  return {
    options: recorded,
    ...(baseline !== undefined ? { baseline: baseline.label } : {}),
    workloads: measurements,
    overall: {
      interpreterMips,
      blocksMips,
      ratio: blocksMips / interpreterMips,
      rv32imac: { blocks: mean((m) => m.rv32imac.blocks), interpreter: mean((m) => m.rv32imac.interpreter) },
      ...(baseline !== undefined
        ? {
            baseline: { blocks: mean((m) => baselineOf(m).blocks), interpreter: mean((m) => baselineOf(m).interpreter) },
            vsBaseline: { blocks: meanRatio('blocks'), interpreter: meanRatio('interpreter') },
          }
        : {}),
    },
    node: process.version,
  };
}

function spread(ratios: RoundRatios | undefined): string | undefined {
  if (ratios === undefined) return undefined;
  return `${ratios.median.toFixed(2)}× (${ratios.lowest.toFixed(2)}–${ratios.highest.toFixed(2)})`;
}

/** The result as a table for people: per workload and engine, MIPS of each build (and the baseline's). */
export function formatCpuBench(result: CpuBenchResult): string {
  const withBaseline = result.baseline !== undefined;
  const header = ['workload', 'engine'];
  if (withBaseline) header.push(`${result.baseline} rv32im`);
  header.push('rv32im MIPS');
  if (withBaseline) header.push(`vs ${result.baseline}: median of rounds (range)`);
  header.push('rv32imac MIPS', 'imac/im');
  const rows = [header];
  const row = (
    workload: string,
    engine: CpuEngine,
    im: number,
    imac: number,
    previous: number | undefined,
    vs: string | undefined,
  ): void => {
    const cells = [workload, engine];
    if (previous !== undefined) cells.push(previous.toFixed(1));
    cells.push(im.toFixed(1));
    if (vs !== undefined) cells.push(vs);
    cells.push(imac.toFixed(1), `${(imac / im).toFixed(2)}×`);
    rows.push(cells);
  };
  for (const m of result.workloads) {
    for (const engine of ['blocks', 'interpreter'] as const)
      row(m.workload, engine, m.engines[engine].mips, m.rv32imac[engine].mips, m.baseline?.[engine].mips, spread(m.vsBaseline?.[engine]));
  }
  const o = result.overall;
  const overallVs = (engine: CpuEngine): string | undefined =>
    o.vsBaseline === undefined ? undefined : `${o.vsBaseline[engine].toFixed(2)}×`;
  row('overall (geomean)', 'blocks', o.blocksMips, o.rv32imac.blocks, o.baseline?.blocks, overallVs('blocks'));
  row('overall (geomean)', 'interpreter', o.interpreterMips, o.rv32imac.interpreter, o.baseline?.interpreter, overallVs('interpreter'));
  const widths = header.map((_, column) => Math.max(...rows.map((r) => r[column]?.length ?? 0)));
  return rows
    .map((r) => r.map((cell, column) => (column < 2 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '))
    .join('\n');
}
