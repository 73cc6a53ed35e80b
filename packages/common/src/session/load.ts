/**
 * The load generator behind `hbft load`: N clients, each doing one operation at a time (INCR on
 * counter keys, SET and GET on register keys, chosen by a seeded mix), recording a history; then a
 * final read of every key and the checker's verdict.
 *
 * The clients are plain, Jepsen style: each holds one ordinary RESP connection to the guest's
 * address, which survives a takeover because the guest's own TCP stack carries it. A request whose
 * reply never came (the connection reset or closed, or no reply within the response timeout) is
 * indeterminate, not lost: the client records it as unknown, reconnects and goes on with its next
 * operation, never resending one.
 */
import { HbftError, UsageError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { SeededRandom } from '../random.ts';
import { checkHistory, type Verdict } from './checker.ts';
import { systemClock, type Clock } from './clock.ts';
import {
  HISTORY_CLIENT_KIND,
  HistoryRecorder,
  OPERATION_KINDS,
  type HistoryEntry,
  type HistoryHeader,
  type OperationKind,
  type PendingOperation,
} from './history.ts';
import { PlainClient, type ConnectFunction } from './plainClient.ts';
import { RespError, respValueOf, type RespValue } from './resp.ts';

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
  /**
   * A client gives up on a reply after this long, and the request is indeterminate. Long: the
   * timeout costs the connection, and the connection surviving a takeover (through the client's TCP
   * retransmissions) is what a run across a kill is there to observe.
   */
  responseTimeoutMs: 10_000,
  reconnectDeadlineMs: 30_000,
  /** Between attempts to connect, doubling from the least to the most. */
  connectBackoffMsMin: 20,
  connectBackoffMsMax: 200,
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
  /** Clients' new connections after a broken one. */
  reconnects: number;
  /** Clients whose connection is open right now. */
  connectedClients: number;
}

export interface LoadOptions {
  /** HOST:PORT of the guest (usually one: its IP and port 6379); a client takes the first that answers. */
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
  /** Default `LOAD_DEFAULTS.responseTimeoutMs`. */
  responseTimeoutMs?: number;
  /** A client that cannot connect for this long gives up (E_LOAD_UNREACHABLE), and so does the run. */
  reconnectDeadlineMs?: number;
  progressIntervalMs?: number;
  onProgress?: (progress: LoadProgress) => void;
  /** Each history entry as soon as it is known (header, operations, reconnections, marks, final read). */
  onEntry?: (entry: HistoryEntry) => void;
  /** Ends the run early: no new operations, in-flight ones drain, then the final read as usual. */
  signal?: AbortSignal;
  drainTimeoutMs?: number;
  /**
   * Marks instants from outside (a kill, say) whose client-visible stall the verdict measures: called
   * once at the start with the function that records a mark; returns what stops marking.
   */
  markSource?: (mark: (label: string) => void) => () => void;
}

export interface LoadResult {
  header: HistoryHeader;
  /** Header, operations, reconnections, marks and the final read, in that order. */
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

/** One connection to read with at the end. */
interface Reader {
  request(args: string[]): Promise<RespValue>;
  close(): void;
}

const sleep = (clock: Clock, delayMs: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, delayMs));

/**
 * Connects a plain client, retrying with backoff until it connects (true), `stopped()` says to stop
 * (false), or the deadline passes (an E_LOAD_UNREACHABLE error naming the last failure).
 */
async function connectPlain(plain: PlainClient, clock: Clock, deadlineMs: number, stopped: () => boolean): Promise<boolean> {
  let backoffMs: number = LOAD_DEFAULTS.connectBackoffMsMin;
  for (;;) {
    if (stopped()) return false;
    try {
      await plain.connect();
      return true;
    } catch (error) {
      if (clock.nowMs() >= deadlineMs)
        throw new HbftError('E_LOAD_UNREACHABLE', `no node accepted a plain connection before the deadline: ${(error as Error).message}`);
      await sleep(clock, backoffMs);
      backoffMs = Math.min(backoffMs * 2, LOAD_DEFAULTS.connectBackoffMsMax);
    }
  }
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const clients = options.clients ?? LOAD_DEFAULTS.clients;
  const keys = options.keys ?? LOAD_DEFAULTS.keys;
  const mix = options.mix ?? LOAD_DEFAULTS.mix;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();
  if (options.durationMs === undefined && options.operations === undefined) throw new UsageError('give a duration or an operation count');
  if (!(clients >= 1 && keys >= 1)) throw new UsageError('clients and keys must be at least 1');
  const responseTimeoutMs = options.responseTimeoutMs ?? LOAD_DEFAULTS.responseTimeoutMs;
  const reconnectDeadlineMs = options.reconnectDeadlineMs ?? LOAD_DEFAULTS.reconnectDeadlineMs;
  const recorder = new HistoryRecorder(clock, options.onEntry);
  const header: HistoryHeader = {
    type: 'header',
    clientKind: HISTORY_CLIENT_KIND,
    seed: options.seed,
    servers: [...options.servers],
    clients,
    keys,
    keyPrefix: options.keyPrefix,
    mix,
    startedAt: new Date().toISOString(),
  };
  options.onEntry?.(header);
  const stopMarking = options.markSource?.((label) => recorder.mark(label));
  const plainOptions = { servers: options.servers, connect: options.connect, clock, responseTimeoutMs };

  const plainClients: (PlainClient | null)[] = new Array(clients).fill(null);
  let ticketsLeft = options.operations ?? Infinity;
  let stopping = false;
  const fatal: HbftError[] = [];
  const counts = { ok: 0, fail: 0, unknown: 0 };

  /** Takes a ticket and invokes the client's next operation. */
  const nextOperation = (client: number, random: SeededRandom, sequence: number): { pending: PendingOperation; args: string[] } => {
    ticketsLeft--;
    const kind = pickKind(random, mix);
    const index = random.below(keys);
    const key = kind === 'incr' ? counterKey(options.keyPrefix, index) : registerKey(options.keyPrefix, index);
    const value = kind === 'set' ? `${client}.${sequence}` : null;
    const pending = recorder.invoke(client, kind, key, value);
    const args = value !== null ? ['SET', key, value] : kind === 'incr' ? ['INCR', key] : ['GET', key];
    return { pending, args };
  };

  const runPlainClient = async (client: number): Promise<void> => {
    const random = clientRandom(options.seed, client);
    const plain = new PlainClient(plainOptions);
    plainClients[client] = plain;
    let sequence = 0;
    let connections = 0;
    /** Why the last connection ended, when this client ended it or saw it end. */
    let brokenReason: string | null = null;
    try {
      while (!stopping && ticketsLeft > 0) {
        // Connect before invoking, so that time without a reachable node costs no operation.
        if (plain.address === null) {
          if (!(await connectPlain(plain, clock, clock.nowMs() + reconnectDeadlineMs, () => stopping))) break;
          if (connections++ > 0) recorder.reconnect(client, brokenReason ?? 'the connection ended between requests');
          brokenReason = null;
          if (ticketsLeft <= 0) break;
        }
        const { pending, args } = nextOperation(client, random, sequence++);
        try {
          const reply = respValueOf(await plain.request(args));
          if (!record(pending, reply)) {
            // The replies and the requests are out of step: no later reply on this connection can be trusted.
            brokenReason = `unexpected reply ${JSON.stringify(reply)}`;
            plain.close();
          }
        } catch (error) {
          recorder.complete(pending, 'unknown', { error: `${(error as HbftError).code ?? 'error'}: ${(error as Error).message}` });
          counts.unknown++;
          brokenReason = (error as Error).message;
        }
      }
    } catch (error) {
      fatal.push(error as HbftError);
    } finally {
      plain.close();
    }
  };

  /** Records a reply; false when it is not of the type the command answers with. */
  const record = (pending: PendingOperation, reply: RespValue): boolean => {
    if (reply instanceof RespError) {
      recorder.complete(pending, 'fail', { error: reply.message });
      counts.fail++;
      return true;
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
      return false;
    }
    recorder.complete(pending, 'ok', { value: pending.op === 'set' ? undefined : (reply as string | number | null) });
    counts.ok++;
    return true;
  };

  // Progress reports.
  const startedMs = clock.nowMs();
  let lastProgress = { atMs: startedMs, ok: 0 };
  let progressTimer: unknown = null;
  const progressIntervalMs = options.progressIntervalMs ?? LOAD_DEFAULTS.progressIntervalMs;
  const reportProgress = () => {
    const now = clock.nowMs();
    options.onProgress?.({
      elapsedMs: now - startedMs,
      ...counts,
      intervalOpsPerS: now > lastProgress.atMs ? ((counts.ok - lastProgress.ok) * 1000) / (now - lastProgress.atMs) : 0,
      reconnects: recorder.reconnects.length,
      connectedClients: plainClients.filter((plain) => plain?.address != null).length,
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
  const running = Array.from({ length: clients }, (_, client) => runPlainClient(client));
  let stopTimer: unknown = null;
  let drainTimer: unknown = null;
  const beginStop = () => {
    if (stopping) return;
    stopping = true;
    // In-flight operations get a while to finish; then their connections close and they count as unknown.
    drainTimer = clock.setTimeout(() => {
      logger.warn('in-flight operations did not finish in time; recording them as unknown');
      for (const plain of plainClients) plain?.close();
    }, options.drainTimeoutMs ?? LOAD_DEFAULTS.drainTimeoutMs);
  };
  if (options.durationMs !== undefined) stopTimer = clock.setTimeout(beginStop, options.durationMs);
  if (options.signal?.aborted) beginStop();
  options.signal?.addEventListener('abort', beginStop, { once: true });
  await Promise.all(running);
  options.signal?.removeEventListener('abort', beginStop);
  stopMarking?.();
  stopping = true;
  for (const timer of [stopTimer, drainTimer, progressTimer]) if (timer !== null) clock.clearTimeout(timer);
  if (options.onProgress) reportProgress();

  // Clients that found no node for the whole reconnect deadline: a final read would fare no better.
  const [firstFatal] = fatal;
  if (firstFatal !== undefined) throw firstFatal;
  const usedKeys = [...new Set(recorder.operations.map((operation) => operation.key))].sort();
  const openReader = async (): Promise<Reader> => {
    const plain = new PlainClient(plainOptions);
    await connectPlain(plain, clock, clock.nowMs() + reconnectDeadlineMs, () => false);
    return { request: async (args) => respValueOf(await plain.request(args)), close: () => plain.close() };
  };
  const final = await finalRead(usedKeys, openReader, { clock, logger, budgetMs: reconnectDeadlineMs });
  const finalEntry = { type: 'final' as const, at: recorder.now(), values: final };
  options.onEntry?.(finalEntry);
  const verdict = checkHistory({
    operations: recorder.operations,
    final,
    reconnects: recorder.reconnects,
    marks: recorder.marks,
    seed: options.seed,
  });
  return {
    header,
    history: [header, ...recorder.operations, ...recorder.reconnects, ...recorder.marks, finalEntry],
    final,
    verdict,
  };
}

/**
 * Reads every key with MGET on a fresh connection, retrying on a new one if one fails, within
 * `budgetMs` in all: a node that accepts a connection and never answers (a primary holding its
 * output for good) would otherwise keep the reader, and the run, waiting for ever.
 */
async function finalRead(
  keys: readonly string[],
  openReader: () => Promise<Reader>,
  context: { clock: Clock; logger: Logger; budgetMs: number },
): Promise<Record<string, string | null>> {
  const { clock, logger, budgetMs } = context;
  let lastError: unknown;
  let outOfTime = false;
  const open = new Set<Reader>();
  const budgetTimer = clock.setTimeout(() => {
    outOfTime = true;
    for (const reader of open) reader.close();
  }, budgetMs);
  try {
    for (let attempt = 0; attempt < LOAD_DEFAULTS.finalReadAttempts && !outOfTime; attempt++) {
      const values = await readOnce(keys, openReader, open).catch((error: unknown) => {
        lastError = error;
        logger.warn({ attempt, error: (error as Error).message }, 'final read failed');
        return null;
      });
      if (values !== null) return values;
    }
  } finally {
    clock.clearTimeout(budgetTimer);
  }
  if (outOfTime)
    throw new HbftError(
      'E_LOAD_FINAL_READ',
      `the final read got no answer within ${budgetMs} ms (last: ${(lastError as Error | undefined)?.message ?? 'none'})`,
    );
  throw lastError;
}

/** One attempt of the final read on a new connection, kept in `open` while it lasts. */
async function readOnce(
  keys: readonly string[],
  openReader: () => Promise<Reader>,
  open: Set<Reader>,
): Promise<Record<string, string | null>> {
  const reader = await openReader();
  open.add(reader);
  try {
    const values: Record<string, string | null> = {};
    const batches: Promise<void>[] = [];
    for (let at = 0; at < keys.length; at += LOAD_DEFAULTS.mgetKeysMax) {
      const batch = keys.slice(at, at + LOAD_DEFAULTS.mgetKeysMax);
      batches.push(
        reader.request(['MGET', ...batch]).then((reply) => {
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
  } finally {
    open.delete(reader);
    reader.close();
  }
}
