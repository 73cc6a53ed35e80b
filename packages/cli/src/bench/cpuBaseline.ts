/**
 * The CPU engines of an earlier git revision, for `hbft bench cpu --baseline REV`: the revision's
 * packages/common/src is extracted with `git archive` into a temporary directory (its
 * node_modules a link to this checkout's), whose Machine the benchmark's threads import, so that
 * both revisions' engines run in one process, side by side, on the same images.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UsageError } from '@hbft/common/errors.ts';
import type { CpuBenchBaseline } from '@hbft/common/bench/cpu.ts';

/** Largest archive of packages/common/src accepted from git (it is a few hundred KiB). */
const ARCHIVE_BYTES_MAX = 64 * 1024 * 1024;

const REPOSITORY_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Loads the engines of `revision`; call `dispose` when the benchmark is done. */
export async function loadCpuBaseline(revision: string): Promise<{ baseline: CpuBenchBaseline; dispose: () => void }> {
  if (!/^[\w./~^@{}-]+$/.test(revision) || revision.startsWith('-')) {
    throw new UsageError(`--baseline: "${revision}" is not a git revision`);
  }
  const archive = spawnSync(
    'git',
    ['-C', REPOSITORY_ROOT, 'archive', '--format=tar', revision, 'package.json', 'packages/common/package.json', 'packages/common/src'],
    {
      maxBuffer: ARCHIVE_BYTES_MAX,
    },
  );
  if (archive.status !== 0) {
    throw new UsageError(
      `--baseline: git cannot read packages/common/src at "${revision}": ${archive.stderr.toString().trim().split('\n')[0]}`,
    );
  }
  const directory = mkdtempSync(join(tmpdir(), 'hbft-baseline-'));
  const dispose = (): void => rmSync(directory, { recursive: true, force: true });
  try {
    const untar = spawnSync('tar', ['-x', '-C', directory], { input: archive.stdout });
    if (untar.status !== 0) throw new UsageError(`--baseline: cannot unpack the archive: ${untar.stderr.toString().trim()}`);
    symlinkSync(join(REPOSITORY_ROOT, 'node_modules'), join(directory, 'node_modules'));
    return {
      baseline: { label: revision, machineModuleUrl: pathToFileURL(join(directory, 'packages/common/src/guest/machine.ts')).href },
      dispose,
    };
  } catch (error) {
    dispose();
    throw error;
  }
}
