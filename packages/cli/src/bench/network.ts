/**
 * `hbft bench network`: unmodified Debian `redis-benchmark` against three servers in one run, each
 * alone on the machine while it is measured, all reached through the kernel's TCP stack over a Linux
 * bridge in a throwaway network namespace (so fixed addresses and ports collide with nothing):
 *
 *   redis-server      Debian's, listening on the bridge's own address;
 *   kv unprotected    `hbft run kvnet` on a TAP device on the bridge (no backup, no output commit);
 *   kv protected      `hbft primary` and `hbft backup` with kvnet, each on its own TAP on the bridge,
 *                     at --epoch-ms epochs: every frame the guest sends waits for the backup's ack.
 *
 * Each server gets the same unmeasured warm-up run first (a fifth of the requests, at most 5,000
 * per test), then the measured one.
 *
 * Needs root (namespace, bridge, TAP devices) and redis-tools and redis-server
 * (scripts/install-system-deps.sh). It binds no port outside its namespace, but it loads the
 * machine: on a shared machine run it under the cluster lock.
 */
import { markdownTable } from '@hbft/common/bench/table.ts';
import { BenchNamespace, requireNetworkBench, stopChild, type Child } from './benchNamespace.ts';

export type NetworkBenchTarget = 'redis-server' | 'kv-unprotected' | 'kv-protected';
export const NETWORK_BENCH_TARGETS: readonly NetworkBenchTarget[] = ['redis-server', 'kv-unprotected', 'kv-protected'];
export const NETWORK_BENCH_TESTS = ['set', 'get', 'incr', 'mset', 'ping'] as const;

const TARGET_TITLES: Record<NetworkBenchTarget, string> = {
  'redis-server': 'redis-server',
  'kv-unprotected': 'kv unprotected',
  'kv-protected': 'kv protected',
};

export interface NetworkBenchOptions {
  targets: readonly NetworkBenchTarget[];
  /** redis-benchmark -t */
  tests: readonly string[];
  /** redis-benchmark -n (per test) */
  requests: number;
  /** redis-benchmark -c */
  clients: number;
  /** The protected pair's epoch. */
  epochMs: number;
  /** Each guest's memory, as the CLI's --memory takes it. */
  memory: string;
  progress: (line: string) => void;
}

export const NETWORK_BENCH_DEFAULTS = {
  targets: NETWORK_BENCH_TARGETS,
  tests: ['set', 'get', 'incr'],
  requests: 100_000,
  clients: 50,
  epochMs: 20,
  memory: '256MiB',
} as const;

export interface NetworkBenchRow {
  target: NetworkBenchTarget;
  /** redis-benchmark's name for the test: SET, GET, INCR, MSET (10 keys), PING_INLINE, … */
  test: string;
  requestsPerS: number;
  p50Ms: number;
  p99Ms: number;
}

export interface NetworkBenchReport {
  command: string;
  requests: number;
  clients: number;
  epochMs: number;
  rows: NetworkBenchRow[];
}

const BENCHMARK_TIMEOUT_MS = 900_000;
/** Requests per test of the warm-up run before each server's measured run (a fifth of --requests, at most this). */
const WARM_UP_REQUESTS_MAX = 5000;
const REDIS_PORT = 6390;
/** The guests' host bytes on the namespace's 10.97.0.0/24 (the bridge is .1). */
const UNPROTECTED_HOST_BYTE = 2;
const PROTECTED_HOST_BYTE = 3;

/** redis-benchmark --csv: the header, then one quoted line per test. */
export function parseBenchmarkCsv(text: string, target: NetworkBenchTarget): NetworkBenchRow[] {
  const rows: NetworkBenchRow[] = [];
  let columns: string[] | null = null;
  for (const line of text.split(/\r?\n/)) {
    if (!line.startsWith('"')) continue;
    const cells = line.split('","').map((cell) => cell.replace(/^"|"$/g, ''));
    if (columns === null) {
      columns = cells;
      continue;
    }
    const value = (name: string): number => {
      const index = columns?.indexOf(name) ?? -1;
      const number = index < 0 ? Number.NaN : Number(cells[index]);
      if (!Number.isFinite(number)) throw new Error(`redis-benchmark's CSV has no number for ${name} in: ${line}`);
      return number;
    };
    rows.push({
      target,
      test: cells[0] ?? '?',
      requestsPerS: value('rps'),
      p50Ms: value('p50_latency_ms'),
      p99Ms: value('p99_latency_ms'),
    });
  }
  return rows;
}

/** Starts one target in the namespace; returns where it listens and what to stop afterwards. */
async function startTarget(
  namespace: BenchNamespace,
  target: NetworkBenchTarget,
  options: NetworkBenchOptions,
): Promise<{ host: string; port: number; children: Child[] }> {
  switch (target) {
    case 'redis-server': {
      const server = namespace.start('redis-server', [
        '--bind',
        namespace.bridgeIp,
        '--port',
        String(REDIS_PORT),
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--daemonize',
        'no',
      ]);
      await namespace.waitForPing(namespace.bridgeIp, REDIS_PORT, [server]);
      return { host: namespace.bridgeIp, port: REDIS_PORT, children: [server] };
    }
    case 'kv-unprotected':
      return namespace.startKvnet({ protected: false, hostByte: UNPROTECTED_HOST_BYTE, memory: options.memory });
    case 'kv-protected':
      return namespace.startKvnet({ protected: true, hostByte: PROTECTED_HOST_BYTE, memory: options.memory, epochMs: options.epochMs });
  }
}

/** Runs the bench; throws with a message naming what is missing or what failed. */
export async function runNetworkBench(options: NetworkBenchOptions): Promise<NetworkBenchReport> {
  await requireNetworkBench('hbft bench network', [
    ['redis-benchmark', 'redis-tools'],
    ['redis-cli', 'redis-tools'],
    ['redis-server', 'redis-server'],
  ]);
  const benchmarkArgs = ['-c', String(options.clients), '-n', String(options.requests), '-t', options.tests.join(','), '--csv'];
  const warmUpRequests = Math.max(1, Math.min(WARM_UP_REQUESTS_MAX, Math.floor(options.requests / 5)));
  const report: NetworkBenchReport = {
    command: `redis-benchmark ${benchmarkArgs.join(' ')}`,
    requests: options.requests,
    clients: options.clients,
    epochMs: options.epochMs,
    rows: [],
  };
  const namespace = new BenchNamespace('bnet', '10.97.0');
  await namespace.create();
  try {
    for (const target of options.targets) {
      options.progress(`${TARGET_TITLES[target]}: starting`);
      const started = await startTarget(namespace, target, options);
      try {
        // Each server is warmed up the same way first (for kv: the block engine compiles the
        // guest's paths during its first thousands of requests, which the first test would pay).
        const warmUp = await namespace.run(
          'redis-benchmark',
          [
            '-h',
            started.host,
            '-p',
            String(started.port),
            ...benchmarkArgs.map((arg, i) => (benchmarkArgs[i - 1] === '-n' ? String(warmUpRequests) : arg)),
          ],
          BENCHMARK_TIMEOUT_MS,
        );
        if (warmUp.code !== 0) throw new Error(`redis-benchmark's warm-up against ${TARGET_TITLES[target]} failed:\n${warmUp.output}`);
        options.progress(`${TARGET_TITLES[target]}: ${report.command}`);
        const result = await namespace.run(
          'redis-benchmark',
          ['-h', started.host, '-p', String(started.port), ...benchmarkArgs],
          BENCHMARK_TIMEOUT_MS,
        );
        if (result.code !== 0) {
          throw new Error(`redis-benchmark against ${TARGET_TITLES[target]} failed (exit ${result.code}):\n${result.output}`);
        }
        const rows = parseBenchmarkCsv(result.output, target);
        // One line per test (PING is two: inline and multi-bulk).
        if (rows.length < options.tests.length)
          throw new Error(`redis-benchmark printed ${rows.length} results for ${options.tests.length} tests:\n${result.output}`);
        report.rows.push(...rows);
        for (const row of rows)
          options.progress(
            `${TARGET_TITLES[target]}: ${row.test} ${row.requestsPerS.toFixed(0)}/s, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms`,
          );
      } finally {
        for (const child of started.children) await stopChild(child);
      }
    }
  } finally {
    await namespace.destroy();
  }
  return report;
}

function formatNumber(value: number): string {
  return Math.round(value).toLocaleString('en-US').replace(/,/g, ' ');
}

/** One line per test: each target's requests/s, p50 and p99, and kv's requests/s as a share of redis-server's. */
export function formatNetworkBenchReport(report: NetworkBenchReport): string {
  const targets = NETWORK_BENCH_TARGETS.filter((target) => report.rows.some((row) => row.target === target));
  const tests = [...new Set(report.rows.map((row) => row.test))];
  const headers = ['test'];
  for (const target of targets) {
    headers.push(`${TARGET_TITLES[target]} req/s`, 'p50 ms', 'p99 ms');
    if (target !== 'redis-server' && targets.includes('redis-server')) headers.push('of redis');
  }
  const rows = tests.map((test) => {
    const line = [test];
    const redis = report.rows.find((row) => row.target === 'redis-server' && row.test === test);
    for (const target of targets) {
      const row = report.rows.find((candidate) => candidate.target === target && candidate.test === test);
      line.push(row ? formatNumber(row.requestsPerS) : '-', row ? row.p50Ms.toFixed(3) : '-', row ? row.p99Ms.toFixed(3) : '-');
      if (target !== 'redis-server' && targets.includes('redis-server'))
        line.push(row && redis ? `${((100 * row.requestsPerS) / redis.requestsPerS).toFixed(0)} %` : '-');
    }
    return line;
  });
  return [`${report.command}; kv protected at ${report.epochMs} ms epochs`, '', markdownTable(headers, rows)].join('\n');
}
