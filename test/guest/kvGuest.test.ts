// Proves that the kv guest answers the Redis protocol through the virtual NIC: several
// connections, pipelined and split requests, every supported command, errors, and that a
// save/restore between requests continues the same conversation; the rv32imac build of kv
// answers the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { encodeCommand, ReplyReader, RespError, type RespValue } from '@hbft/common/session/resp.ts';

const MEMORY_BYTES = 32 * 1024 * 1024;

class KvHarness {
  readonly machine: Machine;
  private readonly readers = new Map<number, ReplyReader>();
  readonly closed = new Set<number>();

  constructor(machine?: Machine, image = 'kv') {
    this.machine = machine ?? new Machine({ memoryBytes: MEMORY_BYTES });
    if (!machine) this.machine.loadElf(readFileSync(resolveGuestImage(image)));
    this.machine.nic.host = {
      onTransmit: (slot, bytes) => this.reader(slot).push(bytes),
      onGuestClose: (slot) => this.closed.add(slot),
    };
    this.settle();
  }

  private reader(slot: number): ReplyReader {
    let reader = this.readers.get(slot);
    if (!reader) this.readers.set(slot, (reader = new ReplyReader()));
    return reader;
  }

  /** Runs until the guest waits for input. */
  settle(): void {
    for (let i = 0; i < 1000; i++) if (this.machine.run(200_000).stop === 2) return;
    assert.fail('the guest never went idle');
  }

  open(): number {
    const slot = this.machine.nic.openConnection(`t${Math.random()}`);
    assert.ok(slot >= 0);
    this.readers.set(slot, new ReplyReader());
    return slot;
  }

  send(slot: number, bytes: Uint8Array | string): void {
    this.machine.nic.deliver(slot, typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes);
    this.settle();
  }

  replies(slot: number): RespValue[] {
    const out: RespValue[] = [];
    for (let value = this.reader(slot).next(); value !== undefined; value = this.reader(slot).next()) out.push(value);
    return out;
  }

  command(slot: number, ...args: (string | number)[]): RespValue {
    this.send(slot, encodeCommand(args));
    const replies = this.replies(slot);
    assert.equal(replies.length, 1, `one reply to ${args.join(' ')}`);
    return replies[0]!;
  }
}

for (const image of ['kv', 'kv.rv32imac'])
  test(`${image} answers every supported command`, () => {
    const kv = new KvHarness(undefined, image);
    const c = kv.open();
    assert.equal(kv.command(c, 'PING'), 'PONG');
    assert.equal(kv.command(c, 'PING', 'hello'), 'hello');
    assert.equal(kv.command(c, 'SET', 'a', '1'), 'OK');
    assert.equal(kv.command(c, 'GET', 'a'), '1');
    assert.equal(kv.command(c, 'GET', 'missing'), null);
    assert.equal(kv.command(c, 'INCR', 'a'), 2);
    assert.equal(kv.command(c, 'INCRBY', 'a', '40'), 42);
    assert.equal(kv.command(c, 'INCRBY', 'a', '-50'), -8);
    assert.equal(kv.command(c, 'EXISTS', 'a', 'missing', 'a'), 2);
    assert.equal(kv.command(c, 'MSET', 'x', 'X', 'y', 'Y'), 'OK');
    assert.deepEqual(kv.command(c, 'MGET', 'x', 'missing', 'y'), ['X', null, 'Y']);
    assert.equal(kv.command(c, 'DBSIZE'), 3);
    assert.equal(kv.command(c, 'DEL', 'x', 'y', 'missing'), 2);
    assert.equal(kv.command(c, 'DBSIZE'), 1);
    assert.ok(kv.command(c, 'SET', 'text', 'abc') === 'OK');
    const notInteger = kv.command(c, 'INCR', 'text');
    assert.ok(notInteger instanceof RespError && /not an integer/.test(notInteger.message));
    const unknown = kv.command(c, 'NOSUCHCOMMAND');
    assert.ok(unknown instanceof RespError && /unknown command/i.test(unknown.message));
    assert.equal(kv.command(c, 'SET', 'max', '9223372036854775807'), 'OK');
    const overflow = kv.command(c, 'INCR', 'max');
    assert.ok(overflow instanceof RespError, 'signed 64-bit overflow is an error, as in Redis');
  });

test('pipelined requests split at every byte boundary, on interleaved connections', () => {
  const kv = new KvHarness();
  const a = kv.open();
  const b = kv.open();
  const stream = Buffer.concat([
    encodeCommand(['INCR', 'n']),
    encodeCommand(['INCR', 'n']),
    encodeCommand(['GET', 'n']),
    Buffer.from('PING\r\n'),
  ]);
  for (let split = 1; split < stream.length; split += 7) {
    kv.send(a, stream.subarray(0, split));
    kv.send(b, encodeCommand(['SET', `b${split}`, 'v']));
    kv.send(a, stream.subarray(split));
  }
  const replies = kv.replies(a);
  assert.equal(replies.length, 4 * Math.ceil((stream.length - 1) / 7));
  assert.deepEqual(replies.slice(0, 4), [1, 2, '2', 'PONG']);
  assert.ok(kv.replies(b).every((r) => r === 'OK'));
});

test('QUIT closes the connection and the slot is reused cleanly', () => {
  const kv = new KvHarness();
  const c = kv.open();
  assert.equal(kv.command(c, 'QUIT'), 'OK');
  assert.ok(kv.closed.has(c));
  const d = kv.open();
  assert.equal(d, c, 'the freed slot is handed out again');
  assert.equal(kv.command(d, 'PING'), 'PONG');
});

test('a save/restore between requests continues the same conversation', () => {
  const kv = new KvHarness();
  const c = kv.open();
  kv.command(c, 'SET', 'k', 'before');
  kv.command(c, 'INCR', 'counter');
  const ram = kv.machine.memory.u8.slice();
  const state = kv.machine.getState();
  const copy = new Machine({ memoryBytes: MEMORY_BYTES });
  copy.memory.u8.set(ram);
  copy.setState(state);
  const restored = new KvHarness(copy);
  assert.equal(restored.command(c, 'GET', 'k'), 'before');
  assert.equal(restored.command(c, 'INCR', 'counter'), 2);
});
