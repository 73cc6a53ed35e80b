// Proves that sealed frames (protocol/seal.ts) round-trip through both decoders however the bytes are split, carry no plaintext, and that a tampered, replayed, reordered, dropped, truncated, unsealed or wrongly keyed frame is refused with its own code and reason, and never returned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SeededRandom } from '@hbft/common/random.ts';
import { AuthMachine } from '@hbft/common/protocol/auth.ts';
import { ProtocolErrorCode } from '@hbft/common/protocol/codes.ts';
import { FrameDecoder, type DecodeStep } from '@hbft/common/protocol/decoder.ts';
import { FrameEncoder, FrameFlag, FrameOffset, concatFrame, type Frame } from '@hbft/common/protocol/frame.ts';
import { FrameKind, authKinds, frameKinds } from '@hbft/common/protocol/kinds.ts';
import { frameHeaderBytes, protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import { sampleMessages } from '@hbft/common/protocol/samples.ts';
import { sealKeysFor, sealTagBytes } from '@hbft/common/protocol/seal.ts';
import { testSeed } from '../helpers/seed.ts';

const memoryBytes = 64 * 1024 * 1024;
const limits = protocolLimitsFor(memoryBytes);
const allKinds = new Set(frameKinds.filter((kind) => !authKinds.has(kind)));
const psk = Buffer.from('a pre-shared key for this test..');
const nonceI = Buffer.alloc(32, 1);
const nonceA = Buffer.alloc(32, 2);
const initiatorKeys = sealKeysFor(psk, 'initiator', 'bulk', nonceI, nonceA);
const acceptorKeys = sealKeysFor(psk, 'acceptor', 'bulk', nonceI, nonceA);

function sealedEncoder(): FrameEncoder {
  const encoder = new FrameEncoder(limits);
  encoder.seal(initiatorKeys.send);
  return encoder;
}

function sealedDecoder(key = acceptorKeys.receive): FrameDecoder {
  const decoder = new FrameDecoder({ limits, kindsAccepted: allKinds, kindsAcceptedWhere: 'in this test' });
  decoder.open(key);
  return decoder;
}

/** A recognisable plaintext: it must never appear on the wire. */
const secret = Buffer.from('SECRET-VALUE-7f3a9c-SECRET-VALUE');

/** Three PAGES frames whose payload holds the secret, sealed in order. */
function threeFrames(encoder = sealedEncoder()): Buffer[] {
  return [0, 1, 2].map((part) => {
    const payload = Buffer.alloc(2 * 8 + 4096);
    payload.writeUInt32LE(part, 0);
    payload.writeUInt8(0, 4); // raw
    payload.writeUInt16LE(4096, 6);
    secret.copy(payload, 8 + 100);
    payload.writeUInt32LE(part + 100, 8 + 4096);
    payload.writeUInt8(1, 8 + 4096 + 4); // zero page
    return concatFrame(encoder.encode(FrameKind.CHECKPOINT_PAGES, { part, pageCount: 2 }, { generation: 1, epoch: 5, payload }));
  });
}

/** Pushes `stream` in random pieces; returns all frames and the failure, if any. */
function pushSplit(decoder: FrameDecoder, stream: Buffer, random: SeededRandom): DecodeStep {
  const frames: Frame[] = [];
  let offset = 0;
  while (offset < stream.length) {
    const take = 1 + random.below(Math.min(5000, stream.length - offset));
    const step = decoder.push(stream.subarray(offset, offset + take));
    frames.push(...step.frames);
    if (step.failure !== null) return { frames, failure: step.failure };
    offset += take;
  }
  return { frames, failure: null };
}

test('both sides derive mirrored keys; every channel, direction and pair of nonces has its own', () => {
  assert.deepEqual(initiatorKeys.send, acceptorKeys.receive);
  assert.deepEqual(initiatorKeys.receive, acceptorKeys.send);
  const keys = [
    initiatorKeys.send,
    initiatorKeys.receive,
    sealKeysFor(psk, 'initiator', 'control', nonceI, nonceA).send,
    sealKeysFor(psk, 'initiator', 'control', nonceI, nonceA).receive,
    sealKeysFor(psk, 'initiator', 'bulk', nonceI, Buffer.alloc(32, 3)).send,
    sealKeysFor(Buffer.from('another pre-shared key, 32 bytes'), 'initiator', 'bulk', nonceI, nonceA).send,
  ];
  assert.equal(new Set(keys.map((key) => key.toString('hex'))).size, keys.length);
});

test('the AuthMachine gives both sides the same keys after a keyed exchange, and none in insecure mode', () => {
  const run = (config: ConstructorParameters<typeof AuthMachine>[0]['config']) => {
    const initiator = new AuthMachine({ role: 'initiator', config, randomBytes, nowMs: 0 });
    const acceptor = new AuthMachine({ role: 'acceptor', config, randomBytes, nowMs: 0 });
    acceptor.start();
    let toAcceptor = initiator.start().send;
    while (toAcceptor.length > 0) {
      const toInitiator = toAcceptor.flatMap((m) => acceptor.onFrame(m as unknown as Frame).send);
      toAcceptor = toInitiator.flatMap((m) => initiator.onFrame(m as unknown as Frame).send);
    }
    assert.equal(initiator.status.state, 'authenticated');
    assert.equal(acceptor.status.state, 'authenticated');
    return { initiator: initiator.sealKeys('control'), acceptor: acceptor.sealKeys('control') };
  };
  const keyed = run({ mode: 'hmac', key: psk });
  assert.deepEqual(keyed.initiator?.send, keyed.acceptor?.receive);
  assert.deepEqual(keyed.initiator?.receive, keyed.acceptor?.send);
  const insecure = run({ mode: 'insecure' });
  assert.equal(insecure.initiator, null);
  assert.equal(insecure.acceptor, null);
});

test('sealed frames round-trip through the streaming and the message decoder, split anywhere, and carry no plaintext', (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const random = new SeededRandom(seed);
  const encoder = sealedEncoder();
  const samples = sampleMessages(memoryBytes).filter((m) => allKinds.has(m.kind));
  const wire = samples.map((m) =>
    concatFrame(encoder.encode(m.kind, m.meta as never, { generation: m.generation, epoch: m.epoch, payload: m.payload })),
  );
  for (const bytes of wire) {
    assert.equal(bytes.readUInt16LE(FrameOffset.flags) & FrameFlag.sealed, FrameFlag.sealed);
    assert.equal(bytes.readUInt32LE(FrameOffset.checksum), 0);
  }
  const stream = Buffer.concat(wire);
  for (const m of samples) {
    if (m.payload.length >= 16) assert.equal(stream.indexOf(m.payload.subarray(0, 16)), -1, `the ${m.kind} payload is not on the wire`);
  }
  for (let round = 0; round < 20; round++) {
    const step = pushSplit(sealedDecoder(), stream, random);
    assert.equal(step.failure, null);
    assert.deepEqual(
      step.frames.map((f) => [f.kind, f.generation, f.epoch, f.payload.toString('hex')]),
      samples.map((m) => [m.kind, m.generation, m.epoch, m.payload.toString('hex')]),
    );
  }
  const messages = sealedDecoder();
  for (const [i, bytes] of wire.entries()) {
    const result = messages.decodeMessage(bytes);
    assert.equal(result.failure, null);
    assert.deepEqual(result.frame?.meta, samples[i]!.meta);
  }
  const pages = Buffer.concat(threeFrames());
  assert.equal(pages.indexOf(secret), -1, 'page data is encrypted');
  assert.equal(pages.indexOf(secret.subarray(0, 12)), -1);
});

test('the same frame sealed twice is two different ciphertexts (the counter nonce never repeats)', () => {
  const encoder = sealedEncoder();
  const payload = Buffer.alloc(4096 + 8);
  const a = concatFrame(encoder.encode(FrameKind.CHECKPOINT_PAGES, { part: 0, pageCount: 1 }, { payload }));
  const b = concatFrame(encoder.encode(FrameKind.CHECKPOINT_PAGES, { part: 0, pageCount: 1 }, { payload }));
  assert.notDeepEqual(a.subarray(frameHeaderBytes + sealTagBytes), b.subarray(frameHeaderBytes + sealTagBytes));
});

/** The frames decoded, and the failure, for one stream on a fresh sealed decoder (streaming and whole-message alike). */
function refuse(frames: Buffer[], key = acceptorKeys.receive): { accepted: number; code: string | undefined; reason: string } {
  const stream = sealedDecoder(key);
  const step = stream.push(Buffer.concat(frames));
  const failure = step.failure ?? stream.end();
  const messages = sealedDecoder(key);
  let accepted = 0;
  for (const bytes of frames) {
    const result = messages.decodeMessage(bytes);
    if (result.failure !== null) {
      assert.equal(result.failure.code, failure?.code, 'the message decoder refuses alike');
      break;
    }
    accepted += 1;
  }
  assert.equal(step.frames.length, accepted, 'both decoders accept the same frames before refusing');
  return { accepted, code: failure?.code, reason: failure?.reason ?? '' };
}

test('a flipped bit anywhere in a sealed frame (header, tag, meta, payload) is refused, and the frame is not returned', () => {
  const [first, second, third] = threeFrames();
  const bodyStart = frameHeaderBytes + sealTagBytes;
  const positions: Array<[string, number]> = [
    ['header epoch', FrameOffset.epoch],
    ['header generation', FrameOffset.generation + 1],
    ['header sequence', FrameOffset.sequence],
    ['tag', frameHeaderBytes + 3],
    ['meta', bodyStart + 1],
    ['payload page data', second!.length - 4096],
    ['last byte', second!.length - 1],
  ];
  for (const [where, at] of positions) {
    const altered = Buffer.from(second!);
    altered[at]! ^= 0x10;
    const result = refuse([first!, altered, third!]);
    assert.equal(result.code, ProtocolErrorCode.FRAME_SEAL, `${where}: ${result.reason}`);
    assert.match(result.reason, /CHECKPOINT_PAGES \(sealed frame 1 of this connection\) does not authenticate/);
    assert.equal(result.accepted, 1, `${where}: only the frame before the altered one is returned`);
  }
});

test('a replayed, reordered or dropped frame is refused: the receiver opens frame n with nonce n', () => {
  const [first, second, third] = threeFrames();
  const replay = refuse([first!, second!, second!]);
  assert.equal(replay.code, ProtocolErrorCode.FRAME_SEAL);
  assert.match(replay.reason, /claims sequence 1 where 2 is next \(replayed, reordered/);
  assert.equal(replay.accepted, 2);
  const reorder = refuse([first!, third!, second!]);
  assert.equal(reorder.code, ProtocolErrorCode.FRAME_SEAL);
  assert.match(reorder.reason, /claims sequence 2 where 1 is next/);
  assert.equal(reorder.accepted, 1);
  const dropped = refuse([second!, third!]);
  assert.equal(dropped.code, ProtocolErrorCode.FRAME_SEAL);
  assert.equal(dropped.accepted, 0);
  // A replay with the sequence field rewritten to look right still fails: the nonce is the receiver's count.
  const disguised = Buffer.from(first!);
  disguised.writeUInt32LE(second!.readUInt32LE(FrameOffset.sequence), FrameOffset.sequence);
  assert.equal(refuse([first!, disguised]).code, ProtocolErrorCode.FRAME_SEAL);
});

test('a frame from another connection, or sealed with another key, is refused', () => {
  const otherKeys = sealKeysFor(Buffer.from('the wrong pre-shared key, 32 b..'), 'initiator', 'bulk', nonceI, nonceA);
  const wrong = refuse(threeFrames(), otherKeys.receive);
  assert.equal(wrong.code, ProtocolErrorCode.FRAME_SEAL);
  assert.equal(wrong.accepted, 0);
  // The same key and nonces, but the control channel's key: a frame moved between channels.
  const control = refuse(threeFrames(), sealKeysFor(psk, 'acceptor', 'control', nonceI, nonceA).receive);
  assert.equal(control.code, ProtocolErrorCode.FRAME_SEAL);
  // The acceptor's own outgoing key: a frame reflected back to its sender.
  const reflected = refuse(threeFrames(), acceptorKeys.send);
  assert.equal(reflected.code, ProtocolErrorCode.FRAME_SEAL);
});

test('a stream cut inside a sealed frame (header, tag or body) is refused as truncated', () => {
  const [first, second] = threeFrames();
  for (const cut of [10, frameHeaderBytes + 5, frameHeaderBytes + sealTagBytes + 30, second!.length - 1]) {
    const result = refuse([first!, second!.subarray(0, cut)]);
    assert.equal(result.code, ProtocolErrorCode.FRAME_TRUNCATED, `cut at ${cut}: ${result.reason}`);
    assert.equal(result.accepted, 1);
  }
  // Cut between frames the stream is well formed: the connection reports it as lost, without GOODBYE (channels.test.ts).
  const decoder = sealedDecoder();
  assert.equal(decoder.push(first!).frames.length, 1);
  assert.equal(decoder.end(), null);
});

test('an unsealed frame after keys are agreed is refused, and so is a sealed one before', () => {
  const plain = concatFrame(
    new FrameEncoder(limits).encode(FrameKind.CHECKPOINT_PAGES, { part: 0, pageCount: 1 }, { payload: Buffer.alloc(8 + 4096) }),
  );
  const injected = refuse([plain]);
  assert.equal(injected.code, ProtocolErrorCode.FRAME_SEAL);
  assert.match(injected.reason, /is not sealed, and every frame after a keyed authentication must be/);
  const unkeyed = new FrameDecoder({ limits, kindsAccepted: allKinds, kindsAcceptedWhere: 'in this test' });
  const step = unkeyed.push(threeFrames()[0]!);
  assert.equal(step.failure?.code, ProtocolErrorCode.FRAME_FLAGS);
  assert.equal(step.frames.length, 0);
});

test('a decoder that pauses at authentication holds the sealed frames behind AUTH_OK until its keys are in place', () => {
  const encoder = new FrameEncoder(limits);
  const authOk = concatFrame(encoder.encode(FrameKind.AUTH_OK, { authMode: 'hmac' }));
  encoder.seal(initiatorKeys.send);
  const sealedAfter = threeFrames(encoder);
  const decoder = new FrameDecoder({
    limits,
    kindsAccepted: authKinds,
    kindsAcceptedWhere: 'before authentication',
    pausesAtAuthentication: true,
  });
  const bytes = Buffer.concat([authOk, ...sealedAfter]);
  const first = decoder.push(bytes.subarray(0, authOk.length + 50));
  assert.deepEqual(
    first.frames.map((f) => f.kind),
    [FrameKind.AUTH_OK],
  );
  assert.equal(first.failure, null);
  assert.ok(decoder.holding);
  assert.equal(decoder.push(bytes.subarray(authOk.length + 50)).frames.length, 0, 'still held');
  decoder.open(acceptorKeys.receive);
  decoder.accept(allKinds, 'after authentication');
  const resumed = decoder.resume();
  assert.equal(resumed.failure, null);
  assert.deepEqual(
    resumed.frames.map((f) => f.meta),
    [0, 1, 2].map((part) => ({ part, pageCount: 2 })),
  );
  assert.equal(decoder.holding, false);
});

test('random damage to a sealed stream never throws and never yields a frame that was not sent', (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const random = new SeededRandom(seed);
  const frames = threeFrames();
  const stream = Buffer.concat(frames);
  const sent = new Set(frames.map((f) => f.subarray(0, frameHeaderBytes).toString('hex')));
  const originals = sealedDecoder()
    .push(stream)
    .frames.map((f) => f.payload.toString('hex'));
  for (let round = 0; round < 300; round++) {
    const damaged = Buffer.from(stream);
    const edits = 1 + random.below(4);
    for (let i = 0; i < edits; i++) damaged[random.below(damaged.length)] = random.below(256);
    const decoder = sealedDecoder();
    const step = pushSplit(decoder, damaged, random);
    // A length field made larger leaves the decoder waiting: the stream's end then tells.
    const failure = step.failure ?? decoder.end();
    if (!damaged.equals(stream)) assert.notEqual(failure, null, `round ${round}: damage is noticed`);
    step.frames.forEach((frame, i) => {
      assert.equal(frame.payload.toString('hex'), originals[i], `round ${round}: frame ${i} is as sent`);
    });
    assert.ok(step.frames.length <= sent.size);
  }
});
