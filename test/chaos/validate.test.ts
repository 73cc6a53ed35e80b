// Proves that control-API bodies and CLI rates are read with Toxiproxy's defaults and units, and that
// every malformed input is refused with an error naming the offending field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidFieldError } from '@hbft/common/chaos/errors.ts';
import { parseRateKBps } from '@hbft/common/chaos/rate.ts';
import { parseJsonBody, parseProxyCreate, parseProxyUpdate, parseToxicCreate, parseToxicUpdate } from '@hbft/common/chaos/validate.ts';

function refusesField(run: () => unknown, field: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof InvalidFieldError, `expected InvalidFieldError, got ${String(error)}`);
    assert.equal(error.field, field);
    assert.ok(error.message.startsWith(`${field}:`), error.message);
    return true;
  });
}

test('a toxic gets Toxiproxy defaults: stream downstream, toxicity 1, name TYPE_STREAM, missing attributes 0', () => {
  assert.deepEqual(parseToxicCreate({ type: 'latency', attributes: { latency: 50 } }), {
    name: 'latency_downstream',
    type: 'latency',
    stream: 'downstream',
    toxicity: 1,
    attributes: { latency: 50, jitter: 0 },
  });
  const loss = parseToxicCreate({ type: 'loss', stream: 'upstream', attributes: { probability: 0.05 } });
  assert.equal(loss.name, 'loss_upstream');
  assert.deepEqual(loss.attributes, { probability: 0.05, retransmit: 200 });
});

test('bad toxics are refused naming the field', () => {
  refusesField(() => parseToxicCreate({ type: 'latency', attributes: { latency: -5 } }), 'attributes.latency');
  refusesField(() => parseToxicCreate({ type: 'latency', attributes: { latency: '50' } }), 'attributes.latency');
  refusesField(() => parseToxicCreate({ type: 'latency', attributes: { latncy: 50 } }), 'attributes.latncy');
  refusesField(() => parseToxicCreate({ type: 'lag' }), 'type');
  refusesField(() => parseToxicCreate({ attributes: {} }), 'type');
  refusesField(() => parseToxicCreate({ type: 'bandwidth' }), 'attributes.rate');
  refusesField(() => parseToxicCreate({ type: 'bandwidth', attributes: { rate: 0 } }), 'attributes.rate');
  refusesField(
    () => parseToxicCreate({ type: 'slicer', attributes: { average_size: 10, size_variation: 10 } }),
    'attributes.size_variation',
  );
  refusesField(() => parseToxicCreate({ type: 'limit_data', attributes: { bytes: 1.5 } }), 'attributes.bytes');
  refusesField(() => parseToxicCreate({ type: 'loss', attributes: { probability: 1.5 } }), 'attributes.probability');
  refusesField(() => parseToxicCreate({ type: 'latency', stream: 'sideways' }), 'stream');
  refusesField(() => parseToxicCreate({ type: 'latency', toxicity: 2 }), 'toxicity');
  refusesField(() => parseToxicCreate({ type: 'latency', name: 'a/b' }), 'name');
  refusesField(() => parseToxicCreate({ type: 'latency', colour: 'red' }), 'colour');
  refusesField(() => parseToxicCreate([1, 2]), 'body');
  refusesField(() => parseJsonBody('{"type":'), 'body');
});

test('a toxic update merges attributes and refuses to change name, type or stream', () => {
  const existing = parseToxicCreate({ type: 'latency', attributes: { latency: 50, jitter: 5 } });
  assert.deepEqual(parseToxicUpdate({ attributes: { jitter: 10 } }, existing).attributes, { latency: 50, jitter: 10 });
  assert.equal(parseToxicUpdate({ toxicity: 0.5 }, existing).toxicity, 0.5);
  refusesField(() => parseToxicUpdate({ type: 'bandwidth' }, existing), 'type');
  refusesField(() => parseToxicUpdate({ attributes: { jitter: -1 } }, existing), 'attributes.jitter');
});

test('proxies: addresses, partition modes and their combinations', () => {
  assert.deepEqual(parseProxyCreate({ name: 'repl', listen: '127.0.0.1:0', upstream: 'backup:7000' }), {
    name: 'repl',
    listen: { host: '127.0.0.1', port: 0 },
    upstream: { host: 'backup', port: 7000 },
    enabled: true,
    partition: 'cut',
  });
  assert.deepEqual(parseProxyUpdate({ enabled: false }, 'repl'), { enabled: false });
  assert.deepEqual(parseProxyUpdate({ partition: 'stall' }, 'repl'), { enabled: false, partition: 'stall' });
  assert.deepEqual(parseProxyUpdate({ enabled: false, partition: 'stall' }, 'repl'), { enabled: false, partition: 'stall' });
  // A Toxiproxy client may echo a GET answer back; its read-only keys are ignored.
  assert.deepEqual(parseProxyUpdate({ name: 'repl', enabled: true, toxics: [] }, 'repl'), { enabled: true });
  refusesField(() => parseProxyUpdate({ enabled: true, partition: 'stall' }, 'repl'), 'partition');
  refusesField(() => parseProxyUpdate({ partition: 'melt' }, 'repl'), 'partition');
  refusesField(() => parseProxyUpdate({ enabled: 'no' }, 'repl'), 'enabled');
  refusesField(() => parseProxyUpdate({ name: 'other' }, 'repl'), 'name');
  refusesField(() => parseProxyCreate({ name: 'repl', listen: 'nowhere', upstream: 'h:1' }), 'listen');
  refusesField(() => parseProxyCreate({ name: 'repl', listen: ':0', upstream: 'h:0' }), 'upstream');
  refusesField(() => parseProxyCreate({ listen: ':0', upstream: 'h:1' }), 'name');
});

test('rates as people write them become KB/s (1 KB = 1000 bytes)', () => {
  assert.equal(parseRateKBps('1mbit', 'RATE'), 125);
  assert.equal(parseRateKBps('128kbit', 'RATE'), 16);
  assert.equal(parseRateKBps('100KB/s', 'RATE'), 100);
  assert.equal(parseRateKBps('2MiB/s', 'RATE'), 2097.152);
  assert.equal(parseRateKBps('250', 'RATE'), 250);
  refusesField(() => parseRateKBps('fast', 'RATE'), 'RATE');
  refusesField(() => parseRateKBps('0mbit', 'RATE'), 'RATE');
  refusesField(() => parseRateKBps('5 furlongs', 'RATE'), 'RATE');
});
