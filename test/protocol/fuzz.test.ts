// Proves that many thousands of random and mutated frames, split at random, never make the decoder or the validators throw, hang, hold more than one frame's worth of bytes, or let an invalid frame through (the seed is printed; rerun one with HBFT_FUZZ_SEED=...).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '@hbft/common/random.ts';
import { FrameDecoder, decodeFrame } from '@hbft/common/protocol/decoder.ts';
import { FrameEncoder, concatFrame, encodeFrameUnchecked, encodeMeta, frameMagic, type Frame } from '@hbft/common/protocol/frame.ts';
import { type FrameKind, frameKinds } from '@hbft/common/protocol/kinds.ts';
import {
  frameHeaderBytes,
  frameMetaBytesMax,
  framePayloadBytesMax,
  protocolLimitsFor,
  protocolVersion,
} from '@hbft/common/protocol/limits.ts';
import { validateMeta } from '@hbft/common/protocol/messages.ts';
import { sampleMessages, type SampleMessage } from '@hbft/common/protocol/samples.ts';

const memoryBytes = 16 * 1024 * 1024;
const limits = protocolLimitsFor(memoryBytes);
const allKinds = new Set(frameKinds);
const soak = process.env.HBFT_SOAK === '1';
const seed = Number(process.env.HBFT_FUZZ_SEED ?? Date.now() % 2 ** 31);
const iterations = Number(process.env.HBFT_FUZZ_ITERATIONS ?? (soak ? 300_000 : 25_000));
/** The most a decoder may hold: one frame of the largest kind. */
const bufferedBytesBound = frameHeaderBytes + frameMetaBytesMax + framePayloadBytesMax;
const samples = sampleMessages(memoryBytes);

const interesting: unknown[] = [
  null,
  true,
  false,
  0,
  1,
  -1,
  1.5,
  255,
  256,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '',
  'hmac',
  'insecure',
  'primary',
  'backup',
  'control',
  'bulk',
  'checkpoint',
  'full-sync',
  'E_X',
  'x'.repeat(2000),
  Buffer.alloc(0),
  Buffer.alloc(16),
  Buffer.alloc(31),
  Buffer.alloc(32),
  Buffer.alloc(33),
  [],
  [1, 2],
  {},
  { a: 1 },
];

function randomBuffer(random: SeededRandom, length: number): Buffer {
  return Buffer.from(random.bytes(length));
}

/** A random MessagePack-able value, nested a little. */
function randomValue(random: SeededRandom, depth = 0): unknown {
  const choice = random.below(depth > 2 ? 5 : 7);
  switch (choice) {
    case 0:
      return random.pick(interesting);
    case 1:
      return random.nextU32() - 2 ** 31;
    case 2:
      return randomBuffer(random, random.below(40));
    case 3:
      return String.fromCharCode(...random.bytes(random.below(20)));
    case 4:
      return random.nextU32() / 7;
    case 5:
      return Array.from({ length: random.below(4) }, () => randomValue(random, depth + 1));
    default: {
      const map: Record<string, unknown> = {};
      for (let i = random.below(5); i > 0; i--) {
        // defineProperty, so that a "__proto__" key is an own key on the wire, as a hostile peer would send it.
        const key = random.pick(['nonce', 'proof', 'part', 'pageCount', 'x', '__proto__', 'code']);
        Object.defineProperty(map, key, { value: randomValue(random, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return map;
    }
  }
}

/** A sample's meta with one field replaced, removed, or one added. */
function mutatedMeta(random: SeededRandom, sample: SampleMessage): Record<string, unknown> {
  const meta: Record<string, unknown> = { ...(sample.meta as unknown as Record<string, unknown>) };
  const keys = Object.keys(meta);
  const action = random.below(4);
  if (action === 0 && keys.length > 0) delete meta[random.pick(keys)];
  else if (action === 1) meta[`f${random.below(3)}`] = randomValue(random);
  else if (keys.length > 0) meta[random.pick(keys)] = random.chance(0.5) ? random.pick(interesting) : randomValue(random);
  return meta;
}

/** One frame's bytes, valid or broken in one of several ways; the checksum is usually right, so breakage reaches meta checks. */
function fuzzFrame(random: SeededRandom, sequence: number): Buffer {
  const sample = random.pick(samples);
  const strategy = random.below(6);
  let metaBytes = encodeMeta(sample.meta);
  let payload: Buffer = sample.payload;
  let kind: number = sample.kind;
  if (strategy === 1) metaBytes = encodeMeta(mutatedMeta(random, sample));
  if (strategy === 2) metaBytes = encodeMeta(randomValue(random));
  if (strategy === 3) {
    // Damage the MessagePack bytes themselves.
    metaBytes = Buffer.from(metaBytes);
    for (let i = 1 + random.below(3); i > 0 && metaBytes.length > 0; i--)
      metaBytes[random.below(metaBytes.length)] = random.nextU32() & 0xff;
    if (random.chance(0.3)) metaBytes = metaBytes.subarray(0, random.below(metaBytes.length + 1));
  }
  if (strategy === 4) payload = randomBuffer(random, random.below(9000));
  if (strategy === 5) kind = random.below(24);
  const frame = concatFrame(
    encodeFrameUnchecked({
      kind,
      sequence: random.chance(0.95) ? sequence : random.nextU32(),
      generation: random.nextU32(),
      epoch: random.chance(0.9) ? random.below(2 ** 40) : random.pick([2 ** 53 - 1, 2 ** 53, 2 ** 64 - 2 ** 12]),
      flags: random.chance(0.97) ? 0 : random.below(0x10000),
      version: random.chance(0.97) ? protocolVersion : random.below(256),
      metaBytes,
      payload,
    }),
  );
  if (random.chance(0.1)) {
    // Byte damage after the checksum was computed, anywhere, including the length fields.
    const at = random.below(frame.length);
    frame[at] = frame[at]! ^ (1 + random.below(255));
  }
  if (random.chance(0.05)) {
    // Announce a huge body and send only the header.
    frame.writeUInt32LE(random.nextU32(), 24 + 4 * random.below(2));
    return frame.subarray(0, frameHeaderBytes + random.below(64));
  }
  return frame;
}

/** A stream: some frames, maybe raw noise, maybe starting with the magic to get past the first check. */
function fuzzStream(random: SeededRandom): Buffer {
  if (random.chance(0.1)) {
    const noise = randomBuffer(random, random.below(3000));
    if (random.chance(0.5) && noise.length >= 6) {
      noise.writeUInt32LE(frameMagic, 0);
      noise.writeUInt8(protocolVersion, 4);
      noise.writeUInt8(1 + random.below(17), 5);
    }
    return noise;
  }
  const parts: Buffer[] = [];
  for (let i = 0, n = 1 + random.below(6); i < n; i++) parts.push(fuzzFrame(random, i));
  return Buffer.concat(parts);
}

function checkFrame(frame: Frame): void {
  assert.ok(allKinds.has(frame.kind), 'a decoded frame has a known kind');
  assert.equal(validateMeta(frame.kind, frame.meta, frame.payload.length, limits), null, 'a decoded frame is valid');
}

test(`fuzz: the decoder survives random and mutated streams (seed ${seed}, ${iterations} iterations)`, { timeout: 600_000 }, (t) => {
  t.diagnostic(`seed ${seed} (rerun with HBFT_FUZZ_SEED=${seed})`);
  const random = new SeededRandom(seed);
  let frames = 0;
  let failures = 0;
  const codes = new Map<string, number>();
  let iteration = 0;
  try {
    for (; iteration < iterations; iteration++) {
      const stream = fuzzStream(random);
      const decoder = new FrameDecoder({ limits, kindsAccepted: allKinds, kindsAcceptedWhere: 'in the fuzzer' });
      let failure = null;
      for (let offset = 0; offset < stream.length && failure === null; ) {
        const size = 1 + random.below(random.chance(0.3) ? 16 : 4096);
        const step = decoder.push(stream.subarray(offset, offset + size));
        offset += size;
        step.frames.forEach(checkFrame);
        frames += step.frames.length;
        failure = step.failure;
        assert.ok(decoder.bufferedBytes <= bufferedBytesBound, `buffered ${decoder.bufferedBytes} bytes`);
      }
      failure ??= decoder.end();
      if (failure !== null) {
        failures++;
        codes.set(failure.code, (codes.get(failure.code) ?? 0) + 1);
        assert.equal(typeof failure.reason, 'string');
      }
      // The one-shot path must agree that the message is acceptable or not, without throwing.
      const oneShot = decodeFrame(stream, { limits, kindsAccepted: allKinds, kindsAcceptedWhere: 'in the fuzzer', sequenceExpected: null });
      if (oneShot.frame !== null) checkFrame(oneShot.frame);
    }
  } catch (error) {
    throw new Error(
      `fuzz failed at iteration ${iteration} with seed ${seed} (rerun with HBFT_FUZZ_SEED=${seed}): ${(error as Error).message}`,
      { cause: error },
    );
  }
  t.diagnostic(`${frames} frames accepted, ${failures} streams refused: ${[...codes].map(([c, n]) => `${c}=${n}`).join(' ')}`);
  // The fuzzer must reach the deep checks, not only the checksum.
  for (const code of ['E_FRAME_CHECKSUM', 'E_META_INVALID', 'E_META_DECODE', 'E_FRAME_KIND', 'E_FRAME_SEQUENCE', 'E_FRAME_MAGIC']) {
    assert.ok((codes.get(code) ?? 0) > 0, `the fuzzer reached ${code}`);
  }
  assert.ok(frames > 0);
});

test(`fuzz: the validators never throw on arbitrary values (seed ${seed})`, (t) => {
  t.diagnostic(`seed ${seed} (rerun with HBFT_FUZZ_SEED=${seed})`);
  const random = new SeededRandom(seed ^ 0x9e3779b9);
  let iteration = 0;
  try {
    for (; iteration < iterations; iteration++) {
      const kind = random.pick(frameKinds);
      const sample = samples.find((s) => s.kind === kind)!;
      let meta = random.chance(0.5) ? mutatedMeta(random, sample) : randomValue(random);
      // What msgpack-lite makes of a "__proto__" key: an object whose prototype is the value.
      if (random.chance(0.1))
        meta = Object.setPrototypeOf({ ...sample.meta }, random.pick([Buffer.prototype, Array.prototype, String.prototype, {}, null]));
      const payloadBytes = random.chance(0.5) ? sample.payload.length : random.below(framePayloadBytesMax * 2);
      const result = validateMeta(kind as FrameKind, meta, payloadBytes, limits);
      assert.ok(result === null || typeof result === 'string');
    }
  } catch (error) {
    throw new Error(`validator fuzz failed at iteration ${iteration} with seed ${seed}: ${(error as Error).message}`, { cause: error });
  }
});

test('the encoder refuses nothing it produced itself: every sample re-encodes and decodes', () => {
  const encoder = new FrameEncoder(limits);
  const decoder = new FrameDecoder({ limits, kindsAccepted: allKinds, kindsAcceptedWhere: 'here' });
  for (const s of samples) {
    const step = decoder.push(concatFrame(encoder.encode(s.kind, s.meta as never, { payload: s.payload, epoch: s.epoch })));
    assert.equal(step.failure, null);
  }
});
