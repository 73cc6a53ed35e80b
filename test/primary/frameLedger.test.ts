// Proves the frame ledger's output commit: frames of epoch e leave only when e is committed, in the
// order the guest sent them and each once; beyond its byte or frame bound a frame is dropped and
// counted instead of queued; a fenced ledger drops what it holds and everything after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameLedger, type HeldFrame } from '@hbft/primary/frameLedger.ts';

const frame = (id: number, bytes = 60) => {
  const f = new Uint8Array(bytes);
  f[0] = id;
  return f;
};
const ids = (frames: HeldFrame[]) => frames.map((f) => f.frame[0]);

test('frames are held per epoch and released in order when their epoch commits', () => {
  const ledger = new FrameLedger({ heldBytesMax: 10_000, heldFramesMax: 100 }, 4);
  assert.equal(ledger.hold(5, frame(1), 0), 'held');
  assert.equal(ledger.hold(5, frame(2), 0), 'held');
  assert.equal(ledger.hold(6, frame(3), 0), 'held');
  assert.equal(ledger.hold(8, frame(4), 0), 'held');
  assert.deepEqual(ids(ledger.commitThrough(4)), [], 'an epoch already committed releases nothing');
  assert.deepEqual(ids(ledger.commitThrough(5)), [1, 2]);
  assert.equal(ledger.heldFrames, 2);
  assert.equal(ledger.heldBytes, 120);
  assert.deepEqual(ids(ledger.commitThrough(7)), [3], 'epochs without frames are simply passed');
  assert.deepEqual(ids(ledger.commitThrough(7)), [], 'nothing twice');
  assert.deepEqual(ids(ledger.commitThrough(9)), [4]);
  assert.equal(ledger.heldBytes, 0);
  assert.deepEqual(ledger.counters, { framesHeld: 4, framesReleased: 4, framesDropped: 0 });
  assert.equal(ledger.committedThrough, 9);
});

test('a released frame says when the guest sent it, so the driver can measure how long commit held it', () => {
  const ledger = new FrameLedger({ heldBytesMax: 10_000, heldFramesMax: 100 }, 0);
  ledger.hold(1, frame(1), 10.5);
  ledger.hold(2, frame(2), 31);
  assert.deepEqual(
    ledger.commitThrough(2).map((held) => held.heldAtMs),
    [10.5, 31],
  );
});

test('beyond its bounds the ledger drops frames and counts them, and takes frames again once it has room', () => {
  const byBytes = new FrameLedger({ heldBytesMax: 1000, heldFramesMax: 100 }, 0);
  for (let i = 0; i < 16; i++) byBytes.hold(1, frame(i), 0);
  assert.equal(byBytes.heldBytes, 960);
  assert.equal(byBytes.hold(1, frame(99), 0), 'dropped');
  assert.equal(byBytes.counters.framesDropped, 1);
  assert.equal(byBytes.heldBytes, 960, 'a dropped frame takes no room');
  assert.equal(byBytes.commitThrough(1).length, 16);
  assert.equal(byBytes.hold(2, frame(100), 0), 'held');

  const byFrames = new FrameLedger({ heldBytesMax: 1_000_000, heldFramesMax: 3 }, 0);
  for (let i = 0; i < 5; i++) byFrames.hold(1, frame(i), 0);
  assert.deepEqual(ids(byFrames.commitThrough(1)), [0, 1, 2]);
  assert.equal(byFrames.counters.framesDropped, 2);
});

test('a fenced ledger releases nothing it held and holds nothing more', () => {
  const ledger = new FrameLedger({ heldBytesMax: 10_000, heldFramesMax: 100 }, 0);
  ledger.hold(1, frame(1), 0);
  ledger.hold(2, frame(2), 0);
  assert.equal(ledger.fence(), 2);
  assert.equal(ledger.hold(3, frame(3), 0), 'dropped');
  assert.deepEqual(ledger.commitThrough(3), []);
  assert.equal(ledger.heldFrames, 0);
  assert.deepEqual(ledger.counters, { framesHeld: 2, framesReleased: 0, framesDropped: 3 });
});
