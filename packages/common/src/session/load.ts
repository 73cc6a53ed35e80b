/**
 * The load generator behind `hbft load`: N session clients, each doing one operation at a time
 * (INCR on counter keys, SET and GET on register keys, chosen by a seeded mix), recording a history;
 * then a final read of every key and the checker's verdict. A client whose session ends (a gap, or
 * no node reachable) records its in-flight operation as unknown and starts a new session.
 */
import { HbftError, UsageError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { SeededRandom } from '../random.ts';
import { checkHistory, type Verdict } from './checker.ts';
import { SessionClient, type ConnectFunction } from './client.ts';
import { systemClock, type Clock } from './clock.ts';
import { SessionErrorCode } from './errors.ts';
import {
  HistoryRecorder,
  OPERATION_KINDS,
  type HistoryEntry,
  type HistoryHeader,
  type OperationKind,
  type PendingOperation,
} from './history.ts';
import { RespError, type RespValue } from './resp.ts';

export type OperationMix = Record<OperationKind, number>;

export const LOAD_DEFAULTS = {
  clients: 8,
  keys: 16,
  mix: { incr: 50, set: 40, get: 10 } as OperationMix,
  progressIntervalMs: 1000,
  /** After the run, how long in-flight operations may take before they are recorded unknown. */
  drainTimeoutMs: 15_000,
  finalReadAttempts: 3,
  mgetKeysMax: 200,
} as const;

/** Reads `incr=50,set=40,get=10` (weights; kinds left out get 0). */
export function parseMix(text: string, flag: string): OperationMix {
  const mix: OperationMix = { incr: 0, set: 0, get: 0 };
  for (const part of text
    .split(',')
    .map((piece) => piece.trim())
    .filter(Boolean)) {
    const match = /^(\w+)\s*=\s*(\d+(?:\.\d+)?)$/.exec(part);
    const kind = match?.[1]?.toLowerCase() as OperationKind | undefined;
    if (!match || kind === undefined || !OPERATION_KINDS.includes(kind)) {
      throw new UsageError(
        `${flag}: expected KIND=WEIGHT pairs with KIND one of ${OPERATION_KINDS.join(', ')} (for example incr=50,set=40,get=10), got "${part}"`,
      );
    }
    mix[kind] = Number(match[2]);
  }
  if (mix.incr + mix.set + mix.get <= 0) throw new UsageError(`${flag}: at least one weight must be positive`);
  return mix;
}

export function formatMix(mix: OperationMix): string {
  return OPERATION_KINDS.map((kind) => `${kind}=${mix[kind]}`).join(',');
}

export interface LoadProgress {
  elapsedMs: number;
  ok: number;
  fail: number;
  unknown: number;
  /** Acknowledged operations per second over the last interval. */
  intervalOpsPerS: number;
  /** The highest generation that has answered so far. */
  generation: number;
  failovers: number;
  /** Clients whose session is attached right now. */
  connectedClients: number;
}

export interface LoadOptions {
  servers: readonly string[];
  clients?: number;
  /** Stop issuing operations after this long … */
  durationMs?: number;
  /** … or after this many operations in total (whichever comes first). */
  operations?: number;
  keys?: number;
  mix?: OperationMix;
  seed: number;
  /** Keys are `PREFIX:c:N` (counters) and `PREFIX:r:N` (registers); a fresh prefix keeps runs apart. */
  keyPrefix: string;
  connect?: ConnectFunction;
  clock?: Clock;
  logger?: Logger;
  responseTimeoutMs?: number;
  /** A client whose session finds no serving node for this long gives up (E_SESSION_UNREACHABLE). */
  reconnectDeadlineMs?: number;
  progressIntervalMs?: number;
  onProgress?: (progress: LoadProgress) => void;
  /** Each history entry as soon as it is known (header, operations and failovers, final read). */
  onEntry?: (entry: HistoryEntry) => void;
  /** Ends the run early: no new operations, in-flight ones drain, then the final read as usual. */
  signal?: AbortSignal;
  drainTimeoutMs?: number;
}

export interface LoadResult {
  header: HistoryHeader;
  /** Header, operations, failovers and the final read, in that order. */
  history: HistoryEntry[];
  final: Record<string, string | null>;
  verdict: Verdict;
}

export function counterKey(prefix: string, index: number): string {
  return `${prefix}:c:${index}`;
}

export function registerKey(prefix: string, index: number): string {
  return `${prefix}:r:${index}`;
}

/** Each client's own random stream, derived from the run's seed. */
function clientRandom(seed: number, client: number): SeededRandom {
  return new SeededRandom((seed + Math.imul(client + 1, 0x9e3779b9)) >>> 0);
}

function pickKind(random: SeededRandom, mix: OperationMix): OperationKind {
  const total = mix.incr + mix.set + mix.get;
  let point = (random.nextU32() / 2 ** 32) * total;
  for (const kind of OPERATION_KINDS) {
    if (point < mix[kind]) return kind;
    point -= mix[kind];
  }
  return 'incr';
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const clients = options.clients ?? LOAD_DEFAULTS.clients;
  const keys = options.keys ?? LOAD_DEFAULTS.keys;
  const mix = options.mix ?? LOAD_DEFAULTS.mix;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();
  if (options.durationMs === undefined && options.operations === undefined) throw new UsageError('give a duration or an operation count');
  if (!(clients >= 1 && keys >= 1)) throw new UsageError('clients and keys must be at least 1');
  const recorder = new HistoryRecorder(clock, options.onEntry);
  const header: HistoryHeader = {
    type: 'header',
    seed: options.seed,
    servers: [...options.servers],
    clients,
    keys,
    keyPrefix: options.keyPrefix,
    mix,
    startedAt: new Date().toISOString(),
  };
  options.onEntry?.(header);
  const sessionOptions = {
    servers: options.servers,
    connect: options.connect,
    clock,
    logger,
    responseTimeoutMs: options.responseTimeoutMs,
    reconnectDeadlineMs: options.reconnectDeadlineMs ?? 30_000,
  };

  const sessions: (SessionClient | null)[] = new Array(clients).fill(null);
  let ticketsLeft = options.operations ?? Infinity;
  let stopping = false;
  const fatal: HbftError[] = [];
  const counts = { ok: 0, fail: 0, unknown: 0 };
  let generationMax = 0;

  const openSession = (client: number): SessionClient => {
    const session = new SessionClient({ ...sessionOptions, random: clientRandom(options.seed ^ 0x51ed, client) });
    session.on('failover', (info) => {
      recorder.failover(client, {
        from: info.from,
        to: info.to,
        fromGeneration: info.fromGeneration,
        toGeneration: info.toGeneration,
        gapMs: info.gapMs,
      });
    });
    sessions[client] = session;
    return session;
  };

  const runClient = async (client: number): Promise<void> => {
    const random = clientRandom(options.seed, client);
    let session = openSession(client);
    let sequence = 0;
    while (!stopping && ticketsLeft > 0) {
      ticketsLeft--;
      const kind = pickKind(random, mix);
      const index = random.below(keys);
      const key = kind === 'incr' ? counterKey(options.keyPrefix, index) : registerKey(options.keyPrefix, index);
      const value = kind === 'set' ? `${client}.${sequence++}` : null;
      const pending = recorder.invoke(client, kind, key, value);
      const args = value !== null ? ['SET', key, value] : kind === 'incr' ? ['INCR', key] : ['GET', key];
      try {
        const reply = await session.request(args);
        record(pending, reply, session.generation);
      } catch (error) {
        const code = (error as HbftError).code;
        recorder.complete(pending, 'unknown', { error: `${code ?? 'error'}: ${(error as Error).message}` });
        counts.unknown++;
        if (stopping && code === SessionErrorCode.closed) break;
        if (code === SessionErrorCode.unreachable) {
          fatal.push(error as HbftError);
          break;
        }
        // The session cannot continue (a gap, a rejected handshake, lost input): start a new one.
        await session.close();
        session = openSession(client);
      }
    }
    await session.close();
  };

  const record = (pending: PendingOperation, reply: RespValue, generation: number) => {
    generationMax = Math.max(generationMax, generation);
    if (reply instanceof RespError) {
      recorder.complete(pending, 'fail', { generation, error: reply.message });
      counts.fail++;
      return;
    }
    const expected =
      pending.op === 'incr'
        ? typeof reply === 'number'
        : pending.op === 'set'
          ? reply === 'OK'
          : reply === null || typeof reply === 'string';
    if (!expected) {
      // A reply of the wrong type: the stream and the requests are out of step, so the effect is unknown.
      recorder.complete(pending, 'unknown', { error: `unexpected reply ${JSON.stringify(reply)}` });
      counts.unknown++;
      return;
    }
    recorder.complete(pending, 'ok', { generation, value: pending.op === 'set' ? undefined : (reply as string | number | null) });
    counts.ok++;
  };

  // Progress reports.
  const startedMs = clock.nowMs();
  let lastProgress = { atMs: startedMs, ok: 0 };
  let progressTimer: unknown = null;
  const progressIntervalMs = options.progressIntervalMs ?? LOAD_DEFAULTS.progressIntervalMs;
  const reportProgress = () => {
    const now = clock.nowMs();
    const live = sessions.filter((session): session is SessionClient => session !== null && !session.isClosed);
    options.onProgress?.({
      elapsedMs: now - startedMs,
      ...counts,
      intervalOpsPerS: now > lastProgress.atMs ? ((counts.ok - lastProgress.ok) * 1000) / (now - lastProgress.atMs) : 0,
      generation: generationMax,
      failovers: recorder.failovers.length,
      connectedClients: live.filter((session) => session.connected).length,
    });
    lastProgress = { atMs: now, ok: counts.ok };
  };
  const scheduleProgress = () => {
    progressTimer = clock.setTimeout(() => {
      reportProgress();
      scheduleProgress();
    }, progressIntervalMs);
  };
  if (options.onProgress) scheduleProgress();

  // The run: stop issuing at the deadline (or when aborted), then let in-flight operations finish
  // or give up on them.
  const running = Array.from({ length: clients }, (_, client) => runClient(client));
  let stopTimer: unknown = null;
  let drainTimer: unknown = null;
  const beginStop = () => {
    if (stopping) return;
    stopping = true;
    // In-flight operations get a while to finish; then their sessions close and they count as unknown.
    drainTimer = clock.setTimeout(() => {
      logger.warn('in-flight operations did not finish in time; recording them as unknown');
      for (const session of sessions) void session?.close();
    }, options.drainTimeoutMs ?? LOAD_DEFAULTS.drainTimeoutMs);
  };
  if (options.durationMs !== undefined) stopTimer = clock.setTimeout(beginStop, options.durationMs);
  if (options.signal?.aborted) beginStop();
  options.signal?.addEventListener('abort', beginStop, { once: true });
  await Promise.all(running);
  options.signal?.removeEventListener('abort', beginStop);
  stopping = true;
  for (const timer of [stopTimer, drainTimer, progressTimer]) if (timer !== null) clock.clearTimeout(timer);
  if (options.onProgress) reportProgress();

  // Clients that found no node for the whole reconnect deadline: a final read would fare no better.
  const [firstFatal] = fatal;
  if (firstFatal !== undefined) throw firstFatal;
  const usedKeys = [...new Set(recorder.operations.map((operation) => operation.key))].sort();
  const final = await finalRead(usedKeys, sessionOptions, logger);
  const finalEntry = { type: 'final' as const, at: recorder.now(), values: final };
  options.onEntry?.(finalEntry);
  const verdict = checkHistory({
    operations: recorder.operations,
    final,
    failovers: recorder.failovers,
    seed: options.seed,
    exactlyOnce: true,
  });
  return { header, history: [header, ...recorder.operations, ...recorder.failovers, finalEntry], final, verdict };
}

/** Reads every key with MGET on a fresh session, retrying on a new session if one fails. */
async function finalRead(
  keys: readonly string[],
  sessionOptions: ConstructorParameters<typeof SessionClient>[0],
  logger: Logger,
): Promise<Record<string, string | null>> {
  let lastError: unknown;
  for (let attempt = 0; attempt < LOAD_DEFAULTS.finalReadAttempts; attempt++) {
    const session = new SessionClient(sessionOptions);
    try {
      const values: Record<string, string | null> = {};
      const batches: Promise<void>[] = [];
      for (let at = 0; at < keys.length; at += LOAD_DEFAULTS.mgetKeysMax) {
        const batch = keys.slice(at, at + LOAD_DEFAULTS.mgetKeysMax);
        batches.push(
          session.request(['MGET', ...batch]).then((reply) => {
            if (!Array.isArray(reply) || reply.length !== batch.length)
              throw new HbftError('E_LOAD_FINAL_READ', `MGET answered ${JSON.stringify(reply)}`);
            batch.forEach((key, i) => {
              values[key] = reply[i] === null ? null : String(reply[i]);
            });
          }),
        );
      }
      await Promise.all(batches);
      return values;
    } catch (error) {
      lastError = error;
      logger.warn({ attempt, error: (error as Error).message }, 'final read failed');
    } finally {
      await session.close();
    }
  }
  throw lastError;
}
