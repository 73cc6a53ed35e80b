// Proves, on hand-made histories, that the checker accepts every correct outcome (including ones only
// indeterminate operations explain) and names each violation — lost and duplicated increments, lost
// writes, impossible reads — that it measures the stall clients saw across a marked instant (a kill),
// and that a saved history reads back, while a history of the former session clients is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, formatVerdict, type CheckInput } from '@hbft/common/session/checker.ts';
import { formatHistory, HistoryRecorder, parseHistory, type Operation } from '@hbft/common/session/history.ts';
import { ManualClock } from '@hbft/common/session/clock.ts';

let nextId = 0;
/** An operation; `end` defaults to start + 1, result to ok. */
function op(fields: Partial<Operation> & Pick<Operation, 'op' | 'key' | 'start'>): Operation {
  return { type: 'op', id: nextId++, client: 0, value: null, end: fields.start + 1, result: 'ok', ...fields };
}
const incr = (start: number, value: number | null, fields: Partial<Operation> = {}) =>
  op({ op: 'incr', key: 'c', start, value, ...fields });
const set = (start: number, value: string, fields: Partial<Operation> = {}) => op({ op: 'set', key: 'r', start, value, ...fields });
const get = (start: number, value: string | null, fields: Partial<Operation> = {}) => op({ op: 'get', key: 'r', start, value, ...fields });

function rules(input: CheckInput): string[] {
  const verdict = checkHistory(input);
  assert.equal(verdict.ok, verdict.violations.length === 0);
  return verdict.violations.map((violation) => violation.rule).sort();
}

test('correct counter histories pass, with unknown increments allowed either way', () => {
  assert.deepEqual(rules({ operations: [incr(0, 1), incr(2, 2), incr(4, 3)], final: { c: '3' } }), []);
  // Concurrent INCRs may return in either order.
  assert.deepEqual(rules({ operations: [incr(0, 2, { end: 5 }), incr(1, 1, { end: 6 })], final: { c: '2' } }), []);
  const unknown = incr(6, null, { result: 'unknown', end: 9 });
  assert.deepEqual(rules({ operations: [incr(0, 1), unknown], final: { c: '1' } }), []);
  assert.deepEqual(rules({ operations: [incr(0, 1), unknown], final: { c: '2' } }), []);
  // A failed INCR did not count; an absent key is zero.
  assert.deepEqual(rules({ operations: [incr(0, null, { result: 'fail' })], final: { c: null } }), []);
});

test('lost and duplicated increments are violations', () => {
  assert.deepEqual(rules({ operations: [incr(0, 1), incr(2, 2)], final: { c: '1' } }), ['counter-lost', 'incr-result-above-final']);
  assert.deepEqual(rules({ operations: [incr(0, 1), incr(2, 2)], final: { c: '3' } }), ['counter-duplicated']);
  assert.deepEqual(rules({ operations: [incr(0, 1), incr(2, null, { result: 'unknown' })], final: { c: '3' } }), ['counter-duplicated']);
  assert.deepEqual(rules({ operations: [incr(0, 2, { end: 5 }), incr(2, 2, { client: 1, end: 6 })], final: { c: '2' } }), [
    'incr-result-repeated',
  ]);
  assert.deepEqual(rules({ operations: [incr(0, 2), incr(5, 1)], final: { c: '2' } }), ['incr-result-order']);
  const message = checkHistory({ operations: [incr(0, 1), incr(2, 2)], final: { c: '1' } }).violations[0]!.message;
  assert.match(message, /counter c is 1 but 2 INCRs were acknowledged/);
});

test('indeterminate operations are never violations by themselves, only bounds', () => {
  // Three INCRs whose replies never came: anything from none to all three may have landed.
  const unknown = [0, 10, 20].map((start) => incr(start, null, { result: 'unknown', error: 'E_PLAIN_CONNECTION: connection closed' }));
  for (const final of [null, '1', '2', '3']) assert.deepEqual(rules({ operations: unknown, final: { c: final } }), [], String(final));
  assert.deepEqual(rules({ operations: unknown, final: { c: '4' } }), ['counter-duplicated']);
  const verdict = checkHistory({ operations: unknown, final: { c: '2' } });
  assert.equal(verdict.stats.unknown, 3);
  assert.equal(verdict.stats.ok, 0);
});

test('register histories: the final value must not lose an acknowledged write', () => {
  const a = set(0, 'a');
  const b = set(10, 'b');
  assert.deepEqual(rules({ operations: [a, b], final: { r: 'b' } }), []);
  assert.deepEqual(rules({ operations: [a, b], final: { r: 'a' } }), ['write-lost']);
  assert.deepEqual(rules({ operations: [a, b], final: { r: null } }), ['write-lost']);
  assert.deepEqual(rules({ operations: [a, b], final: { r: 'zzz' } }), ['final-never-written']);
  // Concurrent writes may land in either order.
  const early = set(0, 'x', { end: 20 });
  const late = set(5, 'y', { end: 8 });
  assert.deepEqual(rules({ operations: [early, late], final: { r: 'x' } }), []);
  assert.deepEqual(rules({ operations: [early, late], final: { r: 'y' } }), []);
  // An unknown write after an acknowledged one may overwrite it; a failed one may not.
  assert.deepEqual(rules({ operations: [a, set(10, 'u', { result: 'unknown' })], final: { r: 'u' } }), []);
  assert.deepEqual(rules({ operations: [a, set(10, 'u', { result: 'unknown' })], final: { r: 'a' } }), []);
  assert.deepEqual(rules({ operations: [a, set(10, 'f', { result: 'fail' })], final: { r: 'f' } }), ['failed-write-visible']);
  // An unknown write that was overwritten later may still be final: it may have landed late.
  assert.deepEqual(rules({ operations: [set(0, 'u', { result: 'unknown', end: 2 }), set(10, 'b')], final: { r: 'u' } }), []);
});

test('reads must return a value that was written and not overwritten before they began', () => {
  const a = set(0, 'a');
  const b = set(10, 'b');
  assert.deepEqual(rules({ operations: [a, get(5, 'a'), b, get(20, 'b')], final: { r: 'b' } }), []);
  // Reading during an overlapping write may see either value.
  assert.deepEqual(rules({ operations: [a, b, get(10.5, 'a')], final: { r: 'b' } }), []);
  assert.deepEqual(rules({ operations: [a, b, get(20, 'a')], final: { r: 'b' } }), ['read-stale']);
  assert.deepEqual(rules({ operations: [a, get(20, null)], final: { r: 'a' } }), ['read-stale']);
  assert.deepEqual(rules({ operations: [get(0, null), a], final: { r: 'a' } }), []);
  assert.deepEqual(rules({ operations: [a, get(20, 'never')], final: { r: 'a' } }), ['read-never-written']);
  assert.deepEqual(rules({ operations: [get(0, 'later'), set(50, 'later')], final: { r: 'later' } }), ['read-from-future']);
  assert.deepEqual(rules({ operations: [a, set(5, 'f', { result: 'fail' }), get(20, 'f')], final: { r: 'a' } }), ['failed-write-visible']);
  // A read of an unknown write is fine whenever it comes.
  assert.deepEqual(rules({ operations: [set(0, 'u', { result: 'unknown', end: 1 }), b, get(30, 'u')], final: { r: 'b' } }), []);
  // Failed and unknown reads are not judged.
  assert.deepEqual(rules({ operations: [a, get(20, null, { result: 'unknown' })], final: { r: 'a' } }), []);
});

test('keys missing from the final read or used both ways are reported', () => {
  assert.deepEqual(rules({ operations: [incr(0, 1)], final: {} }), ['final-read-missing']);
  assert.deepEqual(rules({ operations: [incr(0, 1), op({ op: 'set', key: 'c', start: 3, value: 'v' })], final: { c: 'v' } }), [
    'key-mixed-use',
  ]);
});

test('the stall across a marked kill is measured per client from the replies, indeterminate ones not counting', () => {
  // Client 0 stalls across the kill at 100 ms and answers again at 400; client 1's request in flight
  // at the kill times out (no reply), and it reconnects and answers at 700; client 2 never answers again.
  const operations = [
    incr(0, 2, { client: 0, end: 90 }),
    incr(90, 4, { client: 0, end: 400 }),
    incr(0, 1, { client: 1, end: 80 }),
    incr(80, null, { client: 1, result: 'unknown', end: 600 }),
    incr(600, 5, { client: 1, end: 700 }),
    incr(0, 3, { client: 2, end: 95 }),
    incr(95, null, { client: 2, result: 'unknown', end: 800 }),
  ];
  const verdict = checkHistory({
    operations,
    final: { c: '6' },
    marks: [{ type: 'mark', at: 100, label: 'kill' }],
    reconnects: [{ type: 'reconnect', client: 1, at: 600, reason: 'the response timeout (500 ms) passed' }],
  });
  assert.deepEqual(verdict.violations, []);
  assert.equal(verdict.reconnects, 1);
  const [mark] = verdict.stalls.marks;
  assert.deepEqual(mark, {
    at: 100,
    label: 'kill',
    clients: 2,
    clientsWithoutReply: 1,
    afterMarkMsP50: 300,
    afterMarkMsMax: 600,
    gapMsP50: 310,
    gapMsMax: 620,
  });
  // Each client's longest time without a reply: 310, 620, and 705 from its last reply to its give-up.
  assert.equal(verdict.stalls.gapMsMax, 705);
});

test('violations are capped per rule but all counted, and the text names them', () => {
  const operations = Array.from({ length: 30 }, (_, i) => incr(i * 10, 1, { key: `c${i}` }));
  const final = Object.fromEntries(operations.map((operation) => [operation.key, '0']));
  const verdict = checkHistory({ operations, final, seed: 7, violationsPerRuleMax: 5 });
  assert.equal(verdict.violations.filter((violation) => violation.rule === 'counter-lost').length, 5);
  assert.equal(verdict.violationCounts['counter-lost'], 30);
  const text = formatVerdict(verdict);
  assert.match(text, /VIOLATION/);
  assert.match(text, /seed 7/);
  assert.match(text, /more not listed/);
  assert.match(formatVerdict(checkHistory({ operations: [incr(0, 1)], final: { c: '1' } })), /^verdict: OK/);
});

test('a recorded history survives formatting and parsing', () => {
  const clock = new ManualClock();
  const recorder = new HistoryRecorder(clock);
  const first = recorder.invoke(0, 'set', 'r', '0.0');
  clock.advance(2.5);
  recorder.complete(first, 'ok');
  const second = recorder.invoke(1, 'incr', 'c');
  clock.advance(1);
  recorder.complete(second, 'unknown', { error: 'E_PLAIN_CONNECTION: connection closed' });
  recorder.mark('SIGUSR2');
  clock.advance(0.1234567);
  recorder.reconnect(1, 'connection closed');
  const header = {
    type: 'header' as const,
    clientKind: 'plain' as const,
    seed: 5,
    servers: ['10.77.0.10:6379'],
    clients: 2,
    keys: 1,
    keyPrefix: 'p',
    mix: { incr: 1, set: 1, get: 0 },
    startedAt: '2026-12-03T08:00:00.000Z',
  };
  const final = { type: 'final' as const, at: 4, values: { r: '0.0', c: null } };
  const text = formatHistory([header, ...recorder.operations, ...recorder.marks, ...recorder.reconnects, final]);
  const parsed = parseHistory(text, 'history.jsonl');
  assert.deepEqual(parsed.header, header);
  assert.deepEqual(parsed.operations, recorder.operations);
  assert.equal(parsed.operations[0]!.end, 2.5);
  assert.deepEqual(parsed.marks, [{ type: 'mark', at: 3.5, label: 'SIGUSR2' }]);
  assert.deepEqual(parsed.reconnects, [{ type: 'reconnect', client: 1, at: 3.623, reason: 'connection closed' }]);
  assert.deepEqual(parsed.final!.values, { r: '0.0', c: null });
  assert.throws(() => parseHistory('{"type":"op","id":1}\n', 'h.jsonl'), /h\.jsonl:1: malformed operation/);
  assert.throws(() => parseHistory('nope\n', 'h.jsonl'), /not a JSON line/);
  assert.throws(() => parseHistory('{"type":"header","clientKind":"carrier-pigeon"}\n', 'h.jsonl'), /h\.jsonl:1: unknown client kind/);
});

test('a history of the former session clients is refused with a reason, not judged by weaker rules', () => {
  const headerFields = { type: 'header', seed: 1, servers: ['a:1'], clients: 1, keys: 1 };
  // Before plain clients existed the header had no client kind; later session histories said so.
  for (const header of [headerFields, { ...headerFields, clientKind: 'session' }]) {
    assert.throws(
      () => parseHistory(`${JSON.stringify(header)}\n`, 'old.jsonl'),
      (error: Error & { code?: string }) =>
        error.code === 'E_USAGE' && /^old\.jsonl:1: a history of hbft session clients .* not checked/.test(error.message),
    );
  }
  const failover = { type: 'failover', client: 0, at: 5, from: 'a:1', to: 'b:2', fromGeneration: 1, toGeneration: 2, gapMs: 3 };
  assert.throws(
    () => parseHistory(`${JSON.stringify(failover)}\n`, 'old.jsonl'),
    /old\.jsonl:1: a failover entry: a history of hbft session clients/,
  );
});
