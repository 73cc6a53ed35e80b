// Proves that every session message survives encode → decode whether fed whole or byte by byte, that
// each kind of malformed input ends the stream with its stable code (before a huge payload is
// buffered), and that seeded random mutations never make the decoder throw or buffer beyond its bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLIENT_HANDSHAKE_BYTES,
  encodeAckFrame,
  encodeClientHandshake,
  encodeDataFrame,
  encodeDataFrames,
  encodeMessage,
  encodePingFrame,
  encodePongFrame,
  encodeServerHandshake,
  FRAME_HEADER_BYTES,
  FRAME_PAYLOAD_BYTES_MAX,
  FrameType,
  HandshakeStatus,
  isSessionConnection,
  SERVER_HANDSHAKE_BYTES,
  SessionDecoder,
  STREAM_OFFSET_MAX,
  type SessionMessage,
} from '@hbft/common/session/protocol.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';

const sessionId = Uint8Array.from({ length: 16 }, (_, i) => i * 17);

function clientStream(): { bytes: Uint8Array; messages: SessionMessage[] } {
  const messages: SessionMessage[] = [
    { kind: 'clientHandshake', version: 1, sessionId, outputReceived: 123456789012, flags: 0 },
    { kind: 'data', payload: Buffer.from('*1\r\n$4\r\nPING\r\n') },
    { kind: 'ack', offset: STREAM_OFFSET_MAX },
    { kind: 'ping' },
    { kind: 'data', payload: new Uint8Array(0) },
    { kind: 'pong' },
    { kind: 'ack', offset: 0 },
    { kind: 'data', payload: Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff) },
  ];
  return { bytes: Buffer.concat(messages.map(encodeMessage)), messages };
}

function serverStream(): { bytes: Uint8Array; messages: SessionMessage[] } {
  const messages: SessionMessage[] = [
    {
      kind: 'serverHandshake',
      version: 1,
      status: HandshakeStatus.ok,
      generation: 0xfffffffe,
      inputAccepted: 2 ** 40 + 3,
      outputStart: 77,
    },
    { kind: 'data', payload: Buffer.from('+PONG\r\n') },
    { kind: 'ack', offset: 15 },
    { kind: 'pong' },
  ];
  return { bytes: Buffer.concat(messages.map(encodeMessage)), messages };
}

/** Feeds `bytes` in pieces of the given sizes (cycled) and collects everything. */
function decodeInPieces(decoder: SessionDecoder, bytes: Uint8Array, sizes: number[]) {
  const messages: SessionMessage[] = [];
  let error;
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    const result = decoder.push(bytes.subarray(at, at + size));
    // Copy DATA payloads: they may be views of the pushed chunk.
    for (const m of result.messages) messages.push(m.kind === 'data' ? { kind: 'data', payload: new Uint8Array(m.payload) } : m);
    error ??= result.error;
    at += size;
  }
  return { messages, error };
}

function normalize(messages: SessionMessage[]) {
  return messages.map((m) =>
    m.kind === 'data'
      ? { kind: 'data', payload: [...m.payload] }
      : m.kind === 'clientHandshake'
        ? { ...m, sessionId: [...m.sessionId] }
        : m,
  );
}

test('encoded sizes match the wire layout', () => {
  assert.equal(encodeClientHandshake({ sessionId, outputReceived: 0 }).length, CLIENT_HANDSHAKE_BYTES);
  assert.equal(encodeServerHandshake({ status: 0, generation: 1, inputAccepted: 0, outputStart: 0 }).length, SERVER_HANDSHAKE_BYTES);
  assert.deepEqual([...encodePingFrame()], [3, 0, 0, 0, 0]);
  assert.deepEqual([...encodePongFrame()], [4, 0, 0, 0, 0]);
  assert.deepEqual([...encodeAckFrame(0x0102)], [2, 8, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeClientHandshake({ sessionId, outputReceived: 5 }).subarray(0, 5)], [0, 0x48, 0x42, 0x53, 1]);
  assert.equal(isSessionConnection(0), true);
  assert.equal(isSessionConnection('*'.charCodeAt(0)), false);
});

test('client and server streams round-trip whole, byte by byte and in odd pieces', () => {
  for (const [side, stream] of [
    ['server', clientStream()],
    ['client', serverStream()],
  ] as const) {
    for (const sizes of [[stream.bytes.length], [1], [2, 7, 1, 300], [FRAME_HEADER_BYTES]]) {
      const { messages, error } = decodeInPieces(new SessionDecoder(side), stream.bytes, sizes);
      assert.equal(error, undefined);
      assert.deepEqual(normalize(messages), normalize(stream.messages), `side ${side}, pieces ${sizes}`);
    }
  }
});

test('a stream split into DATA frames carries every byte once and in order', () => {
  const bytes = new SeededRandom(7).bytes(10_000);
  const frames = encodeDataFrames(bytes, 999);
  assert.equal(frames.length, 11);
  const decoder = new SessionDecoder('server');
  decoder.push(encodeClientHandshake({ sessionId, outputReceived: 0 }));
  const { messages } = decodeInPieces(decoder, Buffer.concat(frames), [333]);
  const joined = Buffer.concat(messages.map((m) => (m.kind === 'data' ? m.payload : new Uint8Array())));
  assert.deepEqual(joined, Buffer.from(bytes));
});

/** Decodes `bytes` after a valid handshake (for frame errors) or as the first bytes. */
function firstError(side: 'server' | 'client', bytes: Uint8Array, afterHandshake: boolean) {
  const decoder = new SessionDecoder(side);
  if (afterHandshake) {
    const handshake =
      side === 'server'
        ? encodeClientHandshake({ sessionId, outputReceived: 0 })
        : encodeServerHandshake({ status: 0, generation: 1, inputAccepted: 0, outputStart: 0 });
    assert.equal(decoder.push(handshake).error, undefined);
  }
  const { error } = decodeInPieces(decoder, bytes, [1]);
  return { error, decoder };
}

test('malformed input ends the stream with a stable code', () => {
  const handshake = Buffer.from(encodeClientHandshake({ sessionId, outputReceived: 0 }));
  const reply = Buffer.from(encodeServerHandshake({ status: 0, generation: 1, inputAccepted: 0, outputStart: 0 }));
  const patched = (bytes: Buffer, at: number, value: number) => {
    const copy = Buffer.from(bytes);
    copy[at] = value;
    return copy;
  };
  const frame = (type: number, length: number, payload = new Uint8Array()) => {
    const header = Buffer.alloc(5);
    header[0] = type;
    header.writeUInt32LE(length, 1);
    return Buffer.concat([header, payload]);
  };
  const bigOffset = Buffer.alloc(8);
  bigOffset.writeBigUInt64LE(2n ** 53n);
  const cases: [string, 'server' | 'client', Uint8Array, boolean, string][] = [
    ['plain RESP sent to a session decoder', 'server', Buffer.from('*1\r\n$4\r\nPING\r\n'), false, 'E_SESSION_BAD_MAGIC'],
    ['magic typo', 'server', patched(handshake, 3, 0x54), false, 'E_SESSION_BAD_MAGIC'],
    ['client version 2', 'server', patched(handshake, 4, 2), false, 'E_SESSION_VERSION'],
    ['unknown flags', 'server', patched(handshake, 29, 1), false, 'E_SESSION_BAD_FLAGS'],
    ['outputReceived ≥ 2^53', 'server', patched(handshake, 27, 0x20), false, 'E_SESSION_OFFSET_RANGE'],
    ['server version 9', 'client', patched(reply, 4, 9), false, 'E_SESSION_VERSION'],
    ['unknown status', 'client', patched(reply, 5, 5), false, 'E_SESSION_BAD_STATUS'],
    ['inputAccepted ≥ 2^53', 'client', patched(reply, 17, 0x80), false, 'E_SESSION_OFFSET_RANGE'],
    ['unknown frame type', 'server', frame(9, 0), true, 'E_SESSION_FRAME_TYPE'],
    ['frame type 0', 'client', frame(0, 0), true, 'E_SESSION_FRAME_TYPE'],
    ['DATA over 1 MiB', 'server', frame(FrameType.data, FRAME_PAYLOAD_BYTES_MAX + 1), true, 'E_SESSION_FRAME_TOO_LARGE'],
    ['DATA length 4 GiB − 1', 'client', frame(FrameType.data, 0xffffffff), true, 'E_SESSION_FRAME_TOO_LARGE'],
    ['short ACK', 'server', frame(FrameType.ack, 4, new Uint8Array(4)), true, 'E_SESSION_FRAME_LENGTH'],
    ['PING with a payload', 'client', frame(FrameType.ping, 1, new Uint8Array(1)), true, 'E_SESSION_FRAME_LENGTH'],
    ['PONG with a payload', 'server', frame(FrameType.pong, 2, new Uint8Array(2)), true, 'E_SESSION_FRAME_LENGTH'],
    ['ACK offset ≥ 2^53', 'server', frame(FrameType.ack, 8, bigOffset), true, 'E_SESSION_OFFSET_RANGE'],
  ];
  for (const [name, side, bytes, afterHandshake, code] of cases) {
    const { error, decoder } = firstError(side, bytes, afterHandshake);
    assert.equal(error?.code, code, name);
    assert.ok(error!.reason.length > 10, `${name}: the reason says what was wrong`);
    // Terminal: more input changes nothing and yields nothing.
    const again = decoder.push(encodePingFrame());
    assert.deepEqual(again, { messages: [], error }, `${name}: the decoder stays failed`);
    assert.ok(decoder.bufferedBytes <= CLIENT_HANDSHAKE_BYTES, `${name}: nothing is buffered after the failure`);
  }
});

test('a smaller configured payload limit is enforced', () => {
  const decoder = new SessionDecoder('client', { payloadBytesMax: 1024 });
  decoder.push(encodeServerHandshake({ status: 0, generation: 1, inputAccepted: 0, outputStart: 0 }));
  assert.equal(decoder.push(encodeDataFrame(new Uint8Array(1024))).error, undefined);
  assert.equal(decoder.push(encodeDataFrame(new Uint8Array(1025))).error?.code, 'E_SESSION_FRAME_TOO_LARGE');
});

test('the rejected plain stream is recognised from its first byte', () => {
  // The server decides plain vs session before decoding; a decoder given plain bytes rejects at byte 0.
  const { error } = firstError('server', Buffer.from('PING\r\n'), false);
  assert.match(error!.reason, /byte 0/);
});

test('random mutations never throw and buffering stays bounded', (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const random = new SeededRandom(seed);
  const streams = [
    { side: 'server' as const, bytes: clientStream().bytes },
    { side: 'client' as const, bytes: serverStream().bytes },
  ];
  const bound = FRAME_HEADER_BYTES + 4096;
  for (let round = 0; round < 2000; round++) {
    const { side, bytes } = streams[round % 2]!;
    const mutated = Buffer.from(bytes);
    const flips = 1 + random.below(4);
    for (let i = 0; i < flips; i++) {
      const at = random.below(mutated.length);
      mutated[at] = random.chance(0.5) ? random.below(256) : mutated[at]! ^ (1 << random.below(8));
    }
    const cut = random.chance(0.3) ? mutated.subarray(0, random.below(mutated.length)) : mutated;
    const decoder = new SessionDecoder(side, { payloadBytesMax: 4096 });
    for (let at = 0; at < cut.length; ) {
      const size = 1 + random.below(64);
      let result;
      try {
        result = decoder.push(cut.subarray(at, at + size));
      } catch (error) {
        assert.fail(`seed ${seed} round ${round}: the decoder threw ${(error as Error).message}`);
      }
      at += size;
      assert.ok(decoder.bufferedBytes <= bound, `seed ${seed} round ${round}: buffered ${decoder.bufferedBytes} bytes`);
      for (const message of result.messages) {
        if (message.kind === 'data') assert.ok(message.payload.length <= 4096);
        if (message.kind === 'ack') assert.ok(Number.isSafeInteger(message.offset) && message.offset >= 0);
      }
      if (result.error) assert.match(result.error.code, /^E_SESSION_/);
    }
  }
});
