// Proves the backup's apply rules with real frames from the primary's stream builder: a full sync
// plus checkpoints reproduces the primary exactly; a damaged, incomplete or out-of-order checkpoint
// changes nothing and closes the connection; only a backup with a consistent checkpoint promotes;
// and the failure detector, on a fake clock, takes over only from a primary silent on every channel,
// or, sooner, from one whose every channel was closed from its side (and not by this node).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import type { DirtyTracker } from '@hbft/common/tracking/tracker.ts';
import { DeltaCache, PageEncoder } from '@hbft/common/checkpoint/pageCodec.ts';
import { FrameEncoder, concatFrame, type EncodedFrame, type Frame } from '@hbft/common/protocol/frame.ts';
import { FrameKind as FrameKindValues, heartbeatKinds, type FrameKind } from '@hbft/common/protocol/kinds.ts';
import { decodeFrame } from '@hbft/common/protocol/decoder.ts';
import { bulkKinds } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import { nonZeroPages, sendPageStream } from '@hbft/primary/checkpointFrames.ts';
import { ReplicaStore } from '@hbft/backup/replicaStore.ts';
import { BackupReplicator, type BackupEffect } from '@hbft/backup/backupReplicator.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
const limits = protocolLimitsFor(MEMORY_BYTES);

class Primary {
  readonly machine = new Machine({ memoryBytes: MEMORY_BYTES, args: 'mb=2 rounds=1000' });
  readonly frames = new FrameEncoder(limits);
  readonly deltas = new PageEncoder(new DeltaCache(256));
  readonly words = this.machine.memory.i32;
  readonly tracker: DirtyTracker;
  epoch = 0;

  constructor() {
    this.machine.loadElf(readFileSync(resolveGuestImage('cfp')));
    this.machine.run(3_000_000);
    this.tracker = trackMemory(this.machine.memory, createTracker('wfp'));
  }

  private async stream(
    spec: Omit<Parameters<typeof sendPageStream>[0], 'source' | 'memoryBytes' | 'generation'>,
    encoder: PageEncoder,
  ): Promise<Frame[]> {
    const sent: EncodedFrame[] = [];
    const frames = this.frames;
    await sendPageStream(
      { ...spec, generation: 1, memoryBytes: MEMORY_BYTES, source: { words: this.words, wordIndex: (i) => spec.pages[i]! * 1024 } },
      {
        send(kind: FrameKind, meta: never, fields) {
          const frame = frames.encode(kind, meta, fields);
          sent.push(frame);
          return { sent: true, checksum: frame.checksum, backpressure: false, endsAt: 0 };
        },
        drained: async () => {},
      },
      encoder,
    );
    return sent.map((frame) => {
      const decoded = decodeFrame(concatFrame(frame), {
        limits,
        kindsAccepted: bulkKinds,
        kindsAcceptedWhere: 'test',
        sequenceExpected: null,
      });
      assert.equal(decoded.failure, null);
      return decoded.frame!;
    });
  }

  async fullSync(): Promise<Frame[]> {
    return this.stream({ kind: 'full-sync', epoch: 0, pages: await nonZeroPages(this.words) }, new PageEncoder(null));
  }

  /** Runs the guest for an epoch and returns that epoch's checkpoint frames. */
  async checkpoint(instructions = 500_000): Promise<Frame[]> {
    this.machine.run(instructions);
    const result = this.tracker.endEpoch();
    const frames = await this.stream(
      { kind: 'checkpoint', epoch: this.epoch, pages: result.dirtyPages, state: this.machine.getState() },
      this.deltas,
    );
    this.tracker.beginEpoch();
    this.epoch++;
    return frames;
  }
}

function backup(now = 0) {
  const store = new ReplicaStore(MEMORY_BYTES);
  const replicator = new BackupReplicator(store, {
    heartbeatMs: 20,
    failoverTimeoutMs: 100,
    closedGraceMs: 60,
    memoryBytes: MEMORY_BYTES,
    nowMs: now,
  });
  assert.deepEqual(replicator.acceptPrimary({ generation: 1, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i1' }, now), {
    ok: true,
  });
  return { store, replicator };
}

function feed(replicator: BackupReplicator, frames: Frame[], now = 0): BackupEffect[] {
  return frames.flatMap((frame) => replicator.onFrame(frame, now)).filter((e) => e.type !== 'log');
}

const promotes = (effects: BackupEffect[]) => effects.some((e) => e.type === 'promote');

/** Ticks every `stepMs` in (fromMs, toMs] as the driver does (ticker.ts): all effects, and when it took over. */
function tickEvery(replicator: BackupReplicator, fromMs: number, toMs: number, stepMs = 5, each?: (nowMs: number) => void) {
  const effects: BackupEffect[] = [];
  for (let now = fromMs + stepMs; now <= toMs; now += stepMs) {
    each?.(now);
    const step = replicator.tick(now);
    effects.push(...step);
    if (promotes(step)) return { promotedAt: now as number | null, effects };
  }
  return { promotedAt: null as number | null, effects };
}

test('a full sync and then each checkpoint leave the backup equal to the primary', async () => {
  const primary = new Primary();
  const { store, replicator } = backup();
  assert.deepEqual(feed(replicator, await primary.fullSync()), [{ type: 'sendAck', epoch: 0, subject: 'full-sync' }]);
  assert.equal(store.consistent, false, 'a full sync alone is not a state to resume from');
  for (let i = 0; i < 6; i++) {
    const effects = feed(replicator, await primary.checkpoint());
    assert.deepEqual(effects, [{ type: 'sendAck', epoch: i, subject: 'checkpoint' }]);
    assert.equal(store.stateHash(), primary.machine.stateHash(), `after checkpoint ${i}`);
  }
  assert.equal(replicator.status(0).mode, 'protecting');
});

test('a damaged, incomplete or out-of-order checkpoint changes nothing and closes the connection', async () => {
  const primary = new Primary();
  const { store, replicator } = backup();
  feed(replicator, await primary.fullSync());
  feed(replicator, await primary.checkpoint());
  const before = store.stateHash();

  const good = await primary.checkpoint();
  // A valid frame whose page record points outside guest memory.
  const pages = good[1]!;
  const damagedPayload = Buffer.from(pages.payload);
  damagedPayload.writeUInt32LE(0xffff_0000, 0);
  const damaged = [good[0]!, { ...pages, payload: damagedPayload } as Frame, ...good.slice(2)];
  let effects = feed(replicator, damaged);
  assert.equal(effects.at(-1)?.type, 'closePrimary');
  assert.equal(store.stateHash(), before, 'damaged records: nothing applied');

  // END before all parts: the stream check refuses it.
  const fresh = backup();
  feed(fresh.replicator, await new Primary().fullSync());
  effects = feed(fresh.replicator, [good[0]!, good.at(-1)!]);
  assert.equal(effects.at(-1)?.type, 'closePrimary');
  assert.equal(fresh.store.consistent, false);

  // A checkpoint that skips one.
  const { store: store2, replicator: replicator2 } = backup();
  const primary2 = new Primary();
  feed(replicator2, await primary2.fullSync());
  feed(replicator2, await primary2.checkpoint());
  const before2 = store2.stateHash();
  await primary2.checkpoint();
  effects = feed(replicator2, await primary2.checkpoint());
  assert.ok(effects.some((e) => e.type === 'closePrimary' && e.code === 'E_EPOCH_ORDER'));
  assert.equal(store2.stateHash(), before2);
});

test('a silent primary is replaced only by a backup that holds a consistent checkpoint', async () => {
  const primary = new Primary();
  const { replicator } = backup(0);
  feed(replicator, await primary.fullSync(), 0);
  let ticked = tickEvery(replicator, 0, 500);
  assert.equal(ticked.promotedAt, null, 'no checkpoint applied yet: cannot take over');
  assert.ok(ticked.effects.some((e) => e.type === 'log' && /cannot take over/.test(e.message)));

  feed(replicator, await primary.checkpoint(), 600);
  ticked = tickEvery(replicator, 600, 800);
  assert.equal(ticked.promotedAt, 710, 'silence past the timeout at 705 (suspected), confirmed at the next tick');
  const promote = ticked.effects.find((e) => e.type === 'promote');
  assert.ok(promote && promote.type === 'promote');
  assert.equal(promote.generation, 2);
  assert.equal(promote.epoch, 1, 'resumes in the epoch after the last applied one');
  assert.deepEqual(replicator.acceptPrimary({ generation: 1, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i1' }, 800), {
    ok: false,
    code: 'E_DEPOSED',
    reason: 'this node took over as primary at generation 2; generation 1 is deposed',
  });
});

test('handshakes with the wrong memory size or an older generation are refused', () => {
  const { replicator } = backup();
  const wrongMemory = replicator.acceptPrimary(
    { generation: 1, memoryBytes: 32 * 1024 * 1024, guestImageHash: 'abc', instanceId: 'i1' },
    0,
  );
  assert.equal(wrongMemory.ok, false);
  assert.match(!wrongMemory.ok ? wrongMemory.reason : '', /the same memory size/);
  replicator.acceptPrimary({ generation: 3, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i1' }, 0);
  const stale = replicator.acceptPrimary({ generation: 2, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i1' }, 0);
  assert.equal(!stale.ok && stale.code, 'E_STALE_GENERATION');
});

test('a promoted node refuses older primaries and fences itself before a newer one', async () => {
  const primary = new Primary();
  const { replicator } = backup(0);
  feed(replicator, await primary.fullSync(), 0);
  feed(replicator, await primary.checkpoint(), 10);
  assert.notEqual(tickEvery(replicator, 10, 300).promotedAt, null);
  const older = replicator.acceptPrimary({ generation: 1, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i1' }, 300);
  assert.equal(!older.ok && older.code, 'E_DEPOSED');
  assert.equal(!older.ok && older.fenceSelf, undefined, 'the older primary is the deposed one');
  const newer = replicator.acceptPrimary({ generation: 3, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i9' }, 300);
  assert.equal(!newer.ok && newer.fenceSelf, true, 'a newer generation exists: this node must stop');
  assert.equal(!newer.ok && newer.code, 'E_RESPONDER_STALE', 'and the newer primary is not told that it is deposed');
});

test("a backup holding a primary's state refuses another primary process of the same generation", async () => {
  const primary = new Primary();
  const { replicator } = backup(0);
  feed(replicator, await primary.fullSync(), 0);
  feed(replicator, await primary.checkpoint(), 10);
  const restarted = replicator.acceptPrimary({ generation: 1, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i2' }, 20);
  assert.equal(!restarted.ok && restarted.code, 'E_STALE_INSTANCE');
  assert.deepEqual(
    replicator.acceptPrimary({ generation: 1, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i1' }, 20),
    { ok: true },
    'the same process reconnecting is welcome',
  );
  assert.deepEqual(
    replicator.acceptPrimary({ generation: 2, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i3' }, 20),
    { ok: true },
    'a newer generation is welcome',
  );
});

test('nextDeadlineMs is the next heartbeat or the takeover, whichever comes first, and frames move the takeover later', async () => {
  const primary = new Primary();
  const { replicator } = backup(0);
  assert.equal(replicator.nextDeadlineMs(), 0, 'connected and never heartbeated: due now');
  replicator.tick(0);
  assert.equal(replicator.nextDeadlineMs(), 20, 'waiting for a full sync: heartbeats only');
  feed(replicator, await primary.fullSync(), 0);
  feed(replicator, await primary.checkpoint(), 10);
  replicator.tick(20);
  assert.equal(replicator.nextDeadlineMs(), 40);
  feed(replicator, await primary.checkpoint(), 35);
  for (const at of [40, 60, 80, 100, 120]) replicator.tick(at);
  assert.equal(replicator.nextDeadlineMs(), 136, 'heard at 35: takeover once 100 ms have passed, before the heartbeat at 140');
  assert.ok(!replicator.tick(135).some((e) => e.type === 'promote'));
  assert.ok(!replicator.tick(136).some((e) => e.type === 'promote'), 'suspected at 136');
  assert.equal(replicator.nextDeadlineMs(), 136, 'a suspicion is judged at the very next tick');
  assert.ok(replicator.tick(137).some((e) => e.type === 'promote'));
  assert.equal(replicator.nextDeadlineMs(), Infinity, 'promoted: the runtime ticks from now on');
});

/** A HEARTBEAT as the heartbeat (or control) channel delivers it. */
function heartbeatFrame(): Frame {
  const encoded = new FrameEncoder(limits).encode(FrameKindValues.HEARTBEAT, { sentAtMs: 0 }, { generation: 1 });
  const decoded = decodeFrame(concatFrame(encoded), {
    limits,
    kindsAccepted: heartbeatKinds,
    kindsAcceptedWhere: 'test',
    sequenceExpected: null,
  });
  assert.equal(decoded.failure, null);
  return decoded.frame!;
}

/** A protecting backup (full sync and one checkpoint applied at `now`). */
async function protecting(now: number) {
  const primary = new Primary();
  const { replicator } = backup(now);
  feed(replicator, await primary.fullSync(), now);
  feed(replicator, await primary.checkpoint(), now);
  assert.equal(replicator.status(now).mode, 'protecting');
  return { primary, replicator };
}

test('detector: a primary silent on every channel is suspected past the timeout and taken over at the next tick', async () => {
  const { replicator } = await protecting(0);
  let promotedAt: number | null = null;
  // A driver ticking every millisecond (the fake clock is the tick's argument).
  for (let now = 1; now <= 300 && promotedAt === null; now++) {
    if (promotes(replicator.tick(now))) promotedAt = now;
  }
  assert.equal(promotedAt, 102, 'silence passes 100 ms at 101 (suspected), confirmed at 102');
});

test('detector: a stall of the backup itself never reads as a silent primary', async () => {
  const heartbeat = heartbeatFrame();
  const { replicator } = await protecting(0);
  tickEvery(replicator, 0, 100, 20, (now) => replicator.onFrame(heartbeat, now));
  // The backup's thread (or its whole host) stalls from 100 to 400 ms: the primary's heartbeats
  // wait in the socket, and of those 300 ms only SILENCE_PER_TICK_MS_MAX count as silence.
  assert.equal(promotes(replicator.tick(400)), false);
  assert.equal(replicator.status(400).mode, 'protecting');
  // The event loop reads the socket before the next tick: fifteen heartbeats arrive at once.
  for (let i = 0; i < 15; i++) replicator.onFrame(heartbeat, 401);
  const ticked = tickEvery(replicator, 401, 1_000, 5, (now) => {
    if (now % 20 === 1) replicator.onFrame(heartbeat, now);
  });
  assert.equal(ticked.promotedAt, null, 'heard again: no takeover');
});

test('detector: after its own stall the backup still takes over once it has watched the timeout of silence', async () => {
  const { replicator } = await protecting(0);
  tickEvery(replicator, 0, 100, 20);
  // Silence counted by 100: 100 ms. A stall to 400 adds only 25 — but the primary is dead.
  const before = replicator.tick(101);
  assert.equal(promotes(before), false, 'suspected at 101');
  assert.equal(promotes(replicator.tick(400)), true, 'nothing arrived since the suspicion: taken over at the next tick');
  const { replicator: fresh } = await protecting(0);
  assert.equal(promotes(fresh.tick(300)), false, 'a first tick 300 ms late counts 25 ms');
  assert.equal(tickEvery(fresh, 300, 1_000).promotedAt, 385, '25 + 80 ms > 100 at 380 (suspected), confirmed at 385');
});

test('detector: frames on any one channel keep the primary alive (heartbeat channel alone, or checkpoints alone)', async () => {
  const heartbeat = heartbeatFrame();
  const { primary, replicator } = await protecting(0);
  // Only the heartbeat thread is heard (the primary's main thread is busy: no checkpoint, no control frame).
  for (let now = 1; now <= 1_000; now++) {
    if (now % 20 === 0) replicator.onFrame(heartbeat, now);
    assert.equal(promotes(replicator.tick(now)), false, `heartbeat channel alive at ${now}`);
  }
  // Only checkpoints are heard, every 60 ms (within the timeout).
  for (let now = 1_001; now <= 2_000; now++) {
    if (now % 60 === 0) feed(replicator, await primary.checkpoint(10_000), now);
    assert.equal(promotes(replicator.tick(now)), false, `bulk channel alive at ${now}`);
  }
});

test('detector: a frame between the suspicion and its confirmation clears it; a lost connection does not delay the takeover', async () => {
  const heartbeat = heartbeatFrame();
  const { replicator } = await protecting(0);
  assert.equal(tickEvery(replicator, 0, 105).promotedAt, null, 'suspected at 105');
  replicator.onFrame(heartbeat, 106);
  assert.equal(promotes(replicator.tick(110)), false, 'cleared by the frame');
  replicator.onPrimaryDisconnected('E_CONNECTION_LOST: reset');
  const ticked = tickEvery(replicator, 110, 400);
  assert.equal(ticked.promotedAt, 215, 'silence past the timeout at 210 (suspected), confirmed at 215');
  const promote = ticked.effects.find((e) => e.type === 'promote');
  assert.ok(
    promote && promote.type === 'promote' && /no frame from the primary for 109 ms \(timeout 100 ms\)/.test(promote.reason),
    promote?.type === 'promote' ? promote.reason : '',
  );
});

// Closed connections: every channel of the primary's session closed from its side (a killed or
// stopped process) is taken over after the grace (60 ms here) instead of the timeout (100 ms).
const CHANNELS = ['control', 'bulk', 'heartbeat'] as const;

function openSession(replicator: BackupReplicator, sessionId: string, nowMs: number): void {
  const verdict = replicator.acceptPrimary({ generation: 1, memoryBytes: MEMORY_BYTES, guestImageHash: 'abc', instanceId: 'i1' }, nowMs);
  assert.deepEqual(verdict, { ok: true });
  for (const channel of CHANNELS) replicator.onChannelOpened(sessionId, channel);
}

/** A protecting backup whose primary (session s1) sent heartbeats every 20 ms up to 200 ms, ticked every millisecond. */
async function heardUntil200() {
  const heartbeat = heartbeatFrame();
  const { primary, replicator } = await protecting(0);
  openSession(replicator, 's1', 0);
  for (let now = 1; now <= 200; now++) {
    if (now % 20 === 0) replicator.onFrame(heartbeat, now);
    assert.equal(promotes(replicator.tick(now)), false);
  }
  return { primary, replicator, heartbeat };
}

/** Ticks every millisecond from `fromMs` to `toMs`: when it took over and with what reason. */
function tickEachMs(replicator: BackupReplicator, fromMs: number, toMs: number, each?: (nowMs: number) => void) {
  for (let now = fromMs; now <= toMs; now++) {
    each?.(now);
    const promote = replicator.tick(now).find((e) => e.type === 'promote');
    if (promote?.type === 'promote') return { promotedAt: now as number | null, reason: promote.reason };
  }
  return { promotedAt: null as number | null, reason: '' };
}

test('closed: every channel closed by the primary (FIN/RST) is taken over after the grace, by the timeout path', async () => {
  const { replicator } = await heardUntil200();
  const logged = CHANNELS.flatMap((channel) => replicator.onChannelClosed('s1', channel, 'vanished', 205));
  assert.ok(
    logged.some((e) => e.type === 'log' && /every connection of the primary was closed from its side/.test(e.message)),
    'the last close is logged',
  );
  assert.equal(tickEachMs(replicator, 205, 264).promotedAt, null);
  assert.equal(replicator.nextDeadlineMs(), 265, 'the grace ends 60 ms after the last close (before the heartbeat due at 280)');
  const ticked = tickEachMs(replicator, 265, 400);
  assert.equal(ticked.promotedAt, 266, 'grace passed at 265 (suspected), confirmed at the next tick; the timeout would be at 302');
  assert.match(ticked.reason, /^the primary's connections closed \(control: FIN\/RST, bulk: FIN\/RST, heartbeat: FIN\/RST\) 61 ms ago/);
  assert.equal(replicator.status(266).mode, 'promoted');
  assert.equal(replicator.status(266).generation, 2);
});

test('closed: a primary that says GOODBYE on every channel (SIGTERM) is taken over after the grace too', async () => {
  const { replicator } = await heardUntil200();
  replicator.onChannelClosed('s1', 'control', 'goodbye', 205);
  replicator.onChannelClosed('s1', 'bulk', 'vanished', 206);
  assert.equal(tickEachMs(replicator, 205, 209).promotedAt, null);
  replicator.onChannelClosed('s1', 'heartbeat', 'goodbye', 210);
  assert.equal(tickEachMs(replicator, 210, 400).promotedAt, 271, 'the grace counts from the last close');
});

test('closed: one channel or two closed is not enough: the primary is taken over only by the timeout', async () => {
  // Only the control channel closed, and the primary goes on sending on bulk and heartbeat: alive.
  const { primary, replicator, heartbeat } = await heardUntil200();
  replicator.onChannelClosed('s1', 'control', 'vanished', 205);
  const alive = tickEachMs(replicator, 205, 1_000, (now) => {
    if (now % 20 === 0) replicator.onFrame(heartbeat, now);
  });
  assert.equal(alive.promotedAt, null);
  void primary;
  // Control and bulk closed from the primary's side (its link dropped and reconnects) while its
  // heartbeat thread's channel stays open: silent from then on, it is taken over by the timeout.
  const { replicator: other } = await heardUntil200();
  other.onChannelClosed('s1', 'control', 'goodbye', 205);
  other.onChannelClosed('s1', 'bulk', 'goodbye', 205);
  const ticked = tickEachMs(other, 205, 400);
  assert.equal(ticked.promotedAt, 302, 'silence past 100 ms at 301 (suspected), confirmed at 302, as without the closes');
  assert.match(ticked.reason, /^no frame from the primary for 102 ms \(timeout 100 ms\)$/);
});

test("closed: the backup's own close (closePrimary) or an ERROR from the primary does not count", async () => {
  for (const first of ['local', 'error'] as const) {
    const { replicator } = await heardUntil200();
    // This node refused a checkpoint and closed the first channel; the others then closed from the
    // primary's side (its link drops the rest) — or the primary died just then. Either way: the timeout.
    replicator.onChannelClosed('s1', 'control', first, 205);
    replicator.onChannelClosed('s1', 'bulk', 'vanished', 205);
    replicator.onChannelClosed('s1', 'heartbeat', 'vanished', 205);
    const ticked = tickEachMs(replicator, 205, 400);
    assert.equal(ticked.promotedAt, 302, `${first}: only the timeout takes over`);
    assert.match(ticked.reason, /^no frame from the primary/);
  }
  // The replicator itself refused a checkpoint (closePrimary): the closes reported after it count
  // for nothing, even when every one reads as the primary's (it died just then, or closed first).
  const { primary, replicator } = await heardUntil200();
  await primary.checkpoint();
  const refused = feed(replicator, await primary.checkpoint(), 200);
  assert.ok(refused.some((e) => e.type === 'closePrimary' && e.code === 'E_EPOCH_ORDER'));
  for (const channel of CHANNELS) replicator.onChannelClosed('s1', channel, 'vanished', 205);
  const ticked = tickEachMs(replicator, 205, 400);
  assert.equal(ticked.promotedAt, 302, 'after its own closePrimary only the timeout takes over');
});

test('closed: a reconnecting primary or a frame within the grace cancels the takeover', async () => {
  const { replicator, heartbeat } = await heardUntil200();
  for (const channel of CHANNELS) replicator.onChannelClosed('s1', channel, 'vanished', 205);
  tickEachMs(replicator, 205, 240);
  // The primary was alive (something on the path cut its connections): it authenticates again.
  openSession(replicator, 's2', 241);
  // The old session's channels say nothing about the new one.
  for (const channel of CHANNELS) replicator.onChannelClosed('s1', channel, 'vanished', 242);
  const resumed = tickEachMs(replicator, 241, 1_000, (now) => {
    if (now % 20 === 0) replicator.onFrame(heartbeat, now);
  });
  assert.equal(resumed.promotedAt, null, 'the new session is heard: no takeover');
  // The new session's channels all close in turn: judged afresh.
  for (const channel of CHANNELS) replicator.onChannelClosed('s2', channel, 'vanished', 1_001);
  assert.equal(tickEachMs(replicator, 1_001, 1_200).promotedAt, 1_062);

  // A frame after the suspicion, before its confirmation, clears it as a frame clears a silence.
  const { replicator: other } = await heardUntil200();
  for (const channel of CHANNELS) other.onChannelClosed('s1', channel, 'goodbye', 205);
  assert.equal(tickEachMs(other, 205, 265).promotedAt, null, 'suspected at 265');
  other.onFrame(heartbeat, 265.5);
  const ticked = tickEachMs(other, 266, 600);
  assert.equal(ticked.promotedAt, 367, 'the closed path is off; the timeout counts from the frame');
  assert.match(ticked.reason, /^no frame from the primary/);
});

test('closed: the grace counts only while the backup runs, like silence', async () => {
  const { replicator } = await heardUntil200();
  for (const channel of CHANNELS) replicator.onChannelClosed('s1', channel, 'vanished', 205);
  replicator.tick(205);
  // The backup stalls from 205 to 500: of that, 25 ms count (SILENCE_PER_TICK_MS_MAX).
  assert.equal(promotes(replicator.tick(500)), false);
  assert.equal(tickEachMs(replicator, 501, 700).promotedAt, 536, 'the other 35 ms of the grace are watched from 500 on');
});

test('closed: a backup without a consistent checkpoint says it cannot take over', async () => {
  const primary = new Primary();
  const { replicator } = backup(0);
  for (const channel of CHANNELS) replicator.onChannelOpened('s1', channel);
  feed(replicator, await primary.fullSync(), 0);
  for (const channel of CHANNELS) replicator.onChannelClosed('s1', channel, 'vanished', 10);
  const effects: BackupEffect[] = [];
  for (let now = 10; now <= 90; now++) effects.push(...replicator.tick(now));
  assert.ok(!promotes(effects));
  assert.ok(effects.some((e) => e.type === 'log' && /connections closed but .* cannot take over/.test(e.message)));
});
