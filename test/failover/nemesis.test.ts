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
import { Pair } from '../helpers/pair.ts';
import { applyEvent, schedule, scheduleMs, waitSettled } from '../helpers/nemesis.ts';
import { testSeed } from '../helpers/seed.ts';

const SOAK = Boolean(process.env.HBFT_SOAK);
const EVENTS = SOAK ? 12 : 2;

test(`a seeded schedule of ${EVENTS} kills, partitions and heals under load loses and duplicates nothing`, {
  timeout: SOAK ? 600_000 : 120_000,
}, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  const events = schedule(random, EVENTS);
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed}); schedule ${JSON.stringify(events)}`);
  // The load lasts about as long as the schedule: each event's wait and partition, plus a few
  // seconds for each kill (takeover, restart, resynchronisation) and for the end.
  const loadMs = scheduleMs(events);
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
    for (const event of events) await applyEvent(pair, event);
    // The end: one primary, its backup protecting it again.
    await waitSettled(pair);
    const { verdict } = await load;
    t.diagnostic(`${verdict.checked.operations} operations checked; ${verdict.failovers.length} failovers seen by clients`);
    assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${pair.logs()}`);
    assert.equal(verdict.stats.unknown, 0, 'session clients leave no operation in doubt');
    assert.ok(verdict.checked.increments > 0, 'the load did work');
  } finally {
    await pair.stop();
  }
});
