// Proves that the backup's recycled frame bodies (BodyPool) are reused only once nothing refers to
// them: pipelined checkpoints with multi-megabyte parts leave the replica exactly equal to the
// source (a body reused while its checkpoint was staged would corrupt pages the CRC had already
// passed), and the pool's own rules hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { silentLogger } from '@hbft/common/log.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import { DeltaCache, PageEncoder } from '@hbft/common/checkpoint/pageCodec.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import type { Frame } from '@hbft/common/protocol/frame.ts';
import { ReplicationMetrics } from '@hbft/common/http/metrics.ts';
import { BodyPool } from '@hbft/common/transport/bodyPool.ts';
import { BackupDaemon } from '@hbft/backup/daemon.ts';
import { BackupLink } from '@hbft/primary/backupLink.ts';
import { sendPageStream } from '@hbft/primary/checkpointFrames.ts';
import { sendFullSync } from '../helpers/fullSync.ts';

test('the pool hands out its buffers again only after release, ignores memory it did not make, and keeps a bounded number', () => {
  const pool = new BodyPool(1 << 20, 1 << 16, 2);
  const small = pool.allocate(100);
  assert.equal(small.length, 100, 'small bodies are ordinary allocations');
  const a = pool.allocate(1 << 19);
  const b = pool.allocate(1 << 20);
  assert.notEqual(a.buffer, b.buffer);
  assert.equal(a.length, 1 << 20, 'pooled buffers have the full capacity');
  pool.release(small.buffer);
  pool.release(new ArrayBuffer(1 << 20));
  assert.equal(pool.freeCount, 0, 'foreign memory is ignored');
  pool.release(a.buffer);
  pool.release(a.buffer);
  assert.equal(pool.freeCount, 1, 'a buffer is free once, however often it is released');
  assert.equal(pool.allocate(1 << 18).buffer, a.buffer, 'and then handed out again');
  pool.release(a.buffer);
  pool.release(b.buffer);
  pool.release(pool.allocate(1 << 20).buffer);
  const c = pool.allocate(1 << 20);
  pool.release(c.buffer);
  assert.ok(pool.freeCount <= 2, 'at most `keep` free buffers');
});

test('pipelined checkpoints with multi-megabyte parts leave the replica equal to the source', async () => {
  const MEMORY_BYTES = 32 * 1024 * 1024;
  const limits = protocolLimitsFor(MEMORY_BYTES);
  const key = Buffer.from('the-right-key-0123456789');
  const logger = silentLogger();
  const source = new Machine({ memoryBytes: MEMORY_BYTES, args: 'mb=8 rounds=1000' });
  source.loadElf(readFileSync(resolveGuestImage('cfp')));
  source.run(2_000_000);
  const tracker = trackMemory(source.memory, createTracker('rfr'));
  const daemon = await BackupDaemon.start({
    listen: { host: '127.0.0.1', port: 0 },
    memoryBytes: MEMORY_BYTES,
    auth: { mode: 'hmac', key },
    // This daemon must never take over: its test primaries come and go (each link's stop says
    // GOODBYE on every channel, as a stopped primary does). The takeover after closed
    // connections waits 3 heartbeat intervals, the one after silence the timeout: both 10 min.
    timing: { epochMs: 20, heartbeatMs: 200_000, failoverTimeoutMs: 600_000 },
    logger,
    metrics: new ReplicationMetrics('backup', 0),
    promoted: { tracking: 'wfp', trackerOptions: {}, mapper: {}, checkpointsInFlightMax: 2 },
  });
  const link = new BackupLink({
    host: '127.0.0.1',
    port: daemon.listenAddress.port,
    auth: { mode: 'hmac', key },
    limits,
    logger,
    memoryBytes: MEMORY_BYTES,
    guestImageHash: Buffer.alloc(32, 7),
    generation: 1,
    instanceId: Buffer.alloc(16, 0x5a),
  });
  try {
    const ready = once(link, 'ready');
    link.start();
    await ready;
    const acks: number[] = [];
    link.on('frame', (frame: Frame) => {
      if (frame.kind === FrameKind.ACK && frame.meta.subject === 'checkpoint') acks.push(frame.epoch);
    });
    await sendFullSync(link.bulk!, source.memory.i32);
    const encoder = new PageEncoder(new DeltaCache(4096));
    const epochs = 12;
    let largest = 0;
    for (let epoch = 1; epoch <= epochs; epoch++) {
      source.run(15_000_000);
      const dirty = tracker.endEpoch().dirtyPages.slice();
      tracker.beginEpoch();
      largest = Math.max(largest, dirty.length);
      // Not waiting for acks: the next checkpoint's parts arrive while this one may be staged.
      await sendPageStream(
        {
          kind: 'checkpoint',
          epoch,
          generation: 1,
          pages: dirty,
          state: source.getState(),
          memoryBytes: MEMORY_BYTES,
          source: { words: source.memory.i32, wordIndex: (i) => dirty[i]! * 1024 },
        },
        link.bulk!,
        encoder,
      );
    }
    const deadline = Date.now() + 20_000;
    while (!acks.includes(epochs) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(
      acks,
      Array.from({ length: epochs }, (_, i) => i + 1),
      'every checkpoint applied, in order',
    );
    assert.ok(largest * 4104 > 1024 * 1024, `parts large enough to come from the pool (${largest} pages)`);
    assert.equal(daemon.store.stateHash(), source.stateHash(), 'the replica equals the source');
  } finally {
    await link.stop();
    await daemon.stop();
  }
});
