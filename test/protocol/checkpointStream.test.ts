// Proves that a checkpoint is reported complete only when its BEGIN, every PAGES part in order and an END with matching counts and chained checksum have arrived, and that each way of getting this wrong is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckpointChecksum, CheckpointStreamChecker } from '@hbft/common/protocol/checkpointStream.ts';
import { ProtocolErrorCode } from '@hbft/common/protocol/codes.ts';
import { FrameDecoder } from '@hbft/common/protocol/decoder.ts';
import { FrameEncoder, concatFrame, type EncodedFrame, type Frame } from '@hbft/common/protocol/frame.ts';
import { FrameKind, bulkKinds } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import { samplePageRecords } from '@hbft/common/protocol/samples.ts';

const limits = protocolLimitsFor(64 * 1024 * 1024);

type Kinds = 'checkpoint' | 'full-sync';

/**
 * Encodes a checkpoint of `parts` PAGES frames (2 pages each) as a sender would, computing the
 * END checksum from the encoded frames; `tamper` may change the END meta before encoding.
 */
function encodeCheckpoint(
  epoch: number,
  parts: number,
  subject: Kinds = 'checkpoint',
  tamper: (end: { pageCount: number; partCount: number; checksum: number }) => void = () => {},
): EncodedFrame[] {
  const encoder = new FrameEncoder(limits);
  const checksum = new CheckpointChecksum();
  const frames: EncodedFrame[] = [];
  const pageCount = parts * 2;
  const fields = { generation: 1, epoch };
  const begin =
    subject === 'checkpoint'
      ? encoder.encode(FrameKind.CHECKPOINT_BEGIN, { pageCount, partCount: parts }, { ...fields, payload: Buffer.alloc(64, 1) })
      : encoder.encode(
          FrameKind.FULL_SYNC_BEGIN,
          { memoryBytes: limits.memoryBytes, pageCount, partCount: parts },
          { ...fields, payload: Buffer.alloc(64, 1) },
        );
  frames.push(begin);
  checksum.add(begin.checksum);
  for (let part = 0; part < parts; part++) {
    const kind = subject === 'checkpoint' ? FrameKind.CHECKPOINT_PAGES : FrameKind.FULL_SYNC_PAGES;
    const pages = encoder.encode(kind, { part, pageCount: 2 }, { ...fields, payload: samplePageRecords(part * 2, part) });
    frames.push(pages);
    checksum.add(pages.checksum);
  }
  const end = { pageCount, partCount: parts, checksum: checksum.value };
  tamper(end);
  frames.push(encoder.encode(subject === 'checkpoint' ? FrameKind.CHECKPOINT_END : FrameKind.FULL_SYNC_END, end, fields));
  return frames;
}

function decodeAll(frames: EncodedFrame[]): Frame[] {
  const decoder = new FrameDecoder({ limits, kindsAccepted: bulkKinds, kindsAcceptedWhere: 'on the bulk channel' });
  const step = decoder.push(Buffer.concat(frames.map(concatFrame)));
  assert.equal(step.failure, null);
  return step.frames;
}

function checkAll(frames: Frame[], checker = new CheckpointStreamChecker()): ReturnType<CheckpointStreamChecker['check']>[] {
  return frames.map((frame) => checker.check(frame));
}

test('a whole checkpoint and a whole full sync are complete at their END', () => {
  const checker = new CheckpointStreamChecker();
  for (const [epoch, subject] of [
    [0, 'full-sync'],
    [1, 'checkpoint'],
    [2, 'checkpoint'],
  ] as const) {
    const steps = checkAll(decodeAll(encodeCheckpoint(epoch, 3, subject)), checker);
    assert.deepEqual(
      steps.slice(0, -1).map((s) => s.status),
      ['in-progress', 'in-progress', 'in-progress', 'in-progress'],
    );
    assert.deepEqual(steps.at(-1), { status: 'complete', subject, epoch, pageCount: 6, partCount: 3 });
    assert.equal(checker.inProgress, false);
  }
});

test('an empty checkpoint (no dirty pages) is BEGIN then END', () => {
  const steps = checkAll(decodeAll(encodeCheckpoint(5, 0)));
  assert.equal(steps.at(-1)!.status, 'complete');
});

function failureOf(frames: Frame[]): string {
  const steps = checkAll(frames);
  const invalid = steps.find((s) => s.status === 'invalid');
  assert.ok(invalid !== undefined && invalid.status === 'invalid', 'refused');
  assert.equal(invalid.failure.code, ProtocolErrorCode.CHECKPOINT_STREAM);
  return invalid.failure.reason;
}

test('missing, reordered or extra parts are refused', () => {
  const frames = decodeAll(encodeCheckpoint(7, 3));
  assert.match(failureOf([frames[0]!, frames[1]!, frames[3]!, frames[4]!]), /part 2, expected part 1/);
  assert.match(failureOf([frames[0]!, frames[1]!, frames[2]!, frames[4]!]), /after 4 pages in 2 parts, expected 6 in 3/);
  assert.match(failureOf([frames[0]!, frames[2]!]), /part 1, expected part 0/);
  assert.match(failureOf(frames.slice(1)), /without a BEGIN/);
  assert.match(failureOf([frames[0]!, frames[0]!]), /while the checkpoint of epoch 7 is unfinished/);
});

test('END totals that disagree with BEGIN, or a wrong checksum, are refused', () => {
  assert.match(
    failureOf(decodeAll(encodeCheckpoint(7, 2, 'checkpoint', (end) => (end.checksum = (end.checksum ^ 1) >>> 0)))),
    /checksum .* does not match/,
  );
  assert.match(failureOf(decodeAll(encodeCheckpoint(7, 2, 'checkpoint', (end) => (end.pageCount = 3)))), /BEGIN announced 4 in 2/);
});

test('frames of another epoch, generation or subject inside a checkpoint are refused', () => {
  const a = decodeAll(encodeCheckpoint(7, 1));
  const b = decodeAll(encodeCheckpoint(8, 1));
  assert.match(failureOf([a[0]!, b[1]!]), /epoch 8 inside the checkpoint of epoch 7/);
  const full = decodeAll(encodeCheckpoint(7, 1, 'full-sync'));
  assert.match(failureOf([a[0]!, full[1]!]), /inside a checkpoint/);
  const otherGeneration = { ...a[1]!, generation: 2 } as Frame;
  assert.match(failureOf([a[0]!, otherGeneration]), /generation 2 inside generation 1/);
});

test('after a refusal the checker accepts a new checkpoint', () => {
  const checker = new CheckpointStreamChecker();
  const bad = decodeAll(encodeCheckpoint(7, 1, 'checkpoint', (end) => (end.checksum = (end.checksum ^ 1) >>> 0)));
  assert.equal(checkAll(bad, checker).at(-1)!.status, 'invalid');
  assert.equal(checkAll(decodeAll(encodeCheckpoint(8, 1)), checker).at(-1)!.status, 'complete');
});
