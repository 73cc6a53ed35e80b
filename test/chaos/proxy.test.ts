// Proves, with real sockets on loopback, that the chaos proxy delays and throttles by the amounts asked
// (this file alone asserts on measured timings, within ±20 %, because accuracy is its purpose), keeps
// memory bounded behind a slow link, stops every byte while partitioned in both modes and delivers
// again once healed, and answers bad API input with 400 naming the field instead of failing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ChaosApiServer } from '@hbft/common/chaos/api.ts';
import { ChaosClient, type ToxicInput } from '@hbft/common/chaos/client.ts';
import { ProxyRegistry } from '@hbft/common/chaos/registry.ts';
import { seededRandom } from '@hbft/common/chaos/random.ts';
import { silentLogger } from '@hbft/common/log.ts';
import { median } from '@hbft/common/stats.ts';

/** An upstream that echoes, and counts what it received and how many connections reached it. */
interface Upstream {
  port: number;
  receivedBytes: number;
  connections: number;
  server: net.Server;
}

let registry: ProxyRegistry;
let api: ChaosApiServer;
let client: ChaosClient;
const upstreams: Upstream[] = [];

before(async () => {
  registry = new ProxyRegistry({ logger: silentLogger() });
  api = await ChaosApiServer.start({ registry, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger() });
  client = new ChaosClient(api.address);
});

after(async () => {
  await registry.close();
  await api.close();
  for (const upstream of upstreams) upstream.server.close();
});

async function startUpstream(mode: 'echo' | 'sink'): Promise<Upstream> {
  const upstream: Upstream = { port: 0, receivedBytes: 0, connections: 0, server: net.createServer() };
  upstream.server.on('connection', (socket) => {
    upstream.connections++;
    socket.on('data', (bytes: Buffer) => {
      upstream.receivedBytes += bytes.length;
      if (mode === 'echo') socket.write(bytes);
    });
    socket.on('error', () => undefined);
  });
  upstream.server.listen(0, '127.0.0.1');
  await once(upstream.server, 'listening');
  upstream.port = (upstream.server.address() as net.AddressInfo).port;
  upstreams.push(upstream);
  return upstream;
}

/** Creates a proxy through the API in front of a fresh upstream; returns the port to connect to. */
async function proxyTo(name: string, mode: 'echo' | 'sink'): Promise<{ port: number; upstream: Upstream }> {
  const upstream = await startUpstream(mode);
  const proxy = await client.createProxy({ name, listen: '127.0.0.1:0', upstream: `127.0.0.1:${upstream.port}` });
  return { port: Number(proxy.listen.split(':').at(-1)), upstream };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await once(socket, 'connect');
  return socket;
}

/** Collects what a socket receives. */
function collect(socket: net.Socket): { text: () => string; bytes: () => number } {
  const chunks: Buffer[] = [];
  socket.on('data', (bytes: Buffer) => chunks.push(bytes));
  return { text: () => Buffer.concat(chunks).toString(), bytes: () => chunks.reduce((sum, chunk) => sum + chunk.length, 0) };
}

/** Resolves once `predicate` holds (polling), or fails after `timeoutMs`: a guard against hangs, not a measurement. */
async function until(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function roundTripMs(socket: net.Socket): Promise<number> {
  const startMs = performance.now();
  socket.write('p');
  await once(socket, 'data');
  return performance.now() - startMs;
}

test('50 ms of latency each way makes round trips 100 ms slower (median within ±20 %)', async (t) => {
  const { port } = await proxyTo('latency', 'echo');
  const { port: basePort } = await proxyTo('latency-base', 'echo');
  for (const stream of ['upstream', 'downstream'] as const) {
    await client.addToxic('latency', { type: 'latency', stream, attributes: { latency: 50 } });
  }
  const socket = await connect(port);
  const base = await connect(basePort);
  // Round trips alternate between the delayed proxy and an identical one without toxics, so that a
  // busy machine slows both alike and the difference of the medians is what the toxic added.
  const samplesMs: number[] = [];
  const baselineMs: number[] = [];
  for (let index = 0; index < 8; index++) {
    samplesMs.push(await roundTripMs(socket));
    baselineMs.push(await roundTripMs(base));
  }
  const addedMs = median(samplesMs) - median(baselineMs);
  t.diagnostic(
    `latency: asked +100 ms per round trip, measured median +${addedMs.toFixed(1)} ms (${samplesMs.map((v) => v.toFixed(1)).join(', ')}; without toxics ${median(baselineMs).toFixed(1)} ms)`,
  );
  assert.ok(addedMs >= 80 && addedMs <= 120, `median round trip grew by ${addedMs.toFixed(1)} ms`);
  // The proxy never delivers early: noise can only add delay.
  assert.ok(Math.min(...samplesMs) >= 100, `fastest round trip ${Math.min(...samplesMs).toFixed(1)} ms`);
  socket.destroy();
  base.destroy();
});

test('1 Mbit/s bandwidth: a fast sender gets 125 KB/s (±20 %) and the proxy holds a bounded number of bytes', async (t) => {
  const { port, upstream } = await proxyTo('bandwidth', 'sink');
  await client.addToxic('bandwidth', { type: 'bandwidth', stream: 'upstream', attributes: { rate: 125 } });
  const proxy = registry.get('bandwidth');
  const socket = await connect(port);

  // The sender always has data ready: it writes whenever its own socket will take more.
  let sending = true;
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sentBytes = 0;
  const send = () => {
    while (sending) {
      sentBytes += chunk.length;
      if (!socket.write(chunk)) break;
    }
  };
  socket.on('drain', send);
  send();

  const samples: { atMs: number; bytes: number }[] = [];
  let bufferedBytesMax = 0;
  const startMs = performance.now();
  while (performance.now() - startMs < 1100) {
    await sleep(10);
    bufferedBytesMax = Math.max(bufferedBytesMax, proxy.stats().bufferedBytes);
    samples.push({ atMs: performance.now(), bytes: upstream.receivedBytes });
  }
  sending = false;
  socket.destroy();

  // Measure from the first sample after 200 ms (when the link is surely busy) to the last one.
  const first = samples.find((sample) => sample.atMs - startMs >= 200)!;
  const last = samples.at(-1)!;
  const rateKBps = (last.bytes - first.bytes) / (last.atMs - first.atMs);
  t.diagnostic(`bandwidth: asked 125 KB/s, measured ${rateKBps.toFixed(1)} KB/s; proxy held at most ${bufferedBytesMax} bytes`);
  assert.ok(rateKBps >= 100 && rateKBps <= 150, `measured ${rateKBps.toFixed(1)} KB/s`);
  // The bound: the bandwidth queue (64 KiB), one socket read past it (64 KiB), and what the paused
  // client socket had already read (up to 64 KiB). The sender offered far more than that.
  assert.ok(bufferedBytesMax < 256 * 1024, `proxy held ${bufferedBytesMax} bytes`);
  assert.ok(sentBytes > 1024 * 1024, `the sender offered ${sentBytes} bytes`);
});

test('partition cut closes open connections, refuses new ones, and heal restores traffic', async () => {
  const { port, upstream } = await proxyTo('cut', 'echo');
  const socket = await connect(port);
  const received = collect(socket);
  socket.write('hello');
  await until(() => received.text() === 'hello', 'the echo before the partition');

  await client.updateProxy('cut', { enabled: false });
  await once(socket, 'close');
  await assert.rejects(connect(port), (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED');
  const bytesAtCut = upstream.receivedBytes;

  await client.updateProxy('cut', { enabled: true });
  const again = await connect(port);
  const receivedAgain = collect(again);
  again.write('back');
  await until(() => receivedAgain.text() === 'back', 'the echo after heal');
  assert.equal(upstream.receivedBytes, bytesAtCut + 4, 'nothing reached upstream while cut');
  again.destroy();
});

test('partition stall keeps connections open but passes no byte either way, holds new ones, and heal delivers everything in order', async () => {
  const { port, upstream } = await proxyTo('stall', 'echo');
  const socket = await connect(port);
  const received = collect(socket);
  socket.write('one ');
  await until(() => received.text() === 'one ', 'the echo before the partition');

  await client.updateProxy('stall', { enabled: false, partition: 'stall' });
  socket.write('two ');
  socket.write('three');
  const late = await connect(port); // the kernel completes the handshake; upstream must not see it
  const receivedLate = collect(late);
  late.write('late');
  await sleep(300);
  assert.equal(received.text(), 'one ', 'no byte came back while stalled');
  assert.equal(upstream.receivedBytes, 4, 'no byte reached upstream while stalled');
  assert.equal(upstream.connections, 1, 'the new connection was held, not passed on');
  assert.equal(socket.destroyed, false, 'the connection stayed open');

  await client.updateProxy('stall', { enabled: true });
  await until(() => received.text() === 'one two three', 'held bytes after heal');
  await until(() => receivedLate.text() === 'late', 'the held connection after heal');
  assert.equal(upstream.connections, 2);
  socket.destroy();
  late.destroy();
});

test('a timeout toxic stops traffic and POST /reset (clear) restores it without losing bytes', async () => {
  const { port } = await proxyTo('clear', 'echo');
  await client.addToxic('clear', { type: 'timeout', stream: 'upstream', attributes: { timeout: 0 } });
  const socket = await connect(port);
  const received = collect(socket);
  socket.write('held');
  await sleep(200);
  assert.equal(received.bytes(), 0, 'nothing passed while the toxic was active');
  await client.reset();
  await until(() => received.text() === 'held', 'the held bytes after reset');
  assert.deepEqual(await client.listToxics('clear'), []);
  socket.destroy();
});

test('reset_peer resets the connection; limit_data closes it after exactly `bytes` bytes', async () => {
  const { port } = await proxyTo('reset', 'echo');
  await client.addToxic('reset', { type: 'reset_peer', attributes: { timeout: 0 } });
  const socket = await connect(port);
  const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'ECONNRESET');
  await client.reset();

  await client.addToxic('reset', { type: 'limit_data', stream: 'downstream', attributes: { bytes: 6 } });
  const limited = await connect(port);
  const received = collect(limited);
  limited.write('0123456789');
  await once(limited, 'end');
  assert.equal(received.text(), '012345');
  limited.destroy();
});

test('bad API input gets a 4xx JSON error naming the field, and the server carries on', async () => {
  await proxyTo('api', 'echo');
  const base = `http://127.0.0.1:${api.address.port}`;
  const call = async (method: string, path: string, body?: string) => {
    const response = await fetch(`${base}${path}`, { method, body });
    return { status: response.status, json: (await response.json()) as { error: string; field?: string } };
  };
  const cases: [string, string, string | undefined, number, string | undefined][] = [
    ['POST', '/proxies/api/toxics', '{"type":"latency","attributes":{"latency":-5}}', 400, 'attributes.latency'],
    ['POST', '/proxies/api/toxics', '{"type":"wormhole"}', 400, 'type'],
    ['POST', '/proxies/api/toxics', '{"type":"latency",', 400, 'body'],
    ['POST', '/proxies/api/toxics', '{"type":"bandwidth","attributes":{"rate":"fast"}}', 400, 'attributes.rate'],
    ['POST', '/proxies/api', '{"enabled":false,"partition":"melt"}', 400, 'partition'],
    ['POST', '/proxies', '{"name":"x","listen":"nowhere","upstream":"127.0.0.1:1"}', 400, 'listen'],
    ['POST', '/proxies', `{"name":"api","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}`, 409, 'name'],
    ['GET', '/proxies/ghost', undefined, 404, 'proxy'],
    ['POST', '/proxies/ghost/toxics', '{"type":"latency"}', 404, 'proxy'],
    ['DELETE', '/proxies/api/toxics/ghost', undefined, 404, 'toxic'],
    ['PUT', '/proxies/api', '{}', 405, undefined],
    ['GET', '/nothing', undefined, 404, undefined],
    ['POST', '/proxies', 'x'.repeat(100_000), 413, 'body'],
  ];
  for (const [method, path, body, status, field] of cases) {
    const answer = await call(method, path, body);
    assert.equal(answer.status, status, `${method} ${path} ${body?.slice(0, 40)}: ${answer.json.error}`);
    assert.equal(answer.json.field, field, `${method} ${path}: ${answer.json.error}`);
    if (field) assert.match(answer.json.error, new RegExp(`^${field.replace('.', '\\.')}|${field}`));
  }
  const taken = registry.get('api').listen.port;
  const inUse = await call('POST', '/proxies', `{"name":"dup","listen":"127.0.0.1:${taken}","upstream":"127.0.0.1:1"}`);
  assert.equal(inUse.status, 409);
  assert.equal(inUse.json.field, 'listen');
  assert.deepEqual(await client.version().then((answer) => typeof answer.version), 'string');
});

test('random toxics and partitions during traffic never corrupt or reorder bytes, and reset restores exact delivery', async (t) => {
  const { port } = await proxyTo('nemesis', 'echo');
  const seed = Math.floor(Math.random() * 2 ** 31);
  t.diagnostic(`nemesis seed ${seed}`);
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const toxics: ToxicInput[] = [
    { type: 'latency', attributes: { latency: 5, jitter: 5 } },
    { type: 'bandwidth', attributes: { rate: 500 } },
    { type: 'slicer', attributes: { average_size: 50, size_variation: 20, delay: 100 } },
    { type: 'loss', attributes: { probability: 0.05, retransmit: 20 } },
    { type: 'slow_close', attributes: { delay: 10 } },
    { type: 'timeout', attributes: { timeout: 50 } },
    { type: 'reset_peer', attributes: { timeout: 30 }, toxicity: 0.3 },
    { type: 'limit_data', attributes: { bytes: 5000 }, toxicity: 0.3 },
  ];
  /** One echo conversation: the reply must be the request or, if the link broke, a prefix of it. */
  const converse = async (): Promise<'exact' | 'cut short' | 'corrupt'> => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const payload = Buffer.alloc(1 + Math.floor(random() * 30_000));
    for (let index = 0; index < payload.length; index++) payload[index] = (index * 7 + 3) & 255;
    const chunks: Buffer[] = [];
    socket.on('data', (bytes: Buffer) => chunks.push(bytes));
    socket.on('connect', () => socket.end(payload));
    await new Promise((resolve) => {
      socket.on('close', resolve);
      setTimeout(resolve, 1000); // a stalled conversation is given up, which counts as cut short
    });
    socket.destroy();
    const reply = Buffer.concat(chunks);
    if (reply.equals(payload)) return 'exact';
    return payload.subarray(0, reply.length).equals(reply) ? 'cut short' : 'corrupt';
  };

  const outcomes: string[] = [];
  const endMs = performance.now() + 800;
  const nemesis = (async () => {
    while (performance.now() < endMs) {
      const choice = random();
      if (choice < 0.45) {
        const toxic = pick(toxics);
        const stream = pick(['upstream', 'downstream'] as const);
        await client.addToxic('nemesis', { ...toxic, name: `${toxic.type}_${stream}`, stream }).catch(() => undefined);
      } else if (choice < 0.65) {
        const present = await client.listToxics('nemesis');
        if (present.length) await client.deleteToxic('nemesis', pick(present).name);
      } else if (choice < 0.75) {
        await client.updateProxy('nemesis', { enabled: false, partition: pick(['cut', 'stall'] as const) });
      } else if (choice < 0.9) {
        await client.updateProxy('nemesis', { enabled: true });
      } else {
        await client.reset();
      }
      await sleep(random() * 40);
    }
  })();
  const talkers = Array.from({ length: 4 }, async () => {
    while (performance.now() < endMs) outcomes.push(await converse());
  });
  await Promise.all([nemesis, ...talkers]);
  assert.ok(!outcomes.includes('corrupt'), 'a reply was not a prefix of its request');

  await client.reset();
  const clean = await Promise.all(Array.from({ length: 4 }, converse));
  assert.deepEqual(clean, ['exact', 'exact', 'exact', 'exact']);
  t.diagnostic(`nemesis: ${outcomes.length} conversations, ${outcomes.filter((o) => o === 'exact').length} exact, none corrupt`);
});
