import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '@hbft/common/errors.ts';
import { GUEST_NAMES, type GuestName } from '@hbft/common/guest/images.ts';
import { runTrackingBench, TRACKING_BENCH_DEFAULTS } from '@hbft/common/bench/tracking.ts';
import { formatTrackingReport, trackingSvg, trackingTargets } from '@hbft/common/bench/trackingReport.ts';
import { TRACKING_STRATEGIES, type TrackingStrategyName } from '@hbft/common/tracking/tracker.ts';
import {
  formatReplicationReport,
  REPLICATION_BENCH_DEFAULTS,
  REPLICATION_BENCH_PARTS,
  runReplicationBench,
  type ReplicationBenchPart,
} from '../bench/replication.ts';
import { TAP_MODES } from '../bench/benchNamespace.ts';
import {
  FALSE_TAKEOVER_DEFAULTS,
  FALSE_TAKEOVER_LOADS,
  formatFalseTakeoverReport,
  runFalseTakeoverBench,
} from '../bench/falseTakeovers.ts';
import {
  formatNetworkBenchReport,
  NETWORK_BENCH_DEFAULTS,
  NETWORK_BENCH_TARGETS,
  NETWORK_BENCH_TESTS,
  runNetworkBench,
} from '../bench/network.ts';
import { integerFlag, memoryBytesFrom } from './options.ts';

/** A comma-separated flag whose every item must be one of `accepted`. */
function listFlag<T extends string>(value: string, flag: string, accepted: readonly T[]): [T, ...T[]] {
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  for (const item of items) {
    if (!(accepted as readonly string[]).includes(item))
      throw new UsageError(`${flag}: unknown "${item}"; accepted: ${accepted.join(', ')}`);
  }
  if (items.length === 0) throw new UsageError(`${flag}: name at least one of ${accepted.join(', ')}`);
  return items as [T, ...T[]];
}

function numberList(value: string, flag: string): number[] {
  const items = value.split(',').map((item) => Number(item.trim()));
  if (items.length === 0 || items.some((n) => !Number.isFinite(n) || n < 0))
    throw new UsageError(`${flag}: expected numbers ≥ 0 separated by commas, got "${value}"`);
  return items;
}

interface TrackingArgs {
  json: boolean;
  svg: string;
  workloads: string;
  strategies: string;
  'exit-cost-ns': string;
  'measure-ms': number;
  'warmup-ms': number;
  rounds: number;
  sweep: string;
  quick: boolean;
}

export const trackingBenchCommand: CommandModule<object, TrackingArgs> = {
  command: 'tracking',
  describe: 'dirty-page tracking strategies and mappers on every workload, as the paper measures them',
  builder: (yargs) =>
    yargs
      .option('json', { type: 'boolean', default: false, describe: 'print only the report as JSON' })
      .option('svg', { type: 'string', default: 'bench-out/tracking.svg', describe: 'where to write the chart' })
      .option('workloads', { type: 'string', default: TRACKING_BENCH_DEFAULTS.workloads.join(','), describe: 'comma-separated workloads' })
      .option('strategies', {
        type: 'string',
        default: TRACKING_BENCH_DEFAULTS.strategies.join(','),
        describe: 'comma-separated strategies (none is the baseline)',
      })
      .option('exit-cost-ns', {
        type: 'string',
        default: TRACKING_BENCH_DEFAULTS.exitCostsNs.join(','),
        describe: 'modelled VM exit costs to run with',
      })
      .option('measure-ms', {
        type: 'number',
        default: TRACKING_BENCH_DEFAULTS.measureMs,
        describe: 'measured wall time per configuration and round',
      })
      .option('warmup-ms', {
        type: 'number',
        default: TRACKING_BENCH_DEFAULTS.trackerWarmupMs,
        describe: 'time each configuration runs before it is measured',
      })
      .option('rounds', { type: 'number', default: TRACKING_BENCH_DEFAULTS.rounds, describe: 'rounds (configurations take turns)' })
      .option('sweep', {
        type: 'string',
        default: TRACKING_BENCH_DEFAULTS.sweepEpochsMs.join(','),
        describe: 'epoch lengths of the jbb sweep ("" to skip)',
      })
      .option('quick', {
        type: 'boolean',
        default: false,
        describe: 'a short run to see that everything works',
      }) as unknown as Argv<TrackingArgs>,
  handler: async (argv) => {
    const workloads = listFlag(argv.workloads, '--workloads', GUEST_NAMES) as GuestName[];
    const strategies = listFlag(argv.strategies, '--strategies', TRACKING_STRATEGIES) as TrackingStrategyName[];
    if (!strategies.includes('none')) strategies.unshift('none');
    const quick = argv.quick;
    const report = await runTrackingBench({
      ...TRACKING_BENCH_DEFAULTS,
      workloads,
      strategies,
      exitCostsNs: numberList(argv['exit-cost-ns'], '--exit-cost-ns'),
      measureMs: quick ? 150 : integerFlag(argv['measure-ms'], '--measure-ms', 20),
      rounds: quick ? 1 : integerFlag(argv.rounds, '--rounds', 1),
      warmupInstructions: quick ? 20_000_000 : TRACKING_BENCH_DEFAULTS.warmupInstructions,
      trackerWarmupMs: quick ? 50 : integerFlag(argv['warmup-ms'], '--warmup-ms', 0),
      sweepEpochsMs: argv.sweep === '' ? [] : quick ? [20, 50] : numberList(argv.sweep, '--sweep'),
      progress: (line) => process.stderr.write(`hbft bench tracking: ${line}\n`),
    });
    mkdirSync(dirname(argv.svg), { recursive: true });
    writeFileSync(argv.svg, trackingSvg(report));
    if (argv.json) process.stdout.write(`${JSON.stringify({ ...report, targets: trackingTargets(report) }, null, 2)}\n`);
    else process.stdout.write(`${formatTrackingReport(report)}\nChart: ${argv.svg}\n`);
  },
};

interface ReplicationArgs {
  json: boolean;
  parts: string;
  'throughput-workloads': string;
  'failover-kills': number;
  'failover-taps': string;
  'stream-rounds': number;
  quick: boolean;
}

export const replicationBenchCommand: CommandModule<object, ReplicationArgs> = {
  command: 'replication',
  describe:
    "checkpoint stream, pause, protected throughput, and (root: kvnet on TAPs in a network namespace) output-commit latency and clients' stall across a kill",
  builder: (yargs) =>
    yargs
      .option('json', { type: 'boolean', default: false, describe: 'print only the report as JSON' })
      .option('parts', { type: 'string', default: REPLICATION_BENCH_PARTS.join(','), describe: 'which measurements to run' })
      .option('throughput-workloads', {
        type: 'string',
        default: REPLICATION_BENCH_DEFAULTS.throughputWorkloads.join(','),
        describe: 'the workloads of the throughput part',
      })
      .option('failover-kills', {
        type: 'number',
        default: REPLICATION_BENCH_DEFAULTS.failoverKills,
        describe: 'primaries to kill for the failover figure (per --failover-taps mode)',
      })
      .option('failover-taps', {
        type: 'string',
        default: REPLICATION_BENCH_DEFAULTS.failoverTaps.join(','),
        describe:
          "who makes the guest's TAPs in the failover part: persistent (made before the daemons) and/or daemon (--tap creates them); kills alternate between them",
      })
      .option('stream-rounds', {
        type: 'number',
        default: REPLICATION_BENCH_DEFAULTS.streamRounds,
        describe: 'rounds of the stream part (raw TCP, then sealed and --insecure checkpoints)',
      })
      .option('quick', {
        type: 'boolean',
        default: false,
        describe: 'a short run to see that everything works',
      })
      .epilogue(
        'The latency and failover parts need root and redis-tools; on a shared machine: flock /tmp/hbft-cluster.lock npx hbft bench replication. ' +
          'Progress goes to stderr; the tables (or the JSON) to stdout.',
      ) as unknown as Argv<ReplicationArgs>,
  handler: async (argv) => {
    const quick = argv.quick;
    const report = await runReplicationBench({
      ...REPLICATION_BENCH_DEFAULTS,
      parts: listFlag(argv.parts, '--parts', REPLICATION_BENCH_PARTS) as ReplicationBenchPart[],
      throughputWorkloads: listFlag(argv['throughput-workloads'], '--throughput-workloads', GUEST_NAMES) as GuestName[],
      failoverKills: quick ? 2 : integerFlag(argv['failover-kills'], '--failover-kills', 1),
      failoverTaps: listFlag(argv['failover-taps'], '--failover-taps', TAP_MODES),
      streamRounds: integerFlag(argv['stream-rounds'], '--stream-rounds', 1),
      ...(quick
        ? {
            streamMiB: 32,
            streamRounds: 1,
            pauseEpochs: 5,
            latencyEpochsMs: [20],
            latencyRequests: 60,
            throughputSeconds: 2,
            throughputRounds: 1,
          }
        : {}),
      progress: (line) => process.stderr.write(`hbft bench replication: ${line}\n`),
    });
    process.stdout.write(argv.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReplicationReport(report)}\n`);
  },
};

interface FalseTakeoverArgs {
  json: boolean;
  load: string;
  'duration-s': number;
  'burst-connections': number;
  'burst-every-s': number;
  seed: number;
  'daemon-args': string;
  'logs-dir': string;
}

/** An hour is what the issue asks for; a day is the most one flag may ask. */
const FALSE_TAKEOVER_DURATION_S_MAX = 86_400;

export const falseTakeoverBenchCommand: CommandModule<object, FalseTakeoverArgs> = {
  command: 'false-takeovers',
  describe: 'takeovers from a live primary per hour, for an idle or a loaded pair at the default failover timeout',
  builder: (yargs) =>
    yargs
      .option('json', { type: 'boolean', default: false, describe: 'print only the report as JSON' })
      .option('load', { type: 'string', default: 'idle', describe: `what the pair serves: ${FALSE_TAKEOVER_LOADS.join(' or ')}` })
      .option('duration-s', { type: 'number', default: 3600, describe: 'how long the pair runs' })
      .option('burst-connections', {
        type: 'number',
        default: FALSE_TAKEOVER_DEFAULTS.burstConnections,
        describe: 'loaded: plain connections opened at once in each burst',
      })
      .option('burst-every-s', { type: 'number', default: FALSE_TAKEOVER_DEFAULTS.burstEveryS, describe: 'loaded: seconds between bursts' })
      .option('seed', { type: 'number', default: 1, describe: 'seed of the load (loaded)' })
      .option('daemon-args', {
        type: 'string',
        default: '',
        describe: 'extra flags for both daemons, space-separated (default timing when empty)',
      })
      .option('logs-dir', {
        type: 'string',
        default: 'bench-out/false-takeovers',
        describe: 'where the logs of a pair that took over go ("" for nowhere)',
      })
      .epilogue(
        'Each pair runs kvnet on TAPs in a network namespace of its own (root; redis-tools and curl). On a shared machine: flock /tmp/hbft-cluster.lock npx hbft bench false-takeovers. Progress goes to stderr; the report (or the JSON) to stdout.',
      ) as unknown as Argv<FalseTakeoverArgs>,
  handler: async (argv) => {
    const [load] = listFlag(argv.load, '--load', FALSE_TAKEOVER_LOADS);
    const durationS = integerFlag(argv['duration-s'], '--duration-s', 10);
    if (durationS > FALSE_TAKEOVER_DURATION_S_MAX)
      throw new UsageError(`--duration-s: at most ${FALSE_TAKEOVER_DURATION_S_MAX}, got ${durationS}`);
    const report = await runFalseTakeoverBench({
      load,
      durationS,
      daemonArgs: argv['daemon-args'].split(' ').filter(Boolean),
      burstConnections: integerFlag(argv['burst-connections'], '--burst-connections', 1),
      burstEveryS: integerFlag(argv['burst-every-s'], '--burst-every-s', 1),
      loadStretchS: FALSE_TAKEOVER_DEFAULTS.loadStretchS,
      seed: integerFlag(argv.seed, '--seed', 0),
      logsDir: argv['logs-dir'] === '' ? null : argv['logs-dir'],
      progress: (line) => process.stderr.write(`hbft bench false-takeovers: ${line}\n`),
    });
    process.stdout.write(argv.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatFalseTakeoverReport(report)}\n`);
  },
};

interface NetworkArgs {
  json: boolean;
  targets: string;
  tests: string;
  requests: number;
  clients: number;
  'epoch-ms': number;
  memory: string;
}

/** Most requests per test one flag may ask for, so a typo does not tie up the machine for hours. */
const NETWORK_REQUESTS_MAX = 10_000_000;
/** redis-benchmark's own limit on clients is far higher; kvnet serves 1,024 connections at once. */
const NETWORK_CLIENTS_MAX = 1024;

export const networkBenchCommand: CommandModule<object, NetworkArgs> = {
  command: 'network',
  describe:
    "Debian's redis-benchmark against redis-server, kv unprotected on a TAP, and kv protected through the daemons, side by side in one run (root)",
  builder: (yargs) =>
    yargs
      .option('json', { type: 'boolean', default: false, describe: 'print only the report as JSON' })
      .option('targets', {
        type: 'string',
        default: NETWORK_BENCH_DEFAULTS.targets.join(','),
        describe: `comma-separated: ${NETWORK_BENCH_TARGETS.join(', ')}`,
      })
      .option('tests', {
        type: 'string',
        default: NETWORK_BENCH_DEFAULTS.tests.join(','),
        describe: `redis-benchmark -t: ${NETWORK_BENCH_TESTS.join(', ')}`,
      })
      .option('requests', { type: 'number', default: NETWORK_BENCH_DEFAULTS.requests, describe: 'redis-benchmark -n: requests per test' })
      .option('clients', { type: 'number', default: NETWORK_BENCH_DEFAULTS.clients, describe: 'redis-benchmark -c: parallel connections' })
      .option('epoch-ms', { type: 'number', default: NETWORK_BENCH_DEFAULTS.epochMs, describe: "the protected pair's epoch" })
      .option('memory', { type: 'string', default: NETWORK_BENCH_DEFAULTS.memory, describe: "each guest's memory" })
      .epilogue(
        'Everything runs in a network namespace of its own (no port outside it is bound), one server at a time. ' +
          'On a shared machine: flock /tmp/hbft-cluster.lock npx hbft bench network. Progress goes to stderr; the table (or the JSON) to stdout.',
      ) as unknown as Argv<NetworkArgs>,
  handler: async (argv) => {
    const requests = integerFlag(argv.requests, '--requests', 1);
    if (requests > NETWORK_REQUESTS_MAX) throw new UsageError(`--requests: at most ${NETWORK_REQUESTS_MAX}, got ${requests}`);
    const clients = integerFlag(argv.clients, '--clients', 1);
    if (clients > NETWORK_CLIENTS_MAX) throw new UsageError(`--clients: at most ${NETWORK_CLIENTS_MAX}, got ${clients}`);
    memoryBytesFrom(argv.memory);
    const report = await runNetworkBench({
      targets: listFlag(argv.targets, '--targets', NETWORK_BENCH_TARGETS),
      tests: listFlag(argv.tests, '--tests', NETWORK_BENCH_TESTS),
      requests,
      clients,
      epochMs: integerFlag(argv['epoch-ms'], '--epoch-ms', 1),
      memory: argv.memory,
      progress: (line) => process.stderr.write(`hbft bench network: ${line}\n`),
    });
    process.stdout.write(argv.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatNetworkBenchReport(report)}\n`);
  },
};
