/**
 * `hbft bench false-takeovers`: how often a backup takes over from a primary that is alive, at the
 * default failover timeout, on this machine. A pair of real daemons runs for the whole duration,
 * either idle or loaded (session clients as `hbft load` runs them, a burst of plain connections
 * every so often, and a client that pipelines large replies and never reads them). Any takeover is
 * false here, since nothing kills the primary: it is counted, the pair is restarted, and the run
 * goes on. Each pair's main-thread event-loop delay (from its /metrics) is reported too.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Cluster } from '../cluster.ts';
import { runLoad } from '@hbft/common/session/load.ts';
import { encodeCommand } from '@hbft/common/session/resp.ts';
import { formatVerdict } from '@hbft/common/session/checker.ts';

export type FalseTakeoverLoad = 'idle' | 'loaded';
export const FALSE_TAKEOVER_LOADS: readonly FalseTakeoverLoad[] = ['idle', 'loaded'];

export interface FalseTakeoverOptions {
  load: FalseTakeoverLoad;
  durationS: number;
  /** Extra daemon flags (both nodes), e.g. a non-default timeout; none by default. */
  daemonArgs: string[];
  /** Loaded only: a burst of this many plain connections … */
  burstConnections: number;
  /** … every this many seconds. */
  burstEveryS: number;
  /** Loaded only: length of each stretch of session load (its history is checked at the end of each). */
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
  /** Loaded only: session operations acknowledged, and whether every stretch's history checked OK. */
  sessionOperations: number;
  historiesOk: boolean | null;
  burstsRun: number;
  loadAverage: number[];
}

const POLL_MS = 500;
/** How often each daemon's event-loop delay is read (/metrics). */
const DELAY_EVERY_S = 10;

async function eventLoopDelay(port: number): Promise<EventLoopDelayMs | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
    const value = (quantile: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`hbft_event_loop_delay_seconds{quantile="${quantile}"}`));
      return line === undefined ? NaN : Number(line.split(' ').at(-1)) * 1000;
    };
    const delay = { p50: value('0.5'), p99: value('0.99'), max: value('1') };
    return Number.isNaN(delay.max) ? null : delay;
  } catch {
    return null;
  }
}

/** The backup's role from /readyz ('primary' once it took over), or null while unreachable. */
async function backupRole(cluster: Cluster): Promise<string | null> {
  try {
    return String((await cluster.readiness(cluster.ports.backupHttp)).role);
  } catch {
    return null;
  }
}

/** Opens `count` plain connections at once, sends each a PING, and closes each at its reply (or after 5 s). */
async function burst(port: number, count: number): Promise<void> {
  const ping = encodeCommand(['PING']);
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect(port, '127.0.0.1');
          const done = () => {
            socket.destroy();
            resolve();
          };
          const timer = setTimeout(done, 5_000);
          socket.on('connect', () => socket.write(ping));
          socket.on('data', () => {
            clearTimeout(timer);
            done();
          });
          socket.on('error', () => {
            clearTimeout(timer);
            done();
          });
        }),
    ),
  );
}

/**
 * A client that stores a 60 KB value and then pipelines GETs of it without ever reading a reply:
 * its socket stays open until `stop`.
 */
function nonReadingClient(port: number): { stop: () => void } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.on('connect', () => {
    socket.pause();
    socket.write(encodeCommand(['SET', 'bench:big', 'x'.repeat(60_000)]));
    const get = encodeCommand(['GET', 'bench:big']);
    for (let i = 0; i < 2_000; i++) socket.write(get);
  });
  return { stop: () => socket.destroy() };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runFalseTakeoverBench(options: FalseTakeoverOptions): Promise<FalseTakeoverReport> {
  const startedMs = performance.now();
  const deadlineMs = startedMs + options.durationS * 1000;
  const elapsedS = () => (performance.now() - startedMs) / 1000;
  const pairs: PairLife[] = [];
  let sessionOperations = 0;
  let historiesOk: boolean | null = options.load === 'loaded' ? true : null;
  let burstsRun = 0;
  let stretch = 0;
  while (performance.now() < deadlineMs) {
    const cluster = await Cluster.start({ primaryArgs: options.daemonArgs, backupArgs: options.daemonArgs });
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
      await cluster.waitProtected(60_000);
      options.progress(`${options.load}: pair ${pairs.length} protected at ${elapsedS().toFixed(0)} s`);
      if (options.load === 'loaded') {
        background.push(
          (async () => {
            while (!stopLoad && performance.now() < deadlineMs) {
              const stretchMs = Math.min(options.loadStretchS * 1000, deadlineMs - performance.now());
              if (stretchMs < 1_000) break;
              const result = await runLoad({
                servers: cluster.servers,
                durationMs: stretchMs,
                seed: options.seed + stretch,
                keyPrefix: `ft${stretch++}`,
                responseTimeoutMs: 5_000,
                reconnectDeadlineMs: 20_000,
              });
              sessionOperations += result.verdict.stats.ok;
              if (!result.verdict.ok) {
                historiesOk = false;
                options.progress(`history of stretch ${stretch} not OK: ${formatVerdict(result.verdict).slice(0, 500)}`);
              }
            }
          })(),
        );
        background.push(
          (async () => {
            while (!stopLoad && performance.now() < deadlineMs) {
              const reader = nonReadingClient(cluster.ports.primaryServe);
              await burst(cluster.ports.primaryServe, options.burstConnections);
              burstsRun++;
              for (let waited = 0; waited < options.burstEveryS * 1000 && !stopLoad; waited += POLL_MS) await sleep(POLL_MS);
              reader.stop();
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
          life.primaryDelayMs = (await eventLoopDelay(cluster.ports.primaryHttp)) ?? life.primaryDelayMs;
          life.backupDelayMs = (await eventLoopDelay(cluster.ports.backupHttp)) ?? life.backupDelayMs;
        }
        if (cluster.primary.process.exitCode !== null || (await backupRole(cluster)) === 'primary') {
          life.tookOver = true;
          const line = cluster.backup.log.find((l) => l.includes('PRIMARY FAILED')) ?? cluster.primary.log.slice(-3).join(' | ');
          life.takeoverReason = /"reason":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 300);
          options.progress(`${options.load}: FALSE TAKEOVER at ${elapsedS().toFixed(0)} s: ${life.takeoverReason}`);
          if (options.logsDir !== null) {
            mkdirSync(options.logsDir, { recursive: true });
            for (const [role, node] of [
              ['primary', cluster.primary],
              ['backup', cluster.backup],
            ] as const) {
              writeFileSync(join(options.logsDir, `${options.load}-pair${pairs.length}-${role}.log`), `${node.log.join('\n')}\n`);
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
        life.primaryDelayMs = (await eventLoopDelay(cluster.ports.primaryHttp)) ?? life.primaryDelayMs;
        life.backupDelayMs = (await eventLoopDelay(cluster.ports.backupHttp)) ?? life.backupDelayMs;
      }
    } finally {
      stopLoad = true;
      await Promise.all(background);
      life.endedAtS = elapsedS();
      await cluster.stop();
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
    sessionOperations,
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
      `  session operations acknowledged ${report.sessionOperations}, histories ${report.historiesOk ? 'OK' : 'NOT OK'}; bursts of connections ${report.burstsRun}`,
    );
  }
  lines.push(`  load average at the end ${report.loadAverage.join(' ')}`);
  return lines.join('\n');
}
