// Proves that the compiled-block engine is indistinguishable from the reference interpreter on the workloads: each runs to the same state (RAM, CPU, devices) slice by slice, under each tracking strategy both engines report the same dirty pages and fault counts in every epoch, and cycle counts read inside compiled loops are exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CLINT_BASE, CLINT_MTIME, FINISHER_BASE, FINISHER_PASS, RAM_BASE } from '@hbft/common/guest/addressMap.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { TRACKING_STRATEGIES } from '@hbft/common/tracking/tracker.ts';
import { createEnginePair, runLockstep } from './engineLockstep.ts';
import { add, addi, beq, bne, li, lw, sw } from './rv32Assembler.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;

/** Small arguments so that each workload finishes in a few million instructions (see guests/src). */
const WORKLOADS = [
  { name: 'cfp', args: 'mb=1 rounds=1' },
  { name: 'cint', args: 'mb=1 rounds=1' },
  { name: 'jbb', args: 'mb=1 rounds=2' },
  { name: 'web', args: 'mb=1 rounds=1' },
];
/** Under tracking, each workload runs this far (its start-up and first phase). */
const TRACKED_INSTRUCTIONS_MAX = 3_000_000;
const EPOCH_INSTRUCTIONS = 200_000;

/** Slice sizes that are odd and varied, so slice ends fall inside blocks and at their edges. */
function sliceSequence(sizes: number[]): () => number {
  let i = 0;
  return () => sizes[i++ % sizes.length]!;
}

for (const workload of WORKLOADS) {
  test(`${workload.name}: both engines reach the same state slice by slice and print the same checksum`, () => {
    const image = readFileSync(resolveGuestImage(workload.name));
    const pair = createEnginePair({ memoryBytes: MEMORY_BYTES, args: workload.args }, (machine) => machine.loadElf(image, workload.name));
    const result = runLockstep(pair, {
      instructionsMax: 100_000_000,
      nextSlice: sliceSequence([100_003, 77_777, 1, 33_331, 5, 200_029]),
      compareRamEverySlices: 3,
      context: workload.name,
    });
    assert.ok(
      pair.interpreter.exit?.kind === 'exit' && pair.interpreter.exit.code === 0,
      `${workload.name} passed: ${JSON.stringify(pair.interpreter.exit)}`,
    );
    assert.match(pair.console.blocks, /checksum=[0-9a-f]+/);
    assert.ok(result.ramCompared >= 2, `compared RAM ${result.ramCompared} times`);
    assert.ok(pair.blocks.cpu.blockStats!.blocksCompiled > 10, 'the block engine compiled the hot code');
  });

  test(`${workload.name}: every tracking strategy sees the same dirty pages and faults on both engines`, () => {
    const image = readFileSync(resolveGuestImage(workload.name));
    for (const strategy of TRACKING_STRATEGIES) {
      const pair = createEnginePair({ memoryBytes: MEMORY_BYTES, args: workload.args }, (machine) => machine.loadElf(image, workload.name));
      const result = runLockstep(pair, {
        instructionsMax: TRACKED_INSTRUCTIONS_MAX,
        nextSlice: sliceSequence([50_021, 3, 99_991, 12_345]),
        tracking: strategy,
        epochInstructions: EPOCH_INSTRUCTIONS,
        compareRamEverySlices: 40,
        context: `${workload.name} under ${strategy}`,
      });
      assert.ok(result.epochs >= 2, `${workload.name} under ${strategy} ran several epochs`);
      if (strategy === 'origin') assert.ok(result.faults > 0, 'origin faulted');
    }
  });
}

test('mtime read inside compiled loops counts exactly the instructions before the load', () => {
  // x6 += mtime (low word) on every pass; the loop is one block, or two with a branch inside.
  const loops: Record<string, number[]> = {
    'one block': [lw(5, 27, 0), add(6, 6, 5), addi(11, 11, -1), bne(11, 0, -12)],
    'two blocks': [lw(5, 27, 0), beq(5, 0, 8), add(6, 6, 5), addi(11, 11, -1), bne(11, 0, -16)],
  };
  for (const [shape, loop] of Object.entries(loops)) {
    const pair = createEnginePair({ memoryBytes: MEMORY_BYTES, cpu: { blockEntriesBeforeCompile: 0 } }, (machine) => {
      const code = [
        ...li(27, CLINT_BASE + CLINT_MTIME),
        ...li(11, 5_000),
        ...loop,
        ...li(12, FINISHER_BASE),
        ...li(13, FINISHER_PASS),
        sw(13, 12, 0),
      ];
      code.forEach((word, i) => {
        machine.memory.i32[i] = word;
      });
      machine.cpu.pc = RAM_BASE | 0;
    });
    runLockstep(pair, {
      instructionsMax: 100_000,
      nextSlice: sliceSequence([1_001, 7, 333]),
      hashAtEnd: false,
      context: `mtime loop, ${shape}`,
    });
    assert.equal(pair.blocks.exit?.kind, 'exit', `${shape}: the loop ran to the end`);
    assert.equal(pair.blocks.cpu.x[6], pair.interpreter.cpu.x[6]);
  }
});

test('a block engine whose compiles are held (as a resumed guest is, Cpu.holdCompiles) stays identical to the interpreter before, during and after the hold', () => {
  const workload = WORKLOADS[1]!; // cint: 27 M instructions, well past the hold
  const image = readFileSync(resolveGuestImage(workload.name));
  const pair = createEnginePair({ memoryBytes: MEMORY_BYTES, args: workload.args }, (machine) => machine.loadElf(image, workload.name));
  // Compiled blocks first, then a hold while they are cached, then compiling again.
  runLockstep(pair, { instructionsMax: 2_000_000, nextSlice: sliceSequence([100_003, 7, 33_331]), context: 'before the hold' });
  const compiledBefore = pair.blocks.cpu.blockStats!.blocksCompiled;
  assert.ok(compiledBefore > 10, 'the block engine compiled the hot code before the hold');
  pair.blocks.cpu.holdCompiles(3_000_000);
  runLockstep(pair, {
    instructionsMax: 2_900_000,
    nextSlice: sliceSequence([77_777, 1, 200_029]),
    context: 'during the hold',
    compareRamEverySlices: 5,
  });
  assert.equal(pair.blocks.cpu.blockStats!.blocksCompiled, compiledBefore, 'nothing was compiled during the hold');
  runLockstep(pair, {
    instructionsMax: 100_000_000,
    nextSlice: sliceSequence([100_003, 5, 33_331]),
    context: 'after the hold',
    compareRamEverySlices: 3,
  });
  assert.ok(pair.interpreter.exit?.kind === 'exit' && pair.interpreter.exit.code === 0, JSON.stringify(pair.interpreter.exit));
  assert.ok(pair.blocks.cpu.blockStats!.blocksCompiled > compiledBefore, 'the block engine compiled again after the hold');
  assert.equal(pair.console.blocks, pair.console.interpreter);
});
