// Proves that the primary's pooled record buffers are reused only after the transport has written
// the frame that carried them: a pooled buffer overwritten too early would reach the backup with
// bytes that do not match the frame's CRC (the connection would fail) or with another part's data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { silentLogger } from '@hbft/common/log.ts';
import type { Frame } from '@hbft/common/protocol/frame.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import { connectBulk } from '@hbft/common/transport/bulk.ts';
import type { FrameConnection } from '@hbft/common/transport/connection.ts';
import { listen } from '@hbft/common/transport/listener.ts';
import { RecordBuffers } from '@hbft/primary/checkpointFrames.ts';

const limits = protocolLimitsFor(64 * 1024 * 1024);
const auth = { mode: 'hmac' as const, key: Buffer.from('a pre-shared key of 32 bytes....') };
const logger = silentLogger();

test('a buffer is handed out again only once bytesHandedOver has passed the frame that carried it', () => {
  let handedOver = 0;
  const buffers = new RecordBuffers(() => handedOver);
  const first = buffers.take();
  buffers.lend(first, 1000);
  const second = buffers.take();
  assert.notEqual(second, first, 'still in the socket: not reused');
  buffers.lend(second, 2000);
  handedOver = 1999;
  const third = buffers.take();
  assert.equal(third, first, 'the first frame is written: its buffer comes back');
  assert.equal(third.offset, 0, 'and empty');
  assert.notEqual(buffers.take(), second, 'the second is not written yet');
});

test('parts sent from pooled buffers over a slow socket arrive intact, and the pool reuses its buffers', async (t) => {
  const listener = await listen({ host: '127.0.0.1', port: 0, auth, limits, logger });
  t.after(() => listener.close());
  const serverP = once(listener, 'connection').then(([c]) => c as FrameConnection);
  // A small high-water mark: the sender waits for the socket, with several parts queued in it.
  const bulk = await connectBulk({
    host: '127.0.0.1',
    port: listener.address().port,
    auth,
    limits,
    logger,
    writeBufferBytesHigh: 2 * 1024 * 1024,
  });
  const server = await serverP;
  const parts = 60;
  const received: Frame[] = [];
  const done = new Promise<void>((resolve, reject) => {
    server.on('close', (info) => reject(new Error(`the receiver closed: ${info.code} ${info.reason}`)));
    server.on('frame', (frame) => {
      received.push(frame);
      if (received.length === parts) resolve();
    });
  });
  const buffers = new RecordBuffers(() => bulk.bytesHandedOver);
  const distinct = new Set<unknown>();
  const pagesPerPart = 256;
  const partBytes = pagesPerPart * 4104;
  for (let part = 0; part < parts; part++) {
    const writer = buffers.take();
    distinct.add(writer);
    writer.bytes.fill(part & 0xff, 0, partBytes);
    writer.offset = partBytes;
    const result = bulk.send(FrameKind.CHECKPOINT_PAGES, { part, pageCount: pagesPerPart }, { payload: writer.written() });
    buffers.lend(writer, result.endsAt);
    if (result.backpressure) await bulk.drained();
  }
  await done;
  for (const [part, frame] of received.entries()) {
    assert.equal(frame.payload.length, partBytes);
    assert.ok(
      frame.payload.every((byte) => byte === (part & 0xff)),
      `part ${part} carries its own bytes`,
    );
  }
  assert.ok(distinct.size < parts / 4, `buffers were reused: ${distinct.size} for ${parts} parts`);
  bulk.close();
});
