// Proves the dashboard's message helpers: the hello is a snapshot of the feed's history, and only a
// JSON `{"type":"ping"}` text message counts as something a client may send.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LiveEvent, LiveSample } from '@hbft/common/http/liveFeed.ts';
import { helloMessage, isClientPing } from '@hbft/common/http/dashboard/liveMessages.ts';
import { fakeSample } from './fakeFeed.ts';

test('the hello carries a copy of the history, unaffected by later samples', () => {
  const samples: LiveSample[] = [fakeSample(1), fakeSample(2)];
  const events: LiveEvent[] = [{ t: 5, kind: 'protected', message: 'the guest is protected' }];
  const hello = helloMessage({ samples, events }, 1234);
  samples.push(fakeSample(3));
  events.shift();
  assert.equal(hello.type, 'hello');
  if (hello.type !== 'hello') return;
  assert.equal(hello.serverTimeMs, 1234);
  assert.deepEqual(
    hello.history.samples.map((sample) => sample.epoch),
    [1, 2],
  );
  assert.deepEqual(
    hello.history.events.map((event) => event.kind),
    ['protected'],
  );
});

test('only a ping is an acceptable client message', () => {
  assert.equal(isClientPing('{"type":"ping"}', false), true);
  assert.equal(isClientPing(Buffer.from('{"type":"ping","n":1}'), false), true);
  assert.equal(isClientPing('{"type":"ping"}', true), false, 'binary frames are refused');
  assert.equal(isClientPing('{"type":"subscribe"}', false), false);
  assert.equal(isClientPing('ping', false), false);
  assert.equal(isClientPing('["ping"]', false), false);
  assert.equal(isClientPing('null', false), false);
  assert.equal(isClientPing(`{"type":"ping","pad":"${'x'.repeat(300)}"}`, false), false, 'long messages are refused');
});
