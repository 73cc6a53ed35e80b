// Proves that the meta validators accept every sample message and refuse each kind of malformed field with a reason that names the field, without throwing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameKind, frameKindName } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor, framePayloadBytesMax } from '@hbft/common/protocol/limits.ts';
import { machineStateBytesMax } from '@hbft/common/limits.ts';
import { payloadBytesMaxFor, validateMeta } from '@hbft/common/protocol/messages.ts';
import { sampleMessages } from '@hbft/common/protocol/samples.ts';

const memoryBytes = 32 * 1024 * 1024;
const limits = protocolLimitsFor(memoryBytes);
const samples = sampleMessages(memoryBytes);

function sample(kind: FrameKind): { meta: Record<string, unknown>; payloadBytes: number } {
  const found = samples.find((s) => s.kind === kind)!;
  return { meta: { ...(found.meta as unknown as Record<string, unknown>) }, payloadBytes: found.payload.length };
}

test('every sample message is valid', () => {
  for (const s of samples) assert.equal(validateMeta(s.kind, s.meta, s.payload.length, limits), null, frameKindName(s.kind));
});

test('payload limits per kind', () => {
  assert.equal(payloadBytesMaxFor(FrameKind.CHECKPOINT_PAGES, limits), framePayloadBytesMax);
  assert.equal(payloadBytesMaxFor(FrameKind.FULL_SYNC_BEGIN, limits), machineStateBytesMax);
  assert.equal(payloadBytesMaxFor(FrameKind.HEARTBEAT, limits), 0);
  assert.match(validateMeta(FrameKind.ACK, { subject: 'checkpoint' }, 1, limits)!, /carries no payload/);
});

test('malformed fields are refused by name', () => {
  const cases: Array<[FrameKind, (meta: Record<string, unknown>) => void, RegExp, number?]> = [
    [FrameKind.HELLO, (m) => (m.nonce = Buffer.alloc(31)), /field "nonce": expected 32 bytes, got 31/],
    [FrameKind.HELLO, (m) => (m.nonce = 'x'.repeat(32)), /field "nonce": expected binary/],
    [FrameKind.HELLO, (m) => (m.authMode = 'none'), /field "authMode": expected one of hmac, insecure/],
    [FrameKind.CHALLENGE, (m) => (m.proof = Buffer.alloc(0)), /proof length does not match authMode/],
    [FrameKind.AUTH_PROOF, (m) => (m.proof = Buffer.alloc(16)), /field "proof": expected 0 or 32 bytes/],
    [FrameKind.HANDSHAKE, (m) => (m.memoryBytes = 1000), /field "memoryBytes": 1000 is outside/],
    [FrameKind.HANDSHAKE, (m) => (m.memoryBytes = 16 * 1024 * 1024 + 1), /field "memoryBytes": .*not a whole number of 4096-byte pages/],
    [FrameKind.HANDSHAKE, (m) => (m.memoryBytes = 2 ** 40), /field "memoryBytes"/],
    [FrameKind.HANDSHAKE, (m) => (m.protocolVersion = 256), /field "protocolVersion": 256 is outside \[0, 255\]/],
    [FrameKind.HANDSHAKE, (m) => (m.protocolVersion = 1.5), /field "protocolVersion": expected an integer/],
    [FrameKind.HANDSHAKE, (m) => (m.role = 'witness'), /field "role"/],
    [FrameKind.HANDSHAKE, (m) => (m.channel = 'side'), /field "channel"/],
    [FrameKind.HANDSHAKE, (m) => delete m.sessionId, /missing field "sessionId"/],
    [FrameKind.HANDSHAKE_OK, (m) => (m.appliedEpoch = -1), /field "appliedEpoch"/],
    [FrameKind.HANDSHAKE_OK, (m) => (m.appliedEpoch = 2 ** 53), /field "appliedEpoch"/],
    [FrameKind.HEARTBEAT, (m) => (m.sentAtMs = Number.NaN), /field "sentAtMs"/],
    [FrameKind.HEARTBEAT, (m) => (m.sentAtMs = Number.POSITIVE_INFINITY), /field "sentAtMs"/],
    [FrameKind.HEARTBEAT, (m) => (m.sentAtMs = null), /field "sentAtMs": .*got nil/],
    [FrameKind.CHECKPOINT_BEGIN, (m) => (m.pageCount = limits.checkpointPagesMax + 1), /field "pageCount"/],
    [FrameKind.CHECKPOINT_BEGIN, (m) => (m.partCount = 5), /partCount 5 exceeds pageCount 4/],
    [FrameKind.CHECKPOINT_BEGIN, (m) => ((m.pageCount = 10), (m.partCount = 0)), /does not fit in 0 parts/],
    [FrameKind.FULL_SYNC_BEGIN, (m) => (m.memoryBytes = 'lots'), /field "memoryBytes": expected an integer/],
    [FrameKind.CHECKPOINT_PAGES, (m) => (m.pageCount = 0), /field "pageCount": 0 is outside \[1,/],
    [FrameKind.CHECKPOINT_PAGES, (m) => (m.part = limits.checkpointPartsMax), /field "part"/],
    [FrameKind.CHECKPOINT_PAGES, (m) => (m.pageCount = 1), /1 page records cannot take 4112 payload bytes/],
    [FrameKind.CHECKPOINT_END, (m) => (m.checksum = 2 ** 32), /field "checksum"/],
    [FrameKind.CHECKPOINT_END, (m) => (m.checksum = -1), /field "checksum"/],
    [FrameKind.ERROR, (m) => (m.code = `E_${'X'.repeat(100)}`), /field "code": longer than 64 bytes/],
    [FrameKind.ERROR, (m) => (m.message = 'é'.repeat(600)), /field "message": longer than 1024 bytes/],
    [FrameKind.GOODBYE, (m) => (m.reason = { text: 'bye' }), /field "reason": expected a string, got object/],
    [FrameKind.AUTH_OK, (m) => (m[''] = 1), /unknown field ""/],
  ];
  for (const [kind, mutate, reason] of cases) {
    const { meta, payloadBytes } = sample(kind);
    mutate(meta);
    const result = validateMeta(kind, meta, payloadBytes, limits);
    assert.ok(result !== null, `${frameKindName(kind)} ${reason} should be refused`);
    assert.match(result, reason);
  }
});

test('values that are not plain maps are refused, whatever they are', () => {
  const weird: unknown[] = [
    undefined,
    null,
    0,
    'map',
    [],
    Buffer.alloc(3),
    new Map(),
    Object.create(null),
    Object.create({ sentAtMs: 1 }),
    new Date(0),
  ];
  weird.forEach((value, i) => {
    const result = validateMeta(FrameKind.HEARTBEAT, value, 0, limits);
    assert.ok(typeof result === 'string', `weird value #${i}`);
  });
  // msgpack-lite turns a "__proto__" key into the object's prototype: a Buffer prototype must not fool the binary checks.
  const fakeBuffer = Object.setPrototypeOf({ sentAtMs: 1 }, Buffer.prototype) as object;
  assert.match(validateMeta(FrameKind.HEARTBEAT, fakeBuffer, 0, limits)!, /plain map/);
  const fakeNonce = { authMode: 'hmac', nonce: Object.setPrototypeOf({}, Buffer.prototype) };
  assert.match(validateMeta(FrameKind.HELLO, fakeNonce, 0, limits)!, /field "nonce": expected binary, got object/);
  const inherited = Object.create({ sentAtMs: 1 }) as object;
  assert.match(validateMeta(FrameKind.HEARTBEAT, inherited, 0, limits)!, /plain map/);
});
