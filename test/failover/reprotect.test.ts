// Proves that re-protection after a takeover keeps the pair safe and the guest alive, with real
// processes run as the demo runs them and client histories checked: (a) after a kill, the
// survivor re-protects to the restarted node, and a later partition longer than the failover
// timeout loses no acknowledged write (the promoted primary holds its output once its new backup
// could take over); (b) a partition, a takeover, then a heal while the survivor re-protects: the
// survivor stays up as the primary, keeps the guest, and the history is correct.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '@hbft/common/session/load.ts';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { SeededRandom } from '@hbft/common/random.ts';
import { Pair, PAIR_FAILOVER_TIMEOUT_MS } from '../helpers/pair.ts';
import { testSeed } from '../helpers/seed.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('kill the primary, re-protect to the restarted node, then partition: no acknowledged write is lost', { timeout: 120_000 }, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  const partitionMs = PAIR_FAILOVER_TIMEOUT_MS * 4 + random.below(1_000);
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed}); partition ${partitionMs} ms`);
  const pair = await Pair.start();
  const { a, b } = pair.sites;
  try {
    const load = runLoad({
      servers: pair.servers, clients: 4, durationMs: 14_000, keys: 8, seed, keyPrefix: 'reprotect-a',
      responseTimeoutMs: 2_000, reconnectDeadlineMs: 30_000,
    });
    load.catch(() => {}); // awaited below; if the test fails first, the load ends with the pair
    await sleep(1_500);
    pair.kill(a);
    await pair.waitPrimary(b, 2);
    // The killed site comes back as the backup and the survivor synchronises it.
    await pair.waitProtected(a);
    await sleep(500);
    await pair.partition();
    await sleep(partitionMs);
    await pair.heal();
    const { verdict } = await load;
    assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${pair.logs()}`);
    assert.equal(verdict.stats.unknown, 0, 'session clients leave no operation in doubt');
    assert.ok(verdict.checked.increments > 0 && verdict.checked.writes > 0, 'the load did work');
  } finally {
    await pair.stop();
  }
});

test('partition, takeover, heal while the survivor re-protects: it stays primary and keeps the guest', { timeout: 120_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const pair = await Pair.start();
  const { a, b } = pair.sites;
  try {
    const load = runLoad({
      servers: pair.servers, clients: 4, durationMs: 12_000, keys: 8, seed, keyPrefix: 'reprotect-b',
      responseTimeoutMs: 2_000, reconnectDeadlineMs: 30_000,
    });
    load.catch(() => {});
    await sleep(1_500);
    await pair.partition();
    await pair.waitPrimary(b, 2);
    await sleep(300);
    // The old primary learns it was deposed and exits; the pair restarts it as the backup, and the
    // survivor synchronises it.
    await pair.heal();
    const survivor = b.runs.at(-1)!;
    await pair.waitProtected(a, 40_000);
    const { verdict } = await load;
    assert.equal(survivor.child.exitCode, null, `the survivor is still running\n${pair.logs()}`);
    const readiness = await pair.readiness(b);
    assert.equal(readiness?.body.role, 'primary', `the survivor is the primary\n${pair.logs()}`);
    assert.equal(readiness?.body.generation, 2);
    assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${pair.logs()}`);
    assert.equal(verdict.stats.unknown, 0, 'session clients leave no operation in doubt');
    assert.ok(verdict.failovers.some((gap) => gap.toGeneration === 2), 'the clients ended on the survivor');
  } finally {
    await pair.stop();
  }
});
