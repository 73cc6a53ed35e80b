// Proves that the emulated hart conforms to RV32IM + Zicsr + Zifencei in machine mode: every image built from packages/common/guests/isa passes on both CPU engines, also when stopped and resumed every few instructions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MEMORY_BYTES_MIN } from '@hbft/common/guest/addressMap.ts';
import { CPU_ENGINES } from '@hbft/common/guest/cpu.ts';
import { GUEST_IMAGES_DIR } from '@hbft/common/guest/images.ts';
import { runElf, type RunElfOptions } from '@hbft/common/guest/run.ts';

const ISA_IMAGES_DIR = join(GUEST_IMAGES_DIR, 'isa');

/** long_run.S, the longest, retires about 32 million instructions. */
const INSTRUCTIONS_MAX = 100_000_000;

/**
 * A slice this short stops the hart inside nearly every basic block, so any state the engine
 * keeps only while a slice runs (registers in locals, counters, a pending interrupt) must be
 * written back and picked up again exactly.
 */
const SLICE_INSTRUCTIONS_SHORT = 7;

/** One image per source in guests/isa; fewer means the build or the checkout lost some. */
const IMAGES_MIN = 21;

const images = readdirSync(ISA_IMAGES_DIR)
  .filter((name) => name.endsWith('.elf'))
  .sort();

function assertPasses(image: string, options: RunElfOptions): void {
  // The smallest RAM the machine allows: machine.S checks where RAM ends, load_store.S uses its
  // last word.
  const result = runElf(join(ISA_IMAGES_DIR, image), { maxInstructions: INSTRUCTIONS_MAX, memoryBytes: MEMORY_BYTES_MIN, ...options });
  const failing = result.failingTest === undefined ? '' : ` (test ${result.failingTest} of ${image.replace(/\.elf$/, '')})`;
  assert.equal(result.outcome, 'pass', `${result.message}${failing}\n${result.console}`);
}

test('the ISA images are present', () => {
  assert.ok(images.length >= IMAGES_MIN, `expected at least ${IMAGES_MIN} images in ${ISA_IMAGES_DIR}, found ${images.length}`);
});

for (const image of images) {
  for (const engine of CPU_ENGINES) {
    test(`${image} on ${engine}`, () => {
      assertPasses(image, { engine });
    });

    test(`${image} on ${engine}, resumed every ${SLICE_INSTRUCTIONS_SHORT} instructions`, () => {
      assertPasses(image, { engine, sliceInstructions: SLICE_INSTRUCTIONS_SHORT });
    });
  }
}
