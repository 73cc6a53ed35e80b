#!/usr/bin/env node
// Runs the type check, the layering rules and then every test file under test/ with Node's own test runner.
// `node --test` takes no globs, and with no files it runs nothing and still exits 0, so this
// script lists the files itself and fails when it finds none.
// --soak runs the same files with HBFT_SOAK=1: more kills, longer loads and fuzzing (minutes).
// Usage: node scripts/run-tests.mjs [--soak] [--no-typecheck] [FILTER...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
const soak = args.includes('--soak');
const typecheck = !args.includes('--no-typecheck');
const filters = args.filter((a) => !a.startsWith('--'));
const root = new URL('..', import.meta.url).pathname;

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const files = walk(join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  .map((f) => relative(root, f))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}

if (typecheck && filters.length === 0) {
  console.log('run-tests: type check (tsc --noEmit)');
  const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit'], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  // The house style, kept by tools: Biome's lint rules and formatting (biome.json); the layers of
  // .dependency-cruiser.cjs (every import points down, no cycle); no unused file, dependency or
  // export (knip.json).
  const checks = [
    ['lint and format (biome ci)', ['biome', 'ci', '.']],
    ['layering (depcruise)', ['depcruise', '--config', '.dependency-cruiser.cjs', 'packages', 'test', 'scripts']],
    ['unused code (knip)', ['knip', '--include-entry-exports']],
  ];
  for (const [name, command] of checks) {
    console.log(`run-tests: ${name}`);
    const check = spawnSync('npx', command, { cwd: root, stdio: 'inherit' });
    if (check.status !== 0) process.exit(check.status ?? 1);
  }
}

// Files that run whole clusters of daemon processes and judge timing-sensitive behaviour (failure
// detection): they run one at a time after the rest, so that two of them never compete for the
// two cores and provoke the very false failovers some of them check for.
const clusterTest = (file) => /test\/(failover|deploy|chaos\/replicationChaos|dashboard\/browser|transport\/linkSecurity)/.test(file);
const phases = [
  { name: 'unit and integration', files: files.filter((f) => !clusterTest(f)), concurrency: 2 },
  { name: 'clusters of processes, one file at a time', files: files.filter(clusterTest), concurrency: 1 },
].filter((phase) => phase.files.length > 0);

console.log(`run-tests: ${files.length} test files${soak ? ' (soak)' : ''}`);
const env = { ...process.env, ...(soak ? { HBFT_SOAK: '1' } : {}) };
let failed = false;
for (const phase of phases) {
  console.log(`run-tests: ${phase.name} (${phase.files.length} files)`);
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${phase.concurrency}`, ...phase.files],
    { cwd: root, stdio: 'inherit', env },
  );
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
