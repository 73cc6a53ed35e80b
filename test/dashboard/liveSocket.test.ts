// Proves the dashboard's server side over real sockets: the page and its assets are served, /live
// greets a client with the feed's history and then streams every sample and event to each client,
// a client that stops reading is dropped at a bound instead of buffered without limit, clients may
// only ping, and unknown paths are 404.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { silentLogger } from '@hbft/common/log.ts';
import { StatusServer } from '@hbft/common/http/statusServer.ts';
import { LiveSocketServer } from '@hbft/common/http/dashboard/liveSocket.ts';
import type { LiveMessage } from '@hbft/common/http/dashboard/liveMessages.ts';
import { FakeFeed, fakeSample } from './fakeFeed.ts';

/** A ws client that keeps every message and can wait for one that matches. */
class Client {
  readonly messages: LiveMessage[] = [];
  private waiters: { accept: (message: LiveMessage) => boolean; resolve: (message: LiveMessage) => void }[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as LiveMessage;
      this.messages.push(message);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.accept(message)) return true;
        waiter.resolve(message);
        return false;
      });
    });
  }

  static async open(url: string): Promise<Client> {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    const client = new Client(socket);
    await once(socket, 'open');
    return client;
  }

  next(accept: (message: LiveMessage) => boolean): Promise<LiveMessage> {
    const found = this.messages.find(accept);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ accept, resolve }));
  }

  samples(): number[] {
    return this.messages.flatMap((message) => (message.type === 'sample' ? [message.sample.epoch!] : []));
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close();
    await once(this.socket, 'close');
  }
}

async function startStatusServer(feed: FakeFeed, peerHttp?: string): Promise<{ server: StatusServer; base: string }> {
  const server = new StatusServer({
    host: '127.0.0.1',
    port: 0,
    registry: new Registry(),
    readiness: () => ({ ready: true, role: 'primary', generation: 1, peerConnected: true, replicationLagMs: 20 }),
    logger: silentLogger(),
    feed,
    peerHttp,
  });
  const address = await server.listen();
  return { server, base: `127.0.0.1:${address.port}` };
}

test('the page, its assets, /peer and CORS on JSON routes', async () => {
  const { server, base } = await startStatusServer(new FakeFeed(), '127.0.0.1:9101');
  try {
    for (const path of ['/', '/dashboard', '/dashboard/']) {
      const response = await fetch(`http://${base}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type')!, /^text\/html/);
      assert.match(await response.text(), /<script type="module" src="\/dashboard\/assets\/dashboard.js">/);
    }
    for (const [asset, type] of [
      ['dashboard.js', /javascript/],
      ['charts.js', /javascript/],
      ['liveConnection.js', /javascript/],
      ['format.js', /javascript/],
      ['dashboard.css', /css/],
    ] as const) {
      const response = await fetch(`http://${base}/dashboard/assets/${asset}`);
      assert.equal(response.status, 200, asset);
      assert.match(response.headers.get('content-type')!, type);
      assert.ok((await response.text()).length > 100);
    }
    const peer = await fetch(`http://${base}/peer`);
    assert.equal(peer.headers.get('access-control-allow-origin'), '*');
    assert.deepEqual(await peer.json(), { peer: '127.0.0.1:9101' });
    const ready = await fetch(`http://${base}/readyz`);
    assert.equal(ready.headers.get('access-control-allow-origin'), '*');
    for (const path of ['/nothing', '/dashboard/assets/../index.html', '/dashboard/assets/missing.js', '/livex']) {
      const response = await fetch(`http://${base}${path}`);
      assert.equal(response.status, 404, path);
      await response.text();
    }
  } finally {
    await server.close();
  }
  const { server: alone, base: aloneBase } = await startStatusServer(new FakeFeed());
  try {
    assert.deepEqual(await (await fetch(`http://${aloneBase}/peer`)).json(), { peer: null });
  } finally {
    await alone.close();
  }
});

test('/live sends the history, then streams samples and events to every client', async () => {
  const feed = new FakeFeed();
  feed.push(fakeSample(1));
  feed.push(fakeSample(2, { role: 'backup', mode: 'protecting' }));
  feed.event('protected', 'the guest is protected');
  const { server, base } = await startStatusServer(feed);
  const first = await Client.open(`ws://${base}/live`);
  try {
    const hello = await first.next((message) => message.type === 'hello');
    assert.equal(hello.type, 'hello');
    if (hello.type !== 'hello') return;
    assert.deepEqual(hello.history.samples, [fakeSample(1), fakeSample(2, { role: 'backup', mode: 'protecting' })]);
    assert.deepEqual(
      hello.history.events.map((event) => [event.kind, event.message]),
      [['protected', 'the guest is protected']],
    );
    assert.equal(typeof hello.serverTimeMs, 'number');

    feed.push(fakeSample(3));
    feed.event('failover', 'primary failed (heartbeat timeout); this node took over at generation 2');
    feed.push(fakeSample(4, { generation: 2 }));
    await first.next((message) => message.type === 'sample' && message.sample.epoch === 4);
    assert.deepEqual(
      first.messages.map((message) => message.type),
      ['hello', 'sample', 'event', 'sample'],
      'in the order they happened',
    );

    // A second client joins late: its hello already holds what the first saw streamed.
    const second = await Client.open(`ws://${base}/live`);
    try {
      const secondHello = await second.next((message) => message.type === 'hello');
      if (secondHello.type !== 'hello') return;
      assert.deepEqual(
        secondHello.history.samples.map((sample) => sample.epoch),
        [1, 2, 3, 4],
      );
      assert.deepEqual(
        secondHello.history.events.map((event) => event.kind),
        ['protected', 'failover'],
      );
      feed.push(fakeSample(5));
      await Promise.all([first, second].map((client) => client.next((message) => message.type === 'sample' && message.sample.epoch === 5)));
      assert.deepEqual(first.samples(), [3, 4, 5]);
      assert.deepEqual(second.samples(), [5]);
    } finally {
      await second.close();
    }
  } finally {
    await first.close();
    await server.close();
  }
});

test('clients may ping; any other message closes their socket', async () => {
  const feed = new FakeFeed();
  const { server, base } = await startStatusServer(feed);
  const client = await Client.open(`ws://${base}/live`);
  const talker = await Client.open(`ws://${base}/live`);
  try {
    client.socket.send('{"type":"ping"}');
    const pong = await client.next((message) => message.type === 'pong');
    assert.equal(pong.type, 'pong');

    const closed = once(talker.socket, 'close');
    talker.socket.send('{"type":"subscribe","to":"everything"}');
    const [code] = (await closed) as [number, Buffer];
    assert.equal(code, 1008, 'policy violation');

    // The server keeps serving the well-behaved client.
    feed.push(fakeSample(9));
    await client.next((message) => message.type === 'sample' && message.sample.epoch === 9);
  } finally {
    await client.close();
    await server.close();
  }
});

test('an upgrade on any path but /live is refused with 404', async () => {
  const { server, base } = await startStatusServer(new FakeFeed());
  try {
    for (const path of ['/', '/live/x', '/metrics', '/lives']) {
      const socket = new WebSocket(`ws://${base}${path}`);
      const [, response] = (await once(socket, 'unexpected-response')) as [unknown, { statusCode: number; resume(): void }];
      assert.equal(response.statusCode, 404, path);
      response.resume();
      socket.on('error', () => {}); // terminating a socket that never opened reports an error
      socket.terminate();
    }
  } finally {
    await server.close();
  }
});

test('closing the status server ends the dashboard sockets too', async () => {
  const { server, base } = await startStatusServer(new FakeFeed());
  const client = await Client.open(`ws://${base}/live`);
  const closed = once(client.socket, 'close');
  await server.close();
  await closed;
});

/** A WebSocket client made by hand that completes the handshake and then never reads again. */
async function stalledClient(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    'GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let head = '';
  while (!head.includes('\r\n\r\n')) head += ((await once(socket, 'data')) as [Buffer])[0].toString('latin1');
  assert.match(head, /^HTTP\/1\.1 101/);
  socket.pause();
  socket.on('error', () => {});
  return socket;
}

test('a client that stops reading is dropped at the buffer bound; the others get every sample', async () => {
  const bufferedBytesMax = 64 * 1024;
  const feed = new FakeFeed();
  const http = createServer((_request, response) => response.writeHead(404).end());
  const live = new LiveSocketServer(feed, { logger: silentLogger(), bufferedBytesMax });
  live.attach(http);
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const port = (http.address() as { port: number }).port;
  const fast = await Client.open(`ws://127.0.0.1:${port}/live`);
  const stalled = await stalledClient(port);
  try {
    await fast.next((message) => message.type === 'hello');
    assert.equal(live.clientCount, 2);
    // Far more than the kernel's socket buffers and the bound together (each sample is ~0.5 KiB),
    // fed in small batches so the fast client reads as it goes.
    const samplesMax = 100_000;
    let sent = 0;
    while (live.droppedClients === 0 && sent < samplesMax) {
      for (let i = 0; i < 100; i++) feed.push(fakeSample(++sent));
      feed.samples.length = 0; // the fake's history is not under test here
      await yieldToLoop();
    }
    assert.equal(live.droppedClients, 1, `the stalled client was dropped (after ${sent} samples)`);
    assert.equal(live.clientCount, 1, 'only the fast client is left');
    await fast.next((message) => message.type === 'sample' && message.sample.epoch === sent);
    const received = fast.samples();
    assert.equal(received.length, sent, 'the fast client lost nothing');
    assert.deepEqual(received.slice(-3), [sent - 2, sent - 1, sent]);
  } finally {
    stalled.destroy();
    await fast.close();
    await live.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  }
});
