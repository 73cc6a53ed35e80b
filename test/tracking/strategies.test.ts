// Proves that every tracking strategy reports exactly the pages written in each epoch (checked
// against a ground-truth set over randomized access patterns: CPU stores, device DMA, and AMOs and
// SC.W executed by the CPU), that pages dropped as false dirty
// were never written, and that the strategies' fault counts behave as the paper describes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RAM_BASE } from '@hbft/common/guest/addressMap.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import type { GuestMemory } from '@hbft/common/guest/memory.ts';
import { PTE_PRESENT, PTE_PREDICTED } from '@hbft/common/guest/shadowPageTable.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import { TRACKING_STRATEGIES, type DirtyTracker, type EpochResult } from '@hbft/common/tracking/tracker.ts';
import { SettingError } from '@hbft/common/errors.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;

const AMO_FUNCT5 = [0x00, 0x01, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c];
const LR = 0x02;
const SC = 0x03;
/** The page holding the one instruction the driver has the CPU execute (never written by the guest). */
const CODE_PAGE = MEMORY_BYTES / 4096 - 1;
/** amo<op>.w rd, x2, (x1) for the A extension's funct5 values (Unprivileged ISA ch. 8); lr.w has rs2 = x0. */
const amoWord = (f5: number, rd: number): number => (f5 << 27) | ((f5 === LR ? 0 : 2) << 20) | (1 << 15) | (2 << 12) | (rd << 7) | 0x2f | 0;

/**
 * Drives the write path the way the CPU does: inline check first, slow path when it fails; AMOs
 * and LR/SC are executed by the CPU itself (the interpreter), one instruction at a time.
 */
class Driver {
  readonly machine = new Machine({ memoryBytes: MEMORY_BYTES, engine: 'interpreter' });
  readonly memory: GuestMemory = this.machine.memory;
  readonly written = new Set<number>();

  constructor(readonly tracker: DirtyTracker) {
    trackMemory(this.memory, tracker);
  }

  /** Executes one A-extension instruction with x1 = `address` and x2 = `value`; returns rd. */
  private execute(inst: number, address: number, value: number): number {
    const cpu = this.machine.cpu;
    // The instruction is placed behind the write path: it is the test's, not a guest store.
    this.memory.i32[(CODE_PAGE * 4096) >> 2] = inst;
    cpu.pc = (RAM_BASE + CODE_PAGE * 4096) | 0;
    cpu.x[1] = address;
    cpu.x[2] = value;
    cpu.x[3] = -1;
    this.machine.run(1);
    assert.equal(
      cpu.pc,
      (RAM_BASE + CODE_PAGE * 4096 + 4) | 0,
      `the instruction retired without a trap (mcause ${cpu.mcause}, mtval ${(cpu.mtval >>> 0).toString(16)})`,
    );
    return cpu.x[3]!;
  }

  /** An AMO, or an LR.W/SC.W pair (whose SC succeeds), on a word of `page`. */
  amo(page: number, value: number, random: SeededRandom): void {
    const address = (RAM_BASE + page * 4096 + (value & 4092)) | 0;
    if (random.chance(0.7)) {
      this.execute(amoWord(AMO_FUNCT5[random.below(AMO_FUNCT5.length)]!, 3), address, value);
      this.written.add(page);
      return;
    }
    this.execute(amoWord(LR, 3), address, 0);
    assert.equal(this.execute(amoWord(SC, 3), address, value), 0, 'SC.W right after LR.W succeeds');
    this.written.add(page);
  }

  /** An SC.W without a reservation: it fails and writes nothing. */
  scWithoutReservation(page: number, value: number): void {
    const address = (RAM_BASE + page * 4096 + (value & 4092)) | 0;
    assert.equal(this.execute(amoWord(SC, 3), address, value), 1, 'SC.W without a reservation fails');
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
    const kind = random.below(11);
    if (kind === 10) {
      // The A extension's read-modify-writes, and an SC.W that must not write.
      const page = random.below(pageCount - 1);
      if (random.chance(0.8)) driver.amo(page, random.nextU32(), random);
      else driver.scWithoutReservation(page, random.nextU32());
    } else if (kind < 3) {
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
      assert.ok(
        dirty.every((p, i) => i === 0 || p > dirty[i - 1]!),
        `dirty list ascending and unique: ${context}`,
      );
      if (name === 'none') {
        assert.equal(dirty.length, pageCount, `no tracking ships all memory: ${context}`);
        continue;
      }
      assert.deepEqual(
        dirty,
        [...written].sort((a, b) => a - b),
        `dirty list equals written set: ${context}`,
      );
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
  const [originStats, rfrStats] = stats as [(typeof stats)[0], (typeof stats)[0]];
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
    assert.deepEqual(
      [...result.dirtyPages],
      [...written].sort((a, b) => a - b),
    );
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
  assert.throws(
    () => createTracker('xen'),
    (e: unknown) => e instanceof SettingError && e.setting === 'tracking' && /none, origin, rfr, wfp, pml/.test(e.problem),
  );
  assert.throws(() => createTracker('wfp', { histaseAlpha: 1 }), /histase-alpha: must be in/);
  assert.throws(() => createTracker('wfp', { histaseAlpha: -0.1 }), /histase-alpha: must be in/);
  assert.throws(() => createTracker('rfr', { exitCostNs: -5 }), /exit-cost-ns: must be a number of nanoseconds/);
});
