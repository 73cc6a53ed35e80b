// Proves the backup's closed-connection detector with real processes, the primary's three channels
// (control, bulk and its heartbeat thread's) included, at a failover timeout of 5 s: a primary
// paused with SIGSTOP for a second closes nothing and is not taken over; the same primary killed
// with SIGKILL (its kernel closes its sockets) and another stopped with SIGTERM (it says GOODBYE)
// are taken over within a second, and the backup's log names the three closed channels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../helpers/cluster.ts';
import { waitForLine } from '../helpers/logLines.ts';

const TIMEOUT_MS = 5_000;
const TIMING = ['--heartbeat-ms', '20', '--failover-timeout-ms', String(TIMEOUT_MS)];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A protected pair whose primary's heartbeat thread has joined (so the session has three channels). */
async function protectedCluster(): Promise<Cluster> {
  const cluster = await Cluster.start({ primaryArgs: TIMING, backupArgs: TIMING });
  await cluster.waitProtected();
  assert.ok(await waitForLine(cluster.primary.log, /heartbeat channel joined/, 10_000), `the heartbeat thread joined\n${cluster.logs()}`);
  return cluster;
}

/** Sends `signal` to the primary; resolves with the backup's reason for taking over, and how long after the signal. */
async function takeoverAfter(cluster: Cluster, signal: NodeJS.Signals): Promise<{ reason: string; tookMs: number }> {
  const atMs = performance.now();
  cluster.primary.process.kill(signal);
  const line = await waitForLine(cluster.backup.log, /PRIMARY FAILED/, TIMEOUT_MS - 1_000);
  const tookMs = performance.now() - atMs;
  assert.ok(line, `taken over within ${TIMEOUT_MS - 1_000} ms of ${signal}, before the timeout could\n${cluster.logs()}`);
  return { reason: String(JSON.parse(line).reason), tookMs };
}

const everyChannelClosed = /^the primary's connections closed \((?=.*control: )(?=.*bulk: )(?=.*heartbeat: )/;

test('a paused primary is not taken over (it closes nothing); killed with SIGKILL it is, after the grace', {
  timeout: 90_000,
}, async (t) => {
  const cluster = await protectedCluster();
  try {
    cluster.primary.process.kill('SIGSTOP');
    await sleep(1_000);
    cluster.primary.process.kill('SIGCONT');
    await sleep(200);
    assert.equal(
      cluster.backup.log.some((line) => line.includes('PRIMARY FAILED')),
      false,
      `a pause sends no FIN: only the timeout could take it over\n${cluster.logs()}`,
    );
    const { reason, tookMs } = await takeoverAfter(cluster, 'SIGKILL');
    t.diagnostic(`SIGKILL: taken over ${tookMs.toFixed(0)} ms later (${reason})`);
    assert.match(reason, everyChannelClosed);
    await cluster.waitFor(cluster.ports.backupHttp, '/readyz', (_status, body) => /"role":"primary"/.test(body), 10_000, cluster.backup);
  } finally {
    await cluster.stop();
  }
});

test('a primary stopped with SIGTERM is taken over after the grace', { timeout: 90_000 }, async (t) => {
  const cluster = await protectedCluster();
  try {
    const { reason, tookMs } = await takeoverAfter(cluster, 'SIGTERM');
    t.diagnostic(`SIGTERM: taken over ${tookMs.toFixed(0)} ms later (${reason})`);
    assert.match(reason, everyChannelClosed);
  } finally {
    await cluster.stop();
  }
});
