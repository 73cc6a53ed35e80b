/**
 * The history of a load run, Jepsen style: every operation a client invoked, with when it started
 * and ended (monotonic milliseconds from the start of the run) and what the client learnt, plus the
 * failovers clients saw and the final read of the store. `checker.ts` judges it afterwards; the
 * history is saved as JSON lines so that a run can be checked again or inspected.
 */
import { UsageError } from '../errors.ts';
import { percentile } from '../stats.ts';

export type OperationKind = 'incr' | 'set' | 'get';
export const OPERATION_KINDS: readonly OperationKind[] = ['incr', 'set', 'get'];

/**
 * `ok`: the client got the reply, so the operation took effect exactly once (or, for a read, saw the
 * value). `fail`: it certainly did not take effect (an error reply). `unknown`: the client cannot
 * tell (the session ended before the reply).
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
  /** Generation of the node that answered (ok and fail only). */
  generation?: number;
  /** Why the result is fail or unknown. */
  error?: string;
}

export interface FailoverRecord {
  type: 'failover';
  client: number;
  /** When the client resumed on the new node. */
  at: number;
  from: string;
  to: string;
  fromGeneration: number;
  toGeneration: number;
  /** Client-side gap: last byte from the old node to the handshake with the new one. */
  gapMs: number;
}

export interface HistoryHeader {
  type: 'header';
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

export type HistoryEntry = HistoryHeader | Operation | FailoverRecord | FinalRead;

export interface History {
  header?: HistoryHeader;
  operations: Operation[];
  failovers: FailoverRecord[];
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
 * `onEntry` sees each completed operation and failover as it is recorded (to write the history
 * while the run goes on).
 */
export class HistoryRecorder {
  readonly operations: Operation[] = [];
  readonly failovers: FailoverRecord[] = [];
  private nextId = 0;
  private readonly originMs: number;

  constructor(
    private readonly clock: { nowMs(): number },
    private readonly onEntry?: (entry: Operation | FailoverRecord) => void,
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
    details: { value?: string | number | null; generation?: number; error?: string } = {},
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
      ...(details.generation !== undefined ? { generation: details.generation } : {}),
      ...(details.error !== undefined ? { error: details.error } : {}),
    };
    this.operations.push(operation);
    this.onEntry?.(operation);
    return operation;
  }

  failover(client: number, info: Omit<FailoverRecord, 'type' | 'client' | 'at'>): FailoverRecord {
    const record: FailoverRecord = { type: 'failover', client, at: this.now(), ...info, gapMs: round(info.gapMs) };
    this.failovers.push(record);
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

/** Reads a saved history back; `source` names the file in errors. */
export function parseHistory(text: string, source: string): History {
  const history: History = { operations: [], failovers: [] };
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
      case 'header':
        history.header = entry;
        break;
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
      case 'failover':
        history.failovers.push(entry);
        break;
      case 'final':
        if (typeof entry.values !== 'object' || entry.values === null) throw new UsageError(`${where}: final read without values`);
        history.final = entry;
        break;
      default:
        throw new UsageError(`${where}: unknown entry type ${JSON.stringify((entry as { type?: unknown })?.type)}`);
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
