// Proves that `hbft run --signature FILE` writes begin_signature..end_signature as Spike's +signature= does (one 32-bit word per line, 8 hex digits), refuses an image without the region in one line, and that a riscv-tests failure code is explained: an unexpected trap (TESTNUM | 1337) is reported as that trap, a test that failed on purpose as its number.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RAM_BASE } from '@hbft/common/guest/addressMap.ts';
import { runElf } from '@hbft/common/guest/run.ts';
import { addi, beq, csrrs, csrrw, ECALL, iType, jal, li, sw } from './rv32Assembler.ts';
import { buildElf, wordsToBytes } from './elfWriter.ts';

const MiB = 1024 * 1024;
const TRAP_VECTOR = RAM_BASE + 0x800;
const TOHOST = RAM_BASE + 0x1000;
const SIGNATURE = RAM_BASE + 0x2000;
const GP = 3;
const T0 = 5;
const T1 = 6;
const T5 = 30;
const T6 = 31;

/**
 * An image in the manner of riscv-tests' p environment: `body` runs with mtvec at a trap vector
 * that passes ecalls' TESTNUM to tohost and marks any other trap with `TESTNUM | 1337`.
 */
function riscvTestsImage(body: number[], signatureWords = 3): Uint8Array {
  const code = new Array<number>(0x3000 / 4).fill(0);
  const start = [...li(T0, TRAP_VECTOR), csrrw(0, 0x305, T0), ...body];
  start.forEach((word, i) => (code[i] = word));
  const vector = [
    csrrs(T5, 0x342, 0), // mcause
    addi(T6, 0, 11),
    beq(T5, T6, 8), // an ecall: pass or fail on purpose
    iType(1337, GP, 6, GP), // ori gp, gp, 1337
    ...li(T5, TOHOST),
    sw(GP, T5, 0),
    jal(-12, 0),
  ];
  vector.forEach((word, i) => (code[(TRAP_VECTOR - RAM_BASE) / 4 + i] = word));
  return buildElf({
    address: RAM_BASE,
    code: wordsToBytes(code),
    symbols: { tohost: TOHOST, begin_signature: SIGNATURE, end_signature: SIGNATURE + 4 * signatureWords },
  });
}

const SIGNED = riscvTestsImage([
  ...li(T0, SIGNATURE),
  ...li(T1, 0xdeadbeef),
  sw(T1, T0, 0),
  ...li(T1, 0x00c0ffee),
  sw(T1, T0, 8),
  addi(GP, 0, 1),
  ECALL,
]);

test('--signature writes the region as Spike does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hbft-signature-'));
  const image = join(dir, 'signed.elf');
  const signature = join(dir, 'signed.signature');
  writeFileSync(image, SIGNED);
  const cli = new URL('../../packages/cli/bin/hbft.js', import.meta.url).pathname;
  const run = spawnSync(process.execPath, [cli, 'run', image, '--signature', signature], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(readFileSync(signature, 'utf8'), 'deadbeef\n00000000\n00c0ffee\n');

  // An image without the symbols: one line naming them, no stack trace.
  const plain = join(dir, 'plain.elf');
  writeFileSync(
    plain,
    buildElf({ address: RAM_BASE, code: wordsToBytes([addi(GP, 0, 1), ...li(T5, TOHOST), sw(GP, T5, 0)]), symbols: { tohost: TOHOST } }),
  );
  const refused = spawnSync(process.execPath, [cli, 'run', plain, '--signature', signature], { encoding: 'utf8' });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /--signature: .*needs the symbols begin_signature and end_signature/);
  assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
});

test('an unexpected trap under riscv-tests is reported as the trap, not as "test 669 failed"', () => {
  // Test 3 executes an illegal instruction: the trap vector writes 3 | 1337 = 1339 to tohost.
  const run = runElf(riscvTestsImage([addi(GP, 0, 3), 0]), { memoryBytes: 16 * MiB, maxInstructions: 1000 });
  assert.equal(run.outcome, 'fail');
  assert.equal(run.exitCode, 669);
  assert.match(
    run.message,
    /unexpected trap: illegal instruction at pc 0x80000010 \(mtval 0x00000000\), in test 2 or one whose number differs from it only in bits of 1337/,
  );
  assert.match(run.message, /tohost 0x53b = TESTNUM \| 1337, which reads as "test 669 failed"/);
});

test('a riscv-tests failure on purpose (through ecall) is reported as the failing test, even 668', () => {
  for (const testNumber of [5, 668]) {
    const run = runElf(riscvTestsImage([addi(GP, 0, (testNumber << 1) | 1), ECALL]), { memoryBytes: 16 * MiB, maxInstructions: 1000 });
    assert.equal(run.outcome, 'fail');
    assert.equal(run.failingTest, testNumber);
    assert.match(run.message, new RegExp(`: test ${testNumber} failed$`));
  }
});
