// Proves that bad guest images, memory sizes and guests that run garbage end with a clear message
// naming the problem and a non-zero exit, never a stack trace or a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestImageError, SettingError, UsageError } from '@hbft/common/errors.ts';
import { parseElf } from '@hbft/common/guest/elf.ts';
import { validateMemoryBytes } from '@hbft/common/guest/memory.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { runElf } from '@hbft/common/guest/run.ts';

const MiB = 1024 * 1024;
const cfp = readFileSync(resolveGuestImage('cfp'));

function patched(bytes: Uint8Array, edit: (view: DataView, bytes: Uint8Array) => void): Uint8Array {
  const copy = Uint8Array.from(bytes);
  edit(new DataView(copy.buffer), copy);
  return copy;
}

test('corrupt and foreign ELF files are refused with the reason', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['not an ELF', new TextEncoder().encode('#!/bin/sh\necho hi\n'), /not an ELF file/],
    ['truncated', cfp.subarray(0, 30), /truncated ELF header/],
    ['64-bit', patched(cfp, (_, b) => (b[4] = 2)), /64-bit ELF; this machine runs RV32/],
    ['big-endian', patched(cfp, (_, b) => (b[5] = 2)), /not little-endian/],
    ['x86', patched(cfp, (v) => v.setUint16(18, 62, true)), /ELF machine 62, not RISC-V/],
    ['shared object', patched(cfp, (v) => v.setUint16(16, 3, true)), /not a static executable/],
    ['odd entry', patched(cfp, (v) => v.setUint32(24, v.getUint32(24, true) + 1, true)), /is not 2-byte aligned/],
    ['float ABI', patched(cfp, (v) => v.setUint32(36, 4, true)), /hardware floating-point ABI/],
    ['headers past the end', patched(cfp, (v) => v.setUint32(28, 0x7fff_0000, true)), /beyond the end of the file/],
    ['entry outside', patched(cfp, (v) => v.setUint32(24, 0x9000_0000, true)), /entry point 0x90000000 is outside/],
  ];
  for (const [name, bytes, reason] of cases) {
    assert.throws(
      () => parseElf(bytes, 16 * MiB, 'guest.elf'),
      (e: unknown) => e instanceof GuestImageError && reason.test(e.message),
      name,
    );
  }
});

test('an image with the RVC flag loads and runs, whether or not it executes compressed instructions', () => {
  // The rv32im cfp with only the flag set (as padding or an unused object file would set it).
  const flagged = patched(cfp, (v) => v.setUint32(36, v.getUint32(36, true) | 1, true));
  const run = runElf(flagged, { memoryBytes: 32 * MiB, args: 'mb=1 rounds=1' });
  assert.equal(run.outcome, 'pass', run.message);
  assert.equal(parseElf(readFileSync(resolveGuestImage('cfp.rv32imac')), 16 * MiB).entry % 2, 0);
});

test('an image larger than guest memory is refused', () => {
  // A segment that needs 40 MiB on a 16 MiB machine.
  const big = patched(cfp, (view) => {
    const phoff = view.getUint32(28, true);
    const count = view.getUint16(44, true);
    for (let i = 0; i < count; i++) if (view.getUint32(phoff + i * 32, true) === 1) view.setUint32(phoff + i * 32 + 20, 40 * MiB, true);
  });
  assert.throws(() => parseElf(big, 16 * MiB), /does not fit in RAM.*larger than guest memory/);
});

test('memory sizes outside 16 MiB..2 GiB are refused naming the flag', () => {
  assert.throws(
    () => validateMemoryBytes(8 * MiB),
    (e: unknown) => e instanceof SettingError && e.setting === 'memory' && /16MiB to 2GiB/.test(e.problem),
  );
  assert.throws(() => validateMemoryBytes(4 * 1024 * MiB), UsageError);
  assert.throws(() => validateMemoryBytes(17 * MiB), /multiple of 2MiB/);
  assert.equal(validateMemoryBytes(2048 * MiB), 2048 * MiB);
});

test('a guest that executes garbage ends with a fatal guest error, not a hang', () => {
  // Entry at a page of zeros: illegal instruction with mtvec = 0, whose fetch faults at once.
  const garbage = patched(cfp, (view) => {
    const phoff = view.getUint32(28, true);
    let header = phoff;
    while (view.getUint32(header, true) !== 1) header += 32;
    const vaddr = view.getUint32(header + 8, true);
    const memoryBytes = view.getUint32(header + 20, true);
    // Just past the end of the first loaded segment, still inside it after rounding: .bss zeros.
    view.setUint32(24, vaddr + (memoryBytes & ~3) - 4, true);
  });
  const run = runElf(garbage, { memoryBytes: 16 * MiB, maxInstructions: 1_000_000 });
  assert.equal(run.outcome, 'fault');
  assert.match(run.message, /trap handler at 0x00000000 itself raised instruction access fault/);
  assert.ok(run.instructions < 10);
});

test('hbft run reports bad input in one line with a non-zero exit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hbft-bad-'));
  const notElf = join(dir, 'notes.txt');
  writeFileSync(notElf, 'hello');
  const cli = new URL('../../packages/cli/bin/hbft.js', import.meta.url).pathname;
  const cases: [string[], number, RegExp][] = [
    [['run', notElf], 1, /notes.txt: not an ELF file/],
    [['run', join(dir, 'missing.elf')], 1, /cannot read .*missing.elf: ENOENT/],
    [['run', 'cfp', '--memory', '3MiB'], 2, /--memory: 3MiB is out of range/],
    [['run', 'cfp', '--memory', 'lots'], 2, /--memory: cannot read "lots"/],
    [['run', 'cfp', '--max-instructions', '1000'], 124, /stopped after 1000 instructions/],
  ];
  for (const [args, status, message] of cases) {
    const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    assert.equal(result.status, status, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  }
});
