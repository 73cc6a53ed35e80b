// Proves that the backup tells a busy primary from a dead one: a primary whose main thread is
// blocked for 300 ms at a time (three times a 100 ms failover timeout; the process and its other
// threads alive) is not taken over, and the same primary killed with SIGKILL is taken over after
// about the failover timeout of silence, or sooner once its kernel has closed its connections; and
// one whose main thread is hung (not just busy) is taken over too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '@hbft/common/random.ts';
import { mainThreadHungMs } from '@hbft/common/constants.ts';
import { Cluster } from '../helpers/cluster.ts';
import { waitForLine } from '../helpers/logLines.ts';
import { testSeed } from '../helpers/seed.ts';

/** The tests pin the timeout: what they prove is relative to it, whatever the default. */
const TIMEOUT_MS = 100;
const TIMING = ['--heartbeat-ms', '20', '--failover-timeout-ms', String(TIMEOUT_MS)];
const STALL_MS = 3 * TIMEOUT_MS;
const STALLS = 5;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a primary whose main thread is blocked for 300 ms is not taken over; a killed one is', { timeout: 90_000 }, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const cluster = await Cluster.start({ env: { HBFT_TEST_STALL_MAIN_MS: String(STALL_MS) }, primaryArgs: TIMING, backupArgs: TIMING });
  try {
    await cluster.waitProtected();
    // Today's primary has no heartbeat thread: then this waits in vain and the stalls follow anyway.
    await waitForLine(cluster.primary.log, /heartbeat channel joined/, 5_000);
    for (let stall = 0; stall < STALLS; stall++) {
      cluster.primary.process.kill('SIGUSR2');
      await sleep(STALL_MS + 500 + random.below(1_000));
    }
    const backup = await cluster.readiness(cluster.ports.backupHttp);
    assert.equal(backup.role, 'backup', `the backup did not take over from the busy primary\n${cluster.logs()}`);
    const blocked = cluster.primary.log.filter((l) => l.includes('main thread was blocked')).length;
    assert.equal(blocked, STALLS, `the test hook blocked the primary's main thread every time\n${cluster.logs()}`);
    assert.equal(await cluster.metric('hbft_failovers_total', cluster.ports.backupHttp), 0);
    assert.equal(cluster.primary.process.exitCode, null, 'the primary still runs');
    const primary = await cluster.readiness(cluster.ports.primaryHttp);
    assert.equal(primary.protection, 'protected', 'and is still protected by the same backup');

    cluster.killPrimary();
    const takeover = await waitForLine(cluster.backup.log, /PRIMARY FAILED/, 10_000);
    assert.ok(takeover, `the killed primary was taken over\n${cluster.logs()}`);
    // Whichever comes first: the timeout, or the grace after the killed process's connections closed.
    const closed = /the primary's connections closed/.test(takeover);
    const silentMs = Number(/(?:no frame from the primary for|last frame) (\d+) ms/.exec(takeover)?.[1]);
    t.diagnostic(`takeover after ${silentMs} ms of silence (timeout ${TIMEOUT_MS} ms${closed ? ', its connections closed' : ''})`);
    assert.ok(
      silentMs > (closed ? 0 : TIMEOUT_MS) && silentMs < 3 * TIMEOUT_MS,
      `silence before the takeover: ${silentMs} ms\n${takeover}`,
    );
    await cluster.waitFor(cluster.ports.backupHttp, '/readyz', (_status, body) => /"role":"primary"/.test(body), 10_000, cluster.backup);
  } finally {
    await cluster.stop();
  }
});

test('a primary whose main thread is hung for longer than mainThreadHungMs is taken over', { timeout: 90_000 }, async (t) => {
  const hungMs = mainThreadHungMs(TIMEOUT_MS);
  const stallMs = hungMs + 1_500;
  t.diagnostic(`main thread blocked for ${stallMs} ms; heartbeats stop after ${hungMs} ms of it`);
  const cluster = await Cluster.start({ env: { HBFT_TEST_STALL_MAIN_MS: String(stallMs) }, primaryArgs: TIMING, backupArgs: TIMING });
  try {
    await cluster.waitProtected();
    await waitForLine(cluster.primary.log, /heartbeat channel joined/, 5_000);
    cluster.primary.process.kill('SIGUSR2');
    const takeover = await waitForLine(cluster.backup.log, /PRIMARY FAILED/, stallMs + 5_000);
    assert.ok(takeover, `the backup took over from the hung primary\n${cluster.logs()}`);
    assert.ok(
      cluster.primary.log.some((l) => l.includes('the main thread is hung')),
      'the heartbeat thread said why it stopped',
    );
    // When its main thread runs again, the old primary learns that it was deposed and stops (exit 3).
    assert.equal(await cluster.primary.exited, 3, `the deposed primary stopped\n${cluster.logs()}`);
  } finally {
    await cluster.stop();
  }
});
