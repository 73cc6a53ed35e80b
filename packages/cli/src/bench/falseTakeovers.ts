/**
 * `hbft bench false-takeovers`: how often a backup takes over from a primary that is alive, at the
 * default failover timeout, on this machine. A pair of real daemons running kvnet on TAPs in a
 * network namespace (benchNamespace.ts; root) runs for the whole duration, either idle or loaded:
 * plain RESP clients of the guest's IP as `hbft load` runs them, a burst of connections every so
 * often (`redis-benchmark`), and a client that pipelines large replies and never reads them. Any
 * takeover is false here, since nothing kills the primary: it is counted, the pair is restarted, and
 * the run goes on. Each pair's main-thread event-loop delay (from its /metrics) is reported too.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory, formatVerdict } from '@hbft/common/session/checker.ts';
import { parseHistory } from '@hbft/common/session/history.ts';
import {
  BACKUP_HTTP_PORT,
  BenchNamespace,
  PRIMARY_HTTP_PORT,
  requireNetworkBench,
  running,
  stopChild,
  type KvnetGuest,
} from './benchNamespace.ts';

export type FalseTakeoverLoad = 'idle' | 'loaded';
export const FALSE_TAKEOVER_LOADS: readonly FalseTakeoverLoad[] = ['idle', 'loaded'];

export interface FalseTakeoverOptions {
  load: FalseTakeoverLoad;
  durationS: number;
  /** Extra daemon flags (both nodes), e.g. a non-default timeout; none by default. */
  daemonArgs: string[];
  /** Loaded only: a burst of this many connections, one PING each … */
  burstConnections: number;
  /** … every this many seconds. */
  burstEveryS: number;
  /** Loaded only: length of each stretch of `hbft load` (its history is checked at the end of each). */
  loadStretchS: number;
  seed: number;
  /** Where the logs of a pair that took over are written (for the reason), or null. */
  logsDir: string | null;
  progress: (line: string) => void;
}

export const FALSE_TAKEOVER_DEFAULTS = {
  burstConnections: 200,
  burstEveryS: 30,
  loadStretchS: 20,
} as const;

/** Main-thread event-loop delay of one daemon over one pair's life, in ms. */
export interface EventLoopDelayMs {
  p50: number;
  p99: number;
  max: number;
}

export interface PairLife {
  startedAtS: number;
  endedAtS: number;
  /** The backup took over (a false takeover: nothing killed the primary). */
  tookOver: boolean;
  takeoverReason: string | null;
  primaryDelayMs: EventLoopDelayMs | null;
  backupDelayMs: EventLoopDelayMs | null;
}

export interface FalseTakeoverReport {
  load: FalseTakeoverLoad;
  durationS: number;
  daemonArgs: string[];
  falseTakeovers: number;
  falseTakeoversPerHour: number;
  pairs: PairLife[];
  /** Loaded only: operations acknowledged to the load's clients, and whether every stretch's history checked OK. */
  loadOperations: number;
  historiesOk: boolean | null;
  burstsRun: number;
  loadAverage: number[];
}

const POLL_MS = 500;
/** How often each daemon's event-loop delay is read (/metrics). */
const DELAY_EVERY_S = 10;
const KVNET_MEMORY = '64MiB';
const LOAD_CLIENTS = 8;

async function eventLoopDelay(namespace: BenchNamespace, port: number): Promise<EventLoopDelayMs | null> {
  const text = await namespace.httpGet(port, '/metrics');
  if (text === null) return null;
  const value = (quantile: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`hbft_event_loop_delay_seconds{quantile="${quantile}"}`));
    return line === undefined ? NaN : Number(line.split(' ').at(-1)) * 1000;
  };
  const delay = { p50: value('0.5'), p99: value('0.99'), max: value('1') };
  return Number.isNaN(delay.max) ? null : delay;
}

/** Whether the backup took over: its log says so, or the primary is gone. */
function tookOver(guest: KvnetGuest): boolean {
  return (guest.primary !== undefined && !running(guest.primary)) || (guest.backup?.log().includes('PRIMARY FAILED') ?? false);
}

/** `connections` connections at once, one PING each (redis-benchmark, as an unmodified client bursts). */
async function burst(namespace: BenchNamespace, guest: KvnetGuest, connections: number): Promise<void> {
  const args = [
    '-h',
    guest.host,
    '-p',
    String(guest.port),
    '-c',
    String(connections),
    '-n',
    String(connections),
    '-t',
    'ping_inline',
    '-q',
  ];
  await namespace.run('redis-benchmark', args, 60_000);
}

/** One stretch of `hbft load` in the namespace; returns its acknowledged operations and verdict text when not OK. */
async function loadStretch(
  namespace: BenchNamespace,
  guest: KvnetGuest,
  stretchMs: number,
  seed: number,
  keyPrefix: string,
  directory: string,
): Promise<{ ok: number; problem: string | null }> {
  const historyFile = join(directory, `${keyPrefix}.jsonl`);
  const load = namespace.startHbft([
    'load',
    ...['--servers', `${guest.host}:${guest.port}`, '--clients', String(LOAD_CLIENTS), '--duration-s', String(stretchMs / 1000)],
    ...['--seed', String(seed), '--key-prefix', keyPrefix, '--history', historyFile],
  ]);
  const code = await load.exited;
  try {
    const history = parseHistory(readFileSync(historyFile, 'utf8'), historyFile);
    if (history.final === undefined) return { ok: 0, problem: `the load (exit ${code}) made no final read:\n${load.log().slice(-500)}` };
    const verdict = checkHistory({ operations: history.operations, final: history.final.values, reconnects: history.reconnects });
    return { ok: verdict.stats.ok, problem: verdict.ok ? null : formatVerdict(verdict).slice(0, 500) };
  } catch (error) {
    return { ok: 0, problem: `the load (exit ${code}) left no history (${(error as Error).message}):\n${load.log().slice(-500)}` };
  } finally {
    rmSync(historyFile, { force: true });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runFalseTakeoverBench(options: FalseTakeoverOptions): Promise<FalseTakeoverReport> {
  await requireNetworkBench('hbft bench false-takeovers', [
    ['redis-cli', 'redis-tools'],
    ['redis-benchmark', 'redis-tools'],
    ['curl', 'curl'],
  ]);
  const namespace = new BenchNamespace('bft', '10.96.0');
  const directory = mkdtempSync(join(tmpdir(), 'hbft-bench-ft-'));
  await namespace.create();
  try {
    return await runPairs(options, namespace, directory);
  } finally {
    await namespace.destroy();
    rmSync(directory, { recursive: true, force: true });
  }
}

async function runPairs(options: FalseTakeoverOptions, namespace: BenchNamespace, directory: string): Promise<FalseTakeoverReport> {
  const startedMs = performance.now();
  const deadlineMs = startedMs + options.durationS * 1000;
  const elapsedS = () => (performance.now() - startedMs) / 1000;
  const pairs: PairLife[] = [];
  let loadOperations = 0;
  let historiesOk: boolean | null = options.load === 'loaded' ? true : null;
  let burstsRun = 0;
  let stretch = 0;
  while (performance.now() < deadlineMs) {
    // A fresh address and TAP names per pair, so that nothing of the last pair is in the way.
    const guest = await namespace.startKvnet({
      protected: true,
      hostByte: 10 + (pairs.length % 200),
      memory: KVNET_MEMORY,
      daemonArgs: options.daemonArgs,
    });
    const life: PairLife = {
      startedAtS: elapsedS(),
      endedAtS: 0,
      tookOver: false,
      takeoverReason: null,
      primaryDelayMs: null,
      backupDelayMs: null,
    };
    pairs.push(life);
    let stopLoad = false;
    const background: Promise<void>[] = [];
    try {
      options.progress(`${options.load}: pair ${pairs.length} protected at ${elapsedS().toFixed(0)} s`);
      if (options.load === 'loaded') {
        background.push(
          (async () => {
            while (!stopLoad && performance.now() < deadlineMs) {
              const stretchMs = Math.min(options.loadStretchS * 1000, deadlineMs - performance.now());
              if (stretchMs < 1_000) break;
              const result = await loadStretch(namespace, guest, stretchMs, options.seed + stretch, `ft${stretch++}`, directory);
              loadOperations += result.ok;
              if (result.problem !== null) {
                historiesOk = false;
                options.progress(`history of stretch ${stretch} not OK: ${result.problem}`);
              }
            }
          })(),
        );
        background.push(
          (async () => {
            while (!stopLoad && performance.now() < deadlineMs) {
              const reader = namespace.startScript(new URL('./nonReadingClient.ts', import.meta.url), [guest.host, String(guest.port)]);
              await burst(namespace, guest, options.burstConnections);
              burstsRun++;
              for (let waited = 0; waited < options.burstEveryS * 1000 && !stopLoad; waited += POLL_MS) await sleep(POLL_MS);
              await stopChild(reader);
            }
          })(),
        );
      }
      let lastReportS = elapsedS();
      let lastDelayS = elapsedS();
      while (performance.now() < deadlineMs) {
        await sleep(POLL_MS);
        if (elapsedS() - lastDelayS >= DELAY_EVERY_S) {
          // Cumulative since each daemon began serving: the last reading before a takeover stands for the pair.
          lastDelayS = elapsedS();
          life.primaryDelayMs = (await eventLoopDelay(namespace, PRIMARY_HTTP_PORT)) ?? life.primaryDelayMs;
          life.backupDelayMs = (await eventLoopDelay(namespace, BACKUP_HTTP_PORT)) ?? life.backupDelayMs;
        }
        if (tookOver(guest)) {
          life.tookOver = true;
          const line =
            guest.backup
              ?.log()
              .split('\n')
              .find((l) => l.includes('PRIMARY FAILED')) ??
            guest.primary?.log().split('\n').slice(-3).join(' | ') ??
            '';
          life.takeoverReason = /"reason":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 300);
          options.progress(`${options.load}: FALSE TAKEOVER at ${elapsedS().toFixed(0)} s: ${life.takeoverReason}`);
          if (options.logsDir !== null) {
            mkdirSync(options.logsDir, { recursive: true });
            for (const [role, node] of [
              ['primary', guest.primary],
              ['backup', guest.backup],
            ] as const) {
              if (node !== undefined) writeFileSync(join(options.logsDir, `${options.load}-pair${pairs.length}-${role}.log`), node.log());
            }
          }
          break;
        }
        if (elapsedS() - lastReportS >= 60) {
          lastReportS = elapsedS();
          options.progress(
            `${options.load}: ${lastReportS.toFixed(0)} s, false takeovers ${pairs.filter((p) => p.tookOver).length}, ` +
              `event-loop delay max primary ${life.primaryDelayMs?.max.toFixed(1) ?? '?'} ms, backup ${life.backupDelayMs?.max.toFixed(1) ?? '?'} ms`,
          );
        }
      }
      if (!life.tookOver) {
        life.primaryDelayMs = (await eventLoopDelay(namespace, PRIMARY_HTTP_PORT)) ?? life.primaryDelayMs;
        life.backupDelayMs = (await eventLoopDelay(namespace, BACKUP_HTTP_PORT)) ?? life.backupDelayMs;
      }
    } finally {
      stopLoad = true;
      await Promise.all(background);
      life.endedAtS = elapsedS();
      for (const child of guest.children) await stopChild(child);
    }
  }
  const falseTakeovers = pairs.filter((pair) => pair.tookOver).length;
  const { loadavg } = await import('node:os');
  return {
    load: options.load,
    durationS: options.durationS,
    daemonArgs: options.daemonArgs,
    falseTakeovers,
    falseTakeoversPerHour: (falseTakeovers * 3600) / options.durationS,
    pairs,
    loadOperations,
    historiesOk,
    burstsRun,
    loadAverage: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

export function formatFalseTakeoverReport(report: FalseTakeoverReport): string {
  const ms = (delay: EventLoopDelayMs | null) =>
    delay === null ? 'n/a' : `p50 ${delay.p50.toFixed(1)} / p99 ${delay.p99.toFixed(1)} / max ${delay.max.toFixed(1)} ms`;
  const lines = [
    `false takeovers, ${report.load} pair, ${report.durationS} s${report.daemonArgs.length > 0 ? ` (${report.daemonArgs.join(' ')})` : ' (default timing)'}: ` +
      `${report.falseTakeovers} (${report.falseTakeoversPerHour.toFixed(1)} per hour)`,
  ];
  for (const [index, pair] of report.pairs.entries()) {
    lines.push(
      `  pair ${index + 1}: ${pair.startedAtS.toFixed(0)}–${pair.endedAtS.toFixed(0)} s, ${pair.tookOver ? `TOOK OVER: ${pair.takeoverReason}` : 'no takeover'}; ` +
        `event-loop delay primary ${ms(pair.primaryDelayMs)}, backup ${ms(pair.backupDelayMs)}`,
    );
  }
  if (report.load === 'loaded') {
    lines.push(
      `  load operations acknowledged ${report.loadOperations}, histories ${report.historiesOk ? 'OK' : 'NOT OK'}; bursts of connections ${report.burstsRun}`,
    );
  }
  lines.push(`  load average at the end ${report.loadAverage.join(' ')}`);
  return lines.join('\n');
}
