// Proves that `hbft chaos proxy` serves the API and shuts down cleanly on SIGTERM (ports freed), and
// that each client subcommand changes the running proxy as asked and says so in one line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { main } from '@hbft/cli';
import { ChaosClient } from '@hbft/common/chaos/client.ts';

const hbft = fileURLToPath(new URL('../../packages/cli/bin/hbft.js', import.meta.url));

let child: ChildProcess;
let childOutput = '';
let apiPort = 0;
let upstream: net.Server;

before(async () => {
  upstream = net.createServer((socket) => socket.pipe(socket));
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const upstreamPort = (upstream.address() as net.AddressInfo).port;
  child = spawn(
    process.execPath,
    [hbft, 'chaos', 'proxy', '--api', '127.0.0.1:0', '--proxy', `repl=127.0.0.1:0>127.0.0.1:${upstreamPort}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (bytes: Buffer) => (childOutput += bytes.toString()));
  child.stderr!.on('data', (bytes: Buffer) => (childOutput += bytes.toString()));
  const deadline = Date.now() + 10_000;
  while (!/API on [\d.]+:(\d+)/.test(childOutput)) {
    if (Date.now() > deadline || child.exitCode !== null) assert.fail(`the proxy did not start:\n${childOutput}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  apiPort = Number(/API on [\d.]+:(\d+)/.exec(childOutput)![1]);
});

after(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
  upstream.close();
});

/** Runs `hbft ARGS...` in this process; returns its standard output, standard error and exit code. */
async function hbftRun(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const writeOut = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  // Only strings are captured: the test runner's own reports (buffers) must still get through.
  process.stdout.write = ((chunk: unknown, ...rest: never[]) =>
    typeof chunk === 'string' ? ((out += chunk), true) : writeOut(chunk as Buffer, ...rest)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: never[]) =>
    typeof chunk === 'string' ? ((err += chunk), true) : writeErr(chunk as Buffer, ...rest)) as typeof process.stderr.write;
  try {
    await main(args);
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { out, err, code };
}

test('client subcommands change the running proxy and print one line each', async () => {
  const api = `127.0.0.1:${apiPort}`;
  const client = new ChaosClient({ host: '127.0.0.1', port: apiPort });

  const latency = await hbftRun('chaos', 'latency', '--api', api, '--proxy', 'repl', '50', '10');
  assert.equal(latency.code, 0, latency.err);
  assert.equal(latency.out, 'repl: latency 50 ms ± 10 ms on upstream and downstream (round trips +100 ms ± 20 ms)\n');
  const toxics = await client.listToxics('repl');
  assert.deepEqual(
    toxics.map((toxic) => [toxic.name, toxic.attributes.latency, toxic.attributes.jitter]),
    [
      ['latency_upstream', 50, 10],
      ['latency_downstream', 50, 10],
    ],
  );

  // Setting latency again replaces it (jitter back to 0) instead of adding a second toxic.
  await hbftRun('chaos', 'latency', '--api', api, '20');
  assert.deepEqual(
    (await client.listToxics('repl')).map((toxic) => toxic.attributes),
    [
      { latency: 20, jitter: 0 },
      { latency: 20, jitter: 0 },
    ],
  );

  const bandwidth = await hbftRun('chaos', 'bandwidth', '--api', api, '--stream', 'downstream', '1mbit');
  assert.equal(bandwidth.out, 'repl: bandwidth 125 KB/s (1 Mbit/s) on downstream\n');

  const loss = await hbftRun('chaos', 'loss', '--api', api, '5');
  assert.match(loss.out, /^repl: loss 5% of segments on upstream and downstream; each loss stalls the stream 200 ms\n$/);
  assert.equal((await client.getToxic('repl', 'loss_upstream')).attributes.probability, 0.05);
  const resets = await hbftRun('chaos', 'loss', '--api', api, '5', '--mode', 'reset');
  assert.equal(resets.code, 0, resets.err);
  const afterReset = await client.listToxics('repl');
  assert.ok(!afterReset.some((toxic) => toxic.type === 'loss'), 'switching mode removes the stall toxics');
  assert.equal(afterReset.find((toxic) => toxic.name === 'reset_peer_upstream')!.toxicity, 0.05);

  const partition = await hbftRun('chaos', 'partition', '--api', api, '--mode', 'stall');
  assert.match(partition.out, /^repl: partitioned \(stall: /);
  assert.equal((await client.getProxy('repl')).partition, 'stall');

  const status = await hbftRun('chaos', 'status', '--api', api);
  assert.match(status.out, /^repl: 127\.0\.0\.1:\d+ > 127\.0\.0\.1:\d+, partitioned \(stall\), 0 connections, .*latency_upstream/);
  assert.equal(status.out.split('\n').length, 2, 'one line per proxy');

  const heal = await hbftRun('chaos', 'heal', '--api', api);
  assert.match(heal.out, /^repl: healed/);
  assert.equal((await client.getProxy('repl')).enabled, true);

  const clear = await hbftRun('chaos', 'clear', '--api', api, '--proxy', 'repl');
  assert.match(clear.out, /^repl: \d+ toxics removed, enabled\n$/);
  assert.deepEqual(await client.listToxics('repl'), []);
});

test('bad arguments exit 2 with a message naming them; an unknown proxy or API exits 1', async () => {
  const api = `127.0.0.1:${apiPort}`;
  const rate = await hbftRun('chaos', 'bandwidth', '--api', api, 'fast');
  assert.equal(rate.code, 2);
  assert.match(rate.err, /RATE: cannot read "fast"/);
  const attribute = await hbftRun('chaos', 'toxic', '--api', api, 'slicer', 'average_size=0');
  assert.equal(attribute.code, 2);
  assert.match(attribute.err, /attributes\.average_size/);
  const proxy = await hbftRun('chaos', 'heal', '--api', api, '--proxy', 'ghost');
  assert.equal(proxy.code, 1);
  assert.match(proxy.err, /no proxy named "ghost"/);
  const unreachable = await hbftRun('chaos', 'status', '--api', '127.0.0.1:1');
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.err, /cannot reach the chaos API/);
});

test('SIGTERM stops the proxy: exit 0, API and proxy ports free', async () => {
  const client = new ChaosClient({ host: '127.0.0.1', port: apiPort });
  const proxyPort = Number((await client.getProxy('repl')).listen.split(':').at(-1));
  const connection = net.connect(proxyPort, '127.0.0.1');
  await once(connection, 'connect');
  connection.on('error', () => undefined);
  const closed = once(connection, 'close');

  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, childOutput);
  assert.match(childOutput, /chaos: stopped on SIGTERM/);
  await closed;
  for (const port of [apiPort, proxyPort]) {
    const server = net.createServer();
    server.listen(port, '127.0.0.1');
    await once(server, 'listening'); // throws EADDRINUSE if the port were still held
    server.close();
  }
});
