// Proves that a session client resumes exactly across failovers, connection cuts mid-frame and lost
// uncommitted state (no output byte lost or delivered twice, every INCR applied once), that it handles
// each handshake status and timeout by moving on or failing with the right code, and that its timeout
// logic runs off an injected clock without real sockets.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { once } from 'node:events';
import { SessionClient, type DisconnectInfo, type Endpoint, type SessionSocket } from '@hbft/common/session/client.ts';
import { ByteQueue } from '@hbft/common/session/byteQueue.ts';
import { ManualClock } from '@hbft/common/session/clock.ts';
import { SessionErrorCode } from '@hbft/common/session/errors.ts';
import {
  encodeAckFrame,
  encodeDataFrame,
  encodeServerHandshake,
  HandshakeStatus,
  SessionDecoder,
  type SessionMessage,
} from '@hbft/common/session/protocol.ts';
import { RespError } from '@hbft/common/session/resp.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';
import { FakeCluster } from './fakeServer.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function cluster(options: Parameters<typeof FakeCluster.start>[0] = {}): Promise<FakeCluster> {
  const started = await FakeCluster.start(options);
  cleanups.push(() => started.close());
  return started;
}

function client(servers: string[], options: Partial<ConstructorParameters<typeof SessionClient>[0]> = {}): SessionClient {
  const created = new SessionClient({
    servers,
    responseTimeoutMs: 2000,
    backoffMsMin: 2,
    backoffMsMax: 20,
    reconnectDeadlineMs: 10_000,
    ...options,
  });
  cleanups.push(() => created.close());
  return created;
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function bulk(bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n')]);
}

test('pipelined requests get their replies in order', { timeout: 20_000 }, async () => {
  const nodes = await cluster({ epochMs: 2 });
  const session = client(nodes.addresses);
  const replies = await Promise.all(
    Array.from({ length: 200 }, (_, i) => (i % 2 ? session.request(['INCR', 'n']) : session.request(['ECHO', `m${i}`]))),
  );
  assert.deepEqual(
    replies,
    Array.from({ length: 200 }, (_, i) => (i % 2 ? (i + 1) / 2 : `m${i}`)),
  );
  assert.ok((await session.request(['FOO'])) instanceof RespError);
  assert.equal(session.generation, 1);
  assert.equal(session.inputCommitted, session.inputWritten);
});

test('the byte stream and INCR counts stay exact across failovers and mid-frame cuts', { timeout: 20_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const random = new SeededRandom(seed);
  const nodes = await cluster({
    nodes: 3,
    epochMs: 3,
    random: new SeededRandom(seed ^ 0x5eed),
    cutProbability: 0.03,
    outputPieceBytesMax: 9,
  });
  const session = client(nodes.addresses, { random: new SeededRandom(seed + 1) });
  const received: Uint8Array[] = [];
  session.on('data', (bytes) => received.push(new Uint8Array(bytes)));
  const failovers: number[] = [];
  session.on('failover', (info) => failovers.push(info.toGeneration));

  let running = true;
  const nemesis = (async () => {
    while (running) {
      await sleep(15 + random.below(30));
      if (!running) break;
      const to = (nodes.servingIndex + 1 + random.below(nodes.nodes.length - 1)) % nodes.nodes.length;
      await nodes.failover({ to, oldNode: random.chance(0.5) ? 'down' : 'notServing' });
    }
  })();

  const expected: Buffer[] = [];
  let increments = 0;
  for (let batch = 0; batch < 40; batch++) {
    const pending: Promise<unknown>[] = [];
    const wanted: unknown[] = [];
    for (let i = 0, n = 1 + random.below(20); i < n; i++) {
      if (random.chance(0.5)) {
        increments++;
        pending.push(session.request(['INCR', 'counter']));
        wanted.push(increments);
        expected.push(Buffer.from(`:${increments}\r\n`));
      } else {
        const payload = random.bytes(random.below(40));
        pending.push(session.request(['ECHO', payload]));
        wanted.push(Buffer.from(payload).toString('latin1'));
        expected.push(bulk(payload));
      }
    }
    assert.deepEqual(await Promise.all(pending), wanted, `seed ${seed}, batch ${batch}`);
  }
  running = false;
  await nemesis;
  assert.deepEqual(Buffer.concat(received), Buffer.concat(expected), `seed ${seed}: the output stream differs`);
  await waitFor('the last commit', () => nodes.committedValue('counter') === String(increments));
  assert.ok(nodes.stats.failovers >= 3, `seed ${seed}: only ${nodes.stats.failovers} failovers happened`);
  assert.equal(session.generation, nodes.generation);
  t.diagnostic(
    `${increments} INCRs, ${nodes.stats.failovers} failovers, ${nodes.stats.cuts} cuts, ${session.stats.inputResentBytes} bytes resent`,
  );
});

test('a node that is not serving or is down is passed over', { timeout: 20_000 }, async () => {
  const nodes = await cluster({ nodes: 3, epochMs: 2 });
  await nodes.failover({ to: 2, oldNode: 'down' });
  const session = client(nodes.addresses);
  const reasons: DisconnectInfo[] = [];
  session.on('disconnect', (info) => reasons.push(info));
  assert.equal(await session.request(['PING']), 'PONG');
  assert.equal(session.address, nodes.addresses[2]);
  assert.equal(session.generation, 2);
  assert.ok(
    reasons.some((info) => info.code === 'ECONNREFUSED'),
    'node 0 refused',
  );
  assert.ok(
    reasons.some((info) => /not serving/.test(info.reason)),
    'node 1 said not serving',
  );
});

test('a busy node is retried until a slot frees', { timeout: 20_000 }, async () => {
  const nodes = await cluster({ nodes: 1, epochMs: 2, maxConnections: 0 });
  const session = client(nodes.addresses);
  const reply = session.request(['SET', 'k', 'v']);
  await waitFor('a few busy answers', () => nodes.stats.busy >= 3);
  nodes.setMaxConnections(undefined);
  assert.equal(await reply, 'OK');
});

test('a server that lost the session ends it with a gap error', { timeout: 20_000 }, async () => {
  const nodes = await cluster({ epochMs: 2 });
  const session = client(nodes.addresses);
  assert.equal(await session.request(['INCR', 'x']), 1);
  nodes.forgetSessions();
  nodes.dropAllConnections();
  await assert.rejects(session.request(['INCR', 'x']), { code: SessionErrorCode.gap });
  assert.equal((await session.whenClosed())?.code, SessionErrorCode.gap);
  await assert.rejects(session.request(['PING']), { code: SessionErrorCode.gap });
});

test('a bad-request answer ends the session', { timeout: 20_000 }, async () => {
  const server = net.createServer((socket) =>
    socket.end(encodeServerHandshake({ status: HandshakeStatus.badRequest, generation: 1, inputAccepted: 0, outputStart: 0 })),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => server.close());
  const session = client([`127.0.0.1:${(server.address() as net.AddressInfo).port}`]);
  await assert.rejects(session.request(['PING']), { code: SessionErrorCode.rejected });
});

test('a node of an older generation is never used', { timeout: 20_000 }, async () => {
  const current = await cluster({ nodes: 1, epochMs: 2, generation: 5 });
  const deposed = await cluster({ nodes: 1, epochMs: 2, generation: 1 });
  const session = client([...current.addresses, ...deposed.addresses]);
  const attached: string[] = [];
  session.on('connect', (info) => attached.push(info.address));
  assert.equal(await session.request(['INCR', 'c']), 1);
  current.dropAllConnections();
  assert.equal(await session.request(['INCR', 'c']), 2);
  assert.ok(attached.length >= 2 && attached.every((address) => address === current.addresses[0]), `attached to ${attached}`);
  assert.equal(deposed.live.store.size, 0);
});

test('a silent node is abandoned after the response timeout, and a stalled commit is waited out', { timeout: 20_000 }, async () => {
  const blackHole = net.createServer(() => {});
  blackHole.listen(0, '127.0.0.1');
  await once(blackHole, 'listening');
  cleanups.push(() => blackHole.close());
  const nodes = await cluster({ nodes: 1, epochMs: 0 });
  const session = client([`127.0.0.1:${(blackHole.address() as net.AddressInfo).port}`, ...nodes.addresses], { responseTimeoutMs: 60 });
  const codes: (string | undefined)[] = [];
  session.on('disconnect', (info) => codes.push(info.code));
  const reply = session.request(['INCR', 'slow']);
  // Nothing commits: the client times out on the unacknowledged input and comes back to resume.
  await waitFor('timeouts on both nodes', () => codes.filter((code) => code === 'E_SESSION_TIMEOUT').length >= 3);
  nodes.commit();
  assert.equal(await reply, 1);
  nodes.commit();
  assert.equal(nodes.committedValue('slow'), '1');
});

test('close() rejects pending requests and later ones', { timeout: 20_000 }, async () => {
  const nodes = await cluster({ nodes: 1, epochMs: 0 });
  const session = client(nodes.addresses);
  const pending = session.request(['PING']);
  await session.close();
  await assert.rejects(pending, { code: SessionErrorCode.closed });
  await assert.rejects(session.request(['PING']), { code: SessionErrorCode.closed });
  assert.equal(await session.whenClosed(), null);
});

test('a failover that restores state older than what was acknowledged is detected', { timeout: 20_000 }, async () => {
  const nodes = await cluster({ epochMs: 0, restoreStaleSnapshot: true });
  const session = client(nodes.addresses);
  const first = session.request(['INCR', 'k']);
  await waitFor('input', () => nodes.live.store.get('k') === '1');
  nodes.commit();
  assert.equal(await first, 1);
  const second = session.request(['INCR', 'k']);
  await waitFor('input', () => nodes.live.store.get('k') === '2');
  nodes.commit();
  assert.equal(await second, 2);
  await waitFor('the input acknowledgement', () => session.inputCommitted === session.inputWritten);
  await nodes.failover();
  const error = await session.whenClosed();
  assert.ok(error?.code === SessionErrorCode.inputLost || error?.code === SessionErrorCode.gap, `closed with ${error?.code}`);
});

// --- without sockets: an injected connect function and a manual clock -------------------------

class ScriptedSocket extends EventEmitter implements SessionSocket {
  readonly written: SessionMessage[] = [];
  private readonly decoder = new SessionDecoder('server');
  destroyed = false;
  constructor(readonly endpoint: Endpoint) {
    super();
  }
  write(bytes: Uint8Array): boolean {
    const result = this.decoder.push(bytes);
    assert.equal(result.error, undefined);
    this.written.push(
      ...result.messages.map((m) => (m.kind === 'data' ? { kind: 'data' as const, payload: new Uint8Array(m.payload) } : m)),
    );
    return true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  reply(status: HandshakeStatus, generation: number, inputAccepted = 0, outputStart = 0): void {
    this.emit('data', encodeServerHandshake({ status, generation, inputAccepted, outputStart }));
  }
}

test('timeouts, pings and resends follow the injected clock', () => {
  const clock = new ManualClock();
  const sockets: ScriptedSocket[] = [];
  const session = new SessionClient({
    servers: ['10.0.0.1:7000', '10.0.0.2:7000'],
    connect: (endpoint) => {
      const socket = new ScriptedSocket(endpoint);
      sockets.push(socket);
      return socket;
    },
    clock,
    responseTimeoutMs: 1000,
    pingIntervalMs: 300,
    backoffMsMin: 10,
  });
  const disconnects: DisconnectInfo[] = [];
  session.on('disconnect', (info) => disconnects.push(info));
  session.write(Buffer.from('hello'));
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0]!.written[0]!.kind, 'clientHandshake');

  // The first node never answers the handshake.
  clock.advance(999);
  assert.equal(sockets.length, 1);
  clock.advance(300);
  assert.ok(sockets[0]!.destroyed);
  assert.equal(disconnects[0]!.code, 'E_SESSION_TIMEOUT');
  assert.equal(sockets.length, 2, 'the second address is tried at once');
  assert.equal(sockets[1]!.endpoint.host, '10.0.0.2');

  // The second serves: the written input goes out, and an ACK clears it.
  sockets[1]!.reply(HandshakeStatus.ok, 3);
  assert.deepEqual(
    sockets[1]!.written.map((m) => m.kind),
    ['clientHandshake', 'data'],
  );
  assert.equal(Buffer.from((sockets[1]!.written[1] as { payload: Uint8Array }).payload).toString(), 'hello');
  sockets[1]!.emit('data', encodeAckFrame(5));
  assert.equal(session.inputCommitted, 5);

  // Quiet: a PING after the ping interval, then given up when nothing comes back.
  clock.advance(400);
  assert.equal(sockets[1]!.written.at(-1)!.kind, 'ping');
  sockets[1]!.emit('data', encodeDataFrame(Buffer.from('+OK\r\n')));
  assert.equal(session.outputReceived, 5);
  assert.deepEqual(sockets[1]!.written.at(-1), { kind: 'ack', offset: 5 }, 'output is acknowledged');
  clock.advance(1300);
  assert.ok(sockets[1]!.destroyed);
  assert.match(disconnects[1]!.reason, /nothing heard/);

  // Resume on the first node with a stale and then a current generation.
  assert.equal(sockets.length, 3);
  sockets[2]!.reply(HandshakeStatus.ok, 2);
  assert.ok(sockets[2]!.destroyed, 'generation 2 < 3 is a deposed primary');
  clock.advance(50);
  const resumed = sockets.at(-1)!;
  assert.deepEqual(resumed.written[0], { kind: 'clientHandshake', version: 1, sessionId: session.sessionId, outputReceived: 5, flags: 0 });
  const failovers: unknown[] = [];
  session.on('failover', (info) => failovers.push(info));
  resumed.reply(HandshakeStatus.ok, 4, 5, 5);
  assert.equal(session.generation, 4);
  assert.equal(failovers.length, 1);

  // An ACK beyond what was sent is a protocol violation: the connection is dropped.
  resumed.emit('data', encodeAckFrame(99));
  assert.ok(resumed.destroyed);
  assert.equal(disconnects.at(-1)!.code, 'E_SESSION_ACK_RANGE');

  // A node that commits the input and answers PINGs but never releases the reply is left too.
  clock.advance(50);
  const silent = sockets.at(-1)!;
  silent.reply(HandshakeStatus.ok, 4, 5, 5);
  const reply = session.request(['GET', 'k']);
  const sent = silent.written.filter((m) => m.kind === 'data').reduce((sum, m) => sum + (m as { payload: Uint8Array }).payload.length, 0);
  silent.emit('data', encodeAckFrame(5 + sent));
  for (let i = 0; i < 6; i++) {
    clock.advance(200);
    if (silent.written.at(-1)!.kind === 'ping') silent.emit('data', Buffer.from([4, 0, 0, 0, 0]));
  }
  assert.ok(silent.destroyed);
  assert.match(disconnects.at(-1)!.reason, /no reply/);
  void session.close();
  return assert.rejects(reply, { code: SessionErrorCode.closed });
});

test('the resend buffer drops acknowledged bytes and replays the rest in bounded pieces', () => {
  const queue = new ByteQueue(0);
  queue.append(Buffer.from('abcdef'));
  queue.append(Buffer.from('gh'));
  queue.append(Buffer.from('ijklmnop'));
  queue.dropBefore(4);
  assert.equal(queue.startOffset, 4);
  assert.equal(queue.byteLength, 12);
  const pieces = queue.slicesFrom(5, 3);
  assert.ok(pieces.every((piece) => piece.length <= 3));
  assert.equal(Buffer.concat(pieces).toString(), 'fghijklmnop');
  queue.dropBefore(16);
  assert.equal(queue.byteLength, 0);
  assert.deepEqual(queue.slicesFrom(16, 3), []);
  assert.throws(() => queue.slicesFrom(3, 3), /outside/);
});
