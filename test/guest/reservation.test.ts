// Proves that the LR.W reservation is ended by a store into its page from every path (a CPU store on the fast path, an AMO, and the NIC's DMA of client input) and by nothing else, identically on both engines, and that a restored state holds no reservation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NIC_BASE, RAM_BASE } from '@hbft/common/guest/addressMap.ts';
import { CPU_ENGINES } from '@hbft/common/guest/cpu.ts';
import { NIC_CTRL, NIC_RX_BASE, NIC_RX_SIZE, NIC_TX_BASE, NIC_TX_SIZE } from '@hbft/common/guest/devices/nic.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import { AMO_FUNCTIONS, addi, amo, li, sw } from './rv32Assembler.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
/** The receive ring, whose first page holds the reserved word. */
const RX_RING = RAM_BASE + 0x10_0000;
const TX_RING = RAM_BASE + 0x20_0000;
const OTHER_PAGE = RAM_BASE + 0x30_0000;
const X_RING = 5;
const X_OTHER = 6;
const X_NIC = 7;

/** What happens between the LR.W and the SC.W: an instruction, or a host action (none: nothing). */
type Between = { instruction: number } | { host: (machine: Machine) => void } | null;

/**
 * Runs: NIC set up, then lr.w a0, (ring); [between]; sc.w a1, a2, (ring). Returns a1 (0: the
 * SC.W succeeded, 1: it failed) and the word at the ring's start.
 */
function lrThenSc(engine: (typeof CPU_ENGINES)[number], between: Between): { sc: number; word: number } {
  const machine = new Machine({ memoryBytes: MEMORY_BYTES, engine, cpu: { blockEntriesBeforeCompile: 0 } });
  const setup = [
    ...li(X_RING, RX_RING),
    ...li(X_OTHER, OTHER_PAGE),
    ...li(X_NIC, NIC_BASE),
    ...li(8, TX_RING),
    ...li(9, 4096),
    sw(X_RING, X_NIC, NIC_RX_BASE),
    sw(9, X_NIC, NIC_RX_SIZE),
    sw(8, X_NIC, NIC_TX_BASE),
    sw(9, X_NIC, NIC_TX_SIZE),
    addi(9, 0, 1),
    sw(9, X_NIC, NIC_CTRL),
    addi(12, 0, 0x77),
    amo(AMO_FUNCTIONS.lr, 10, X_RING, 0),
  ];
  const middle = between !== null && 'instruction' in between ? [between.instruction] : [];
  const program = [...setup, ...middle, amo(AMO_FUNCTIONS.sc, 11, X_RING, 12)];
  program.forEach((word, i) => (machine.memory.i32[i] = word));
  // The ring page is written (hence writable and dirty) before the LR, so that a fast-path store
  // would not need the slow path for any other reason.
  machine.memory.writeU32(RX_RING - RAM_BASE, 0x1234, 'device');
  machine.cpu.pc = RAM_BASE | 0;
  machine.run(setup.length + middle.length);
  assert.equal(machine.cpu.x[10], 0x1234, 'LR.W read the word');
  if (between !== null && 'host' in between) between.host(machine);
  machine.run(1);
  assert.equal(machine.cpu.pc, (RAM_BASE + 4 * program.length) | 0, 'no trap');
  return { sc: machine.cpu.x[11]!, word: machine.memory.readU32(RX_RING - RAM_BASE) };
}

for (const engine of CPU_ENGINES) {
  test(`${engine}: SC.W succeeds after LR.W, and fails after any store into the reservation's page`, () => {
    assert.deepEqual(lrThenSc(engine, null), { sc: 0, word: 0x77 });
    assert.equal(lrThenSc(engine, { instruction: sw(0, X_RING, 64) }).sc, 1, 'a CPU store elsewhere in the page');
    assert.equal(lrThenSc(engine, { instruction: amo(AMO_FUNCTIONS.add, 0, X_RING, 0) }).sc, 1, 'an AMO (adding 0)');
    assert.equal(lrThenSc(engine, { instruction: sw(0, X_OTHER, 0) }).sc, 0, 'a store to another page leaves it');
    const dma = lrThenSc(engine, { host: (machine) => assert.ok(machine.nic.openConnection('client') >= 0) });
    assert.equal(dma.sc, 1, "the NIC's DMA of an OPEN record into the ring");
    assert.notEqual(dma.word, 0x77, 'and the SC.W wrote nothing');
    const restored = lrThenSc(engine, {
      host: (machine) => {
        machine.setState(machine.getState());
      },
    });
    assert.equal(restored.sc, 1, 'a restored state holds no reservation');
  });
}
