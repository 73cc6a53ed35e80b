// Proves the backup daemon's side of the closed-connection detector with a real listener and a
// primary's BackupLink in this process: when the primary's sockets close without a word (as its
// kernel closes them after kill -9) the backup takes over after the grace although its failover
// timeout is ten minutes; when this backup itself closed the connections (it refused a checkpoint)
// it does not; and a primary that loses one channel and reconnects is not taken over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import type { DirtyTracker } from '@hbft/common/tracking/tracker.ts';
import { DeltaCache, PageEncoder } from '@hbft/common/checkpoint/pageCodec.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import type { Frame } from '@hbft/common/protocol/frame.ts';
import { ReplicationMetrics } from '@hbft/common/http/metrics.ts';
import { BackupDaemon } from '@hbft/backup/daemon.ts';
import { BackupLink } from '@hbft/primary/backupLink.ts';
import { sendPageStream } from '@hbft/primary/checkpointFrames.ts';
import type { PrimaryRuntime } from '@hbft/primary/runtime.ts';
import { sendFullSync } from '../helpers/fullSync.ts';
import { linesLogger } from '../helpers/logLines.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
const KEY = Buffer.from('the-right-key-0123456789');
const limits = protocolLimitsFor(MEMORY_BYTES);
/** Grace 3 × 50 = 150 ms; the timeout is ten minutes, so only the closed-connection path can take over here. */
const TIMING = { epochMs: 20, heartbeatMs: 50, failoverTimeoutMs: 600_000 };

/** A backup daemon and a primary (a guest machine and its link) that has synchronised it and had checkpoint 0 applied. */
async function protectedPair() {
  const lines: string[] = [];
  const logger = linesLogger(lines, 'info');
  const source = new Machine({ memoryBytes: MEMORY_BYTES, args: 'mb=2 rounds=1000' });
  source.loadElf(readFileSync(resolveGuestImage('cfp')));
  source.run(2_000_000);
  const tracker = trackMemory(source.memory, createTracker('rfr'));
  let promoted: PrimaryRuntime | null = null;
  const daemon = await BackupDaemon.start({
    listen: { host: '127.0.0.1', port: 0 },
    memoryBytes: MEMORY_BYTES,
    auth: { mode: 'hmac', key: KEY },
    timing: TIMING,
    logger,
    metrics: new ReplicationMetrics('backup', 0),
    promoted: { tracking: 'wfp', trackerOptions: {}, mapper: {}, checkpointsInFlightMax: 2 },
    onPromoted: (runtime) => {
      promoted = runtime;
    },
  });
  const link = new BackupLink({
    host: '127.0.0.1',
    port: daemon.listenAddress.port,
    auth: { mode: 'hmac', key: KEY },
    limits,
    logger,
    memoryBytes: MEMORY_BYTES,
    guestImageHash: Buffer.alloc(32, 7),
    generation: 1,
    instanceId: Buffer.alloc(16, 0x5a),
  });
  const ready = once(link, 'ready');
  link.start();
  await ready;
  await sendFullSync(link.bulk!, source.memory.i32);
  const pair = {
    daemon,
    link,
    lines,
    deltas: new PageEncoder(new DeltaCache(64)),
    promoted: () => promoted as PrimaryRuntime | null,
    /** Sends checkpoint `epoch` of the guest's next stretch; resolves when it is acked. */
    async checkpoint(epoch: number, acked = true): Promise<void> {
      const ack = new Promise<void>((resolve) => {
        const onFrame = (frame: Frame) => {
          if (frame.kind !== FrameKind.ACK || frame.meta.subject !== 'checkpoint' || frame.epoch !== epoch) return;
          link.off('frame', onFrame);
          resolve();
        };
        link.on('frame', onFrame);
      });
      await sendCheckpointOf(source, tracker, link, epoch, pair.deltas);
      if (acked) await ack;
    },
    async stop(): Promise<void> {
      await link.stop();
      await daemon.stop();
    },
  };
  await pair.checkpoint(0);
  assert.equal(daemon.store.appliedEpoch, 0);
  return pair;
}

async function sendCheckpointOf(source: Machine, tracker: DirtyTracker, link: BackupLink, epoch: number, deltas: PageEncoder) {
  source.run(300_000);
  const result = tracker.endEpoch();
  tracker.beginEpoch();
  await sendPageStream(
    {
      kind: 'checkpoint',
      epoch,
      generation: 1,
      pages: result.dirtyPages,
      state: source.getState(),
      memoryBytes: MEMORY_BYTES,
      source: { words: source.memory.i32, wordIndex: (i) => result.dirtyPages[i]! * 1024 },
    },
    link.bulk!,
    deltas,
  );
}

/** Closes the link's sockets as a dying process's kernel does (FIN, no GOODBYE), and keeps the link from reconnecting. */
function vanish(link: BackupLink): void {
  const control = link.control as unknown as { ws: { terminate(): void } };
  const bulk = link.bulk as unknown as { socket: { destroy(): void } };
  control.ws.terminate();
  bulk.socket.destroy();
  // Both connections are still open as far as the link knows, but their transports are gone:
  // stop() sends nothing, and cancels the reconnection.
  void link.stop();
}

async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    assert.ok(performance.now() < deadline, `${what} within ${timeoutMs} ms`);
    await sleep(5);
  }
}

test("the primary's sockets closed without a word: the backup takes over after the grace, not the timeout", {
  timeout: 60_000,
}, async () => {
  const pair = await protectedPair();
  try {
    const killedAtMs = performance.now();
    vanish(pair.link);
    await waitFor('the takeover', () => pair.promoted() !== null, 10_000);
    const tookMs = performance.now() - killedAtMs;
    const failed = pair.lines.find((line) => line.includes('PRIMARY FAILED'));
    assert.ok(failed, pair.lines.join('\n'));
    assert.match(JSON.parse(failed).reason, /^the primary's connections closed \((control|bulk): FIN\/RST, (control|bulk): FIN\/RST\)/);
    assert.ok(tookMs >= 150, `not before the grace (${tookMs.toFixed(0)} ms)`);
    assert.equal(pair.daemon.replicator.status(performance.now()).generation, 2);
  } finally {
    await pair.stop();
  }
});

test('connections this backup closed itself (a refused checkpoint) do not count, whatever the primary does next', {
  timeout: 60_000,
}, async () => {
  const pair = await protectedPair();
  try {
    const lost = once(pair.link, 'lost');
    // Checkpoint 2 without 1: refused (E_EPOCH_ORDER), and the backup closes the connections.
    await pair.checkpoint(2, false);
    const [reason] = (await lost) as [string];
    assert.match(reason, /E_EPOCH_ORDER/);
    // The primary then dies before it reconnects: its sockets are closed already.
    void pair.link.stop();
    await sleep(600);
    assert.equal(pair.promoted(), null, 'no takeover: only the ten-minute timeout could take over now');
    assert.equal(pair.daemon.replicator.status(performance.now()).mode, 'protecting');
  } finally {
    await pair.stop();
  }
});

test('a primary that loses one channel reconnects and is not taken over', { timeout: 60_000 }, async () => {
  const pair = await protectedPair();
  try {
    const reconnected = once(pair.link, 'ready');
    // Only the bulk socket dies: the link closes the control channel with GOODBYE and reconnects
    // 20 ms later, within the grace (every channel of the session was closed from the primary's side).
    (pair.link.bulk as unknown as { socket: { destroy(): void } }).socket.destroy();
    await reconnected;
    await sleep(600);
    assert.equal(pair.promoted(), null, `no takeover\n${pair.lines.join('\n')}`);
    await pair.checkpoint(1);
    assert.equal(pair.daemon.store.appliedEpoch, 1, 'the reconnected primary replicates again');
  } finally {
    await pair.stop();
  }
});
