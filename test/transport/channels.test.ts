// Proves on loopback that the control (ws) and bulk (raw TCP) channels share one listening port, authenticate before carrying frames, carry frames both ways with backpressure, and that garbage, malformed frames, wrong keys, silent peers and cut streams are closed with a logged reason.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { silentLogger } from '@hbft/common/log.ts';
import { AuthMachine, type AuthConfig, type OutgoingMessage } from '@hbft/common/protocol/auth.ts';
import { CheckpointChecksum, CheckpointStreamChecker } from '@hbft/common/protocol/checkpointStream.ts';
import { ProtocolErrorCode } from '@hbft/common/protocol/codes.ts';
import { FrameDecoder } from '@hbft/common/protocol/decoder.ts';
import { FrameEncoder, concatFrame, encodeFrameUnchecked, encodeMeta, type Frame } from '@hbft/common/protocol/frame.ts';
import { FrameKind, authKinds, frameKinds } from '@hbft/common/protocol/kinds.ts';
import { controlMessageBytesMax, protocolLimitsFor, protocolVersion } from '@hbft/common/protocol/limits.ts';
import type { MetaOf } from '@hbft/common/protocol/messages.ts';
import { sampleMessages, samplePageRecords } from '@hbft/common/protocol/samples.ts';
import { connectBulk, type BulkConnection } from '@hbft/common/transport/bulk.ts';
import type { CloseInfo, FrameConnection } from '@hbft/common/transport/connection.ts';
import { connectControl, controlPath, type ControlConnection } from '@hbft/common/transport/control.ts';
import { listen, type ListenerOptions, type RejectedSocket, type ReplicationListener } from '@hbft/common/transport/listener.ts';

const memoryBytes = 64 * 1024 * 1024;
const limits = protocolLimitsFor(memoryBytes);
const key = Buffer.from('a pre-shared key of 32 bytes....');
const auth: AuthConfig = { mode: 'hmac', key };
const logger = silentLogger();
const host = '127.0.0.1';

interface Harness {
  listener: ReplicationListener;
  port: number;
  connections: FrameConnection[];
  rejected: RejectedSocket[];
  nextConnection(): Promise<FrameConnection>;
  nextRejected(): Promise<RejectedSocket>;
}

async function harness(t: TestContext, options: Partial<ListenerOptions> = {}): Promise<Harness> {
  const listener = await listen({ host, port: 0, auth, limits, logger, ...options });
  const connections: FrameConnection[] = [];
  const rejected: RejectedSocket[] = [];
  listener.on('connection', (c) => connections.push(c));
  listener.on('rejected', (r) => rejected.push(r));
  t.after(() => listener.close());
  return {
    listener,
    port: listener.address().port,
    connections,
    rejected,
    nextConnection: async () => (await once(listener, 'connection'))[0] as FrameConnection,
    nextRejected: async () => (await once(listener, 'rejected'))[0] as RejectedSocket,
  };
}

function nextFrame(connection: FrameConnection): Promise<Frame> {
  return once(connection, 'frame').then(([frame]) => frame as Frame);
}

function nextClose(connection: FrameConnection): Promise<CloseInfo> {
  if (connection.closed !== null) return Promise.resolve(connection.closed);
  return once(connection, 'close').then(([info]) => info as CloseInfo);
}

/** Everything a raw socket receives until it closes. */
async function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

function decodeAll(bytes: Buffer): { frames: Frame[]; failure: string | undefined } {
  const decoder = new FrameDecoder({ limits, kindsAccepted: new Set(frameKinds), kindsAcceptedWhere: 'in this test' });
  const step = decoder.push(bytes);
  return { frames: step.frames, failure: (step.failure ?? decoder.end())?.code };
}

/**
 * A hand-driven bulk initiator over a raw socket: authenticates with the AuthMachine (and seals
 * what it encodes afterwards, as a connection does), then lets the test write arbitrary bytes (to cut a frame in half, or send a kind the channel refuses).
 */
async function rawBulkInitiator(port: number): Promise<{ socket: net.Socket; encoder: FrameEncoder }> {
  const socket = net.connect({ host, port });
  await once(socket, 'connect');
  const encoder = new FrameEncoder(limits);
  const decoder = new FrameDecoder({ limits, kindsAccepted: authKinds, kindsAcceptedWhere: 'before authentication' });
  const machine = new AuthMachine({ role: 'initiator', config: auth, randomBytes: (n) => Buffer.alloc(n, 0x42), nowMs: 0 });
  const write = (messages: readonly OutgoingMessage[]): void => {
    for (const m of messages) socket.write(concatFrame(encoder.encode(m.kind, m.meta as never)));
  };
  write(machine.start().send);
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      const step = decoder.push(chunk);
      for (const frame of step.frames) write(machine.onFrame(frame).send);
      if (machine.status.state === 'authenticated') {
        socket.removeListener('data', onData);
        // Everything after authentication is sealed, as a real connection does it.
        const keys = machine.sealKeys('bulk');
        if (keys !== null) encoder.seal(keys.send);
        resolve();
      } else if (machine.status.state === 'failed' || step.failure !== null) reject(new Error('raw initiator failed to authenticate'));
    };
    socket.on('data', onData);
  });
  return { socket, encoder };
}

test('both channels through one port: authenticated, frames flow both ways, a checkpoint arrives whole', async (t) => {
  const h = await harness(t);
  const serverControlP = h.nextConnection();
  const control: ControlConnection = await connectControl({ host, port: h.port, auth, limits, logger });
  const serverControl = await serverControlP;
  assert.equal(serverControl.channel, 'control');
  assert.equal(serverControl.role, 'acceptor');
  assert.equal(control.role, 'initiator');

  const sessionId = Buffer.alloc(16, 9);
  const handshake = {
    protocolVersion,
    memoryBytes,
    guestImageHash: Buffer.alloc(32, 1),
    role: 'primary' as const,
    channel: 'control' as const,
    sessionId,
    instanceId: Buffer.alloc(16, 3),
  };
  const gotHandshake = nextFrame(serverControl);
  control.send(FrameKind.HANDSHAKE, handshake, { generation: 4 });
  const frame = await gotHandshake;
  assert.equal(frame.kind, FrameKind.HANDSHAKE);
  assert.equal(frame.generation, 4);
  assert.deepEqual(frame.meta, handshake);

  const gotReply = nextFrame(control);
  serverControl.send(FrameKind.HANDSHAKE_OK, { role: 'backup', channel: 'control', sessionId, appliedEpoch: null }, { generation: 4 });
  assert.equal((await gotReply).kind, FrameKind.HANDSHAKE_OK);

  // The bulk channel on the same port carries a checkpoint of three parts.
  const serverBulkP = h.nextConnection();
  const bulk: BulkConnection = await connectBulk({ host, port: h.port, auth, limits, logger });
  const serverBulk = await serverBulkP;
  assert.equal(serverBulk.channel, 'bulk');
  const checker = new CheckpointStreamChecker();
  const received: Buffer[] = [];
  const complete = new Promise<number>((resolve, reject) => {
    serverBulk.on('frame', (f) => {
      if (f.kind === FrameKind.CHECKPOINT_PAGES) received.push(Buffer.from(f.payload));
      const step = checker.check(f);
      if (step.status === 'complete') resolve(step.epoch);
      if (step.status === 'invalid') reject(new Error(step.failure.reason));
    });
  });
  const checksum = new CheckpointChecksum();
  const fields = { generation: 4, epoch: 17 };
  const state = Buffer.alloc(200, 3);
  checksum.add(bulk.send(FrameKind.CHECKPOINT_BEGIN, { pageCount: 6, partCount: 3 }, { ...fields, payload: state }).checksum);
  const parts = [0, 1, 2].map((part) => samplePageRecords(part * 2, 0x30 + part));
  parts.forEach((payload, part) => {
    const sent = bulk.send(FrameKind.CHECKPOINT_PAGES, { part, pageCount: 2 }, { ...fields, payload });
    assert.equal(sent.sent, true);
    assert.equal(sent.backpressure, false);
    checksum.add(sent.checksum);
  });
  bulk.send(FrameKind.CHECKPOINT_END, { pageCount: 6, partCount: 3, checksum: checksum.value }, fields);
  assert.equal(await complete, 17);
  assert.deepEqual(received, parts);

  // The ack goes back on the control channel.
  const gotAck = nextFrame(control);
  serverControl.send(FrameKind.ACK, { subject: 'checkpoint' }, { generation: 4, epoch: 17 });
  const ack = await gotAck;
  assert.equal(ack.kind === FrameKind.ACK && ack.epoch, 17);

  // An orderly close reaches the peer as GOODBYE with its reason.
  const closed = nextClose(serverBulk);
  bulk.close('test over');
  assert.deepEqual(await closed, { code: 'GOODBYE', reason: 'peer: test over', by: 'peer' });
  const controlClosed = nextClose(serverControl);
  control.close('test over');
  assert.equal((await controlClosed).code, 'GOODBYE');
});

test('the control channel refuses permessage-deflate even when the client offers it', async (t) => {
  const h = await harness(t);
  const ws = new WebSocket(`ws://${host}:${h.port}${controlPath}`); // ws clients offer deflate by default
  await once(ws, 'open');
  assert.equal(ws.extensions, '');
  ws.terminate();
});

test('a garbage-speaking client is closed with a logged reason', async (t) => {
  const h = await harness(t);
  const socket = net.connect({ host, port: h.port });
  const rejected = h.nextRejected();
  socket.write('SSH-2.0-OpenSSH_9.6\r\n');
  const [r] = await Promise.all([rejected, readAll(socket)]);
  assert.equal(r.code, ProtocolErrorCode.LISTENER_PROTOCOL);
  assert.match(r.reason, /first bytes 0x5353482d are neither the frame magic nor an HTTP upgrade/);
});

test('a frame with the magic but a wrong version is answered with an ERROR frame naming it', async (t) => {
  const h = await harness(t);
  const socket = net.connect({ host, port: h.port });
  const rejected = h.nextRejected();
  socket.write(concatFrame(encodeFrameUnchecked({ kind: FrameKind.HELLO, version: 9, sequence: 0, metaBytes: encodeMeta({}) })));
  const [r, bytes] = await Promise.all([rejected, readAll(socket)]);
  assert.equal(r.code, ProtocolErrorCode.FRAME_VERSION);
  const { frames } = decodeAll(bytes);
  assert.equal(frames.length, 1);
  const error = frames[0]!;
  assert.equal(error.kind, FrameKind.ERROR);
  assert.equal(error.kind === FrameKind.ERROR && error.meta.code, ProtocolErrorCode.FRAME_VERSION);
  assert.match(error.kind === FrameKind.ERROR ? error.meta.message : '', /protocol version 9/);
});

test('a frame other than HELLO before authentication is refused', async (t) => {
  const h = await harness(t);
  const socket = net.connect({ host, port: h.port });
  const rejected = h.nextRejected();
  socket.write(concatFrame(new FrameEncoder(limits).encode(FrameKind.HEARTBEAT, { sentAtMs: 1 })));
  const [r, bytes] = await Promise.all([rejected, readAll(socket)]);
  assert.equal(r.code, ProtocolErrorCode.FRAME_KIND_UNEXPECTED);
  assert.match(r.reason, /HEARTBEAT is not accepted before authentication/);
  assert.equal(decodeAll(bytes).frames[0]?.kind, FrameKind.ERROR);
});

test('an HTTP request without an upgrade gets 426 and is refused', async (t) => {
  const h = await harness(t);
  const rejected = h.nextRejected();
  const response = await new Promise<http.IncomingMessage>((resolve, reject) =>
    http.get({ host, port: h.port, path: '/' }, resolve).on('error', reject),
  );
  assert.equal(response.statusCode, 426);
  response.resume();
  assert.equal((await rejected).code, ProtocolErrorCode.LISTENER_PROTOCOL);
});

test('a malformed WebSocket upgrade is answered 400 and refused', async (t) => {
  const h = await harness(t);
  const socket = net.connect({ host, port: h.port });
  const rejected = h.nextRejected();
  socket.write(`GET ${controlPath} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
  const [r, bytes] = await Promise.all([rejected, readAll(socket)]);
  assert.equal(r.code, ProtocolErrorCode.LISTENER_PROTOCOL);
  assert.match(r.reason, /bad WebSocket upgrade/);
  assert.match(bytes.toString(), /^HTTP\/1.1 400/);
});

test('a silent client is dropped after the peek timeout', async (t) => {
  const h = await harness(t, { peekTimeoutMs: 100 });
  const socket = net.connect({ host, port: h.port });
  const [r] = await Promise.all([h.nextRejected(), readAll(socket)]);
  assert.equal(r.code, ProtocolErrorCode.LISTENER_TIMEOUT);
});

test('a wrong key closes both channels with the auth failure on both sides', async (t) => {
  const h = await harness(t);
  const wrong: AuthConfig = { mode: 'hmac', key: Buffer.from('another key of 32 bytes.........') };
  const rejected = h.nextRejected();
  await assert.rejects(
    connectBulk({ host, port: h.port, auth: wrong, limits, logger }),
    (e: Error & { code?: string }) => e.code === ProtocolErrorCode.AUTH_FAILED,
  );
  assert.equal((await rejected).code, ProtocolErrorCode.AUTH_REFUSED, 'the backup learns why from the ERROR frame');
  const rejectedControl = h.nextRejected();
  await assert.rejects(connectControl({ host, port: h.port, auth: wrong, limits, logger }), /E_AUTH_FAILED/);
  assert.equal((await rejectedControl).code, ProtocolErrorCode.AUTH_REFUSED);
  assert.equal(h.connections.length, 0);
});

test('an insecure primary is refused by a keyed backup with a clear error', async (t) => {
  const h = await harness(t);
  const rejected = h.nextRejected();
  await assert.rejects(
    connectControl({ host, port: h.port, auth: { mode: 'insecure' }, limits, logger }),
    (e: Error & { code?: string }) => e.code === ProtocolErrorCode.AUTH_REFUSED && /requires HMAC authentication/.test(e.message),
  );
  const r = await rejected;
  assert.equal(r.code, ProtocolErrorCode.AUTH_MODE_MISMATCH);
});

test('the control channel refuses text messages and messages over maxPayload', async (t) => {
  const h = await harness(t);
  for (const [data, code] of [
    ['hello', ProtocolErrorCode.WS_MESSAGE],
    [Buffer.alloc(controlMessageBytesMax + 1), ProtocolErrorCode.WS_MESSAGE],
  ] as const) {
    const ws = new WebSocket(`ws://${host}:${h.port}${controlPath}`, { perMessageDeflate: false });
    ws.on('error', () => {});
    await once(ws, 'open');
    const rejected = h.nextRejected();
    ws.send(data);
    const [r] = await Promise.all([rejected, once(ws, 'close')]);
    assert.equal(r.code, code);
  }
});

test('the bulk channel refuses a control kind after authentication, and a cut frame is reported as truncated', async (t) => {
  const h = await harness(t);
  {
    const serverP = h.nextConnection();
    const { socket, encoder } = await rawBulkInitiator(h.port);
    const server = await serverP;
    const closed = nextClose(server);
    socket.write(concatFrame(encoder.encode(FrameKind.HEARTBEAT, { sentAtMs: 1 })));
    const info = await closed;
    assert.equal(info.code, ProtocolErrorCode.FRAME_KIND_UNEXPECTED);
    assert.match(info.reason, /HEARTBEAT is not accepted on the bulk channel/);
    socket.destroy();
  }
  {
    const serverP = h.nextConnection();
    const { socket, encoder } = await rawBulkInitiator(h.port);
    const server = await serverP;
    const closed = nextClose(server);
    const frame = concatFrame(encoder.encode(FrameKind.CHECKPOINT_PAGES, { part: 0, pageCount: 2 }, { payload: samplePageRecords(0, 1) }));
    socket.end(frame.subarray(0, 1000));
    const info = await closed;
    assert.equal(info.code, ProtocolErrorCode.FRAME_TRUNCATED);
    assert.equal(info.by, 'transport');
  }
});

test('after authentication a bulk frame altered on the wire, or one sent in plaintext, closes the connection with E_FRAME_SEAL and is never emitted', async (t) => {
  const h = await harness(t);
  for (const [name, bytes, reason] of [
    [
      'altered',
      (encoder: FrameEncoder) => {
        const frame = concatFrame(
          encoder.encode(FrameKind.CHECKPOINT_PAGES, { part: 0, pageCount: 2 }, { payload: samplePageRecords(0, 1) }),
        );
        frame[frame.length - 100]! ^= 0x04;
        return frame;
      },
      /CHECKPOINT_PAGES \(sealed frame 0 of this connection\) does not authenticate/,
    ],
    [
      'plaintext',
      () =>
        concatFrame(
          new FrameEncoder(limits).encode(FrameKind.CHECKPOINT_PAGES, { part: 0, pageCount: 2 }, { payload: samplePageRecords(0, 1) }),
        ),
      /is not sealed/,
    ],
  ] as const) {
    const serverP = h.nextConnection();
    const { socket, encoder } = await rawBulkInitiator(h.port);
    const server = await serverP;
    const emitted: Frame[] = [];
    server.on('frame', (frame) => emitted.push(frame));
    const closed = nextClose(server);
    socket.write(bytes(encoder));
    const info = await closed;
    assert.equal(info.code, ProtocolErrorCode.FRAME_SEAL, name);
    assert.match(info.reason, reason);
    assert.equal(emitted.length, 0, `${name}: nothing emitted`);
    socket.destroy();
  }
});

test('a sealed frame the acceptor sends as soon as it has authenticated is read with the new keys, even in the same read as AUTH_OK', async (t) => {
  const h = await harness(t);
  const handshakeOk = sampleMessages(memoryBytes).find((m) => m.kind === FrameKind.HANDSHAKE_OK)!;
  // The acceptor answers at once, in the same turn of the event loop as its AUTH_OK.
  h.listener.once('connection', (server) => {
    server.send(FrameKind.HANDSHAKE_OK, handshakeOk.meta as MetaOf<typeof FrameKind.HANDSHAKE_OK>, { generation: 3 });
  });
  const client = await connectBulk({ host, port: h.port, auth, limits, logger });
  const frame = client.closed === null ? await nextFrame(client) : assert.fail(`closed: ${client.closed.code}: ${client.closed.reason}`);
  assert.equal(frame.kind, FrameKind.HANDSHAKE_OK);
  assert.equal(frame.generation, 3);
  client.close();
});

test('an ERROR from the peer closes the connection with its code', async (t) => {
  const h = await harness(t);
  const serverP = h.nextConnection();
  const control = await connectControl({ host, port: h.port, auth, limits, logger });
  const server = await serverP;
  const closed = nextClose(control);
  server.fail({ code: ProtocolErrorCode.CHECKPOINT_STREAM, reason: 'part 3 missing' });
  const info = await closed;
  assert.equal(info.code, ProtocolErrorCode.PEER_ERROR);
  assert.equal(info.by, 'peer');
  assert.match(info.reason, /E_CHECKPOINT_STREAM: part 3 missing/);
  assert.equal(control.send(FrameKind.HEARTBEAT, { sentAtMs: 1 }).sent, false, 'sending on a closed connection drops the frame');
  await assert.rejects(control.drained(), /E_PEER_ERROR/);
});

test('bulk sends report backpressure above the high-water mark and drained() resumes them; all frames arrive in order', async (t) => {
  const h = await harness(t);
  const serverP = h.nextConnection();
  const bulk = await connectBulk({ host, port: h.port, auth, limits, logger, writeBufferBytesHigh: 1024 * 1024 });
  const server = await serverP;
  const recordBytes = 8 + 4096;
  const pagesPerFrame = 1000;
  const frames = 40;
  const seen: number[] = [];
  const done = new Promise<void>((resolve) => {
    server.on('frame', (f) => {
      assert.equal(f.kind, FrameKind.CHECKPOINT_PAGES);
      assert.equal(f.payload.length, recordBytes * pagesPerFrame);
      seen.push(f.payload[0]!);
      if (seen.length === frames) resolve();
    });
  });
  let refusals = 0;
  for (let i = 0; i < frames; i++) {
    const payload = Buffer.alloc(recordBytes * pagesPerFrame, i);
    if (bulk.send(FrameKind.CHECKPOINT_PAGES, { part: i, pageCount: pagesPerFrame }, { payload }).backpressure) {
      refusals++;
      assert.ok(bulk.bufferedBytes >= 1024 * 1024);
      await bulk.drained();
      assert.ok(bulk.bufferedBytes < 1024 * 1024);
    }
  }
  await done;
  assert.ok(refusals > 0, 'the producer was told to wait at least once');
  assert.deepEqual(
    seen,
    Array.from({ length: frames }, (_, i) => i & 0xff),
  );
  bulk.close();
});
