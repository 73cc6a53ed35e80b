// Proves, on the real workloads running on the emulator, that every strategy's dirty list for each
// epoch is exactly the set of pages written (checked by a recorder that sees every store, CPU and
// device alike), that pages dropped as false dirty were not written, that with the fast paths
// active every changed page is reported, and that all strategies agree on the same run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage, type GuestName } from '@hbft/common/guest/images.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import type { TrackingStrategyName } from '@hbft/common/tracking/tracker.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
const PAGE = 4096;
const EPOCHS = 8;
const EPOCH_INSTRUCTIONS = 150_000;
const ARGS: Record<GuestName, string> = {
  cfp: 'mb=2 rounds=1000',
  cint: 'mb=2 rounds=1000',
  jbb: 'mb=2 rounds=100000',
  web: 'mb=4 rounds=100000',
  kv: 'mb=4 rounds=100000',
};
const STRATEGIES: TrackingStrategyName[] = ['origin', 'rfr', 'wfp', 'pml'];

/** Boots a workload and runs it past start-up. */
function boot(name: GuestName): Machine {
  const machine = new Machine({ memoryBytes: MEMORY_BYTES, args: ARGS[name] });
  machine.loadElf(readFileSync(resolveGuestImage(name)));
  machine.run(3_000_000);
  return machine;
}

function runEpoch(machine: Machine): void {
  let executed = 0;
  while (executed < EPOCH_INSTRUCTIONS && !machine.halted)
    executed += machine.run(Math.min(20_000, EPOCH_INSTRUCTIONS - executed)).executed;
}

for (const name of ['cfp', 'cint', 'jbb', 'web', 'kv'] as GuestName[]) {
  test(`${name}: each strategy reports exactly the pages written, on the same run as every other`, () => {
    const dirtyByStrategy = new Map<string, number[][]>();
    for (const strategy of STRATEGIES) {
      const machine = boot(name);
      const written = new Set<number>();
      machine.addStoreObserver((offset, size) => {
        for (let page = Math.floor(offset / PAGE); page <= Math.floor((offset + size - 1) / PAGE); page++) written.add(page);
      });
      for (let page = 0; page < machine.memory.pageCount; page++) machine.memory.table.setWatched(page, true);
      const tracker = trackMemory(machine.memory, createTracker(strategy));
      const epochs: number[][] = [];
      for (let epoch = 0; epoch < EPOCHS; epoch++) {
        written.clear();
        runEpoch(machine);
        const result = tracker.endEpoch();
        tracker.beginEpoch();
        const dirty = [...result.dirtyPages];
        assert.deepEqual(
          dirty,
          [...written].sort((a, b) => a - b),
          `${strategy} epoch ${epoch}: dirty list = pages written`,
        );
        for (const page of result.falseDirtyPages) assert.ok(!written.has(page), `${strategy}: false dirty page ${page} was written`);
        epochs.push(dirty);
      }
      assert.ok(
        epochs.some((e) => e.length > 0),
        'the workload wrote memory',
      );
      dirtyByStrategy.set(strategy, epochs);
    }
    for (const strategy of STRATEGIES.slice(1)) {
      assert.deepEqual(dirtyByStrategy.get(strategy), dirtyByStrategy.get('origin'), `${strategy} agrees with origin`);
    }
  });

  test(`${name}: with the fast paths active every changed page is in the dirty list`, () => {
    for (const strategy of STRATEGIES) {
      const machine = boot(name);
      const tracker = trackMemory(machine.memory, createTracker(strategy));
      const ram = machine.memory.u8;
      const words = machine.memory.i32;
      for (let epoch = 0; epoch < 3; epoch++) {
        const before = new Int32Array(words);
        runEpoch(machine);
        const result = tracker.endEpoch();
        tracker.beginEpoch();
        const dirty = new Set(result.dirtyPages);
        for (let page = 0; page < machine.memory.pageCount; page++) {
          for (let w = page * 1024; w < (page + 1) * 1024; w++) {
            if (words[w] !== before[w]) {
              assert.ok(dirty.has(page), `${strategy} epoch ${epoch}: page ${page} changed but is not dirty`);
              break;
            }
          }
        }
      }
      assert.ok(ram.length === MEMORY_BYTES);
    }
  });
}
