// Proves the primary's client flow control on its own: input goes to the guest only while the
// NIC's queue has room (per connection and in total), the rest stays in order with the socket
// paused until a capture shows the ring took it, nothing is lost or reordered, and what clients
// take of their output reaches the NIC in steps, not per reply, and a client that takes none of its
// waiting output for too long is disconnected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { ClientFlow } from '@hbft/primary/clientFlow.ts';

function fakeSocket(): Socket & { paused: boolean } {
  const socket = {
    paused: false,
    pause() {
      socket.paused = true;
    },
    resume() {
      socket.paused = false;
    },
  };
  return socket as unknown as Socket & { paused: boolean };
}

function fakeNic() {
  const delivered = new Map<string, number[]>();
  const taken: [string, number][] = [];
  return {
    delivered,
    taken,
    deliver(tag: string, bytes: Uint8Array) {
      const list = delivered.get(tag) ?? [];
      list.push(...bytes);
      delivered.set(tag, list);
    },
    outputTaken(tag: string, offset: number) {
      taken.push([tag, offset]);
    },
  };
}

const limits = { inputQueuedBytesMaxPerConnection: 100, inputQueuedBytesMaxTotal: 150, outputTakenReportBytes: 50 };

test('input beyond the per-connection and total room waits, in order, with the socket paused', () => {
  const nic = fakeNic();
  const flow = new ClientFlow(nic, null, () => 0, limits);
  const a = fakeSocket();
  const b = fakeSocket();
  let handedA = 0;
  flow.add('a', a, (n) => (handedA += n));
  flow.add('b', b);
  const bytes = Uint8Array.from({ length: 250 }, (_, i) => i);
  flow.push('a', bytes);
  assert.equal(nic.delivered.get('a')!.length, 100, 'one connection gets its own bound');
  assert.equal(handedA, 100);
  assert.ok(a.paused);
  flow.push('b', bytes.subarray(0, 80));
  assert.equal(nic.delivered.get('b')!.length, 50, 'the total bound leaves the second connection 50');
  assert.ok(b.paused);
  // The guest's ring took 60 of a's bytes and all of b's so far.
  flow.onCaptured([
    { tag: 'a', rxDelivered: 60 },
    { tag: 'b', rxDelivered: 50 },
  ]);
  assert.equal(nic.delivered.get('a')!.length, 160);
  assert.equal(nic.delivered.get('b')!.length, 80);
  assert.ok(a.paused && !b.paused);
  flow.onCaptured([
    { tag: 'a', rxDelivered: 250 },
    { tag: 'b', rxDelivered: 80 },
  ]);
  assert.deepEqual(nic.delivered.get('a'), [...bytes], 'every byte, in order');
  assert.ok(!a.paused);
  assert.equal(flow.pendingBytes, 0);
});

test('a session socket that goes away drops its pending input (the client resends it)', () => {
  const nic = fakeNic();
  const flow = new ClientFlow(nic, null, () => 0, limits);
  const socket = fakeSocket();
  flow.add('s:1', socket);
  flow.push('s:1', new Uint8Array(130));
  assert.equal(flow.pendingBytes, 30);
  flow.setSocket('s:1', null);
  assert.equal(flow.pendingBytes, 0);
  flow.onCaptured([{ tag: 's:1', rxDelivered: 100 }]);
  assert.equal(nic.delivered.get('s:1')!.length, 100);
});

test('output taken reaches the NIC in steps of at least the report size', () => {
  const nic = fakeNic();
  const flow = new ClientFlow(nic, null, () => 0, limits);
  flow.add('a', fakeSocket());
  for (let offset = 10; offset <= 200; offset += 10) flow.onOutputTaken('a', offset);
  assert.deepEqual(nic.taken, [
    ['a', 50],
    ['a', 100],
    ['a', 150],
    ['a', 200],
  ]);
});

test('a client that takes none of its waiting output for too long is disconnected; one that takes some is not', () => {
  const nic = fakeNic();
  let nowMs = 0;
  const flow = new ClientFlow(nic, null, () => nowMs, limits);
  const make = () => {
    const callbacks: (() => void)[] = [];
    const socket = {
      writableLength: 0,
      destroyed: false,
      write(chunk: Uint8Array, callback?: () => void) {
        socket.writableLength += chunk.length;
        if (callback) callbacks.push(callback);
      },
      destroy() {
        socket.destroyed = true;
      },
      flush() {
        socket.writableLength = 0;
        for (const callback of callbacks.splice(0)) callback();
      },
    };
    return socket;
  };
  const reader = make();
  const stalled = make();
  flow.add('reader', reader as unknown as Socket);
  flow.add('stalled', stalled as unknown as Socket);
  for (let second = 1; second <= 10; second++) {
    nowMs = second * 1000;
    flow.write('reader', [new Uint8Array(100)], second * 100);
    flow.write('stalled', [new Uint8Array(100)], second * 100);
    reader.flush();
    flow.closeStalled(nowMs);
  }
  assert.ok(stalled.destroyed, 'the client that never read was disconnected');
  assert.ok(!reader.destroyed, 'the client that reads stays');
  assert.deepEqual(nic.taken.at(-1), ['reader', 1000]);
});
