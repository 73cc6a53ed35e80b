// Proves that the kvnet pair on TAPs (the guest's own TCP/IP, its frames held per epoch until the
// backup acks) survives seeded schedules of faults under plain RESP clients (`hbft load` to
// the guest's address, Jepsen style: a request whose reply never came is indeterminate): kill -9s
// of the primary or the backup, the killed node restarted as the new backup; cuts and stalls of
// the replication link in both directions, with or without a protected pair first; a kill right
// before a partition, healing while the survivor re-protects; and heals. After each schedule the
// pair settles (one primary, protected again) and serves; the history checker finds no
// acknowledged write lost, none applied twice, and every counter within its acknowledged and
// indeterminate increments; a node that learns it was deposed exits 3 and writes no frame to its
// TAP from then on; and no two nodes write guest frames to their TAPs in the same sampling
// interval, unless one of the two was killed within it. One test starts with a kill-then-partition
// and draws from every kind of event; the other draws from the kills and partitions alone. Seeds and schedules are printed; HBFT_SEED
// replays them. `npm run test:soak` (HBFT_SOAK=1) runs long schedules.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { SeededRandom } from '@hbft/common/random.ts';
import { Lan, loggedAtMs } from '../helpers/lan.ts';
import { Pair, type Site } from '../helpers/pair.ts';
import { applyEvent, killThenPartition, schedule, sleep, waitSettled, type NemesisEvent } from '../helpers/nemesis.ts';
import { describeMarkStalls, PlainLoad } from '../helpers/plainLoad.ts';
import { testSeed } from '../helpers/seed.ts';

const SOAK = Boolean(process.env.HBFT_SOAK);
/** Besides the kill-then-partition the first test starts with (drawn from every kind of event). */
const KILL_THEN_PARTITION_EVENTS = SOAK ? 10 : 1;
/** The second test's events, drawn from kills and partitions alone. */
const PLAIN_EVENTS = SOAK ? 12 : 2;
const timeoutMs = SOAK ? 900_000 : 120_000;
const TAP_SAMPLE_INTERVAL_MS = 100;

interface TapSample {
  /** The counters were read between these two instants (ms since the epoch). */
  startMs: number;
  endMs: number;
  framesWritten: Map<string, number>;
}

/** Samples each TAP's frame counter until stopped. */
function watchTaps(lan: Lan): { samples: TapSample[]; stop: () => Promise<void> } {
  const samples: TapSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const startMs = Date.now();
      const framesWritten = await lan.tapFramesWritten();
      samples.push({ startMs, endMs: Date.now(), framesWritten });
      await sleep(TAP_SAMPLE_INTERVAL_MS);
    }
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** Sampling intervals in which both nodes wrote guest frames to their TAPs. */
interface Overlaps {
  /** Both grew, and neither writer died within the interval. */
  overlaps: string[];
  /**
   * Both grew, but one of the two was SIGKILLed within the interval: its frames were written before
   * it died, and the other's may have come after (a takeover after a kill takes ~100 ms, about one
   * interval). A dead process writes nothing, so the interval is too coarse to tell, not two writers.
   */
  excused: string[];
}

/** Whether one of `site`'s processes was killed and died within [startMs, endMs]. */
function diedWithin(pair: Pair, site: 'a' | 'b', startMs: number, endMs: number): boolean {
  return pair.sites[site].runs.some(
    (run) => run.killedAtMs !== undefined && run.killedAtMs <= endMs && (run.exitedAtMs ?? Infinity) >= startMs,
  );
}

function overlappingWriters(pair: Pair, samples: readonly TapSample[]): Overlaps {
  const result: Overlaps = { overlaps: [], excused: [] };
  for (let i = 1; i < samples.length; i++) {
    const before = samples[i - 1]!;
    const after = samples[i]!;
    const grew = (['a', 'b'] as const).filter(
      (site) => (after.framesWritten.get(Lan.tapOf(site)) ?? 0) > (before.framesWritten.get(Lan.tapOf(site)) ?? 0),
    );
    if (grew.length < 2) continue;
    const interval = `${new Date(before.startMs).toISOString()}–${new Date(after.endMs).toISOString()}`;
    const killed = grew.filter((site) => diedWithin(pair, site, before.startMs, after.endMs));
    if (killed.length > 0) result.excused.push(`${interval} (site ${killed.join(', ')} killed in it)`);
    else result.overlaps.push(interval);
  }
  return result;
}

/**
 * Every run that learned it was deposed: it exited 3, and its TAP's counter did not move between
 * the first sample read after it was fenced and the last sample read before it exited.
 */
function checkDeposedRuns(pair: Pair, samples: readonly TapSample[]): { deposed: number; problems: string[] } {
  const problems: string[] = [];
  let deposed = 0;
  for (const site of [pair.sites.a, pair.sites.b]) {
    for (const [index, run] of site.runs.entries()) {
      const deposedAtMs = loggedAtMs(run.log, /"msg":"DEPOSED/);
      if (deposedAtMs === undefined) continue;
      deposed++;
      const name = `site ${site.name} run ${index + 1} (${run.role})`;
      if (run.child.exitCode !== 3) problems.push(`${name} was deposed but exited ${run.child.exitCode ?? run.child.signalCode}`);
      const tap = Lan.tapOf(site.name);
      const first = samples.find((sample) => sample.startMs >= deposedAtMs);
      const last = samples.findLast((sample) => sample.endMs <= (run.exitedAtMs ?? Infinity));
      if (first === undefined || last === undefined || last.startMs < first.startMs) continue;
      const written = (last.framesWritten.get(tap) ?? 0) - (first.framesWritten.get(tap) ?? 0);
      if (written !== 0) problems.push(`${name} wrote ${written} frames to ${tap} after it was deposed`);
    }
  }
  return { deposed, problems };
}

/** Runs `events` against a fresh pair on the LAN under plain load, then checks the history and the TAPs. */
async function runSchedule(t: TestContext, seed: number, events: readonly NemesisEvent[]): Promise<void> {
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed}); schedule ${JSON.stringify(events)}`);
  const startedMs = performance.now();
  const taps = watchTaps(lan);
  let pair: Pair | undefined;
  let load: PlainLoad | undefined;
  try {
    pair = await Pair.start(lan.kvnetPairOptions(link));
    const running = pair;
    // Ends with the daemons' logs before the test's own timeout would end it without them.
    await running.within(timeoutMs - 10_000 - (performance.now() - startedMs), async () => {
      // The load runs until the schedule is over and the pair settled, whatever that took, so that
      // its final read sees the settled pair.
      load = await PlainLoad.start(lan, { seed, keyPrefix: `kvnem${seed}`, clients: 4, keys: 8 });
      const marking = load;
      const onKill = (site: Site) => {
        t.diagnostic(`killed site ${site.name} at ${new Date().toISOString()}`);
        marking.mark();
      };
      for (const event of events) await applyEvent(running, event, onKill);
      await waitSettled(running);
      await running.waitUntil('the settled pair serves the load', marking.served(50), 30_000);
      const { code, verdict, output } = await marking.finish();
      await taps.stop();

      t.diagnostic(
        `${verdict.checked.operations} operations checked (${verdict.stats.ok} ok, ${verdict.stats.unknown} indeterminate); ${verdict.reconnects} reconnections`,
      );
      for (const line of describeMarkStalls(verdict)) t.diagnostic(line);
      // Every check is computed before any is asserted, so that a failure also says what the TAPs saw.
      const { deposed, problems } = checkDeposedRuns(running, taps.samples);
      const { overlaps, excused } = overlappingWriters(running, taps.samples);
      t.diagnostic(
        `${deposed} deposed node(s); ${taps.samples.length} samples of the TAPs' frame counters, ${overlaps.length} with frames written to both` +
          (excused.length > 0 ? `, and ${excused.length} more across a kill: ${excused.join('; ')}` : ''),
      );
      assert.ok(verdict.ok, formatVerdict(verdict));
      assert.equal(code, 0, `hbft load's own verdict:\n${output}`);
      assert.ok(verdict.checked.increments > 0 && verdict.checked.writes > 0, 'the load did work');
      assert.deepEqual(problems, [], 'a deposed node stops and transmits nothing');
      assert.deepEqual(overlaps, [], 'at most one node writes guest frames at a time');
    });
  } finally {
    load?.kill();
    await taps.stop();
    await pair?.stop();
  }
}

// One LAN for the file: each test starts a fresh pair (a fresh guest) on the same TAPs.
let lan: Lan;
let link: { hostIp: string; namespaceIp: string };
before(async () => {
  lan = await Lan.create('nemesis', '10.77.14', ['a', 'b']);
  link = await lan.linkToHost('10.78.14');
});
after(async () => {
  await lan?.destroy();
});

test(`kvnet on TAPs: kill-then-partition and ${KILL_THEN_PARTITION_EVENTS} seeded events under plain RESP load lose and duplicate nothing`, {
  timeout: timeoutMs,
}, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  await runSchedule(t, seed, [
    killThenPartition(random, 1_000 + random.below(1_000)),
    ...schedule(random, KILL_THEN_PARTITION_EVENTS, { killThenPartition: true }),
  ]);
});

test(`kvnet on TAPs: ${PLAIN_EVENTS} seeded kills (of either node), partitions and heals under plain RESP load lose and duplicate nothing`, {
  timeout: timeoutMs,
}, async (t) => {
  const seed = testSeed();
  await runSchedule(t, seed, schedule(new SeededRandom(seed), PLAIN_EVENTS));
});
