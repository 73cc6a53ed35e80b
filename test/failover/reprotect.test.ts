// Proves that re-protection after a takeover keeps the pair safe and the guest alive, with real
// processes run as the demo runs them and client histories checked: (a) after a kill, the
// survivor re-protects to the restarted node, and a later partition longer than the failover
// timeout loses no acknowledged write (the promoted primary holds its output once its new backup
// could take over); (b) a partition, a takeover, then a heal and a stall of the link while the
// survivor re-protects (its full synchronisation waiting on the socket): the survivor stays up as
// the primary, keeps the guest, and the history is correct.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '@hbft/common/session/load.ts';
import { PlainClient } from '@hbft/common/session/plainClient.ts';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { SeededRandom } from '@hbft/common/random.ts';
import { Pair, PAIR_FAILOVER_TIMEOUT_MS } from '../helpers/pair.ts';
import { testSeed } from '../helpers/seed.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('kill the primary, re-protect to the restarted node, then partition: no acknowledged write is lost', {
  timeout: 120_000,
}, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  const partitionMs = PAIR_FAILOVER_TIMEOUT_MS * 4 + random.below(1_000);
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed}); partition ${partitionMs} ms`);
  const startedMs = performance.now();
  const pair = await Pair.start();
  const { a, b } = pair.sites;
  try {
    // Ends, with the daemons' logs, 10 s before the test's timeout would end it without them.
    await pair.within(110_000 - (performance.now() - startedMs), async () => {
      // The load runs until the test stops it, once clients have been served after the heal: with
      // a fixed duration, a slow re-protection moved the partition past the load's end (or into
      // its final read), and the test no longer tested what it says.
      const stop = new AbortController();
      let acknowledged = 0;
      const load = runLoad({
        servers: pair.servers,
        clients: 4,
        durationMs: 90_000,
        keys: 8,
        seed,
        keyPrefix: 'reprotect-a',
        responseTimeoutMs: 2_000,
        reconnectDeadlineMs: 30_000,
        signal: stop.signal,
        onEntry: (entry) => {
          if (entry.type === 'op' && entry.result === 'ok') acknowledged++;
        },
      });
      load.catch(() => {}); // awaited below; if the test fails first, the load ends with the pair
      const servedSince = (count: number) => {
        const from = acknowledged;
        return () => acknowledged >= from + count;
      };
      await pair.waitUntil('the load is served', servedSince(100), 20_000);
      pair.kill(a);
      await pair.waitPrimary(b, 2);
      // The killed site comes back as the backup and the survivor synchronises it.
      await pair.waitProtected(a);
      await pair.waitUntil('the load is served under the re-protected pair', servedSince(50), 20_000);
      await pair.partition();
      await sleep(partitionMs);
      await pair.heal();
      await pair.waitUntil('the load is served after the heal', servedSince(200), 30_000);
      stop.abort();
      const { verdict } = await load;
      assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${pair.logs()}`);
      assert.equal(verdict.stats.unknown, 0, 'session clients leave no operation in doubt');
      assert.ok(verdict.checked.increments > 0 && verdict.checked.writes > 0, 'the load did work');
      assert.ok(
        verdict.failovers.some((gap) => gap.toGeneration === 3),
        `the partition made the re-protected backup take over (generation 3), with the load running: ${JSON.stringify(verdict.failovers)}`,
      );
    });
  } finally {
    await pair.stop();
  }
});

test('partition, takeover, heal, then a stall while the survivor re-protects: it stays primary and keeps the guest', {
  timeout: 150_000,
}, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const pair = await Pair.start({ memory: '64MiB' });
  const { a, b } = pair.sites;
  try {
    // About 20 MiB of values, so that the survivor's full synchronisation of its new backup fills
    // the bulk channel's write buffer (16 MiB) and waits for it to drain.
    const filler = new PlainClient({ servers: pair.servers });
    const value = 'v'.repeat(60_000);
    for (let batch = 0; batch < 44; batch++) {
      const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => filler.request(['SET', `fill:${batch * 8 + i}`, value])));
      assert.ok(
        replies.every((reply) => reply.type !== 'error'),
        "the filler's SETs succeed",
      );
    }
    filler.close();
    const load = runLoad({
      servers: pair.servers,
      clients: 4,
      durationMs: 16_000,
      keys: 8,
      seed,
      keyPrefix: 'reprotect-b',
      responseTimeoutMs: 2_000,
      reconnectDeadlineMs: 40_000,
    });
    load.catch(() => {});
    await sleep(1_500);
    await pair.partition();
    await pair.waitPrimary(b, 2);
    // The link heals slowly (2 MB/s towards site a): the old primary learns it was deposed and
    // exits, comes back as the backup, and the survivor's full synchronisation of it takes seconds.
    await pair.registry.addToxic('to-a', { type: 'bandwidth', stream: 'upstream', attributes: { rate: 2_048 } });
    for (const name of ['to-a', 'to-b']) await pair.registry.update(name, { enabled: true });
    const survivor = b.runs.at(-1)!;
    const deadline = performance.now() + 40_000;
    while (!(await pair.readiness(b))?.body.fullSync && performance.now() < deadline) await sleep(20);
    // Mid-sync, the link stalls for longer than the survivor's silence limit (3 s here): it drops
    // the backup while the sync waits for the socket. Then everything is cleared.
    await pair.registry.update('to-a', { enabled: false, partition: 'stall' });
    await sleep(4_000);
    await pair.heal();
    await pair.waitProtected(a, 60_000);
    const { verdict } = await load;
    assert.equal(survivor.child.exitCode, null, `the survivor is still running\n${pair.logs()}`);
    const readiness = await pair.readiness(b);
    assert.equal(readiness?.body.role, 'primary', `the survivor is the primary\n${pair.logs()}`);
    assert.equal(readiness?.body.generation, 2);
    assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${pair.logs()}`);
    assert.equal(verdict.stats.unknown, 0, 'session clients leave no operation in doubt');
    assert.ok(
      verdict.failovers.some((gap) => gap.toGeneration === 2),
      'the clients ended on the survivor',
    );
  } finally {
    await pair.stop();
  }
});
