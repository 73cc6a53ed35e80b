/**
 * `hbft load`: clients doing INCRs, SETs and GETs against the guest's Redis server (kvnet) while
 * you kill the primary, recording a history that a separate checker judges at the end (no
 * acknowledged write lost, none applied twice, counters within their acknowledged and
 * indeterminate increments, reads valid), with throughput, latency and the stalls clients saw.
 * Each client holds one ordinary RESP connection to the guest's address, Jepsen style: a request
 * whose reply never came is indeterminate, not lost. SIGUSR2 marks an instant (a kill) whose stall
 * the summary reports. `--check FILE` judges a saved history again without running any load.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { UsageError } from '@hbft/common/errors.ts';
import { createLogger } from '@hbft/common/log.ts';
import { checkHistory, formatVerdict, type Verdict } from '@hbft/common/session/checker.ts';
import { formatHistoryLine, parseHistory, type HistoryEntry } from '@hbft/common/session/history.ts';
import { formatMix, LOAD_DEFAULTS, parseMix, runLoad, type LoadOptions, type LoadProgress } from '@hbft/common/session/load.ts';
import { parseHostPort } from '@hbft/common/units.ts';
import { integerFlag } from './options.ts';

/** Exit status when the checker finds a violation (1 stays for errors, 2 for usage). */
export const EXIT_VIOLATIONS = 3;
const DURATION_S_DEFAULT = 10;

interface LoadArgs {
  servers?: string;
  clients: number;
  'duration-s'?: number;
  operations?: number;
  keys: number;
  mix: string;
  seed?: number;
  history?: string;
  json: boolean;
  'key-prefix'?: string;
  'response-timeout-ms'?: number;
  plain?: boolean;
  check?: string;
}

/** `--servers a:1,b:2` → checked addresses. */
export function parseServers(text: string | undefined, flag = '--servers'): string[] {
  const servers = (text ?? '')
    .split(',')
    .map((server) => server.trim())
    .filter(Boolean);
  if (servers.length === 0) throw new UsageError(`${flag}: name at least one node as HOST:PORT (comma-separated for several)`);
  for (const server of servers) parseHostPort(server, flag);
  return servers;
}

function formatProgress(progress: LoadProgress): string {
  return (
    `hbft load: ${(progress.elapsedMs / 1000).toFixed(1)} s  ok ${progress.ok}  failed ${progress.fail}  unknown ${progress.unknown}  ` +
    `${progress.intervalOpsPerS.toFixed(0)} ops/s  connected ${progress.connectedClients}  reconnects ${progress.reconnects}\n`
  );
}

function formatSummary(verdict: Verdict): string {
  const { stats } = verdict;
  const lines = [
    `operations: ${stats.operations} in ${(stats.durationMs / 1000).toFixed(2)} s — ${stats.ok} ok, ${stats.fail} failed, ${stats.unknown} unknown; ` +
      `${stats.throughputOpsPerS} ops/s; latency p50 ${stats.latencyMsP50.toFixed(2)} ms, p99 ${stats.latencyMsP99.toFixed(2)} ms, max ${stats.latencyMsMax.toFixed(2)} ms`,
  ];
  const { stalls } = verdict;
  lines.push(
    `stall: each client's longest time without a reply, over ${stalls.clients} clients: p50 ${stalls.gapMsP50.toFixed(1)} ms, max ${stalls.gapMsMax.toFixed(1)} ms`,
  );
  for (const mark of stalls.marks) {
    lines.push(
      `stall across mark "${mark.label}" at ${mark.at.toFixed(1)} ms: first reply after it p50 ${mark.afterMarkMsP50.toFixed(1)} ms, max ${mark.afterMarkMsMax.toFixed(1)} ms; ` +
        `gap spanning it p50 ${mark.gapMsP50.toFixed(1)} ms, max ${mark.gapMsMax.toFixed(1)} ms (${mark.clients} clients` +
        `${mark.clientsWithoutReply > 0 ? `; ${mark.clientsWithoutReply} got no reply after it` : ''})`,
    );
  }
  if (verdict.reconnects > 0) lines.push(`connections: ${verdict.reconnects} reconnection(s) after a broken connection`);
  return `${lines.join('\n')}\n`;
}

function report(verdict: Verdict, json: boolean, extra: Record<string, unknown>): void {
  if (json) process.stdout.write(`${JSON.stringify({ ...extra, verdict }, null, 2)}\n`);
  else process.stdout.write(formatSummary(verdict) + formatVerdict(verdict));
  if (!verdict.ok) process.exitCode = EXIT_VIOLATIONS;
}

export const loadCommand: CommandModule<object, LoadArgs> = {
  command: 'load',
  describe: "drive the guest's Redis server with plain RESP clients, then check the history (no lost or duplicated writes)",
  builder: (yargs) =>
    yargs
      .option('servers', {
        type: 'string',
        describe: "the guest's address, HOST:PORT (its IP and port 6379); several, comma-separated, are tried in turn",
      })
      .option('plain', {
        type: 'boolean',
        hidden: true,
        describe: 'deprecated, and without effect: every client is a plain RESP connection',
      })
      .option('clients', {
        type: 'number',
        default: LOAD_DEFAULTS.clients,
        describe: 'concurrent clients (one operation in flight each)',
      })
      .option('duration-s', { type: 'number', describe: `seconds of load (default ${DURATION_S_DEFAULT} unless --operations)` })
      .option('operations', { type: 'number', describe: 'stop after this many operations in total' })
      .option('keys', { type: 'number', default: LOAD_DEFAULTS.keys, describe: 'counter keys and register keys (K of each)' })
      .option('mix', { type: 'string', default: formatMix(LOAD_DEFAULTS.mix), describe: 'operation weights' })
      .option('seed', { type: 'number', describe: 'seed of the operation choices (printed; random when left out)' })
      .option('history', {
        type: 'string',
        describe: 'write the history here as JSON lines, each as its operation completes (SIGINT/SIGTERM end the run with its final read)',
      })
      .option('json', { type: 'boolean', default: false, describe: 'print the verdict as JSON' })
      .option('key-prefix', { type: 'string', describe: 'prefix of every key (default: fresh per run)' })
      .option('response-timeout-ms', {
        type: 'number',
        describe: `give up on a reply after this long, the request being indeterminate, and reconnect (default ${LOAD_DEFAULTS.responseTimeoutMs})`,
      })
      .option('check', { type: 'string', describe: 'judge a saved history file instead of running load' })
      .epilogue(
        'Each client holds one ordinary RESP connection; a request whose reply never came is indeterminate (unknown), and the client reconnects and goes on. ' +
          "SIGUSR2 marks an instant (send it right after killing a node): the summary and --json report, for each mark, the time from it to each client's first reply after it and the gap spanning it (p50 and max over clients). " +
          `Exit status: 0 when the checker finds nothing wrong, ${EXIT_VIOLATIONS} when it finds a violation, 1 on errors, 2 on bad flags. ` +
          'Every flag is also an environment variable (HBFT_SERVERS, HBFT_SEED, ...).',
      ),
  handler: async (argv) => {
    if (argv.plain !== undefined)
      process.stderr.write('hbft load: --plain is deprecated and does nothing: every client is a plain RESP connection now\n');
    if (argv.check) {
      let text: string;
      try {
        text = readFileSync(argv.check, 'utf8');
      } catch (error) {
        throw new UsageError(`--check: cannot read ${argv.check}: ${(error as Error).message}`);
      }
      const history = parseHistory(text, argv.check);
      if (!history.final) throw new UsageError(`--check: ${argv.check} has no final read (the run did not finish)`);
      const seed = history.header?.seed;
      if (seed !== undefined) process.stderr.write(`hbft load: checking ${argv.check} (seed ${seed})\n`);
      const verdict = checkHistory({
        operations: history.operations,
        final: history.final.values,
        reconnects: history.reconnects,
        marks: history.marks,
        seed,
      });
      report(verdict, argv.json, { history: argv.check, seed });
      return;
    }
    await runLoadCommand(argv);
  },
};

/**
 * SIGUSR2 marks an instant in the history. The handler goes in before the first line on standard
 * error, so that a test which waits for that line may send the signal (unhandled, it would end the
 * process); a signal before the run has started marks nothing.
 */
function listenForMarks(): { source: NonNullable<LoadOptions['markSource']>; stop: () => void } {
  let record: ((label: string) => void) | null = null;
  const onSignal = () => record?.('SIGUSR2');
  process.on('SIGUSR2', onSignal);
  return {
    source: (recorder) => {
      record = recorder;
      return () => {
        record = null;
      };
    },
    stop: () => process.off('SIGUSR2', onSignal),
  };
}

async function runLoadCommand(argv: LoadArgs): Promise<void> {
  const servers = parseServers(argv.servers);
  const clients = integerFlag(argv.clients, '--clients', 1);
  const keys = integerFlag(argv.keys, '--keys', 1);
  const operations = argv.operations === undefined ? undefined : integerFlag(argv.operations, '--operations', 1);
  const durationS = argv['duration-s'];
  if (durationS !== undefined && !(durationS > 0))
    throw new UsageError(`--duration-s: expected a positive number of seconds, got ${durationS}`);
  const durationMs = durationS !== undefined ? durationS * 1000 : operations === undefined ? DURATION_S_DEFAULT * 1000 : undefined;
  const mix = parseMix(argv.mix, '--mix');
  const seed = argv.seed === undefined ? (Math.random() * 2 ** 32) >>> 0 || 1 : integerFlag(argv.seed, '--seed', 1);
  const responseTimeoutMs =
    argv['response-timeout-ms'] === undefined ? undefined : integerFlag(argv['response-timeout-ms'], '--response-timeout-ms', 10);
  const keyPrefix = argv['key-prefix'] ?? `hbft-load-${Date.now().toString(36)}`;
  const logger = createLogger({ role: 'load', level: process.env.HBFT_LOG_LEVEL ?? 'warn' });
  // The history goes to its file line by line as operations complete (each write handed to the
  // kernel at once), so that a run that is stopped or dies can still be read, and checked once
  // its final read is in.
  let historyFd: number | null = null;
  if (argv.history) {
    try {
      historyFd = openSync(argv.history, 'w');
    } catch (error) {
      throw new UsageError(`--history: cannot write ${argv.history}: ${(error as Error).message}`);
    }
  }
  const marks = listenForMarks();
  process.stderr.write(
    `hbft load: seed ${seed} (repeat the operation choices with --seed ${seed}), ${clients} clients, ${keys} keys of each kind, mix ${formatMix(mix)}, ` +
      `${durationMs !== undefined ? `${durationMs / 1000} s` : ''}${durationMs !== undefined && operations !== undefined ? ' or ' : ''}${operations !== undefined ? `${operations} operations` : ''}, key prefix ${keyPrefix}\n`,
  );
  const writeEntry = (entry: HistoryEntry) => {
    if (historyFd !== null) writeSync(historyFd, formatHistoryLine(entry));
  };
  // SIGINT or SIGTERM ends the run early, with the final read and the verdict as at its end.
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted) return;
    process.stderr.write(`hbft load: ${signal}: stopping; in-flight operations finish, then the final read\n`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: Awaited<ReturnType<typeof runLoad>>;
  try {
    result = await runLoad({
      servers,
      clients,
      keys,
      mix,
      seed,
      keyPrefix,
      durationMs,
      operations,
      responseTimeoutMs,
      logger,
      onProgress: (progress) => process.stderr.write(formatProgress(progress)),
      onEntry: writeEntry,
      signal: abort.signal,
      markSource: marks.source,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    marks.stop();
    if (historyFd !== null) closeSync(historyFd);
  }
  if (argv.history)
    process.stderr.write(`hbft load: history written to ${argv.history} (check again with hbft load --check ${argv.history})\n`);
  report(result.verdict, argv.json, { seed, keyPrefix, servers });
}
