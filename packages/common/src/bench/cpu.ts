import { readFileSync } from 'node:fs';
import { assert } from '../errors.ts';
import { BENCH_WORKLOAD_ARGS } from './guestLoad.ts';
import { CPU_ENGINES, type CpuEngine } from '../guest/cpu.ts';
import { resolveGuestImage, type GuestName } from '../guest/images.ts';
import { Machine } from '../guest/machine.ts';

/**
 * The CPU benchmark: guest instructions per second of each engine on each workload, natively (no
 * tracking). Both engines of a workload start from the same warmed-up state (RAM and CPU copied
 * from one to the other) and take turns in short rounds, so that the ratio compares runs made
 * side by side on a machine whose load drifts.
 */
export interface CpuBenchOptions {
  workloads: GuestName[];
  /** Measured wall time per workload and engine, split over the rounds. */
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
  engines: Record<CpuEngine, EngineMeasurement>;
  /** blocks MIPS / interpreter MIPS. */
  ratio: number;
}

export interface CpuBenchResult {
  options: Omit<CpuBenchOptions, 'progress' | 'workloads'>;
  workloads: WorkloadMeasurement[];
  /** Geometric means over the workloads. */
  overall: { interpreterMips: number; blocksMips: number; ratio: number };
  node: string;
}

/** Runs `machine` for about `seconds` of wall time; returns the instructions executed and the time taken. */
function runFor(machine: Machine, seconds: number, sliceInstructions: number): { instructions: number; seconds: number } {
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

export function runCpuBench(options: CpuBenchOptions): CpuBenchResult {
  assert(options.seconds > 0 && options.rounds > 0 && options.workloads.length > 0, 'a benchmark measures something');
  const measurements: WorkloadMeasurement[] = [];
  for (const workload of options.workloads) {
    const args = BENCH_WORKLOAD_ARGS[workload];
    const image = readFileSync(resolveGuestImage(workload));
    const machines = Object.fromEntries(
      CPU_ENGINES.map((engine) => [engine, new Machine({ memoryBytes: options.memoryBytes, args, engine })]),
    ) as Record<CpuEngine, Machine>;
    const warm = machines.blocks;
    warm.loadElf(image, `${workload}.elf`);
    options.progress(`${workload}: warming up (${options.warmupInstructions / 1e6}M instructions, args "${args}")`);
    for (let done = 0; done < options.warmupInstructions; ) done += warm.run(Math.min(options.sliceInstructions, options.warmupInstructions - done)).executed;
    // The same state on the other engine: the copy is RAM plus getState, as a backup restores.
    machines.interpreter.memory.u8.set(warm.memory.u8);
    machines.interpreter.setState(warm.getState());
    for (const engine of CPU_ENGINES) runFor(machines[engine], options.engineWarmupSeconds, options.sliceInstructions);

    const totals = Object.fromEntries(CPU_ENGINES.map((engine) => [engine, { instructions: 0, seconds: 0 }])) as Record<
      CpuEngine,
      { instructions: number; seconds: number }
    >;
    for (let round = 0; round < options.rounds; round++) {
      // Alternate which engine goes first, so neither always follows the other's garbage.
      const order = round % 2 === 0 ? CPU_ENGINES : [...CPU_ENGINES].reverse();
      for (const engine of order) {
        const run = runFor(machines[engine], options.seconds / options.rounds, options.sliceInstructions);
        totals[engine].instructions += run.instructions;
        totals[engine].seconds += run.seconds;
        options.progress(`${workload}: round ${round + 1}/${options.rounds} ${engine}: ${(run.instructions / run.seconds / 1e6).toFixed(0)} MIPS`);
      }
    }
    const engines = Object.fromEntries(
      CPU_ENGINES.map((engine) => [engine, { ...totals[engine], mips: totals[engine].instructions / totals[engine].seconds / 1e6 }]),
    ) as Record<CpuEngine, EngineMeasurement>;
    measurements.push({ workload, args, engines, ratio: engines.blocks.mips / engines.interpreter.mips });
  }
  const interpreterMips = geometricMean(measurements.map((m) => m.engines.interpreter.mips));
  const blocksMips = geometricMean(measurements.map((m) => m.engines.blocks.mips));
  const { progress: _progress, workloads: _workloads, ...recorded } = options;
  return {
    options: recorded,
    workloads: measurements,
    overall: { interpreterMips, blocksMips, ratio: blocksMips / interpreterMips },
    node: process.version,
  };
}

/** The result as a table for people. */
export function formatCpuBench(result: CpuBenchResult): string {
  const rows = [['workload', 'interpreter MIPS', 'blocks MIPS', 'blocks/interpreter']];
  for (const m of result.workloads) {
    rows.push([m.workload, m.engines.interpreter.mips.toFixed(1), m.engines.blocks.mips.toFixed(1), `${m.ratio.toFixed(2)}×`]);
  }
  const o = result.overall;
  rows.push(['overall (geomean)', o.interpreterMips.toFixed(1), o.blocksMips.toFixed(1), `${o.ratio.toFixed(2)}×`]);
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  '))
    .join('\n');
}
