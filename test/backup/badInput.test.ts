// Proves that a running backup refuses bad replication input with a logged reason — garbage,
// frames before authentication, a wrong key, wrong magic or version, a bad checksum, oversize
// lengths, unknown kinds, truncation, a checkpoint of the wrong epoch or generation, damaged
// page records — closes the connection, and keeps its replica exactly as it was (state hash).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import type { DirtyTracker } from '@hbft/common/tracking/tracker.ts';
import { DeltaCache, PageEncoder } from '@hbft/common/checkpoint/pageCodec.ts';
import {
  encodeFrameUnchecked,
  encodeSealedFrameUnchecked,
  encodeMeta,
  concatFrame,
  FrameFlag,
  FrameOffset,
} from '@hbft/common/protocol/frame.ts';
import type { FrameSealer } from '@hbft/common/protocol/seal.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor, protocolVersion } from '@hbft/common/protocol/limits.ts';
import type { Frame } from '@hbft/common/protocol/frame.ts';
import { connectBulk } from '@hbft/common/transport/bulk.ts';
import { ReplicationMetrics } from '@hbft/common/http/metrics.ts';
import { BackupDaemon } from '@hbft/backup/daemon.ts';
import { BackupLink } from '@hbft/primary/backupLink.ts';
import { sendPageStream } from '@hbft/primary/checkpointFrames.ts';
import { sendFullSync } from '../helpers/fullSync.ts';
import { linesLogger } from '../helpers/logLines.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
const KEY = Buffer.from('the-right-key-0123456789');
const limits = protocolLimitsFor(MEMORY_BYTES);
const logLines: string[] = [];
const logger = linesLogger(logLines, 'debug');

let daemon: BackupDaemon;
const source = new Machine({ memoryBytes: MEMORY_BYTES, args: 'mb=2 rounds=1000' });
const deltas = new PageEncoder(new DeltaCache(64));
let epoch = 0;
let tracker: DirtyTracker;

/** The test plays one primary process that reconnects: every link carries its instance id. */
const INSTANCE_ID = Buffer.alloc(16, 0x5a);

function link(generation = 1, instanceId = INSTANCE_ID): BackupLink {
  return new BackupLink({
    host: '127.0.0.1',
    port: daemon.listenAddress.port,
    auth: { mode: 'hmac', key: KEY },
    limits,
    logger,
    memoryBytes: MEMORY_BYTES,
    guestImageHash: Buffer.alloc(32, 7),
    generation,
    instanceId,
  });
}

async function connected(generation = 1): Promise<BackupLink> {
  const l = link(generation);
  const ready = once(l, 'ready');
  l.start();
  await ready;
  return l;
}

function ackOf(l: BackupLink, wanted: number): Promise<void> {
  return new Promise((resolve) => {
    const onFrame = (frame: Frame) => {
      if (frame.kind === FrameKind.ACK && frame.meta.subject === 'checkpoint' && frame.epoch === wanted) {
        l.off('frame', onFrame);
        resolve();
      }
    };
    l.on('frame', onFrame);
  });
}

async function sendCheckpoint(l: BackupLink, epochNumber: number, generation = 1): Promise<void> {
  source.run(300_000);
  const result = tracker.endEpoch();
  tracker.beginEpoch();
  await sendPageStream(
    {
      kind: 'checkpoint',
      epoch: epochNumber,
      generation,
      pages: result.dirtyPages,
      state: source.getState(),
      memoryBytes: MEMORY_BYTES,
      source: { words: source.memory.i32, wordIndex: (i) => result.dirtyPages[i]! * 1024 },
    },
    l.bulk!,
    deltas,
  );
}

/** Raw bytes on an authenticated, handshaken bulk channel; returns how the backup closed it. */
async function inject(bytesFor: (sequence: number, sealer: FrameSealer) => Buffer, endAfter = false): Promise<string> {
  const l = await connected();
  const bulk = l.bulk! as unknown as { socket: import('node:net').Socket; encoder: { nextSequence: number; sealer: FrameSealer } };
  const closed = new Promise<string>((resolve) => l.once('lost', resolve));
  bulk.socket.write(bytesFor(bulk.encoder.nextSequence, bulk.encoder.sealer));
  if (endAfter) bulk.socket.end();
  const reason = await closed;
  await l.stop();
  return reason;
}

/** A frame laid out by hand: in plaintext, or sealed by the connection's own sealer (so that only the field changed is wrong). */
function rawFrame(sequence: number, fields: Partial<Parameters<typeof encodeFrameUnchecked>[0]> = {}, sealer?: FrameSealer): Buffer {
  const raw = {
    kind: FrameKind.CHECKPOINT_BEGIN,
    sequence,
    generation: 1,
    epoch: 99,
    metaBytes: encodeMeta({ pageCount: 0, partCount: 0 }),
    ...fields,
  };
  return concatFrame(sealer === undefined ? encodeFrameUnchecked(raw) : encodeSealedFrameUnchecked(raw, sealer));
}

before(async () => {
  source.loadElf(readFileSync(resolveGuestImage('cfp')));
  source.run(2_000_000);
  tracker = trackMemory(source.memory, createTracker('rfr'));
  daemon = await BackupDaemon.start({
    listen: { host: '127.0.0.1', port: 0 },
    memoryBytes: MEMORY_BYTES,
    auth: { mode: 'hmac', key: KEY },
    // This daemon must never take over: its test primaries come and go (each link's stop says
    // GOODBYE on every channel, as a stopped primary does). The takeover after closed
    // connections waits 3 heartbeat intervals, the one after silence the timeout: both 10 min.
    timing: { epochMs: 20, heartbeatMs: 200_000, failoverTimeoutMs: 600_000 },
    logger,
    metrics: new ReplicationMetrics('backup', 0),
    promoted: {
      tracking: 'wfp',
      trackerOptions: {},
      mapper: {},
      checkpointsInFlightMax: 2,
    },
  });
  // A good primary brings the backup to a consistent state.
  const good = await connected();
  await sendFullSync(good.bulk!, source.memory.i32);
  for (; epoch < 3; epoch++) {
    const acked = ackOf(good, epoch);
    await sendCheckpoint(good, epoch);
    await acked;
  }
  await good.stop();
  assert.equal(daemon.store.appliedEpoch, 2);
});

after(async () => {
  await daemon.stop();
});

function loggedSince(mark: number, pattern: RegExp): boolean {
  return logLines.slice(mark).some((line) => pattern.test(line));
}

test('garbage, frames before authentication and a wrong key are refused', async () => {
  const hash = daemon.store.stateHash();
  let mark = logLines.length;
  const garbage = netConnect(daemon.listenAddress.port, '127.0.0.1');
  garbage.write(Buffer.from('\x01\x02 this is not a replication peer'));
  garbage.resume();
  await once(garbage, 'close');
  assert.ok(loggedSince(mark, /E_LISTENER_PROTOCOL/));

  mark = logLines.length;
  const early = netConnect(daemon.listenAddress.port, '127.0.0.1');
  early.write(rawFrame(0));
  // Read what the backup answers (its ERROR frame, then the end of the stream) to see it close.
  early.resume();
  await once(early, 'close');
  assert.ok(loggedSince(mark, /E_FRAME_KIND_UNEXPECTED|E_AUTH_UNEXPECTED/), 'a checkpoint frame before authentication');

  mark = logLines.length;
  await assert.rejects(
    connectBulk({
      host: '127.0.0.1',
      port: daemon.listenAddress.port,
      auth: { mode: 'hmac', key: Buffer.from('a-wrong-key-0123456789') },
      limits,
      logger,
    }),
    /E_AUTH/,
  );
  assert.equal(daemon.store.stateHash(), hash);
});

test('malformed frames after authentication close the connection and change nothing', async () => {
  const hash = daemon.store.stateHash();
  const cases: [string, (sequence: number, sealer: FrameSealer) => Buffer, RegExp, boolean?][] = [
    ['wrong magic', (seq) => rawFrame(seq, { magic: 0x12345678 }), /E_FRAME_MAGIC/],
    ['wrong version', (seq) => rawFrame(seq, { version: protocolVersion + 1 }), /E_FRAME_VERSION/],
    ['unsealed frame', (seq) => rawFrame(seq), /E_FRAME_SEAL/],
    ['forged seal', (seq) => Buffer.concat([rawFrame(seq, { flags: FrameFlag.sealed }), Buffer.alloc(16, 0xaa)]), /E_FRAME_SEAL/],
    ['unknown kind', (seq) => rawFrame(seq, { kind: 200 }), /E_FRAME_KIND/],
    ['wrong sequence', (seq, sealer) => rawFrame(seq + 5, {}, sealer), /E_FRAME_SEQUENCE/],
    [
      'oversize payload length',
      (seq) => {
        const frame = rawFrame(seq);
        frame.writeUInt32LE(limits.framePayloadBytesMax + 1, FrameOffset.payloadBytes);
        return frame;
      },
      /E_FRAME_PAYLOAD_TOO_LARGE/,
    ],
    ['truncated frame', (seq) => rawFrame(seq).subarray(0, 30), /E_FRAME_TRUNCATED/, true],
  ];
  for (const [name, bytes, code, endAfter] of cases) {
    const mark = logLines.length;
    const reason = await inject(bytes, endAfter);
    assert.match(reason + logLines.slice(mark).join('\n'), code, name);
    assert.equal(daemon.store.stateHash(), hash, `${name}: replica unchanged`);
  }
});

test('a checkpoint of the wrong epoch, of another generation or with damaged pages is not applied', async () => {
  const hash = daemon.store.stateHash();
  const applied = daemon.store.appliedEpoch!;

  let mark = logLines.length;
  let l = await connected();
  let lost = once(l, 'lost');
  await sendCheckpoint(l, applied + 5);
  await lost;
  await l.stop();
  assert.ok(loggedSince(mark, /E_EPOCH_ORDER/));
  assert.equal(daemon.store.stateHash(), hash);

  mark = logLines.length;
  l = await connected();
  lost = once(l, 'lost');
  await sendCheckpoint(l, applied + 1, 2).catch(() => {});
  await lost;
  await l.stop();
  assert.ok(loggedSince(mark, /E_GENERATION/), "frames of a generation other than the handshake's");
  assert.equal(daemon.store.stateHash(), hash);

  // Valid frames around a page record that points outside guest memory.
  mark = logLines.length;
  l = await connected();
  lost = once(l, 'lost');
  const bulk = l.bulk!;
  const send = bulk.send.bind(bulk);
  (bulk as { send: typeof send }).send = ((kind, meta, fields) => {
    if (kind === FrameKind.CHECKPOINT_PAGES && fields?.payload) {
      const payload = Buffer.from(fields.payload);
      payload.writeUInt32LE(0x00ff_ffff, 0);
      return send(kind, meta, { ...fields, payload });
    }
    return send(kind, meta, fields);
  }) as typeof send;
  await sendCheckpoint(l, applied + 1).catch(() => {});
  await lost;
  await l.stop();
  assert.ok(loggedSince(mark, /E_PAGE_RECORDS/));
  assert.equal(daemon.store.stateHash(), hash);
  assert.equal(daemon.store.appliedEpoch, applied);
});

test('another primary process of the same generation cannot overwrite the replica', async () => {
  const hash = daemon.store.stateHash();
  const mark = logLines.length;
  const restarted = link(1, Buffer.alloc(16, 0x11));
  const refused = new Promise<string>((resolve) => restarted.once('lost', resolve));
  restarted.start();
  // The link retries in the background; one refusal is enough.
  await Promise.race([refused, new Promise((resolve) => setTimeout(resolve, 3000))]);
  await restarted.stop();
  assert.ok(loggedSince(mark, /E_STALE_INSTANCE/), 'refused as a restarted primary');
  assert.equal(daemon.store.stateHash(), hash);
});
