// Proves that a primary's /readyz, /healthz and /metrics tell the truth with real processes: ready
// and `protected` while its backup acknowledges; not ready and `holding` once the backup is gone
// (output held under the default --on-backup-loss hold), or when the backup refuses the handshake
// (a memory mismatch, named in `detail`); and that retrying a refusing backup logs a line when the
// failure starts, not one per attempt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../helpers/cluster.ts';

interface Health {
  ready: boolean;
  reason: string | null;
  detail: string | null;
}

async function health(
  port: number,
): Promise<{ readyzStatus: number; readyz: Health; healthz: Health; metric: (reason: string) => number }> {
  const readyzResponse = await fetch(`http://127.0.0.1:${port}/readyz`);
  const readyz = (await readyzResponse.json()) as Health;
  const healthz = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as Health;
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const metric = (reason: string) => Number(new RegExp(`^hbft_health\\{reason="${reason}"\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
  return { readyzStatus: readyzResponse.status, readyz, healthz, metric };
}

async function waitUntil(what: string, condition: () => Promise<boolean>, cluster: Cluster, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}\n${cluster.logs()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const timing = ['--heartbeat-ms', '50', '--failover-timeout-ms', '1000'];

test('a protected primary is ready; cut off from its backup it holds output and says so', { timeout: 90_000 }, async () => {
  const cluster = await Cluster.start({ primaryArgs: timing, backupArgs: timing });
  try {
    await cluster.waitProtected();
    const port = cluster.ports.primaryHttp;
    await waitUntil('the primary reports protected', async () => (await health(port)).readyz.reason === 'protected', cluster);
    const protectedHealth = await health(port);
    assert.equal(protectedHealth.readyzStatus, 200);
    assert.equal(protectedHealth.readyz.ready, true);
    assert.equal(protectedHealth.healthz.reason, 'protected');
    assert.equal(protectedHealth.metric('protected'), 1);

    cluster.backup.process.kill('SIGKILL');
    await waitUntil('the primary reports holding', async () => (await health(port)).readyz.reason === 'holding', cluster);
    const holding = await health(port);
    assert.equal(holding.readyzStatus, 503, 'a primary that holds every reply is not ready');
    assert.equal(holding.readyz.ready, false);
    assert.equal(holding.healthz.reason, 'holding', '/healthz says why');
    assert.equal(holding.metric('holding'), 1, '/metrics says why');
    assert.equal(holding.metric('protected'), 0);
  } finally {
    await cluster.stop();
  }
});

test('a primary whose backup refuses the handshake is not ready, names the mismatch, and logs it once', { timeout: 90_000 }, async () => {
  const cluster = await Cluster.start({ memory: '32MiB', backupMemory: '64MiB' });
  try {
    const port = cluster.ports.primaryHttp;
    await waitUntil(
      'the primary logs that it cannot reach the backup',
      async () => cluster.primary.log.some((line) => line.includes('cannot reach the backup')),
      cluster,
    );

    // The primary keeps retrying; its log grows by a bounded number of lines, not a few per attempt.
    // Its log is JSON lines; the guest's console (the kv workload's banner, which may still be
    // arriving, in pieces) shares the output but is not the log.
    const linesBefore = cluster.primary.log.length;
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const newLines = cluster.primary.log.slice(linesBefore).filter((line) => line.startsWith('{'));
    assert.ok(newLines.length <= 2, `${newLines.length} log lines in 6 s of retrying:\n${newLines.slice(0, 20).join('\n')}`);
    assert.equal(cluster.primary.process.exitCode, null, 'the primary is still up');

    await waitUntil(
      'the primary reports the refusal',
      async () => /E_MEMORY_MISMATCH/.test((await health(port)).readyz.detail ?? ''),
      cluster,
    );
    const refused = await health(port);
    assert.equal(refused.readyzStatus, 503);
    assert.equal(refused.readyz.ready, false);
    assert.equal(refused.readyz.reason, 'holding');
    assert.equal(refused.healthz.reason, 'holding');
    assert.match(refused.healthz.detail ?? '', /E_MEMORY_MISMATCH/);
    assert.equal(refused.metric('holding'), 1);
  } finally {
    await cluster.stop();
  }
});
