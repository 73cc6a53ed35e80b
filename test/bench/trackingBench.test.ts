// Proves that `hbft bench tracking` runs end to end from the command line and measures what the
// paper measures: on cint, rfr removes the read faults origin takes, wfp's predictions take most of
// rfr's write faults away, the superpage mapper hits, and the report (JSON, table and chart) is
// complete and consistent with itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { formatTrackingReport, trackingTargets } from '@hbft/common/bench/trackingReport.ts';
import type { TrackingBenchReport } from '@hbft/common/bench/tracking.ts';

const hbft = fileURLToPath(new URL('../../packages/cli/bin/hbft.js', import.meta.url));

test('hbft bench tracking measures cint with every strategy and reports it', { timeout: 180_000 }, async () => {
  const svg = join(mkdtempSync(join(tmpdir(), 'hbft-bench-')), 'tracking.svg');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      hbft,
      'bench',
      'tracking',
      '--workloads',
      'cint',
      '--measure-ms',
      '300',
      '--warmup-ms',
      '500',
      '--rounds',
      '1',
      '--exit-cost-ns',
      '1500',
      '--json',
      '--svg',
      svg,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const report = JSON.parse(stdout) as TrackingBenchReport & { targets: unknown[] };
  const row = (strategy: string) => report.tracking.find((r) => r.strategy === strategy)!;
  assert.deepEqual(report.tracking.map((r) => r.strategy).sort(), ['none', 'origin', 'pml', 'rfr', 'wfp']);
  for (const r of report.tracking) {
    assert.ok(r.epochs > 0, `${r.strategy}: measured some epochs`);
    assert.ok(r.normalized > 0 && Number.isFinite(r.normalized), `${r.strategy}: throughput ratio ${r.normalized}`);
  }
  assert.equal(row('none').normalized, 1);
  assert.ok(row('origin').readFaultsPerEpoch > 10, `origin read-faults (${row('origin').readFaultsPerEpoch}/epoch)`);
  assert.ok(row('rfr').readFaultsPerEpoch <= row('origin').readFaultsPerEpoch * 0.01, 'rfr keeps its tables');
  assert.ok(
    row('wfp').writeFaultsPerEpoch < row('rfr').writeFaultsPerEpoch / 2,
    `wfp ${row('wfp').writeFaultsPerEpoch} vs rfr ${row('rfr').writeFaultsPerEpoch} write faults`,
  );
  assert.ok(row('wfp').recall! > 0.5, `wfp recall ${row('wfp').recall}`);
  assert.equal(row('pml').readFaultsPerEpoch + row('pml').writeFaultsPerEpoch, 0);
  const superpage = report.mapping.find((m) => m.mapper === 'superpage')!;
  assert.ok(superpage.hitRatio! > 0.9, `superpage hit ratio ${superpage.hitRatio}`);
  assert.equal(
    superpage.mapOperationsPerEpoch < report.mapping.find((m) => m.mapper === 'per-page' && m.strategy === 'wfp')!.mapOperationsPerEpoch,
    true,
  );
  // Read back from JSON (NaN became null) the report still formats, and its targets are the same.
  assert.deepEqual(report.targets, trackingTargets(report));
  assert.match(formatTrackingReport(report), /\| cint +\| wfp /);
  assert.match(readFileSync(svg, 'utf8'), /^<svg[\s\S]*<\/svg>\s*$/);
});
