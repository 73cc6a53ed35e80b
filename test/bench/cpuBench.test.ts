// Proves that `hbft bench cpu --baseline REV` runs end to end from the command line with every
// engine on a thread of its own: this revision's two engines on the rv32im and rv32imac builds and
// the baseline's two on the rv32im build each report instructions measured in every round, each
// engine is compared with its baseline round by round, and the table formats. The baseline is the
// revision before the issue-12 engine changes, whose machine state format (version 1) this
// revision's does not match: each contender starts from the image, not from a copied state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { formatCpuBench, type CpuBenchResult, type EngineMeasurement } from '@hbft/common/bench/cpu.ts';

const hbft = fileURLToPath(new URL('../../packages/cli/bin/hbft.js', import.meta.url));

const BASELINE = '85c091b';

test('hbft bench cpu measures both engines of this revision and of a baseline on cint', { timeout: 180_000 }, async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [hbft, 'bench', 'cpu', '--workloads', 'cint', '--seconds', '0.4', '--rounds', '2', '--baseline', BASELINE, '--json'],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout) as CpuBenchResult;
  assert.equal(result.baseline, BASELINE);
  assert.equal(result.options.rounds, 2);
  assert.deepEqual(
    result.workloads.map((w) => w.workload),
    ['cint'],
  );
  const [cint] = result.workloads;
  assert.ok(cint?.baseline !== undefined, 'the baseline was measured');
  const measured: [string, EngineMeasurement][] = [
    ['rv32im blocks', cint.engines.blocks],
    ['rv32im interpreter', cint.engines.interpreter],
    ['rv32imac blocks', cint.rv32imac.blocks],
    ['rv32imac interpreter', cint.rv32imac.interpreter],
    [`${BASELINE} blocks`, cint.baseline.blocks],
    [`${BASELINE} interpreter`, cint.baseline.interpreter],
  ];
  for (const [name, m] of measured) {
    assert.ok(m.instructions > 0 && m.seconds > 0 && m.cpuSeconds > 0 && m.mips > 0, `${name}: ${JSON.stringify(m)}`);
    assert.equal(m.roundMips.length, 2, `${name}: one figure per round`);
  }
  // Each engine is compared with its baseline round by round.
  for (const engine of ['blocks', 'interpreter'] as const) {
    const ratios = cint.vsBaseline?.[engine];
    assert.ok(
      ratios !== undefined && ratios.lowest <= ratios.median && ratios.median <= ratios.highest,
      `${engine}: ${JSON.stringify(ratios)}`,
    );
    assert.ok((result.overall.vsBaseline?.[engine] ?? 0) > 0);
  }
  assert.match(formatCpuBench(result), /cint +interpreter +[\d.]+ +[\d.]+ +[\d.]+×/);
});
