// Proves how replication behaves on a bad link between real primary and backup processes (the
// link runs through the chaos proxy): with 50 ± 10 ms latency there is no false failover, output
// latency grows with the round trip and nothing is lost; a partition longer than the failover
// timeout makes the backup take over while the old primary releases nothing uncommitted and stops;
// at 1 Mbit/s the primary stalls its guest and neither daemon's memory grows without bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { ProxyRegistry } from '@hbft/common/chaos/registry.ts';
import { runLoad } from '@hbft/common/session/load.ts';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { encodeCommand } from '@hbft/common/session/resp.ts';
import { incrRoundTrips } from '@hbft/common/session/roundTrips.ts';
import { Cluster } from '../helpers/cluster.ts';
import { testSeed } from '../helpers/seed.ts';
import { median } from '@hbft/common/stats.ts';

const SOAK = Boolean(process.env.HBFT_SOAK);

async function throughProxy(options: ConstructorParameters<typeof Object>[0] = {}) {
  const registry = new ProxyRegistry({ logger: pino({ level: 'silent' }) });
  const cluster = await Cluster.start({
    ...options,
    replicationVia: async (port) => {
      const proxy = await registry.create({
        name: 'repl',
        listen: { host: '127.0.0.1', port: 0 },
        upstream: { host: '127.0.0.1', port },
        enabled: true,
        partition: 'cut',
      });
      return proxy.listen.port;
    },
  });
  return { registry, cluster };
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

test('50 ± 10 ms of latency: no false failover, output latency grows by the round trip, nothing lost', { timeout: 120_000 }, async (t) => {
  const { registry, cluster } = await throughProxy();
  try {
    await cluster.waitProtected();
    const before = median(await incrRoundTrips(cluster.ports.primaryServe, { count: 60, key: 'chaos:latency' }));
    for (const stream of ['upstream', 'downstream']) {
      await registry.addToxic('repl', { type: 'latency', stream, attributes: { latency: 50, jitter: 10 } });
    }
    const load = runLoad({
      servers: cluster.servers,
      clients: 3,
      durationMs: SOAK ? 20_000 : 6_000,
      keys: 6,
      seed: testSeed(),
      keyPrefix: 'lat',
      responseTimeoutMs: 3_000,
    });
    load.catch(() => {}); // awaited below; if the test fails first, the load ends with the cluster
    await new Promise((resolve) => setTimeout(resolve, 500));
    const during = median(await incrRoundTrips(cluster.ports.primaryServe, { count: 40, key: 'chaos:latency' }));
    const { verdict } = await load;
    t.diagnostic(`INCR round trip: ${before.toFixed(1)} ms before, ${during.toFixed(1)} ms with 50 ± 10 ms each way`);
    assert.ok(during >= before + 80, `output latency grows with the 100 ms round trip (${before.toFixed(1)} → ${during.toFixed(1)} ms)`);
    assert.ok(during <= before + 100 + 20 + 150, `and not much more (epoch, queueing): ${during.toFixed(1)} ms`);
    assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${cluster.logs()}`);
    assert.equal(verdict.failovers.length, 0, 'no failover');
    const backup = await cluster.readiness(cluster.ports.backupHttp);
    assert.equal(backup.role, 'backup', 'the backup did not take over');
    assert.equal(backup.generation, 1);
  } finally {
    await cluster.stop();
    await registry.close();
  }
});

test('a partition longer than the failover timeout: one node serves, the old primary releases nothing uncommitted', {
  timeout: 120_000,
}, async (t) => {
  const { registry, cluster } = await throughProxy();
  try {
    await cluster.waitProtected();
    const seed = testSeed();
    t.diagnostic(`seed ${seed}`);
    const load = runLoad({
      servers: cluster.servers,
      clients: 4,
      durationMs: 8_000,
      keys: 6,
      seed,
      keyPrefix: 'part',
      responseTimeoutMs: 1_500,
    });
    load.catch(() => {}); // awaited below; if the test fails first, the load ends with the cluster
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await registry.update('repl', { enabled: false, partition: 'cut' });
    // A plain client of the old primary during the partition: its request must not be answered,
    // because no backup can commit the state that would produce the answer.
    const probe = connect(cluster.ports.primaryServe, '127.0.0.1');
    await once(probe, 'connect');
    let answered = 0;
    probe.on('data', (chunk: Buffer) => (answered += chunk.length));
    probe.on('error', () => {});
    probe.write(encodeCommand(['INCR', 'part:probe']));
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.equal(answered, 0, 'the cut-off primary released no output');
    await registry.update('repl', { enabled: true });
    const exitCode = await Promise.race([cluster.primary.exited, new Promise((resolve) => setTimeout(() => resolve('running'), 10_000))]);
    assert.equal(exitCode, 3, 'after the heal the old primary learns it was deposed and exits');
    probe.destroy();
    const { verdict } = await load;
    assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${cluster.logs()}`);
    assert.equal(verdict.stats.unknown, 0);
    assert.ok(
      verdict.failovers.some((gap) => gap.toGeneration === 2),
      'the clients ended on the new primary',
    );
    const backup = await cluster.readiness(cluster.ports.backupHttp);
    assert.equal(backup.role, 'primary');
    assert.equal(backup.generation, 2);
  } finally {
    await cluster.stop();
    await registry.close();
  }
});

test("1 Mbit/s: the primary stalls its guest and both daemons' memory stays bounded", { timeout: 120_000 }, async (t) => {
  const { registry, cluster } = await throughProxy({ guest: 'web', memory: '64MiB', primaryArgs: ['--args', 'mb=24 rounds=100000000'] });
  try {
    await cluster.waitProtected(60_000);
    const instructionsRate = async (ms: number) => {
      const before = await cluster.metric('hbft_guest_instructions_total');
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ((await cluster.metric('hbft_guest_instructions_total')) - before) / ms / 1000;
    };
    const fast = await instructionsRate(1_500);
    for (const stream of ['upstream', 'downstream'])
      await registry.addToxic('repl', { type: 'bandwidth', stream, attributes: { rate: 125 } });
    const rss: { primary: number; backup: number }[] = [];
    let inFlightMax = 0;
    const sampler = setInterval(() => {
      rss.push({ primary: rssBytes(cluster.primary.process.pid!), backup: rssBytes(cluster.backup.process.pid!) });
      void cluster.readiness(cluster.ports.primaryHttp).then((r) => (inFlightMax = Math.max(inFlightMax, Number(r.checkpointsInFlight))));
    }, 250);
    const slow = await instructionsRate(SOAK ? 20_000 : 6_000);
    clearInterval(sampler);
    const stalled = await cluster.metric('hbft_stall_seconds_total');
    const rssMax = { primary: Math.max(...rss.map((r) => r.primary)), backup: Math.max(...rss.map((r) => r.backup)) };
    const firstHalf = rss.slice(0, rss.length >> 1);
    const growth = rssMax.primary - Math.max(...firstHalf.map((r) => r.primary));
    t.diagnostic(
      `guest ${fast.toFixed(0)} → ${slow.toFixed(1)} MIPS; stalled ${stalled.toFixed(1)} s; RSS max primary ${(rssMax.primary / 2 ** 20).toFixed(0)} MiB, backup ${(rssMax.backup / 2 ** 20).toFixed(0)} MiB`,
    );
    assert.ok(slow < fast / 4, `the guest was slowed (${fast.toFixed(0)} → ${slow.toFixed(1)} MIPS)`);
    assert.ok(stalled > 1, `the guest spent time stalled at epoch boundaries (${stalled.toFixed(2)} s)`);
    assert.ok(inFlightMax <= 3, `checkpoints in flight stay within the bound (${inFlightMax})`);
    // Guest RAM (64 MiB) + staging (64 MiB) + runtime: far below this, and not still growing.
    assert.ok(rssMax.primary < 600 * 2 ** 20, `primary RSS bounded (${(rssMax.primary / 2 ** 20).toFixed(0)} MiB)`);
    assert.ok(rssMax.backup < 600 * 2 ** 20, `backup RSS bounded (${(rssMax.backup / 2 ** 20).toFixed(0)} MiB)`);
    assert.ok(growth < 64 * 2 ** 20, `primary RSS is not climbing in the second half (${(growth / 2 ** 20).toFixed(1)} MiB)`);
    const backup = await cluster.readiness(cluster.ports.backupHttp);
    assert.equal(backup.role, 'backup', 'a slow link is not a dead primary');
  } finally {
    await cluster.stop();
    await registry.close();
  }
});
