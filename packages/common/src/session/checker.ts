/**
 * Checks a load run's history after the fact (the Porcupine/Jepsen model: clients record what they
 * saw, a separate checker judges it). Keys start absent; counters are only INCRed, registers only
 * SET (with values unique in the run) and read. An operation whose result is `unknown` (a request
 * whose reply never came: indeterminate, not lost) may have taken effect at any time after it
 * started, or never; `fail` means it certainly did not.
 *
 * Rules, with the stable names used in violations:
 *
 * Counters (keys with INCRs). A = acknowledged INCRs, U = unknown ones, V = final value (absent = 0).
 * - `counter-lost`:        V < A: an acknowledged increment was lost.
 * - `counter-duplicated`:  V > A + U: some increment was applied twice.
 *   (So A ≤ V ≤ A + U; with no unknown operations this is V = A exactly.)
 * - `incr-result-repeated`: two acknowledged INCRs on a key returned the same value.
 * - `incr-result-above-final`: an INCR returned more than the final value (state went backwards).
 * - `incr-result-order`: an INCR that began after another had ended returned a smaller value.
 *
 * Registers (keys with SETs and GETs). A write is "after" another when it started after that one
 * ended; an unknown write never ends.
 * - `write-lost`: the final value must come from a write that no acknowledged write comes after;
 *   otherwise that acknowledged write was lost (an absent key loses every acknowledged write).
 * - `final-never-written`: the final value is no value any SET wrote.
 * - `failed-write-visible`: a value written by a SET that failed was read or is final.
 * - `read-never-written`: a GET returned a value no SET wrote.
 * - `read-from-future`: a GET returned a value whose SET started after the GET ended.
 * - `read-stale`: a GET returned a value (or nil) although an acknowledged SET that comes after
 *   that value's SET (or any acknowledged SET, for nil) had ended before the GET began.
 *
 * Run-wide:
 * - `key-mixed-use`: a key both INCRed and SET, which this checker cannot judge.
 * - `final-read-missing`: a key used in the run is absent from the final read.
 *
 * It also measures the stalls clients saw (`measureStalls`): overall, and across each marked
 * instant (a kill of the primary, say), which is how a takeover's cost shows in a plain history.
 */
import type { HistoryStats, MarkRecord, Operation, ReconnectRecord, StallStats } from './history.ts';
import { measureStalls, summarizeOperations } from './history.ts';
import { assert } from '../errors.ts';

export const VIOLATION_RULES = [
  'counter-lost',
  'counter-duplicated',
  'incr-result-repeated',
  'incr-result-above-final',
  'incr-result-order',
  'write-lost',
  'final-never-written',
  'failed-write-visible',
  'read-never-written',
  'read-from-future',
  'read-stale',
  'key-mixed-use',
  'final-read-missing',
] as const;
export type ViolationRule = (typeof VIOLATION_RULES)[number];

export interface Violation {
  rule: ViolationRule;
  key?: string;
  message: string;
  /** Ids of the operations involved. */
  operations?: number[];
}

export interface CheckInput {
  operations: readonly Operation[];
  /** The final read: every key used in the run, null when absent. */
  final: Readonly<Record<string, string | null>>;
  /** Clients' reconnections after a broken connection (counted in the verdict). */
  reconnects?: readonly ReconnectRecord[];
  /** Instants marked from outside; the verdict measures the stall across each. */
  marks?: readonly MarkRecord[];
  seed?: number;
  /** Violations listed per rule; the rest are only counted. */
  violationsPerRuleMax?: number;
}

export interface Verdict {
  ok: boolean;
  seed?: number;
  violations: Violation[];
  /** Violations per rule, including those not listed. */
  violationCounts: Partial<Record<ViolationRule, number>>;
  checked: { operations: number; counters: number; registers: number; reads: number; increments: number; writes: number };
  stats: HistoryStats;
  /** Reconnections after a broken connection: 0 when every connection survived the run. */
  reconnects: number;
  stalls: StallStats;
}

function describe(operation: Operation): string {
  const what = operation.op === 'set' ? `SET ${operation.key} ${operation.value}` : `${operation.op.toUpperCase()} ${operation.key}`;
  const outcome = operation.op === 'set' ? '' : operation.result === 'ok' ? ` → ${operation.value === null ? 'nil' : operation.value}` : '';
  return `#${operation.id} ${what}${outcome} (client ${operation.client}, ${operation.result}, ${operation.start.toFixed(1)}–${operation.end.toFixed(1)} ms)`;
}

/** When a write's effect is certainly over: its end if acknowledged, never if unknown. */
function effectiveEnd(operation: Operation): number {
  return operation.result === 'unknown' ? Infinity : operation.end;
}

class ViolationList {
  readonly listed: Violation[] = [];
  readonly counts: Partial<Record<ViolationRule, number>> = {};
  constructor(private readonly perRuleMax: number) {}

  add(violation: Violation): void {
    const count = (this.counts[violation.rule] ?? 0) + 1;
    this.counts[violation.rule] = count;
    if (count <= this.perRuleMax) this.listed.push(violation);
  }
}

export function checkHistory(input: CheckInput): Verdict {
  const violations = new ViolationList(input.violationsPerRuleMax ?? 20);
  const byKey = new Map<string, Operation[]>();
  for (const operation of input.operations) {
    let list = byKey.get(operation.key);
    if (!list) {
      list = [];
      byKey.set(operation.key, list);
    }
    list.push(operation);
  }
  const checked = { operations: input.operations.length, counters: 0, registers: 0, reads: 0, increments: 0, writes: 0 };
  for (const [key, operations] of byKey) {
    if (!Object.hasOwn(input.final, key)) {
      violations.add({ rule: 'final-read-missing', key, message: `${key} was used in the run but is missing from the final read` });
      continue;
    }
    const hasIncr = operations.some((operation) => operation.op === 'incr');
    const hasRegister = operations.some((operation) => operation.op !== 'incr');
    if (hasIncr && hasRegister) {
      violations.add({
        rule: 'key-mixed-use',
        key,
        message: `${key} is both INCRed and SET/read; use separate keys for counters and registers`,
      });
      continue;
    }
    if (hasIncr) {
      checked.counters++;
      checked.increments += operations.length;
      checkCounter(key, operations, input.final[key] ?? null, violations);
    } else {
      checked.registers++;
      checked.writes += operations.filter((operation) => operation.op === 'set').length;
      checked.reads += operations.filter((operation) => operation.op === 'get' && operation.result === 'ok').length;
      checkRegister(key, operations, input.final[key] ?? null, violations);
    }
  }
  return {
    ok: violations.listed.length === 0,
    ...(input.seed !== undefined ? { seed: input.seed } : {}),
    violations: violations.listed,
    violationCounts: violations.counts,
    checked,
    stats: summarizeOperations(input.operations),
    reconnects: input.reconnects?.length ?? 0,
    stalls: measureStalls(input.operations, input.marks),
  };
}

function checkCounter(key: string, operations: Operation[], finalText: string | null, violations: ViolationList): void {
  const acknowledged = operations.filter((operation) => operation.result === 'ok');
  const unknown = operations.filter((operation) => operation.result === 'unknown').length;
  const final = finalText === null ? 0 : Number(finalText);
  if (!Number.isSafeInteger(final)) {
    violations.add({
      rule: 'final-never-written',
      key,
      message: `counter ${key} ends as ${JSON.stringify(finalText)}, which no INCR produces`,
    });
    return;
  }
  const a = acknowledged.length;
  if (final < a) {
    violations.add({
      rule: 'counter-lost',
      key,
      message: `counter ${key} is ${final} but ${a} INCRs were acknowledged (${unknown} unknown): ${a - final} acknowledged increment(s) lost`,
    });
  } else if (final > a + unknown) {
    violations.add({
      rule: 'counter-duplicated',
      key,
      message: `counter ${key} is ${final} but only ${a} INCRs were acknowledged and ${unknown} unknown: ${final - a - unknown} increment(s) applied twice`,
    });
  }
  const results = acknowledged.filter((operation) => typeof operation.value === 'number') as (Operation & { value: number })[];
  const seen = new Map<number, Operation>();
  for (const operation of results) {
    const other = seen.get(operation.value);
    if (other)
      violations.add({
        rule: 'incr-result-repeated',
        key,
        message: `${describe(other)} and ${describe(operation)} returned the same value`,
        operations: [other.id, operation.id],
      });
    else seen.set(operation.value, operation);
    if (operation.value > final) {
      violations.add({
        rule: 'incr-result-above-final',
        key,
        message: `${describe(operation)} returned more than the final value ${final}`,
        operations: [operation.id],
      });
    }
  }
  // Real-time order: sweep operations by start, holding the largest result among those already ended.
  const byEnd = [...results].sort((x, y) => x.end - y.end);
  const byStart = [...results].sort((x, y) => x.start - y.start);
  let ended = 0;
  let largest: (Operation & { value: number }) | undefined;
  for (const operation of byStart) {
    for (let candidate = byEnd[ended]; candidate !== undefined && candidate.end < operation.start; candidate = byEnd[++ended]) {
      if (!largest || candidate.value > largest.value) largest = candidate;
    }
    if (largest && largest.value >= operation.value && largest !== operation) {
      violations.add({
        rule: 'incr-result-order',
        key,
        message: `${describe(operation)} began after ${describe(largest)} ended, yet returned a value not above it`,
        operations: [largest.id, operation.id],
      });
    }
  }
}

function checkRegister(key: string, operations: Operation[], final: string | null, violations: ViolationList): void {
  const writes = operations.filter((operation) => operation.op === 'set');
  const byValue = new Map<string, Operation>();
  for (const write of writes) byValue.set(String(write.value), write);
  const acknowledged = writes.filter((write) => write.result === 'ok').sort((x, y) => x.end - y.end);
  // latestStartEndedBy[i]: the acknowledged write with the latest start among the first i+1 to end.
  const latestStartEndedBy: Operation[] = [];
  for (const write of acknowledged) {
    const previous = latestStartEndedBy.at(-1);
    latestStartEndedBy.push(previous && previous.start > write.start ? previous : write);
  }
  /** The acknowledged write with the latest start among those that ended before `time`. */
  const latestEndedBefore = (time: number): Operation | undefined => {
    let low = 0;
    let high = acknowledged.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      const middleEnd = acknowledged[middle]?.end;
      assert(middleEnd !== undefined, 'low <= middle < high <= acknowledged.length');
      if (middleEnd < time) low = middle + 1;
      else high = middle;
    }
    return low > 0 ? latestStartEndedBy[low - 1] : undefined;
  };

  // The final value.
  if (final === null) {
    const last = acknowledged.at(-1);
    if (last !== undefined) {
      violations.add({
        rule: 'write-lost',
        key,
        message: `${key} is absent at the end although ${acknowledged.length} SET(s) were acknowledged, the last ${describe(last)}`,
        operations: [last.id],
      });
    }
  } else {
    const source = byValue.get(final);
    if (!source) {
      violations.add({ rule: 'final-never-written', key, message: `${key} ends as ${JSON.stringify(final)}, which no SET wrote` });
    } else if (source.result === 'fail') {
      violations.add({
        rule: 'failed-write-visible',
        key,
        message: `${key} ends with the value of ${describe(source)}, which failed`,
        operations: [source.id],
      });
    } else {
      const sourceEnd = effectiveEnd(source);
      for (const write of acknowledged) {
        if (write !== source && write.start > sourceEnd) {
          violations.add({
            rule: 'write-lost',
            key,
            message: `${describe(write)} was lost: ${key} ends with the value of ${describe(source)}, which finished before it began`,
            operations: [write.id, source.id],
          });
        }
      }
    }
  }

  // Reads.
  for (const read of operations) {
    if (read.op !== 'get' || read.result !== 'ok') continue;
    const overwrite = latestEndedBefore(read.start);
    if (read.value === null) {
      if (overwrite) {
        violations.add({
          rule: 'read-stale',
          key,
          message: `${describe(read)} read nil although ${describe(overwrite)} had been acknowledged before it began`,
          operations: [overwrite.id, read.id],
        });
      }
      continue;
    }
    const source = byValue.get(String(read.value));
    if (!source) {
      violations.add({
        rule: 'read-never-written',
        key,
        message: `${describe(read)} returned a value no SET wrote`,
        operations: [read.id],
      });
    } else if (source.result === 'fail') {
      violations.add({
        rule: 'failed-write-visible',
        key,
        message: `${describe(read)} returned the value of ${describe(source)}, which failed`,
        operations: [source.id, read.id],
      });
    } else if (source.start > read.end) {
      violations.add({
        rule: 'read-from-future',
        key,
        message: `${describe(read)} returned the value of ${describe(source)}, which began only after the read ended`,
        operations: [source.id, read.id],
      });
    } else if (overwrite && overwrite.start > effectiveEnd(source)) {
      violations.add({
        rule: 'read-stale',
        key,
        message: `${describe(read)} returned the value of ${describe(source)} although ${describe(overwrite)} came after it and was acknowledged before the read began`,
        operations: [source.id, overwrite.id, read.id],
      });
    }
  }
}

/** The verdict for people: one summary line, then the violations. */
export function formatVerdict(verdict: Verdict): string {
  const { checked } = verdict;
  const scope = `${checked.counters} counters (${checked.increments} INCRs), ${checked.registers} registers (${checked.writes} SETs, ${checked.reads} reads)`;
  if (verdict.ok) {
    return `verdict: OK — no acknowledged write lost, no write applied twice, every counter within its acknowledged and unknown increments, reads valid; checked ${scope}\n`;
  }
  const total = Object.values(verdict.violationCounts).reduce((sum, count) => sum + (count ?? 0), 0);
  const lines = [`verdict: ${total} VIOLATION(S)${verdict.seed !== undefined ? ` (seed ${verdict.seed})` : ''}; checked ${scope}`];
  for (const [rule, count] of Object.entries(verdict.violationCounts)) lines.push(`  ${rule}: ${count}`);
  for (const violation of verdict.violations) lines.push(`  - [${violation.rule}] ${violation.message}`);
  const listed = verdict.violations.length;
  if (listed < total) lines.push(`  (${total - listed} more not listed)`);
  return `${lines.join('\n')}\n`;
}
