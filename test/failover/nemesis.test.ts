// Proves that a seeded random schedule of kills (of the primary or the backup), partitions that
// cut or stall the link, and heals, run against real processes under session load, never loses or
// duplicates an acknowledged write and never leaves the pair without a primary: the verdict of the
// history checker is OK. The schedule is printed with its seed; HBFT_SEED replays it. The normal
// suite runs a short schedule; `npm run test:soak` (HBFT_SOAK=1) a long one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '@hbft/common/session/load.ts';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { SeededRandom } from '@hbft/common/random.ts';
import { Pair, PAIR_FAILOVER_TIMEOUT_MS, type Site } from '../helpers/pair.ts';
import { testSeed } from '../helpers/seed.ts';

const SOAK = Boolean(process.env.HBFT_SOAK);
const EVENTS = SOAK ? 12 : 2;

/** `protectedFirst`: the event waits until the backup holds a checkpoint (else it may strike mid-resync). */
type NemesisEvent =
  | { kind: 'kill-primary' | 'kill-backup'; afterMs: number; protectedFirst: boolean }
  | { kind: 'partition'; mode: 'cut' | 'stall'; afterMs: number; forMs: number; protectedFirst: boolean };

function schedule(random: SeededRandom, count: number): NemesisEvent[] {
  const events: NemesisEvent[] = [];
  for (let i = 0; i < count; i++) {
    const afterMs = 500 + random.below(1_500);
    const pick = random.below(5);
    // Kills always wait for a protected pair (see below); partitions two times in three.
    const protectedFirst = pick <= 2 || random.below(3) !== 0;
    if (pick <= 1) events.push({ kind: 'kill-primary', afterMs, protectedFirst });
    else if (pick === 2) events.push({ kind: 'kill-backup', afterMs, protectedFirst });
    else
      events.push({
        kind: 'partition',
        mode: pick === 3 ? 'cut' : 'stall',
        afterMs,
        forMs: 200 + random.below(PAIR_FAILOVER_TIMEOUT_MS * 8),
        protectedFirst,
      });
  }
  return events;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The site serving as the primary of the highest generation, and the other one. */
async function roles(pair: Pair): Promise<{ primary: Site; backup: Site } | null> {
  let best: { site: Site; generation: number } | null = null;
  for (const site of [pair.sites.a, pair.sites.b]) {
    const readiness = await pair.readiness(site);
    if (readiness?.body.role !== 'primary') continue;
    const generation = Number(readiness.body.generation);
    if (best === null || generation > best.generation) best = { site, generation };
  }
  return best === null ? null : { primary: best.site, backup: pair.other(best.site) };
}

test(`a seeded schedule of ${EVENTS} kills, partitions and heals under load loses and duplicates nothing`, {
  timeout: SOAK ? 600_000 : 120_000,
}, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  const events = schedule(random, EVENTS);
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed}); schedule ${JSON.stringify(events)}`);
  // The load lasts about as long as the schedule: each event's wait and partition, plus a few
  // seconds for each kill (takeover, restart, resynchronisation) and for the end.
  const loadMs = events.reduce((sum, event) => sum + event.afterMs + (event.kind === 'partition' ? event.forMs : 3_000), 4_000);
  const pair = await Pair.start();
  try {
    const load = runLoad({
      servers: pair.servers,
      clients: 4,
      durationMs: loadMs,
      keys: 8,
      seed,
      keyPrefix: 'nemesis',
      responseTimeoutMs: 2_000,
      reconnectDeadlineMs: 60_000,
    });
    load.catch(() => {}); // awaited below; if the test fails first, the load ends with the pair
    for (const event of events) {
      await sleep(event.afterMs);
      const current = await roles(pair);
      assert.ok(current, `a primary serves before ${event.kind}\n${pair.logs()}`);
      // A primary killed before its backup holds a checkpoint takes the only copy of the guest
      // with it, which no protocol can survive: kills wait for a protected pair.
      if (event.protectedFirst) await pair.waitProtected(current.backup, 60_000);
      if (event.kind === 'partition') {
        for (const name of ['to-a', 'to-b']) await pair.registry.update(name, { enabled: false, partition: event.mode });
        await sleep(event.forMs);
        await pair.heal();
        continue;
      }
      pair.kill(event.kind === 'kill-primary' ? current.primary : current.backup);
    }
    await pair.heal();
    // The end: one primary, its backup protecting it again.
    const deadline = performance.now() + 60_000;
    let final = await roles(pair);
    while (final === null && performance.now() < deadline) {
      await sleep(100);
      final = await roles(pair);
    }
    assert.ok(final, `a primary serves at the end\n${pair.logs()}`);
    await pair.waitProtected(final.backup, 60_000);
    const { verdict } = await load;
    t.diagnostic(`${verdict.checked.operations} operations checked; ${verdict.failovers.length} failovers seen by clients`);
    assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${pair.logs()}`);
    assert.equal(verdict.stats.unknown, 0, 'session clients leave no operation in doubt');
    assert.ok(verdict.checked.increments > 0, 'the load did work');
  } finally {
    await pair.stop();
  }
});
