// Proves that every tracking strategy reports exactly the pages written in each epoch (checked
// against a ground-truth set over randomized access patterns), that pages dropped as false dirty
// were never written, and that the strategies' fault counts behave as the paper describes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '@hbft/common/guest/memory.ts';
import { PTE_PRESENT, PTE_PREDICTED } from '@hbft/common/guest/shadowPageTable.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import { TRACKING_STRATEGIES, type DirtyTracker, type EpochResult } from '@hbft/common/tracking/tracker.ts';
import { UsageError } from '@hbft/common/errors.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;

/** Drives the write path the way the CPU does: inline check first, slow path when it fails. */
class Driver {
  readonly memory = new GuestMemory(MEMORY_BYTES);
  readonly written = new Set<number>();

  constructor(readonly tracker: DirtyTracker) {
    trackMemory(this.memory, tracker);
  }

  load(page: number): void {
    if ((this.memory.table.entries[page]! & PTE_PRESENT) === 0) this.memory.prepareLoad(page);
  }

  store(page: number, value: number): void {
    if (!this.memory.isStoreFast(page)) this.memory.prepareStore(page, 'cpu');
    this.memory.u8[page * 4096 + (value & 4095)] = value;
    this.written.add(page);
  }

  dma(page: number, bytes: Uint8Array): void {
    this.memory.writeBytes(page * 4096 + 100, bytes, 'device');
    for (let p = page; p <= Math.floor((page * 4096 + 100 + bytes.length - 1) / 4096); p++) this.written.add(p);
  }

  endEpoch(): { result: EpochResult; written: Set<number> } {
    const result = this.tracker.endEpoch();
    const written = new Set(this.written);
    this.written.clear();
    this.tracker.beginEpoch();
    return { result, written };
  }
}

/** One epoch of a randomized mix of access patterns with locality and history, like §3. */
function randomEpoch(driver: Driver, random: SeededRandom, pageCount: number): void {
  const operations = 200 + random.below(800);
  for (let i = 0; i < operations; i++) {
    const kind = random.below(10);
    if (kind < 3) {
      // Sequential write stride (CFP-like).
      const start = random.below(pageCount);
      const length = 1 + random.below(96);
      for (let p = start; p < Math.min(pageCount, start + length); p++) driver.store(p, random.nextU32());
    } else if (kind < 5) {
      // Scattered single writes (web-like).
      driver.store(random.below(pageCount), random.nextU32());
    } else if (kind < 9) {
      const start = random.below(pageCount);
      for (let p = start; p < Math.min(pageCount, start + 1 + random.below(32)); p++) driver.load(p);
    } else {
      driver.dma(random.below(pageCount - 2), random.bytes(1 + random.below(6000)));
    }
  }
}

for (const name of TRACKING_STRATEGIES) {
  test(`${name}: every epoch's dirty list is exactly the set of pages written`, () => {
    const seed = testSeed();
    const random = new SeededRandom(seed);
    const driver = new Driver(createTracker(name));
    const pageCount = driver.memory.pageCount;
    for (let epoch = 0; epoch < 40; epoch++) {
      randomEpoch(driver, random, pageCount);
      const { result, written } = driver.endEpoch();
      const dirty = [...result.dirtyPages];
      const context = `seed ${seed} (replay with HBFT_SEED=${seed}), epoch ${epoch}`;
      assert.ok(dirty.every((p, i) => i === 0 || p > dirty[i - 1]!), `dirty list ascending and unique: ${context}`);
      if (name === 'none') {
        assert.equal(dirty.length, pageCount, `no tracking ships all memory: ${context}`);
        continue;
      }
      assert.deepEqual(dirty, [...written].sort((a, b) => a - b), `dirty list equals written set: ${context}`);
      for (const page of result.falseDirtyPages) assert.ok(!written.has(page), `false dirty page ${page} was written: ${context}`);
      assert.equal(result.stats.dirtyPages, dirty.length);
    }
  });
}

test('origin and rfr report the same dirty sets on the same run; wfp too once its false dirty pages are left out', () => {
  const seed = testSeed();
  const drivers = ['origin', 'rfr', 'wfp', 'pml'].map((name) => new Driver(createTracker(name)));
  const randoms = drivers.map(() => new SeededRandom(seed));
  for (let epoch = 0; epoch < 20; epoch++) {
    const results = drivers.map((driver, i) => {
      randomEpoch(driver, randoms[i]!, driver.memory.pageCount);
      return [...driver.endEpoch().result.dirtyPages];
    });
    for (const result of results.slice(1)) assert.deepEqual(result, results[0], `seed ${seed}, epoch ${epoch}`);
  }
});

test('origin read-faults on first access every epoch; rfr only once ever', () => {
  const origin = new Driver(createTracker('origin'));
  const rfr = new Driver(createTracker('rfr'));
  const stats = [origin, rfr].map((driver) => {
    const perEpoch = [];
    for (let epoch = 0; epoch < 5; epoch++) {
      for (let p = 0; p < 300; p++) driver.load(p);
      for (let p = 0; p < 50; p++) driver.store(p, p);
      perEpoch.push(driver.endEpoch().result.stats);
    }
    return perEpoch;
  });
  const [originStats, rfrStats] = stats as [typeof stats[0], typeof stats[0]];
  for (const epoch of originStats) {
    assert.equal(epoch.readFaults, 300, 'every page read first faults, in every epoch');
    assert.equal(epoch.writeFaults, 50);
  }
  assert.equal(rfrStats[0]!.readFaults, 300, 'first epoch: tables are built once');
  for (const epoch of rfrStats.slice(1)) {
    assert.equal(epoch.readFaults, 0, 'rfr keeps the tables: no read faults after the first epoch');
    assert.equal(epoch.writeFaults, 50, 'write permission is revoked at each boundary');
    assert.equal(epoch.entriesScanned, 64, 'only the marked segment (pages 0..63) is scanned');
  }
});

test('wfp predicts along a repeating stride and drops unwritten predictions as false dirty', () => {
  const driver = new Driver(createTracker('wfp', { histaseAlpha: 0.7 }));
  const epochs = [];
  for (let epoch = 0; epoch < 6; epoch++) {
    // Two runs of 40 pages in one L1 (pages 0..511), the same every epoch.
    for (let p = 10; p < 50; p++) driver.store(p, epoch);
    for (let p = 200; p < 240; p++) driver.store(p, epoch);
    epochs.push(driver.endEpoch());
  }
  const first = epochs[0]!.result.stats;
  assert.equal(first.writeFaults, 80, 'no history yet: every first write faults');
  assert.equal(first.pagesPredicted, 0);
  for (const { result, written } of epochs.slice(2)) {
    const stats = result.stats;
    assert.ok(stats.writeFaults <= 4, `with ave_stride 40 a run costs about one fault, got ${stats.writeFaults}`);
    assert.ok(stats.recall > 0.9, `recall ${stats.recall}`);
    assert.equal(stats.dirtyPages, 80);
    assert.deepEqual([...result.dirtyPages], [...written].sort((a, b) => a - b));
    // Predictions past the end of a run (and before its start) were not written.
    assert.ok(result.falseDirtyPages.length > 0);
    for (const page of result.falseDirtyPages) assert.ok(!written.has(page));
  }
  // The boundary revoked everything: nothing is writable or predicted any more.
  for (let p = 0; p < 512; p++) assert.equal(driver.memory.table.entries[p]! & PTE_PREDICTED, 0);
});

test('wfp predicts nothing for isolated writes (his_stride 1), so scattered workloads get no false dirty pages', () => {
  const driver = new Driver(createTracker('wfp'));
  const random = new SeededRandom(testSeed());
  for (let epoch = 0; epoch < 8; epoch++) {
    // Every 8th page of one L1, a random half of them each epoch: runs of exactly one page.
    for (let p = 0; p < 512; p += 8) if (random.below(2) === 0) driver.store(p, epoch);
    const { result, written } = driver.endEpoch();
    assert.equal(result.stats.pagesPredicted, 0, `epoch ${epoch}: nothing predicted`);
    assert.equal(result.falseDirtyPages.length, 0);
    assert.equal(result.stats.writeFaults, written.size, 'every isolated write faults, as under rfr');
  }
});

test('wfp predicts exactly the rest of a run whose length history has settled', () => {
  const driver = new Driver(createTracker('wfp'));
  for (let epoch = 0; epoch < 10; epoch++) {
    // Runs of 4 pages at the same places every epoch: his_stride converges to 4.
    for (let base = 0; base < 512; base += 32) for (let p = base; p < base + 4; p++) driver.store(p, epoch);
    const { result } = driver.endEpoch();
    if (epoch < 2) continue;
    // The first write of each run faults and predicts the 3 pages after it (and 1 before it,
    // which is a false dirty page except for the run at the start of the L1).
    assert.equal(result.stats.writeFaults, 16, `epoch ${epoch}: one fault per run`);
    assert.equal(result.stats.truePredictions, 48);
    assert.equal(result.falseDirtyPages.length, 15);
  }
});

test('wfp never predicts pages the guest does not allow to be written', () => {
  const driver = new Driver(createTracker('wfp'));
  for (let p = 20; p < 40; p++) driver.memory.table.setGuestWritable(p, false);
  for (let epoch = 0; epoch < 4; epoch++) {
    for (let p = 0; p < 20; p++) driver.store(p, 1);
    driver.endEpoch();
  }
  for (let p = 0; p < 20; p++) driver.store(p, 1);
  for (let p = 20; p < 40; p++) assert.equal(driver.memory.table.entries[p]! & PTE_PREDICTED, 0, `page ${p}`);
});

test('pml exits only when its 512-entry log fills', () => {
  const driver = new Driver(createTracker('pml'));
  for (let p = 0; p < 1300; p++) driver.store(p, 1);
  const { result } = driver.endEpoch();
  assert.equal(result.stats.logFullExits, 2);
  assert.equal(result.stats.exits, 2);
  assert.equal(result.stats.readFaults + result.stats.writeFaults, 0);
  assert.equal(result.dirtyPages.length, 1300);
});

test('bad tracking options are refused with the flag named', () => {
  assert.throws(() => createTracker('xen'), (e: unknown) => e instanceof UsageError && /--tracking.*none, origin, rfr, wfp, pml/.test(e.message));
  assert.throws(() => createTracker('wfp', { histaseAlpha: 1 }), /--histase-alpha/);
  assert.throws(() => createTracker('wfp', { histaseAlpha: -0.1 }), /--histase-alpha/);
  assert.throws(() => createTracker('rfr', { exitCostNs: -5 }), /--exit-cost-ns/);
});
