// Proves that the kvnet pair on TAPs (the guest's own TCP/IP, its frames held per epoch until the
// backup acks) survives a seeded schedule of kill -9s of the primary with the killed node restarted
// as the new backup, cuts and stalls of the replication link in both directions (also right after
// a kill, healing while the survivor re-protects), and heals, under plain RESP clients (`hbft load
// --plain` to the guest's address, Jepsen style): the history checker finds no acknowledged write
// lost, none applied twice, and every counter within its acknowledged and indeterminate
// increments; a node that learns it was deposed exits 3 and writes no frame to its TAP from then
// on; and no two nodes write guest frames to their TAPs in the same sampling interval. The seed
// and schedule are printed; HBFT_SEED replays them. `npm run test:soak` (HBFT_SOAK=1) runs more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory, formatVerdict } from '@hbft/common/session/checker.ts';
import { parseHistory } from '@hbft/common/session/history.ts';
import { SeededRandom } from '@hbft/common/random.ts';
import { Lan } from '../helpers/lan.ts';
import { Pair, type Site } from '../helpers/pair.ts';
import { applyEvent, killThenPartition, schedule, sleep, waitSettled, type NemesisEvent } from '../helpers/nemesis.ts';
import { testSeed } from '../helpers/seed.ts';
import { CLI } from '../deploy/runScript.ts';

const SOAK = Boolean(process.env.HBFT_SOAK);
/** Besides the kill-then-partition every run starts with. */
const RANDOM_EVENTS = SOAK ? 10 : 1;
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
function overlappingWriters(samples: readonly TapSample[]): string[] {
  const overlaps: string[] = [];
  for (let i = 1; i < samples.length; i++) {
    const before = samples[i - 1]!;
    const after = samples[i]!;
    const grew = [Lan.tapOf('a'), Lan.tapOf('b')].filter(
      (tap) => (after.framesWritten.get(tap) ?? 0) > (before.framesWritten.get(tap) ?? 0),
    );
    if (grew.length > 1) overlaps.push(`${new Date(before.startMs).toISOString()}–${new Date(after.endMs).toISOString()}`);
  }
  return overlaps;
}

/** The time a run logged a line matching `pattern` (its pino "time"), if it did. */
function loggedAtMs(log: readonly string[], pattern: RegExp): number | undefined {
  const line = log.find((candidate) => pattern.test(candidate));
  const time = line === undefined ? undefined : /"time":(\d+)/.exec(line)?.[1];
  return time === undefined ? undefined : Number(time);
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

test(`kvnet on TAPs: kill-then-partition and ${RANDOM_EVENTS} seeded kills, partitions and heals under plain RESP load lose and duplicate nothing`, {
  timeout: SOAK ? 900_000 : 150_000,
}, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  const events: NemesisEvent[] = [
    killThenPartition(random, 1_000 + random.below(1_000)),
    ...schedule(random, RANDOM_EVENTS, { killThenPartition: true }),
  ];
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed}); schedule ${JSON.stringify(events)}`);
  const lan = await Lan.create('nemesis', '10.77.14', ['a', 'b']);
  let pair: Pair | undefined;
  let load: ReturnType<Lan['spawn']> | undefined;
  const taps = watchTaps(lan);
  try {
    const link = await lan.linkToHost('10.78.14');
    pair = await Pair.start({
      memory: '64MiB',
      guest: 'kvnet',
      siteArgs: (site) => ['--tap', Lan.tapOf(site), '--guest-ip', lan.guestAddress],
      daemonHost: link.namespaceIp,
      proxyHost: link.hostIp,
      launch: (argv, options) => lan.spawn(process.execPath, argv, options),
    });
    const historyFile = join(mkdtempSync(join(tmpdir(), 'hbft-kvnet-nemesis-')), 'history.jsonl');
    // The load runs until told to stop (SIGTERM: it finishes in-flight operations and makes its
    // final read), so that the final read sees the settled pair whatever the schedule took.
    let loadOutput = '';
    load = lan.spawn(
      process.execPath,
      [
        CLI,
        'load',
        '--plain',
        '--servers',
        `${lan.guestIp}:6379`,
        '--clients',
        '4',
        '--keys',
        '8',
        '--seed',
        String(seed),
        '--key-prefix',
        `kvnem${seed}`,
        '--duration-s',
        '3600',
        '--history',
        historyFile,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    load.stdout?.on('data', (chunk: Buffer) => (loadOutput += chunk));
    load.stderr?.on('data', (chunk: Buffer) => (loadOutput += chunk));
    const loadExit = new Promise<number | null>((resolve) => load?.once('exit', (code) => resolve(code)));
    // SIGUSR2 marks a kill once the load has installed its handler (before its first line), and
    // the schedule starts once its clients are served.
    const loadStartMs = performance.now();
    while (!/ok [1-9]/.test(loadOutput)) {
      assert.ok(
        load.exitCode === null && performance.now() - loadStartMs < 30_000,
        `the load runs and is served:\n${loadOutput}\n${pair.logs()}`,
      );
      await sleep(50);
    }
    const onKill = (site: Site) => {
      t.diagnostic(`killed site ${site.name} at ${new Date().toISOString()}`);
      load?.kill('SIGUSR2');
    };
    for (const event of events) await applyEvent(pair, event, onKill);
    await waitSettled(pair);
    await sleep(1_000);
    load.kill('SIGTERM');
    const loadCode = await loadExit;
    await taps.stop();

    let historyText = '';
    try {
      historyText = readFileSync(historyFile, 'utf8');
    } catch (error) {
      assert.fail(`the load (exit ${loadCode}) wrote no history: ${(error as Error).message}\n${loadOutput.slice(-3_000)}`);
    }
    const history = parseHistory(historyText, historyFile);
    assert.ok(history.final, `the load made its final read (exit ${loadCode}):\n${loadOutput.slice(-3_000)}\n${pair.logs()}`);
    const verdict = checkHistory({
      operations: history.operations,
      final: history.final.values,
      reconnects: history.reconnects,
      marks: history.marks,
      seed,
      exactlyOnce: false,
    });
    t.diagnostic(
      `${verdict.checked.operations} operations checked (${verdict.stats.ok} ok, ${verdict.stats.unknown} unknown); ${verdict.reconnects} reconnections`,
    );
    for (const mark of verdict.stalls.marks)
      t.diagnostic(
        `stall across the kill at ${mark.at.toFixed(0)} ms: p50 ${mark.gapMsP50.toFixed(0)} ms, max ${mark.gapMsMax.toFixed(0)} ms`,
      );
    // Every check is computed before any is asserted, so that a failure also says what the TAPs saw.
    const { deposed, problems } = checkDeposedRuns(pair, taps.samples);
    const overlaps = overlappingWriters(taps.samples);
    t.diagnostic(
      `${deposed} deposed node(s); ${taps.samples.length} samples of the TAPs' frame counters, ${overlaps.length} with frames written to both`,
    );
    assert.ok(verdict.ok, `${formatVerdict(verdict)}\n${pair.logs()}`);
    assert.equal(loadCode, 0, `hbft load's own verdict:\n${loadOutput.slice(-3_000)}`);
    assert.ok(verdict.checked.increments > 0 && verdict.checked.writes > 0, 'the load did work');
    assert.deepEqual(problems, [], `a deposed node stops and transmits nothing\n${pair.logs()}`);
    assert.deepEqual(overlaps, [], `at most one node writes guest frames at a time\n${pair.logs()}`);
  } finally {
    load?.kill('SIGKILL');
    await taps.stop();
    await pair?.stop();
    await lan.destroy();
  }
});
