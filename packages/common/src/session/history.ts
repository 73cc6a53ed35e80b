/**
 * The history of a load run, Jepsen style: every operation a client invoked, with when it started
 * and ended (monotonic milliseconds from the start of the run) and what the client learnt, plus the
 * reconnections clients made after a broken connection, the instants marked from outside (a kill,
 * say) and the final read of the store. `checker.ts` judges it afterwards; the
 * history is saved as JSON lines so that a run can be checked again or inspected.
 */
import { UsageError } from '../errors.ts';
import { percentile } from '../stats.ts';

export type OperationKind = 'incr' | 'set' | 'get';
export const OPERATION_KINDS: readonly OperationKind[] = ['incr', 'set', 'get'];

/**
 * `ok`: the client got the reply, so the operation took effect exactly once (or, for a read, saw the
 * value). `fail`: it certainly did not take effect (an error reply). `unknown`: the client cannot
 * tell (its connection broke or timed out before the reply): the operation is indeterminate.
 */
export type OperationResult = 'ok' | 'fail' | 'unknown';

export interface Operation {
  type: 'op';
  id: number;
  client: number;
  op: OperationKind;
  key: string;
  /** SET: the value written. INCR: the value returned (null unless ok). GET: the value read (null = absent). */
  value: string | number | null;
  start: number;
  /** When the result was known; for `unknown`, when the client gave up (the operation may land later). */
  end: number;
  result: OperationResult;
  /** Why the result is fail or unknown. */
  error?: string;
}

/** A client opened a new connection after its previous one broke. */
export interface ReconnectRecord {
  type: 'reconnect';
  client: number;
  /** When the new connection answered. */
  at: number;
  /** Why the previous connection ended. */
  reason: string;
}

/** An instant marked from outside the run (`hbft load` marks one on SIGUSR2): a kill, for instance. */
export interface MarkRecord {
  type: 'mark';
  at: number;
  label: string;
}

/**
 * Every history says `plain` (ordinary RESP connections, for which a request whose reply never came
 * is indeterminate). Histories without it, or with `session`, were written by hbft's former session
 * clients, which were judged exactly-once; `parseHistory` refuses them rather than judge them by
 * weaker rules than they were written for.
 */
export const HISTORY_CLIENT_KIND = 'plain';

export interface HistoryHeader {
  type: 'header';
  clientKind: typeof HISTORY_CLIENT_KIND;
  seed: number;
  servers: string[];
  clients: number;
  keys: number;
  keyPrefix: string;
  mix: Record<OperationKind, number>;
  /** Wall-clock start, for people; all other times are monotonic ms from the start. */
  startedAt: string;
}

export interface FinalRead {
  type: 'final';
  at: number;
  values: Record<string, string | null>;
}

export type HistoryEntry = HistoryHeader | Operation | ReconnectRecord | MarkRecord | FinalRead;

export interface History {
  header?: HistoryHeader;
  operations: Operation[];
  reconnects: ReconnectRecord[];
  marks: MarkRecord[];
  final?: FinalRead;
}

/** An operation that has been invoked and not completed yet. */
export interface PendingOperation {
  id: number;
  client: number;
  op: OperationKind;
  key: string;
  value: string | null;
  start: number;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * Records operations as clients invoke and complete them; times come from the injected clock.
 * `onEntry` sees each completed operation, reconnection and mark as it is recorded (to write the
 * history while the run goes on).
 */
export class HistoryRecorder {
  readonly operations: Operation[] = [];
  readonly reconnects: ReconnectRecord[] = [];
  readonly marks: MarkRecord[] = [];
  private nextId = 0;
  private readonly originMs: number;

  constructor(
    private readonly clock: { nowMs(): number },
    private readonly onEntry?: (entry: Operation | ReconnectRecord | MarkRecord) => void,
  ) {
    this.originMs = clock.nowMs();
  }

  /** Milliseconds since the recorder was created. */
  now(): number {
    return round(this.clock.nowMs() - this.originMs);
  }

  invoke(client: number, op: OperationKind, key: string, value: string | null = null): PendingOperation {
    return { id: this.nextId++, client, op, key, value, start: this.now() };
  }

  complete(
    pending: PendingOperation,
    result: OperationResult,
    details: { value?: string | number | null; error?: string } = {},
  ): Operation {
    const operation: Operation = {
      type: 'op',
      id: pending.id,
      client: pending.client,
      op: pending.op,
      key: pending.key,
      value: pending.op === 'set' ? pending.value : result === 'ok' ? (details.value ?? null) : null,
      start: pending.start,
      end: this.now(),
      result,
      ...(details.error !== undefined ? { error: details.error } : {}),
    };
    this.operations.push(operation);
    this.onEntry?.(operation);
    return operation;
  }

  reconnect(client: number, reason: string): ReconnectRecord {
    const record: ReconnectRecord = { type: 'reconnect', client, at: this.now(), reason };
    this.reconnects.push(record);
    this.onEntry?.(record);
    return record;
  }

  mark(label: string): MarkRecord {
    const record: MarkRecord = { type: 'mark', at: this.now(), label };
    this.marks.push(record);
    this.onEntry?.(record);
    return record;
  }
}

/** One JSON object per line. */
export function formatHistory(entries: readonly HistoryEntry[]): string {
  return entries.map(formatHistoryLine).join('');
}

/** One entry as its line of the history file. */
export function formatHistoryLine(entry: HistoryEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

const SESSION_HISTORY =
  'a history of hbft session clients (written by an hbft load from before they were removed); it was meant to be judged exactly-once, ' +
  'which the plain-client checker does not do, so it is not checked: re-run the load with this hbft';

/** Reads a saved history back; `source` names the file in errors. */
export function parseHistory(text: string, source: string): History {
  const history: History = { operations: [], reconnects: [], marks: [] };
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    const where = `${source}:${index + 1}`;
    let entry: HistoryEntry;
    try {
      entry = JSON.parse(line) as HistoryEntry;
    } catch {
      throw new UsageError(`${where}: not a JSON line`);
    }
    switch (entry?.type) {
      case 'header': {
        const kind: unknown = entry.clientKind;
        if (kind === undefined || kind === 'session') throw new UsageError(`${where}: ${SESSION_HISTORY}`);
        if (kind !== HISTORY_CLIENT_KIND)
          throw new UsageError(`${where}: unknown client kind ${JSON.stringify(kind)} (expected "${HISTORY_CLIENT_KIND}")`);
        history.header = entry;
        break;
      }
      case 'op': {
        const valid =
          Number.isInteger(entry.id) &&
          Number.isInteger(entry.client) &&
          OPERATION_KINDS.includes(entry.op) &&
          typeof entry.key === 'string' &&
          typeof entry.start === 'number' &&
          typeof entry.end === 'number' &&
          entry.end >= entry.start &&
          ['ok', 'fail', 'unknown'].includes(entry.result);
        if (!valid) throw new UsageError(`${where}: malformed operation (needs id, client, op, key, start ≤ end, result)`);
        history.operations.push(entry);
        break;
      }
      case 'reconnect':
        if (!Number.isInteger(entry.client) || typeof entry.at !== 'number')
          throw new UsageError(`${where}: malformed reconnect (needs client and at)`);
        history.reconnects.push(entry);
        break;
      case 'mark':
        if (typeof entry.at !== 'number' || typeof entry.label !== 'string')
          throw new UsageError(`${where}: malformed mark (needs at and label)`);
        history.marks.push(entry);
        break;
      case 'final':
        if (typeof entry.values !== 'object' || entry.values === null) throw new UsageError(`${where}: final read without values`);
        history.final = entry;
        break;
      default: {
        const type = (entry as { type?: unknown })?.type;
        // Only session clients recorded failovers (a resumed session); plain clients reconnect.
        if (type === 'failover') throw new UsageError(`${where}: a failover entry: ${SESSION_HISTORY}`);
        throw new UsageError(`${where}: unknown entry type ${JSON.stringify(type)}`);
      }
    }
  });
  return history;
}

export interface HistoryStats {
  operations: number;
  ok: number;
  fail: number;
  unknown: number;
  byKind: Record<OperationKind, { ok: number; fail: number; unknown: number }>;
  /** From the first start to the last end. */
  durationMs: number;
  /** Acknowledged operations per second. */
  throughputOpsPerS: number;
  latencyMsP50: number;
  latencyMsP99: number;
  latencyMsMax: number;
}

export function summarizeOperations(operations: readonly Operation[]): HistoryStats {
  const byKind = Object.fromEntries(OPERATION_KINDS.map((kind) => [kind, { ok: 0, fail: 0, unknown: 0 }])) as HistoryStats['byKind'];
  let first = Infinity;
  let last = -Infinity;
  const latencies: number[] = [];
  for (const operation of operations) {
    byKind[operation.op][operation.result]++;
    first = Math.min(first, operation.start);
    last = Math.max(last, operation.end);
    if (operation.result === 'ok') latencies.push(operation.end - operation.start);
  }
  latencies.sort((a, b) => a - b);
  const durationMs = operations.length ? last - first : 0;
  const count = (result: OperationResult) => OPERATION_KINDS.reduce((sum, kind) => sum + byKind[kind][result], 0);
  return {
    operations: operations.length,
    ok: count('ok'),
    fail: count('fail'),
    unknown: count('unknown'),
    byKind,
    durationMs: round(durationMs),
    throughputOpsPerS: durationMs > 0 ? Math.round((count('ok') / durationMs) * 1000 * 10) / 10 : 0,
    latencyMsP50: round(percentile(latencies, 0.5) || 0),
    latencyMsP99: round(percentile(latencies, 0.99) || 0),
    latencyMsMax: round(latencies.at(-1) ?? 0),
  };
}

export interface MarkStall {
  at: number;
  label: string;
  /** Clients that got a reply after the mark (the figures below are over these). */
  clients: number;
  /** Clients that got no reply after the mark (before the run ended). */
  clientsWithoutReply: number;
  /** From the mark to a client's first reply after it. */
  afterMarkMsP50: number;
  afterMarkMsMax: number;
  /** A client's gap spanning the mark: its last reply before the mark to its first after it. */
  gapMsP50: number;
  gapMsMax: number;
}

/** What clients saw of stalls: how long each went without a reply. */
export interface StallStats {
  clients: number;
  /**
   * Over clients, of each client's longest time without a reply: between two consecutive replies,
   * or from its last reply to the end of its last operation when no reply followed.
   */
  gapMsP50: number;
  gapMsMax: number;
  marks: MarkStall[];
}

/**
 * Client-visible stalls, from the operations alone. A reply is an `ok` or `fail` result (the server
 * answered); an `unknown` result is the absence of one, so a client whose request timed out and who
 * then reconnected stalled from its last reply to its next.
 */
export function measureStalls(operations: readonly Operation[], marks: readonly MarkRecord[] = []): StallStats {
  const byClient = new Map<number, Operation[]>();
  for (const operation of operations) {
    let list = byClient.get(operation.client);
    if (!list) {
      list = [];
      byClient.set(operation.client, list);
    }
    list.push(operation);
  }
  const longestGaps: number[] = [];
  const replyTimesByClient: number[][] = [];
  for (const list of byClient.values()) {
    const replies = list
      .filter((operation) => operation.result !== 'unknown')
      .map((operation) => operation.end)
      .sort((a, b) => a - b);
    replyTimesByClient.push(replies);
    const lastEnd = list.reduce((latest, operation) => Math.max(latest, operation.end), 0);
    let longest = 0;
    for (let i = 1; i < replies.length; i++) longest = Math.max(longest, (replies[i] ?? 0) - (replies[i - 1] ?? 0));
    const lastReply = replies.at(-1);
    if (lastReply !== undefined) longest = Math.max(longest, lastEnd - lastReply);
    longestGaps.push(longest);
  }
  const markStalls = marks.map((mark): MarkStall => {
    const afterMark: number[] = [];
    const gaps: number[] = [];
    let clientsWithoutReply = 0;
    for (const replies of replyTimesByClient) {
      const next = replies.find((time) => time > mark.at);
      if (next === undefined) {
        clientsWithoutReply++;
        continue;
      }
      const previous = replies.findLast((time) => time <= mark.at);
      afterMark.push(next - mark.at);
      if (previous !== undefined) gaps.push(next - previous);
    }
    return {
      at: mark.at,
      label: mark.label,
      clients: afterMark.length,
      clientsWithoutReply,
      afterMarkMsP50: round(percentile(afterMark, 0.5) || 0),
      afterMarkMsMax: round(Math.max(0, ...afterMark)),
      gapMsP50: round(percentile(gaps, 0.5) || 0),
      gapMsMax: round(Math.max(0, ...gaps)),
    };
  });
  return {
    clients: byClient.size,
    gapMsP50: round(percentile(longestGaps, 0.5) || 0),
    gapMsMax: round(Math.max(0, ...longestGaps)),
    marks: markStalls,
  };
}
