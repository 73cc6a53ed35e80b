// Proves that a page stream whose connection closes while the sender waits for it to drain ends
// with StreamAbortedError (an ordinary end of the stream), not with the connection's ProtocolError:
// a primary that dropped its backup mid-sync died of an unhandled `ProtocolError: GOODBYE`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PageEncoder } from '@hbft/common/checkpoint/pageCodec.ts';
import { ProtocolError } from '@hbft/common/errors.ts';
import type { FrameSender } from '@hbft/primary/checkpointFrames.ts';
import { sendPageStream, StreamAbortedError } from '@hbft/primary/checkpointFrames.ts';

test('a connection that closes while the stream waits for a drain aborts the stream', async () => {
  let frames = 0;
  const sender: FrameSender = {
    send: () => ({ sent: true, checksum: frames++, backpressure: true, endsAt: 0 }),
    // What FrameConnection.drained() does when the connection closes meanwhile (this node's GOODBYE).
    drained: () => Promise.reject(new ProtocolError('GOODBYE', 'connection closed (local): no frame from the backup')),
  };
  const ram = new Int32Array(4 * 1024);
  ram[0] = 1;
  const stream = sendPageStream(
    {
      kind: 'full-sync',
      epoch: 0,
      generation: 2,
      pages: Uint32Array.of(0),
      source: { words: ram, wordIndex: (i) => i * 1024 },
      memoryBytes: ram.byteLength,
    },
    sender,
    new PageEncoder(null),
  );
  await assert.rejects(
    stream,
    (error: Error) => error instanceof StreamAbortedError && /connection closed during full-sync 0/.test(error.message),
  );
});
