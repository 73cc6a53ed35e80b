// docker-compose.yml under a real Docker engine: scripts/compose-engine-test.sh starts a dockerd of
// its own, builds the image (a local stand-in for node:20-bookworm-slim where Docker Hub cannot be
// reached), brings the demo up, keeps one redis-cli connection to the guest open through two runs
// of `kill-primary.sh --mode compose` and a chaos.sh change, and stops and removes everything.
// Minutes, root, and apt installs: it runs in `npm run test:soak` (HBFT_SOAK=1) only; `npm test`
// skips it. On a shared machine: flock /tmp/hbft-cluster.lock npm run test:soak -- composeEngine
// (or HBFT_CLUSTER_LOCK=/tmp/hbft-cluster.lock, which the script takes for the demo part only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runScript } from './runScript.ts';

const SOAK = process.env.HBFT_SOAK === '1';

test('the compose demo under a real Docker engine: a kept redis-cli connection through two kills', { timeout: 30 * 60_000 }, async (t) => {
  const cannot = !SOAK
    ? 'runs in npm run test:soak only (HBFT_SOAK=1): minutes and a Docker engine'
    : process.getuid?.() !== 0
      ? 'needs root (it starts a Docker engine)'
      : undefined;
  if (cannot) {
    t.diagnostic(`skipped: ${cannot}`);
    t.skip(cannot);
    return;
  }
  const run = await runScript('compose-engine-test.sh', [], {}, 28 * 60_000);
  const lines = run.output.split('\n');
  for (const line of lines.filter((l) => /failover time:|kept redis-cli>|passed, \d+ failed/.test(l))) t.diagnostic(line.trim());
  assert.equal(run.code, 0, `compose-engine-test.sh failed:\n${lines.slice(-120).join('\n')}`);
  const answers = lines.filter((l) => l.includes('kept redis-cli> INCR')).map((l) => Number(l.split('-> ')[1]));
  assert.equal(answers.length, 4, 'four INCRs on the kept connection: before, after each kill, under latency');
  assert.deepEqual(
    answers,
    answers.map((_, i) => answers[0]! + i),
    'each answer is the one before plus one: nothing lost, nothing applied twice',
  );
  assert.match(run.output, /: \d+ passed, 0 failed$/m);
});
