// Proves that `hbft bench network` runs unmodified redis-benchmark against redis-server, kv
// unprotected on a TAP and kv protected through the daemons in one run, and reports requests/s,
// p50 and p99 for each test of each (a smoke test with few requests; the real run is manual).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLI, runCommand } from './runScript.ts';

test('hbft bench network measures redis-server, kv unprotected and kv protected side by side', { timeout: 300_000 }, async (t) => {
  assert.equal(
    process.getuid?.(),
    0,
    'this test needs root: the bench makes a network namespace, a bridge and TAP devices (CI runs as root)',
  );
  const result = await runCommand(
    process.execPath,
    [CLI, 'bench', 'network', '--requests', '300', '--clients', '10', '--memory', '64MiB', '--json'],
    {
      timeoutMs: 280_000,
    },
  );
  assert.equal(result.code, 0, result.output);
  const report = JSON.parse(result.stdout) as {
    rows: { target: string; test: string; requestsPerS: number; p50Ms: number; p99Ms: number }[];
  };
  for (const target of ['redis-server', 'kv-unprotected', 'kv-protected']) {
    const rows = report.rows.filter((row) => row.target === target);
    assert.deepEqual(
      rows.map((row) => row.test),
      ['SET', 'GET', 'INCR'],
      `${target}: one result per test\n${result.output}`,
    );
    for (const row of rows) {
      assert.ok(row.requestsPerS > 0 && row.p50Ms > 0 && row.p99Ms >= row.p50Ms, `${target} ${row.test}: ${JSON.stringify(row)}`);
    }
  }
  t.diagnostic(
    result.stderr
      .split('\n')
      .filter((line) => /\/s, p50/.test(line))
      .join(' | '),
  );
});
