import { readFileSync } from 'node:fs';
import { assert } from '../errors.ts';
import { BENCH_WORKLOAD_ARGS } from './guestLoad.ts';
import { CPU_ENGINES, type CpuEngine } from '../guest/cpu.ts';
import { resolveGuestImage, type GuestName } from '../guest/images.ts';
import { Machine, type MachineOptions } from '../guest/machine.ts';

/**
 * The CPU benchmark: guest instructions per second of each engine on each workload, natively (no
 * tracking), for the rv32im build of each workload and its rv32imac build (compressed code, the
 * same instructions executed). With a baseline (the engines of an earlier revision, loaded by the
 * caller), the baseline's two engines run the rv32im build too, so that a change to the engines
 * is measured against the code before it in the same run.
 *
 * All machines of one image start from the same warmed-up state (RAM and CPU copied from the
 * first block-engine machine to the others, as a backup restores) and take turns in short rounds,
 * so that ratios compare runs made side by side on a machine whose load drifts.
 */
export interface CpuBenchOptions {
  workloads: GuestName[];
  /** Measured wall time per workload, image and engine, split over the rounds. */
  seconds: number;
  rounds: number;
  /** Instructions run once (on the block engine) before the state is copied: past start-up. */
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

/** What the benchmark needs of a machine: this revision's Machine, or a baseline's. */
export interface BenchMachine {
  readonly memory: { readonly u8: Uint8Array };
  readonly halted: boolean;
  readonly exit: unknown;
  loadElf(bytes: Uint8Array, name?: string): unknown;
  run(budget: number): { executed: number };
  getState(): Uint8Array;
  setState(state: Uint8Array): void;
}

export interface CpuBenchBaseline {
  /** Says which revision it is (a git revision, as given). */
  label: string;
  createMachine(options: MachineOptions): BenchMachine;
}

export const CPU_BENCH_WORKLOADS: GuestName[] = ['cfp', 'cint', 'jbb', 'web'];

export const CPU_BENCH_DEFAULTS: CpuBenchOptions = {
  workloads: CPU_BENCH_WORKLOADS,
  seconds: 3,
  rounds: 3,
  warmupInstructions: 150_000_000,
  engineWarmupSeconds: 0.3,
  memoryBytes: 128 * 1024 * 1024,
  sliceInstructions: 1_000_000,
  progress: () => {},
};

export interface EngineMeasurement {
  mips: number;
  instructions: number;
  seconds: number;
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
  };
  node: string;
}

/** Runs `machine` for about `seconds` of wall time; returns the instructions executed and the time taken. */
function runFor(machine: BenchMachine, seconds: number, sliceInstructions: number): { instructions: number; seconds: number } {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let instructions = 0;
  let now = started;
  while (now < deadline) {
    const result = machine.run(sliceInstructions);
    instructions += result.executed;
    assert(!machine.halted, `the benchmark workload ended (${JSON.stringify(machine.exit)}); give it more rounds`);
    now = performance.now();
  }
  return { instructions, seconds: (now - started) / 1000 };
}

function geometricMean(values: number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

/** One machine the rounds take turns on. */
interface Contender {
  name: string;
  machine: BenchMachine;
  instructions: number;
  seconds: number;
}

/**
 * Warms `contenders[0]` (a block engine) up on `image`, copies its RAM and state to the others,
 * and lets them all take turns; fills in their totals.
 */
function measureImage(options: CpuBenchOptions, label: string, image: Uint8Array, contenders: Contender[]): void {
  const [first] = contenders;
  assert(first !== undefined, 'an image is measured with at least one contender');
  const warm = first.machine;
  warm.loadElf(image, `${label}.elf`);
  options.progress(`${label}: warming up (${options.warmupInstructions / 1e6}M instructions)`);
  for (let done = 0; done < options.warmupInstructions; ) {
    done += warm.run(Math.min(options.sliceInstructions, options.warmupInstructions - done)).executed;
  }
  const state = warm.getState();
  for (const contender of contenders.slice(1)) {
    contender.machine.memory.u8.set(warm.memory.u8);
    contender.machine.setState(state);
  }
  for (const contender of contenders) runFor(contender.machine, options.engineWarmupSeconds, options.sliceInstructions);
  for (let round = 0; round < options.rounds; round++) {
    // Alternate the order, so that no engine always follows another's garbage.
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const contender of order) {
      const run = runFor(contender.machine, options.seconds / options.rounds, options.sliceInstructions);
      contender.instructions += run.instructions;
      contender.seconds += run.seconds;
      options.progress(
        `${label}: round ${round + 1}/${options.rounds} ${contender.name}: ${(run.instructions / run.seconds / 1e6).toFixed(0)} MIPS`,
      );
    }
  }
}

function measurementOf(contender: Contender): EngineMeasurement {
  return { instructions: contender.instructions, seconds: contender.seconds, mips: contender.instructions / contender.seconds / 1e6 };
}

export function runCpuBench(options: CpuBenchOptions): CpuBenchResult {
  assert(options.seconds > 0 && options.rounds > 0 && options.workloads.length > 0, 'a benchmark measures something');
  const measurements: WorkloadMeasurement[] = [];
  const contender = (name: string, machine: BenchMachine): Contender => ({ name, machine, instructions: 0, seconds: 0 });
  for (const workload of options.workloads) {
    const args = BENCH_WORKLOAD_ARGS[workload];
    const machineOptions = (engine: CpuEngine): MachineOptions => ({ memoryBytes: options.memoryBytes, args, engine });
    // The block engine first: it warms up, the others start from its state.
    const engines: CpuEngine[] = ['blocks', 'interpreter'];
    assert(CPU_ENGINES.length === engines.length, 'the bench measures every engine');

    const current = engines.map((engine) => contender(engine, new Machine(machineOptions(engine))));
    const baseline = options.baseline;
    const previous =
      baseline === undefined
        ? []
        : engines.map((engine) => contender(`${engine} (${baseline.label})`, baseline.createMachine(machineOptions(engine))));
    options.progress(`${workload}: args "${args}"`);
    measureImage(options, workload, readFileSync(resolveGuestImage(workload)), [...current, ...previous]);
    const compressed = engines.map((engine) => contender(`${engine}`, new Machine(machineOptions(engine))));
    measureImage(options, `${workload}.rv32imac`, readFileSync(resolveGuestImage(`${workload}.rv32imac`)), compressed);

    const byEngine = (list: Contender[]): Record<CpuEngine, EngineMeasurement> =>
      Object.fromEntries(
        engines.map((engine, i) => {
          const measured = list[i];
          assert(measured !== undefined, 'one contender per engine, in the order of engines');
          return [engine, measurementOf(measured)];
        }),
      ) as Record<CpuEngine, EngineMeasurement>;
    const measured = byEngine(current);
    measurements.push({
      workload,
      args,
      engines: measured,
      rv32imac: byEngine(compressed),
      ...(previous.length > 0 ? { baseline: byEngine(previous) } : {}),
      ratio: measured.blocks.mips / measured.interpreter.mips,
    });
  }
  const mean = (pick: (m: WorkloadMeasurement) => EngineMeasurement): number => geometricMean(measurements.map((m) => pick(m).mips));
  const baselineOf = (m: WorkloadMeasurement): Record<CpuEngine, EngineMeasurement> => {
    assert(m.baseline !== undefined, 'with a baseline, every workload is measured against it');
    return m.baseline;
  };
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
        ? { baseline: { blocks: mean((m) => baselineOf(m).blocks), interpreter: mean((m) => baselineOf(m).interpreter) } }
        : {}),
    },
    node: process.version,
  };
}

/** The result as a table for people: per workload and engine, MIPS of each build (and the baseline's). */
export function formatCpuBench(result: CpuBenchResult): string {
  const withBaseline = result.baseline !== undefined;
  const header = ['workload', 'engine'];
  if (withBaseline) header.push(`${result.baseline} rv32im`);
  header.push('rv32im MIPS');
  if (withBaseline) header.push(`vs ${result.baseline}`);
  header.push('rv32imac MIPS', 'imac/im');
  const rows = [header];
  const row = (workload: string, engine: CpuEngine, im: number, imac: number, previous: number | undefined): void => {
    const cells = [workload, engine];
    if (previous !== undefined) cells.push(previous.toFixed(1));
    cells.push(im.toFixed(1));
    if (previous !== undefined) cells.push(`${(im / previous).toFixed(2)}×`);
    cells.push(imac.toFixed(1), `${(imac / im).toFixed(2)}×`);
    rows.push(cells);
  };
  for (const m of result.workloads) {
    for (const engine of ['blocks', 'interpreter'] as const)
      row(m.workload, engine, m.engines[engine].mips, m.rv32imac[engine].mips, m.baseline?.[engine].mips);
  }
  const o = result.overall;
  row('overall (geomean)', 'blocks', o.blocksMips, o.rv32imac.blocks, o.baseline?.blocks);
  row('overall (geomean)', 'interpreter', o.interpreterMips, o.rv32imac.interpreter, o.baseline?.interpreter);
  const widths = header.map((_, column) => Math.max(...rows.map((r) => r[column]?.length ?? 0)));
  return rows
    .map((r) => r.map((cell, column) => (column < 2 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '))
    .join('\n');
}
