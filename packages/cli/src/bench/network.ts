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
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '@hbft/common/errors.ts';
import { markdownTable } from '@hbft/common/bench/table.ts';

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

/** Limits: how long one step may take before the bench gives up with a message saying which. */
const READY_TIMEOUT_MS = 90_000;
const BENCHMARK_TIMEOUT_MS = 900_000;
const LOG_BYTES_MAX = 64 * 1024;
/** Requests per test of the warm-up run before each server's measured run (a fifth of --requests, at most this). */
const WARM_UP_REQUESTS_MAX = 5000;

const BRIDGE_IP = '10.97.0.1';
const UNPROTECTED_GUEST_IP = '10.97.0.2';
const PROTECTED_GUEST_IP = '10.97.0.3';
const PREFIX = 24;
const REDIS_PORT = 6390;
const KV_PORT = 6379;
const REPLICATION_PORT = 7000;

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

/** A child process whose output is kept (bounded) for error messages. */
interface Child {
  process: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

function startChild(command: string, args: string[]): Child {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString()).slice(-LOG_BYTES_MAX);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      log += `\n${error.message}`;
      resolve(null);
    });
    child.once('exit', (code) => resolve(code));
  });
  return { process: child, log: () => log, exited };
}

/** Stops a child (SIGINT, then SIGKILL after a grace period) and waits for it. */
async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGINT');
  const stopped = await Promise.race([child.exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!stopped) {
    child.process.kill('SIGKILL');
    await child.exited;
  }
}

interface Finished {
  code: number | null;
  output: string;
}

async function run(command: string, args: string[], timeoutMs: number): Promise<Finished> {
  const child = startChild(command, args);
  const timer = setTimeout(() => child.process.kill('SIGKILL'), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, output: child.log() };
}

async function mustRun(command: string, args: string[]): Promise<void> {
  const result = await run(command, args, 30_000);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.output.trim()}`);
}

async function hasCommand(name: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${name}`], 10_000)).code === 0;
}

const CLI = new URL('../../bin/hbft.js', import.meta.url).pathname;

/** The namespace, its bridge and what runs in it. */
class BenchNamespace {
  readonly name = `hbft-bnet-${process.pid.toString(36)}`;

  async create(): Promise<void> {
    await run('ip', ['netns', 'del', this.name], 10_000);
    await mustRun('ip', ['netns', 'add', this.name]);
    await mustRun('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
    await mustRun('ip', ['-n', this.name, 'link', 'add', 'br0', 'type', 'bridge']);
    await mustRun('ip', ['-n', this.name, 'addr', 'add', `${BRIDGE_IP}/${PREFIX}`, 'dev', 'br0']);
    await mustRun('ip', ['-n', this.name, 'link', 'set', 'br0', 'up']);
  }

  async destroy(): Promise<void> {
    await run('ip', ['netns', 'del', this.name], 10_000);
  }

  start(command: string, args: string[]): Child {
    return startChild('ip', ['netns', 'exec', this.name, command, ...args]);
  }

  run(command: string, args: string[], timeoutMs: number): Promise<Finished> {
    return run('ip', ['netns', 'exec', this.name, command, ...args], timeoutMs);
  }

  /** Puts a TAP device on the bridge once its daemon has created it. */
  async bridgeTap(tap: string, owner: Child): Promise<void> {
    const deadline = performance.now() + READY_TIMEOUT_MS;
    while ((await run('ip', ['-n', this.name, 'link', 'show', tap], 10_000)).code !== 0) {
      if (owner.process.exitCode !== null || performance.now() > deadline)
        throw new Error(`TAP ${tap} never appeared; the daemon's output:\n${owner.log()}`);
      await sleep(100);
    }
    await mustRun('ip', ['-n', this.name, 'link', 'set', tap, 'master', 'br0', 'up']);
  }

  /** Waits until a server answers PING (for a protected guest: once the backup holds its state). */
  async waitForPing(host: string, port: number, owners: Child[]): Promise<void> {
    const deadline = performance.now() + READY_TIMEOUT_MS;
    for (;;) {
      const ping = await this.run('redis-cli', ['-h', host, '-p', String(port), 'PING'], 10_000);
      if (ping.output.trim() === 'PONG') return;
      const dead = owners.find((owner) => owner.process.exitCode !== null);
      if (dead !== undefined || performance.now() > deadline)
        throw new Error(`${host}:${port} never answered PING; the server's output:\n${owners.map((o) => o.log()).join('\n---\n')}`);
      await sleep(250);
    }
  }
}

/** Starts one target in the namespace; returns where it listens and what to stop afterwards. */
async function startTarget(
  namespace: BenchNamespace,
  target: NetworkBenchTarget,
  options: NetworkBenchOptions,
): Promise<{ host: string; port: number; children: Child[] }> {
  const node = process.execPath;
  switch (target) {
    case 'redis-server': {
      const server = namespace.start('redis-server', [
        '--bind',
        BRIDGE_IP,
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
      await namespace.waitForPing(BRIDGE_IP, REDIS_PORT, [server]);
      return { host: BRIDGE_IP, port: REDIS_PORT, children: [server] };
    }
    case 'kv-unprotected': {
      const guest = namespace.start(node, [
        CLI,
        'run',
        'kvnet',
        '--tap',
        'hbnet0',
        '--guest-ip',
        `${UNPROTECTED_GUEST_IP}/${PREFIX}`,
        '--memory',
        options.memory,
      ]);
      await namespace.bridgeTap('hbnet0', guest);
      await namespace.waitForPing(UNPROTECTED_GUEST_IP, KV_PORT, [guest]);
      return { host: UNPROTECTED_GUEST_IP, port: KV_PORT, children: [guest] };
    }
    case 'kv-protected': {
      const common = ['--guest', 'kvnet', '--guest-ip', `${PROTECTED_GUEST_IP}/${PREFIX}`, '--memory', options.memory, '--insecure'];
      const backup = namespace.start(node, [
        CLI,
        'backup',
        '--listen',
        `127.0.0.1:${REPLICATION_PORT}`,
        '--serve',
        '127.0.0.1:6381',
        '--tap',
        'hbnetb0',
        ...common,
      ]);
      const primary = namespace.start(node, [
        CLI,
        'primary',
        '--backup',
        `127.0.0.1:${REPLICATION_PORT}`,
        '--serve',
        '127.0.0.1:6382',
        '--epoch-ms',
        String(options.epochMs),
        '--tap',
        'hbnetp0',
        ...common,
      ]);
      await namespace.bridgeTap('hbnetb0', backup);
      await namespace.bridgeTap('hbnetp0', primary);
      await namespace.waitForPing(PROTECTED_GUEST_IP, KV_PORT, [primary, backup]);
      // The primary lists before the backup, so that it is stopped first and the backup does not
      // take over while the bench ends.
      return { host: PROTECTED_GUEST_IP, port: KV_PORT, children: [primary, backup] };
    }
  }
}

/** Runs the bench; throws with a message naming what is missing or what failed. */
export async function runNetworkBench(options: NetworkBenchOptions): Promise<NetworkBenchReport> {
  if (process.getuid?.() !== 0) {
    throw new UsageError('hbft bench network needs root: it makes a network namespace, a bridge and TAP devices');
  }
  for (const [tool, pkg] of [
    ['ip', 'iproute2'],
    ['redis-benchmark', 'redis-tools'],
    ['redis-cli', 'redis-tools'],
    ['redis-server', 'redis-server'],
  ] as const) {
    if (!(await hasCommand(tool))) throw new UsageError(`${tool} is missing: apt-get install ${pkg} (scripts/install-system-deps.sh)`);
  }
  const benchmarkArgs = ['-c', String(options.clients), '-n', String(options.requests), '-t', options.tests.join(','), '--csv'];
  const warmUpRequests = Math.max(1, Math.min(WARM_UP_REQUESTS_MAX, Math.floor(options.requests / 5)));
  const report: NetworkBenchReport = {
    command: `redis-benchmark ${benchmarkArgs.join(' ')}`,
    requests: options.requests,
    clients: options.clients,
    epochMs: options.epochMs,
    rows: [],
  };
  const namespace = new BenchNamespace();
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
