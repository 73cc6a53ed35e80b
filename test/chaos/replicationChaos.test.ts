// Proves how replication behaves on a bad link between real primary and backup processes (the
// link runs through the chaos proxy). The kvnet guest on TAPs, with plain RESP clients of its own
// address (`hbft load`): with 50 ± 10 ms latency there is no false failover, output latency
// grows with the round trip and nothing is lost; a partition of the link, cut (its connections
// closed, which the backup takes for a crashed primary) or stalled (open and silent until the
// failover timeout), makes the backup take over and serve the clients, while the old primary writes not one frame to
// its TAP (it can commit nothing) and exits once the link is back. A compute workload with no
// clients: at 1 Mbit/s the primary stalls its guest and neither daemon's memory grows without bound.
// The loads' seeds are printed; HBFT_SEED replays them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { ProxyRegistry } from '@hbft/common/chaos/registry.ts';
import { Cluster, type ClusterOptions } from '../helpers/cluster.ts';
import { Lan } from '../helpers/lan.ts';
import { startKvnetPair } from '../helpers/kvnetPair.ts';
import { PlainLoad } from '../helpers/plainLoad.ts';
import { testSeed } from '../helpers/seed.ts';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { median } from '@hbft/common/stats.ts';

const SOAK = Boolean(process.env.HBFT_SOAK);

async function throughProxy(options: ClusterOptions = {}) {
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

test('50 ± 10 ms of latency: no false failover, output latency grows by the round trip, nothing lost', { timeout: 60_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const { lan, pair } = await startKvnetPair('chaoslat', 20);
  let load: PlainLoad | undefined;
  try {
    await pair.within(50_000, async () => {
      // Every reply is a frame the primary holds until the backup acknowledges the epoch that made
      // it, so the clients' latency is the epoch's rest plus the checkpoint's round trip. One load
      // runs throughout; its operations before the toxics and after them are compared.
      const started = await PlainLoad.start(lan, { seed, keyPrefix: `lat-${seed}`, clients: 2, keys: 6 });
      load = started;
      await sleep(1_500);
      const toxicsAtMs = Date.now();
      for (const stream of ['upstream', 'downstream'])
        await pair.registry.addToxic('to-b', { type: 'latency', stream, attributes: { latency: 50, jitter: 10 } });
      await sleep(SOAK ? 20_000 : 4_000);
      const { code, history, verdict, output } = await started.finish();
      assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${pair.logs()}`);
      assert.equal(code, 0, `hbft load's own verdict:\n${output}`);
      assert.ok(history.header, 'the history has its header');
      // History times are ms from the load's start; the toxics apply from `at` on (a little
      // margin for the ones already in flight).
      const at = toxicsAtMs - Date.parse(history.header.startedAt);
      const answered = history.operations.filter((operation) => operation.result === 'ok');
      const before = answered.filter((operation) => operation.end < at).map((operation) => operation.end - operation.start);
      const during = answered.filter((operation) => operation.start > at + 200).map((operation) => operation.end - operation.start);
      assert.ok(before.length > 10 && during.length > 10, `the load did work before (${before.length}) and during (${during.length})`);
      const [beforeMs, duringMs] = [median(before), median(during)];
      t.diagnostic(
        `plain RESP latency p50: ${beforeMs.toFixed(1)} ms before, ${duringMs.toFixed(1)} ms with 50 ± 10 ms each way ` +
          `(${before.length} and ${during.length} operations)`,
      );
      assert.ok(
        duringMs >= beforeMs + 80,
        `output latency grows with the 100 ms round trip (${beforeMs.toFixed(1)} → ${duringMs.toFixed(1)} ms)`,
      );
      assert.ok(duringMs <= beforeMs + 100 + 20 + 150, `and not much more (epoch, queueing): ${duringMs.toFixed(1)} ms`);
      assert.equal(pair.sites.a.runs.length + pair.sites.b.runs.length, 2, 'no daemon exited');
      const [a, b] = [await pair.readiness(pair.sites.a), await pair.readiness(pair.sites.b)];
      assert.deepEqual([a?.body.role, a?.body.generation], ['primary', 1], 'site a still primary of generation 1');
      assert.deepEqual([b?.body.role, b?.body.generation], ['backup', 1], 'the backup did not take over');
    });
  } finally {
    load?.kill();
    await pair.stop();
    await lan.destroy();
  }
});

for (const [mode, subnet, how] of [
  ['cut', 21, 'its connections closed, as a crashed primary looks: taken over after the closed-connection grace'],
  ['stall', 22, 'its connections open and silent, as dropped packets look: taken over after the failover timeout'],
] as const) {
  test(`a partition of the replication link (${mode}: ${how}): the backup takes over and serves, the old primary releases nothing`, {
    timeout: 60_000,
  }, async (t) => {
    const seed = testSeed();
    t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
    const { lan, pair } = await startKvnetPair(`chaos${mode}`, subnet);
    let load: PlainLoad | undefined;
    try {
      await pair.within(50_000, async () => {
        const started = await PlainLoad.start(lan, { seed, keyPrefix: `part-${seed}`, clients: 4, keys: 6 });
        load = started;
        await pair.waitUntil('the load is served', started.served(50), 20_000);
        await pair.partition(mode);
        const cutAtMs = Date.now();
        // Acks already on their way when the link was cut were dropped with its connections; give
        // the primary a moment to release what it had been acked before, then count.
        await sleep(100);
        const framesAtCut = (await lan.tapFramesWritten()).get(Lan.tapOf('a')) ?? 0;
        assert.ok(framesAtCut > 0, 'the counter below counts: the primary wrote the replies so far to its TAP');
        await pair.waitPrimary(pair.sites.b, 2, 10_000);
        const tookOverMs = Date.now() - cutAtMs;
        // The takeover came by the path this partition is meant to take.
        const reason = mode === 'cut' ? /connections closed/ : /no frame from the primary for/;
        assert.ok(
          pair.sites.b.runs.at(-1)?.log.some((line) => reason.test(line)),
          `the backup's log gives the reason ${reason}:\n${pair.logs()}`,
        );
        // The clients are served by the new primary while the old one is still cut off and running.
        const answeredAtTakeover = started.acknowledged();
        await pair.waitUntil('the new primary serves the clients', started.served(50), 15_000);
        await sleep(500);
        assert.equal(pair.sites.a.process?.exitCode, null, 'the old primary still runs, cut off');
        const framesBeforeHeal = (await lan.tapFramesWritten()).get(Lan.tapOf('a')) ?? 0;
        assert.equal(framesBeforeHeal - framesAtCut, 0, 'the cut-off primary wrote no frame to its TAP (it could commit nothing)');
        const oldPrimary = pair.sites.a.runs[0]!;
        await pair.heal();
        const exitCode = await Promise.race([oldPrimary.exit, sleep(10_000, 'running')]);
        assert.equal(exitCode, 3, 'after the heal the old primary learns it was deposed and exits');
        const { code, verdict, output } = await started.finish();
        t.diagnostic(
          `the backup took over ${tookOverMs} ms after the ${mode}; ${verdict.stats.operations} operations ` +
            `(${verdict.stats.ok} ok, ${verdict.stats.unknown} unknown), ${answeredAtTakeover} acknowledged before the takeover`,
        );
        assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${pair.logs()}`);
        assert.equal(code, 0, `hbft load's own verdict:\n${output}`);
        const b = await pair.readiness(pair.sites.b);
        assert.deepEqual([b?.body.role, b?.body.generation], ['primary', 2]);
      });
    } finally {
      load?.kill();
      await pair.stop();
      await lan.destroy();
    }
  });
}

test("1 Mbit/s: the primary stalls its guest and both daemons' memory stays bounded", { timeout: 60_000 }, async (t) => {
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
