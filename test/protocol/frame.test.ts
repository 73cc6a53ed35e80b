// Proves that every frame kind survives encode → decode, that the streaming decoder gives the same frames however the bytes are split, and that each class of invalid input is refused with its own code before anything oversize is buffered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '@hbft/common/random.ts';
import { ProtocolErrorCode } from '@hbft/common/protocol/codes.ts';
import { FrameDecoder, decodeFrame } from '@hbft/common/protocol/decoder.ts';
import {
  FrameEncoder,
  FrameOffset,
  concatFrame,
  encodeFrameUnchecked,
  encodeMeta,
  frameMagic,
  type EncodedFrame,
  type Frame,
} from '@hbft/common/protocol/frame.ts';
import { FrameKind, authKinds, controlKinds, frameKinds } from '@hbft/common/protocol/kinds.ts';
import {
  frameHeaderBytes,
  framePayloadBytesMax,
  frameMetaBytesMax,
  protocolLimitsFor,
  protocolVersion,
} from '@hbft/common/protocol/limits.ts';
import { sampleMessages } from '@hbft/common/protocol/samples.ts';

const memoryBytes = 64 * 1024 * 1024;
const limits = protocolLimitsFor(memoryBytes);
const allKinds = new Set(frameKinds);

function decoder(kinds: ReadonlySet<FrameKind> = allKinds): FrameDecoder {
  return new FrameDecoder({ limits, kindsAccepted: kinds, kindsAcceptedWhere: 'in this test' });
}

function encodeSamples(): { encoded: EncodedFrame[]; stream: Buffer } {
  const encoder = new FrameEncoder(limits);
  const encoded = sampleMessages(memoryBytes).map((m) =>
    encoder.encode(m.kind, m.meta as never, { generation: m.generation, epoch: m.epoch, payload: m.payload }),
  );
  return { encoded, stream: Buffer.concat(encoded.map(concatFrame)) };
}

/** A frame of `kind` with raw header fields, meta given as a value (or bytes). */
function rawFrame(fields: Partial<Parameters<typeof encodeFrameUnchecked>[0]> & { meta?: unknown }): Buffer {
  const { meta, ...rest } = fields;
  return concatFrame(
    encodeFrameUnchecked({
      kind: FrameKind.HEARTBEAT,
      sequence: 0,
      metaBytes: rest.metaBytes ?? encodeMeta(meta ?? { sentAtMs: 1 }),
      ...rest,
    }),
  );
}

function comparable(frame: Frame): object {
  return { ...frame, payload: Buffer.from(frame.payload) };
}

test('every kind has a sample and round-trips through encode and decode', () => {
  const samples = sampleMessages(memoryBytes);
  assert.deepEqual(
    samples.map((s) => s.kind),
    [...frameKinds],
    'one sample per kind',
  );
  const { encoded, stream } = encodeSamples();
  const step = decoder().push(stream);
  assert.equal(step.failure, null);
  assert.equal(step.frames.length, samples.length);
  step.frames.forEach((frame, i) => {
    const sample = samples[i]!;
    assert.equal(frame.kind, sample.kind);
    assert.equal(frame.generation, sample.generation);
    assert.equal(frame.epoch, sample.epoch);
    assert.equal(frame.sequence, i);
    assert.equal(frame.checksum, encoded[i]!.checksum);
    assert.deepEqual(frame.meta, sample.meta);
    assert.deepEqual(Buffer.from(frame.payload), sample.payload);
  });
});

test('encoding does not copy the payload', () => {
  const payload = new Uint8Array(new SharedArrayBuffer(8 + 4096)); // as from the staging ring
  payload[0] = 3;
  const encoded = new FrameEncoder(limits).encode(FrameKind.CHECKPOINT_PAGES, { part: 0, pageCount: 1 }, { payload });
  assert.equal(encoded.payload, payload);
  assert.equal(encoded.head.length, frameHeaderBytes + encoded.head.readUInt32LE(FrameOffset.metaBytes));
  assert.equal(encoded.bytes, encoded.head.length + payload.length);
});

test('byte-by-byte and random chunkings decode to the same frames', () => {
  const { stream } = encodeSamples();
  const whole = decoder().push(stream).frames.map(comparable);

  const byteByByte = decoder();
  const frames: Frame[] = [];
  for (let i = 0; i < stream.length; i++) {
    const step = byteByByte.push(stream.subarray(i, i + 1));
    assert.equal(step.failure, null);
    frames.push(...step.frames);
  }
  assert.equal(byteByByte.end(), null);
  assert.deepEqual(frames.map(comparable), whole);

  const seed = 0x5eed;
  const random = new SeededRandom(seed);
  for (let round = 0; round < 200; round++) {
    const d = decoder();
    const got: Frame[] = [];
    for (let offset = 0; offset < stream.length; ) {
      const size = 1 + random.below(random.chance(0.5) ? 64 : 9000);
      const step = d.push(stream.subarray(offset, offset + size));
      assert.equal(step.failure, null, `seed ${seed} round ${round}`);
      got.push(...step.frames);
      offset += size;
    }
    assert.equal(d.end(), null);
    assert.deepEqual(got.map(comparable), whole, `seed ${seed} round ${round}`);
  }
});

test('a payload that arrives in one chunk is a view into it; one split across chunks is joined', () => {
  const payload = Buffer.alloc(8 + 4096, 7);
  const bytes = concatFrame(new FrameEncoder(limits).encode(FrameKind.CHECKPOINT_PAGES, { part: 0, pageCount: 1 }, { payload }));
  const [whole] = decoder().push(bytes).frames;
  assert.equal(whole!.payload.buffer, bytes.buffer, 'no copy');
  const split = decoder();
  split.push(bytes.subarray(0, 100));
  const [joined] = split.push(bytes.subarray(100)).frames;
  assert.notEqual(joined!.payload.buffer, bytes.buffer);
  assert.deepEqual(Buffer.from(joined!.payload), payload);
});

test('a split body is assembled in the buffer allocateBody gives (so a backup can recycle them)', () => {
  const payload = Buffer.alloc(8 + 4096, 5);
  const bytes = concatFrame(new FrameEncoder(limits).encode(FrameKind.CHECKPOINT_PAGES, { part: 0, pageCount: 1 }, { payload }));
  const slab = Buffer.alloc(framePayloadBytesMax + frameMetaBytesMax);
  const asked: number[] = [];
  const d = new FrameDecoder({
    limits,
    kindsAccepted: allKinds,
    kindsAcceptedWhere: 'here',
    allocateBody: (n) => (asked.push(n), slab),
  });
  d.push(bytes.subarray(0, 50));
  const [frame] = d.push(bytes.subarray(50)).frames;
  assert.deepEqual(asked, [bytes.length - frameHeaderBytes]);
  assert.equal(frame!.payload.buffer, slab.buffer);
  assert.deepEqual(Buffer.from(frame!.payload), payload);
});

test('decodeFrame decodes one whole message and refuses short or long ones', () => {
  const { encoded } = encodeSamples();
  const message = concatFrame(encoded[6]!);
  const options = { limits, kindsAccepted: allKinds, kindsAcceptedWhere: 'here', sequenceExpected: 6 };
  assert.equal(decodeFrame(message, options).frame?.kind, FrameKind.HEARTBEAT);
  assert.equal(decodeFrame(message.subarray(0, message.length - 1), options).failure?.code, ProtocolErrorCode.FRAME_TRUNCATED);
  assert.equal(decodeFrame(message.subarray(0, 10), options).failure?.code, ProtocolErrorCode.FRAME_TRUNCATED);
  assert.equal(decodeFrame(Buffer.concat([message, Buffer.from([0])]), options).failure?.code, ProtocolErrorCode.FRAME_TRAILING);
  assert.equal(decodeFrame(message, { ...options, sequenceExpected: 7 }).failure?.code, ProtocolErrorCode.FRAME_SEQUENCE);
  assert.equal(decodeFrame(message, { ...options, sequenceExpected: null }).failure, null);
  assert.equal(decodeFrame(Buffer.from('GET / HTTP/1.1\r\n'), options).failure?.code, ProtocolErrorCode.FRAME_MAGIC);
});

/** Pushes `bytes` into a fresh decoder and returns the failure code (after end(), if asked). */
function failureOf(bytes: Buffer, endStream = false, kinds: ReadonlySet<FrameKind> = allKinds): string | undefined {
  const d = decoder(kinds);
  const step = d.push(bytes);
  return (step.failure ?? (endStream ? d.end() : null))?.code;
}

test('a stream that ends inside a frame is truncated; one that ends between frames is clean', () => {
  const { stream } = encodeSamples();
  assert.equal(failureOf(stream.subarray(0, 20), true), ProtocolErrorCode.FRAME_TRUNCATED, 'inside a header');
  assert.equal(failureOf(stream.subarray(0, 40), true), ProtocolErrorCode.FRAME_TRUNCATED, 'inside a body');
  const d = decoder();
  d.push(stream.subarray(0, stream.length - 1));
  assert.match(d.end()!.reason, /stream ended after \d+ of the \d+ bytes of a GOODBYE frame/);
  const clean = decoder();
  clean.push(stream);
  assert.equal(clean.end(), null);
});

test('a wrong magic is refused from the first byte', () => {
  const d = decoder();
  const step = d.push(Buffer.from('G'));
  assert.equal(step.failure?.code, ProtocolErrorCode.FRAME_MAGIC);
  assert.equal(failureOf(rawFrame({ magic: frameMagic ^ 0x01000000 })), ProtocolErrorCode.FRAME_MAGIC);
});

test('header fields out of range are refused with their own codes', () => {
  assert.equal(failureOf(rawFrame({ version: protocolVersion + 1 })), ProtocolErrorCode.FRAME_VERSION);
  assert.equal(failureOf(rawFrame({ kind: 0 })), ProtocolErrorCode.FRAME_KIND);
  assert.equal(failureOf(rawFrame({ kind: 200 })), ProtocolErrorCode.FRAME_KIND);
  // 15 (NACK) and 18 (the byte-stream sessions' CHECKPOINT_OUTPUT) are retired: unknown, never reused.
  assert.equal(failureOf(rawFrame({ kind: 15 })), ProtocolErrorCode.FRAME_KIND);
  assert.equal(failureOf(rawFrame({ kind: 18 })), ProtocolErrorCode.FRAME_KIND);
  assert.equal(failureOf(rawFrame({ flags: 0x8000 })), ProtocolErrorCode.FRAME_FLAGS);
  assert.equal(failureOf(rawFrame({ epoch: 2 ** 53 })), ProtocolErrorCode.FRAME_EPOCH_RANGE);
  assert.equal(failureOf(rawFrame({ epoch: 2 ** 53 - 1 })), undefined, 'the largest safe epoch is fine');
  assert.equal(failureOf(rawFrame({}), false, authKinds), ProtocolErrorCode.FRAME_KIND_UNEXPECTED);
  const pages = rawFrame({ kind: FrameKind.CHECKPOINT_PAGES, meta: { part: 0, pageCount: 1 }, payload: Buffer.alloc(4104) });
  assert.equal(failureOf(pages, false, controlKinds), ProtocolErrorCode.FRAME_KIND_UNEXPECTED);
});

test('oversize lengths are refused from the header alone, before any body is buffered', () => {
  const header = (metaBytes: number, payloadBytes: number, kind: number = FrameKind.CHECKPOINT_PAGES): Buffer => {
    const bytes = rawFrame({ kind, meta: { part: 0, pageCount: 1 } }).subarray(0, frameHeaderBytes);
    bytes.writeUInt32LE(metaBytes, FrameOffset.metaBytes);
    bytes.writeUInt32LE(payloadBytes, FrameOffset.payloadBytes);
    return bytes;
  };
  for (const [bytes, code] of [
    [header(frameMetaBytesMax + 1, 0), ProtocolErrorCode.FRAME_META_TOO_LARGE],
    [header(0xffff_ffff, 0), ProtocolErrorCode.FRAME_META_TOO_LARGE],
    [header(10, framePayloadBytesMax + 1), ProtocolErrorCode.FRAME_PAYLOAD_TOO_LARGE],
    [header(10, 0xffff_ffff), ProtocolErrorCode.FRAME_PAYLOAD_TOO_LARGE],
    [header(10, 1, FrameKind.HEARTBEAT), ProtocolErrorCode.FRAME_PAYLOAD_TOO_LARGE],
    [header(10, limits.machineStateBytesMax + 1, FrameKind.CHECKPOINT_BEGIN), ProtocolErrorCode.FRAME_PAYLOAD_TOO_LARGE],
  ] as const) {
    const d = decoder();
    const step = d.push(bytes); // the header only: no body bytes were ever sent
    assert.equal(step.failure?.code, code);
    assert.equal(d.bufferedBytes, 0, 'nothing held after the refusal');
  }
});

test('a damaged byte anywhere fails the checksum', () => {
  const { stream } = encodeSamples();
  const random = new SeededRandom(42);
  for (let i = 0; i < 500; i++) {
    const damaged = Buffer.from(stream);
    const at = random.below(damaged.length);
    damaged[at] = damaged[at]! ^ (1 + random.below(255));
    const d = decoder();
    const failure = d.push(damaged).failure ?? d.end();
    assert.ok(failure !== null, `damage at byte ${at} is detected`);
  }
  const frame = rawFrame({ kind: FrameKind.CHECKPOINT_PAGES, meta: { part: 0, pageCount: 1 }, payload: Buffer.alloc(4104, 9) });
  frame[frame.length - 1] = frame[frame.length - 1]! ^ 0x40;
  assert.equal(failureOf(frame), ProtocolErrorCode.FRAME_CHECKSUM);
  assert.equal(failureOf(rawFrame({ checksum: 12345 })), ProtocolErrorCode.FRAME_CHECKSUM);
});

test('a sequence gap or duplicate is refused', () => {
  const gap = Buffer.concat([rawFrame({ sequence: 0 }), rawFrame({ sequence: 2 })]);
  const step = decoder().push(gap);
  assert.equal(step.frames.length, 1, 'the good frame before the gap is delivered');
  assert.equal(step.failure?.code, ProtocolErrorCode.FRAME_SEQUENCE);
  assert.match(step.failure!.reason, /sequence 2, expected 1/);
  assert.equal(failureOf(Buffer.concat([rawFrame({ sequence: 0 }), rawFrame({ sequence: 0 })])), ProtocolErrorCode.FRAME_SEQUENCE);
  assert.equal(failureOf(rawFrame({ sequence: 1 })), ProtocolErrorCode.FRAME_SEQUENCE, 'the first frame is 0');
});

test('malformed meta is refused with the field named', () => {
  const cases: Array<[Buffer, string, RegExp]> = [
    [rawFrame({ metaBytes: Buffer.from([0xc1]) }), ProtocolErrorCode.META_DECODE, /not MessagePack/],
    [rawFrame({ metaBytes: Buffer.from([0x81, 0xa1]) }), ProtocolErrorCode.META_DECODE, /ends inside a value/],
    [
      rawFrame({ metaBytes: Buffer.concat([encodeMeta({ sentAtMs: 1 }), Buffer.from([0])]) }),
      ProtocolErrorCode.META_DECODE,
      /1 bytes after/,
    ],
    [rawFrame({ metaBytes: Buffer.alloc(0) }), ProtocolErrorCode.META_DECODE, /empty/],
    [rawFrame({ meta: [1, 2] }), ProtocolErrorCode.META_INVALID, /must be a map/],
    [rawFrame({ meta: { sentAtMs: 'soon' } }), ProtocolErrorCode.META_INVALID, /field "sentAtMs"/],
    [rawFrame({ meta: { sentAtMs: -1 } }), ProtocolErrorCode.META_INVALID, /field "sentAtMs"/],
    [rawFrame({ meta: {} }), ProtocolErrorCode.META_INVALID, /missing field "sentAtMs"/],
    [rawFrame({ meta: { sentAtMs: 1, extra: true } }), ProtocolErrorCode.META_INVALID, /unknown field "extra"/],
    [
      rawFrame({ kind: FrameKind.ACK, meta: { subject: 'everything' } }),
      ProtocolErrorCode.META_INVALID,
      /field "subject": expected one of/,
    ],
    [
      rawFrame({ kind: FrameKind.CHECKPOINT_PAGES, meta: { part: 0, pageCount: 3 }, payload: Buffer.alloc(8) }),
      ProtocolErrorCode.META_INVALID,
      /3 page records cannot take 8 payload bytes/,
    ],
  ];
  for (const [bytes, code, reason] of cases) {
    const failure = decoder().push(bytes).failure;
    assert.equal(failure?.code, code, `${bytes.toString('hex').slice(72, 120)} → ${failure?.reason}`);
    assert.match(failure!.reason, reason);
  }
  // A "__proto__" key would give the decoded map a prototype: refused.
  const proto = Buffer.concat([Buffer.from([0x81, 0xa9]), Buffer.from('__proto__'), encodeMeta({ sentAtMs: 1 })]);
  const failure = decoder().push(rawFrame({ metaBytes: proto })).failure;
  assert.equal(failure?.code, ProtocolErrorCode.META_INVALID);
  assert.match(failure!.reason, /plain map/);
  // ... including a binary prototype, which `Buffer.isBuffer` alone would take for a Buffer.
  const binaryProto = Buffer.concat([Buffer.from([0x81, 0xa9]), Buffer.from('__proto__'), Buffer.from([0xc4, 0x02, 0x01, 0x02])]);
  assert.equal(decoder().push(rawFrame({ metaBytes: binaryProto })).failure?.code, ProtocolErrorCode.META_INVALID);
});

test('a failure is terminal: later bytes give the same failure and no frames', () => {
  const d = decoder();
  const first = d.push(rawFrame({ version: 9 })).failure;
  const { stream } = encodeSamples();
  const later = d.push(stream);
  assert.equal(later.frames.length, 0);
  assert.equal(later.failure, first);
  assert.equal(d.end(), first);
});
