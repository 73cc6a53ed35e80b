// Proves that the compiled-block engine is indistinguishable from the reference interpreter on every ISA image: each passes on both with the same state slice by slice, with every block compiled on first entry, and under each tracking strategy both report the same dirty pages and fault counts in every epoch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { GUEST_IMAGES_DIR } from '@hbft/common/guest/images.ts';
import { TRACKING_STRATEGIES } from '@hbft/common/tracking/tracker.ts';
import { createEnginePair, runLockstep } from './engineLockstep.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;

/** Slice sizes that are odd and varied, so slice ends fall inside blocks and at their edges. */
function sliceSequence(sizes: number[]): () => number {
  let i = 0;
  return () => sizes[i++ % sizes.length]!;
}

const isaImages = readdirSync(`${GUEST_IMAGES_DIR}isa`)
  .filter((name) => name.endsWith('.elf'))
  .sort();

test('the ISA images are there to compare', () => {
  assert.ok(isaImages.length >= 10, `found ${isaImages.length} ISA images`);
});

test('every ISA image passes on both engines with the same state slice by slice, every block compiled at once', () => {
  for (const name of isaImages) {
    const image = readFileSync(`${GUEST_IMAGES_DIR}isa/${name}`);
    // Compiling on first entry puts every instruction of the tests through the compiler.
    const pair = createEnginePair({ memoryBytes: MEMORY_BYTES, cpu: { blockEntriesBeforeCompile: 0 } }, (machine) =>
      machine.loadElf(image, name),
    );
    runLockstep(pair, {
      instructionsMax: 100_000_000,
      nextSlice: sliceSequence([9_973, 1, 13, 40_099, 64, 65, 200_003]),
      compareRamEverySlices: 50,
      // RAM and CPU/device state compared directly: what stateHash() covers, without hashing 16 MiB.
      hashAtEnd: false,
      context: `isa/${name}`,
    });
    assert.deepEqual(pair.interpreter.exit, { kind: 'exit', code: 0, via: 'tohost' }, `isa/${name} passes on the interpreter`);
    assert.deepEqual(pair.blocks.exit, pair.interpreter.exit, `isa/${name}: same exit`);
  }
});

test('every ISA image: every tracking strategy sees the same dirty pages and faults on both engines', () => {
  for (const name of isaImages) {
    const image = readFileSync(`${GUEST_IMAGES_DIR}isa/${name}`);
    for (const strategy of TRACKING_STRATEGIES) {
      // Loops compiled on their second pass; the test above already compiled every instruction.
      const pair = createEnginePair({ memoryBytes: MEMORY_BYTES, cpu: { blockEntriesBeforeCompile: 1 } }, (machine) =>
        machine.loadElf(image, name),
      );
      runLockstep(pair, {
        instructionsMax: 100_000,
        nextSlice: sliceSequence([997, 1, 13, 4_099, 64, 65]),
        tracking: strategy,
        epochInstructions: 3_001,
        compareRamEverySlices: 500,
        hashAtEnd: false,
        context: `isa/${name} under ${strategy}`,
      });
    }
  }
});

test('a cache too small for the code flushes and starts again, with the same results', () => {
  const name = 'fold32.elf';
  const image = readFileSync(`${GUEST_IMAGES_DIR}isa/${name}`);
  const pair = createEnginePair({ memoryBytes: MEMORY_BYTES, cpu: { blockEntriesBeforeCompile: 0, cachedBlocksMax: 500 } }, (machine) =>
    machine.loadElf(image, name),
  );
  runLockstep(pair, {
    instructionsMax: 100_000_000,
    nextSlice: sliceSequence([4_093, 17]),
    hashAtEnd: false,
    context: `isa/${name}, small cache`,
  });
  assert.deepEqual(pair.blocks.exit, { kind: 'exit', code: 0, via: 'tohost' });
  const stats = pair.blocks.cpu.blockStats!;
  assert.ok(stats.flushes > 5, `flushed ${stats.flushes} times`);
  assert.ok(stats.blocksCached <= 500, `holds ${stats.blocksCached} blocks`);
});
