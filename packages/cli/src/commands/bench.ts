/**
 * `hbft bench <suite>`: benchmarks that print ratios measured side by side in one run. `cpu`
 * compares the two CPU engines (compiled blocks and the reference interpreter) on the workloads.
 */
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '@hbft/common/errors.ts';
import { CPU_BENCH_DEFAULTS, CPU_BENCH_WORKLOADS, formatCpuBench, runCpuBench } from '@hbft/common/bench/cpu.ts';
import type { GuestName } from '@hbft/common/guest/images.ts';
import { integerFlag } from './options.ts';
import { loadCpuBaseline } from '../bench/cpuBaseline.ts';
import { falseTakeoverBenchCommand, networkBenchCommand, replicationBenchCommand, trackingBenchCommand } from './benchSuites.ts';

/** Longest measurement one flag may ask for, so a typo does not tie up the machine for a day. */
const SECONDS_MAX = 600;

interface CpuBenchArgs {
  json: boolean;
  seconds: number;
  rounds: number;
  workloads: string;
  baseline?: string;
}

function parseWorkloads(text: string): GuestName[] {
  const names = text
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!(CPU_BENCH_WORKLOADS as string[]).includes(name)) {
      throw new UsageError(`--workloads: unknown workload "${name}"; accepted: ${CPU_BENCH_WORKLOADS.join(', ')}`);
    }
  }
  if (names.length === 0) throw new UsageError('--workloads: name at least one workload');
  return names as GuestName[];
}

const cpuBenchCommand: CommandModule<object, CpuBenchArgs> = {
  command: 'cpu',
  describe:
    "guest MIPS (millions of instructions per CPU second, so that other processes' load counts less) of the compiled-block engine and the interpreter on cfp, cint, jbb and web (their rv32im and rv32imac builds), without tracking",
  builder: (yargs) =>
    yargs
      .option('json', { type: 'boolean', default: false, describe: 'print only the result as JSON' })
      .option('seconds', { type: 'number', default: CPU_BENCH_DEFAULTS.seconds, describe: 'measured seconds per workload and engine' })
      .option('rounds', { type: 'number', default: CPU_BENCH_DEFAULTS.rounds, describe: 'turns each engine takes per workload' })
      .option('workloads', { type: 'string', default: CPU_BENCH_WORKLOADS.join(','), describe: 'comma-separated workloads' })
      .option('baseline', {
        type: 'string',
        describe: 'also run the engines of this git revision (e.g. main) on the rv32im builds, side by side with these',
      })
      .epilogue('Progress goes to stderr; the table (or the JSON) to stdout.'),
  handler: async (argv) => {
    const seconds = argv.seconds;
    if (!(typeof seconds === 'number' && seconds > 0 && seconds <= SECONDS_MAX)) {
      throw new UsageError(`--seconds: expected a number of seconds in (0, ${SECONDS_MAX}], got "${String(seconds)}"`);
    }
    const workloads = parseWorkloads(argv.workloads);
    const rounds = integerFlag(argv.rounds, '--rounds', 1);
    const loaded = argv.baseline === undefined ? undefined : await loadCpuBaseline(argv.baseline);
    try {
      const result = await runCpuBench({
        ...CPU_BENCH_DEFAULTS,
        workloads,
        seconds,
        rounds,
        ...(loaded !== undefined ? { baseline: loaded.baseline } : {}),
        progress: (line) => process.stderr.write(`hbft bench cpu: ${line}\n`),
      });
      process.stdout.write(argv.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatCpuBench(result)}\n`);
    } finally {
      loaded?.dispose();
    }
  },
};

export const benchCommand: CommandModule = {
  command: 'bench',
  describe: 'run a benchmark (suites: cpu, tracking, replication, false-takeovers, network)',
  builder: (yargs: Argv) =>
    yargs
      .command(cpuBenchCommand as CommandModule)
      .command(trackingBenchCommand as CommandModule)
      .command(replicationBenchCommand as CommandModule)
      .command(falseTakeoverBenchCommand as CommandModule)
      .command(networkBenchCommand as CommandModule)
      .demandCommand(1, 'name a benchmark suite: cpu, tracking, replication, false-takeovers or network'),
  handler: () => {},
};
