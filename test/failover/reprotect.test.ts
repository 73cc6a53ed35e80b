// Proves that re-protection after a takeover keeps the pair safe and the guest serving, with the
// kvnet guest on TAPs in a network namespace, real processes run as the demo runs them, and plain
// RESP clients (`hbft load`, Jepsen style) whose history is checked: (a) after a kill, the
// survivor re-protects to the restarted node while serving the clients (their stall during the
// resynchronisation is reported), and a later partition longer than the failover timeout makes
// the re-protected backup take over (generation 3) and loses no acknowledged write (the promoted
// primary holds its output once its new backup could take over; it learns at the heal that it was
// deposed and exits 3); (b) a partition, a takeover, then a slow heal and, mid-resynchronisation,
// a stall of the link longer than the survivor's silence limit (its full synchronisation waiting
// on the socket): the survivor drops the backup, stays up as the primary of generation 2, keeps
// the guest, re-protects once the link is clear, and the history is correct.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import type { History } from '@hbft/common/session/history.ts';
import { SeededRandom } from '@hbft/common/random.ts';
import { Lan, loggedAtMs } from '../helpers/lan.ts';
import { Pair, type Site } from '../helpers/pair.ts';
import { describeMarkStalls, fillGuest, historyMsAt, PlainLoad, stallsWithin } from '../helpers/plainLoad.ts';
import { testSeed } from '../helpers/seed.ts';

type Run = Site['runs'][number];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** About 20 MiB, in values that fit a kvnet connection's own 4 KiB input buffer (larger ones share a few buffers). */
const FILL_VALUES = 5_600;
const FILL_VALUE_BYTES = 3_800;
const SYNC_STARTED = /backup connected: full synchronisation started/;
const SYNCHRONISED = /backup synchronised: the guest is protected/;

// One LAN for the file: each test starts a fresh pair (a fresh guest) on the same TAPs.
let lan: Lan;
let link: { hostIp: string; namespaceIp: string };
before(async () => {
  lan = await Lan.create('reprotect', '10.77.16', ['a', 'b']);
  link = await lan.linkToHost('10.78.16');
});
after(async () => {
  await lan?.destroy();
});

/**
 * Reports what the clients saw while the survivor's run synchronised its new backup: from its first
 * "full synchronisation started" to "synchronised" (its log's times, moved into the history's).
 */
function reportResyncStall(t: TestContext, survivor: Run, history: History): { repliesWithin: number; windowMs: number } {
  const startedMs = loggedAtMs(survivor.log, SYNC_STARTED);
  const doneMs = loggedAtMs(survivor.log, SYNCHRONISED);
  assert.ok(startedMs !== undefined && doneMs !== undefined, 'the survivor logged its re-protection');
  const fromMs = historyMsAt(history, startedMs);
  const toMs = historyMsAt(history, doneMs);
  const stall = stallsWithin(history.operations, fromMs, toMs);
  t.diagnostic(
    `re-protection from ${fromMs.toFixed(0)} to ${toMs.toFixed(0)} ms (${(toMs - fromMs).toFixed(0)} ms): ${stall.repliesWithin} replies in it; ` +
      `each client's longest wait for a reply overlapping it p50 ${stall.gapMsP50.toFixed(0)} ms, max ${stall.gapMsMax.toFixed(0)} ms (${stall.clients} clients)`,
  );
  return { repliesWithin: stall.repliesWithin, windowMs: toMs - fromMs };
}

test('kill the primary, re-protect to the restarted node under plain load, then partition: no acknowledged write is lost', {
  timeout: 120_000,
}, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  // The heal comes 0-2 s past the takeover. Early heals matter: the deposed peer's closing words
  // quote E_DEPOSED, and a new primary that read them as its own deposition fenced itself too,
  // leaving no primary (seen with a 39 ms gap, before deposition went by the ERROR frame's code).
  const partitionExtraMs = random.below(2_000);
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed}); partition held ${partitionExtraMs} ms past the takeover`);
  const startedMs = performance.now();
  const pair = await Pair.start(lan.kvnetPairOptions(link));
  const { a, b } = pair.sites;
  let load: PlainLoad | undefined;
  try {
    // Ends with the daemons' logs before the test's own timeout would end it without them.
    await pair.within(110_000 - (performance.now() - startedMs), async () => {
      load = await PlainLoad.start(lan, { seed, keyPrefix: `reprotect-a${seed}` });
      await pair.waitUntil('the load is served', load.served(100), 20_000);
      pair.kill(a);
      load.mark();
      await pair.waitPrimary(b, 2);
      // The killed site comes back as the backup and the survivor synchronises it.
      await pair.waitProtected(a);
      await pair.waitUntil('the load is served under the re-protected pair', load.served(50), 20_000);
      const survivorRun = b.runs.at(-1);
      assert.ok(survivorRun, 'site b ran');
      await pair.partition();
      // Longer than the failover timeout: the re-protected backup takes over.
      await pair.waitPrimary(a, 3);
      await sleep(partitionExtraMs);
      await pair.heal();
      await pair.waitUntil('the load is served after the heal', load.served(200), 30_000);
      // At the heal the old primary hears of generation 3 and stops.
      await pair.waitUntil('site b, deposed, exits', () => survivorRun.child.exitCode !== null, 20_000);
      const newPrimary = await pair.readiness(a);
      const { code, verdict, history, output } = await load.finish();

      t.diagnostic(
        `${verdict.checked.operations} operations checked (${verdict.stats.ok} ok, ${verdict.stats.unknown} indeterminate); ${verdict.reconnects} reconnections`,
      );
      for (const line of describeMarkStalls(verdict)) t.diagnostic(line);
      const resync = reportResyncStall(t, survivorRun, history);
      assert.ok(verdict.ok, formatVerdict(verdict));
      assert.equal(code, 0, `hbft load's own verdict:\n${output}`);
      assert.ok(verdict.checked.increments > 0 && verdict.checked.writes > 0, 'the load did work');
      assert.equal(newPrimary?.body.role, 'primary', 'the re-protected backup took over');
      assert.equal(newPrimary?.body.generation, 3, 'as the primary of generation 3');
      assert.equal(survivorRun.child.exitCode, 3, 'the deposed primary exited 3');
      assert.ok(resync.windowMs > 0, 'the re-protection took time');
    });
  } finally {
    load?.kill();
    await pair.stop();
  }
});

test('partition, takeover, slow heal, then a stall while the survivor re-protects: it stays primary and keeps the guest', {
  timeout: 150_000,
}, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const startedMs = performance.now();
  const pair = await Pair.start(lan.kvnetPairOptions(link, '64MiB'));
  const { a, b } = pair.sites;
  let load: PlainLoad | undefined;
  try {
    await pair.within(140_000 - (performance.now() - startedMs), async () => {
      // About 20 MiB of values, so that the survivor's full synchronisation of its new backup fills
      // the bulk channel's write buffer (16 MiB) and waits for it to drain.
      const fillStartedMs = performance.now();
      await fillGuest(lan, FILL_VALUES, FILL_VALUE_BYTES);
      t.diagnostic(
        `filled the guest with ${FILL_VALUES} values of ${FILL_VALUE_BYTES} bytes in ${(performance.now() - fillStartedMs).toFixed(0)} ms`,
      );
      load = await PlainLoad.start(lan, { seed, keyPrefix: `reprotect-b${seed}` });
      await pair.waitUntil('the load is served', load.served(50), 20_000);
      await pair.partition();
      await pair.waitPrimary(b, 2);
      const survivor = b.runs.at(-1);
      assert.ok(survivor, 'site b ran');
      // The link heals slowly (2 MB/s towards site a): the old primary learns it was deposed and
      // exits, comes back as the backup, and the survivor's full synchronisation of it takes seconds.
      await pair.registry.addToxic('to-a', { type: 'bandwidth', stream: 'upstream', attributes: { rate: 2_048 } });
      for (const name of ['to-a', 'to-b']) await pair.registry.update(name, { enabled: true });
      await pair.waitUntil('the survivor synchronises its new backup', () => survivor.log.some((line) => SYNC_STARTED.test(line)), 40_000);
      // Mid-sync, the link stalls until the survivor's silence limit (3 s here) makes it drop the
      // backup while the sync waits for the socket. Then everything is cleared.
      const lostBefore = survivor.log.filter((line) => /backup lost/.test(line)).length;
      await pair.registry.update('to-a', { enabled: false, partition: 'stall' });
      await pair.waitUntil(
        'the survivor drops the silent backup',
        () => survivor.log.filter((line) => /backup lost/.test(line)).length > lostBefore,
        20_000,
      );
      await pair.heal();
      await pair.waitProtected(a, 60_000);
      await pair.waitUntil('the load is served by the re-protected survivor', load.served(50), 30_000);
      const readiness = await pair.readiness(b);
      const { code, verdict, history, output } = await load.finish();

      t.diagnostic(
        `${verdict.checked.operations} operations checked (${verdict.stats.ok} ok, ${verdict.stats.unknown} indeterminate); ${verdict.reconnects} reconnections`,
      );
      t.diagnostic(
        `each client's longest wait for a reply over the run: p50 ${verdict.stalls.gapMsP50.toFixed(0)} ms, max ${verdict.stalls.gapMsMax.toFixed(0)} ms`,
      );
      reportResyncStall(t, survivor, history);
      assert.ok(
        survivor.log.some((line) => /full synchronisation interrupted/.test(line)),
        'the stall caught the full synchronisation waiting on the socket, as this test means it to',
      );
      assert.equal(survivor.child.exitCode, null, 'the survivor is still running');
      assert.equal(readiness?.body.role, 'primary', 'the survivor is the primary');
      assert.equal(readiness?.body.generation, 2);
      assert.ok(verdict.ok, formatVerdict(verdict));
      assert.equal(code, 0, `hbft load's own verdict:\n${output}`);
      assert.ok(verdict.checked.increments > 0 && verdict.checked.writes > 0, 'the load did work');
    });
  } finally {
    load?.kill();
    await pair.stop();
  }
});
