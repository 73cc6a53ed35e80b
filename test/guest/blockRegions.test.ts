// Proves that a compiled region holds more than a loop: a hot function's two sides of a branch, their join and the return point of its call are compiled into regions with their roots, the region falls from block to block, and the result is the interpreter's, slice by slice, whatever the slice sizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FINISHER_BASE, FINISHER_PASS, PAGE_BYTES, RAM_BASE } from '@hbft/common/guest/addressMap.ts';
import { REGION_BLOCKS_MAX } from '@hbft/common/guest/blockCompiler.ts';
import type { Machine } from '@hbft/common/guest/machine.ts';
import { createEnginePair, runLockstep } from './engineLockstep.ts';
import { JALR, addi, blt, bne, iType, jal, li, sw } from './rv32Assembler.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
const MAIN = RAM_BASE + PAGE_BYTES;
const FUNCTION = MAIN + 64;
const EXIT = RAM_BASE + 2 * PAGE_BYTES;
const PASSES = 2000;
/** Passes with x11 below this take the function's second side (x11 counts down). */
const SPLIT = 500;

function writeWords(machine: Machine, address: number, words: number[]): void {
  words.forEach((word, i) => {
    machine.memory.i32[((address - RAM_BASE) >>> 2) + i] = word;
  });
}

/**
 * main: x11 = PASSES; do { x11--; call f } while (x11 != 0); exit.
 * f: if (x11 < SPLIT) x10 += 100 else x10 += 1; x13 += 1; return.
 */
function load(machine: Machine): void {
  writeWords(machine, MAIN, [
    addi(11, 0, PASSES),
    addi(12, 0, SPLIT),
    addi(11, 11, -1), // the loop, at MAIN + 8
    jal(FUNCTION - (MAIN + 12), 1),
    bne(11, 0, -8), // the call's return point
    jal(EXIT - (MAIN + 20), 0),
  ]);
  writeWords(machine, FUNCTION, [
    blt(11, 12, 12), // to the second side
    addi(10, 10, 1),
    jal(8, 0), // to the join
    addi(10, 10, 100),
    addi(13, 13, 1), // the join
    iType(0, 1, 0, 0, JALR), // return
  ]);
  writeWords(machine, EXIT, [...li(14, FINISHER_BASE), ...li(15, FINISHER_PASS), sw(15, 14, 0), jal(0, 0)]);
  machine.cpu.pc = MAIN | 0;
}

test('a hot function with a branch runs in regions that hold both its sides, its join and its return point, as the interpreter runs it', () => {
  for (const slices of [[100_003], [7, 1, 13, 64, 3]]) {
    const pair = createEnginePair({ memoryBytes: MEMORY_BYTES }, load);
    let i = 0;
    runLockstep(pair, { instructionsMax: 1_000_000, nextSlice: () => slices[i++ % slices.length]!, context: `slices ${slices.join(',')}` });
    for (const machine of [pair.interpreter, pair.blocks]) {
      assert.deepEqual(machine.exit, { kind: 'exit', code: 0, via: 'finisher' });
      assert.equal(machine.cpu.x[10], PASSES - SPLIT + SPLIT * 100, 'each pass took the side its x11 chose');
      assert.equal(machine.cpu.x[13], PASSES, 'each pass reached the join');
    }
    const stats = pair.blocks.cpu.blockStats!;
    assert.ok(stats.blocksCompiled > 0, 'the hot code was compiled');
    // Loop-only regions held one block each (this code has no loop inside one page's blocks but the
    // outer one): more blocks than roots means successors were compiled into their roots' regions.
    assert.ok(stats.blocksCached > stats.blocksCompiled, `${stats.blocksCached} blocks in ${stats.blocksCompiled} regions`);
    assert.ok(stats.blocksCached <= stats.blocksCompiled * REGION_BLOCKS_MAX, 'no region passes its bound');
  }
});
