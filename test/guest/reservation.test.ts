// Proves that the LR.W reservation is ended by a store into its page from every path (a CPU store on the fast path, an AMO, and the packet NIC's DMA of a received frame) and by nothing else, identically on both engines, and that a restored state holds no reservation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RAM_BASE } from '@hbft/common/guest/addressMap.ts';
import { CPU_ENGINES } from '@hbft/common/guest/cpu.ts';
import {
  NET_CTRL,
  NET_CTRL_ENABLE,
  NET_RX_AVAIL,
  NET_RX_BASE,
  NET_RX_COUNT,
  NET_TX_BASE,
  NET_TX_COUNT,
} from '@hbft/common/guest/devices/packetNic.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import { AMO_FUNCTIONS, addi, amo, li, sw } from './rv32Assembler.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
/** The page of the reserved word; the packet NIC's receive buffer is in it too. */
const RESERVED_PAGE = RAM_BASE + 0x10_0000;
/** The packet NIC's descriptor rings (other pages). */
const RX_DESCRIPTORS = RAM_BASE + 0x20_0000;
const TX_DESCRIPTORS = RAM_BASE + 0x20_1000;
const OTHER_PAGE = RAM_BASE + 0x30_0000;
const X_RING = 5;
const X_OTHER = 6;

/** What happens between the LR.W and the SC.W: an instruction, or a host action (none: nothing). */
type Between = { instruction: number } | { host: (machine: Machine) => void } | null;

/**
 * Runs: lr.w a0, (page); [between]; sc.w a1, a2, (page). Returns a1 (0: the SC.W succeeded, 1: it
 * failed) and the reserved word.
 */
function lrThenSc(engine: (typeof CPU_ENGINES)[number], between: Between): { sc: number; word: number } {
  const machine = new Machine({ memoryBytes: MEMORY_BYTES, engine, cpu: { blockEntriesBeforeCompile: 0 } });
  const setup = [...li(X_RING, RESERVED_PAGE), ...li(X_OTHER, OTHER_PAGE), addi(12, 0, 0x77), amo(AMO_FUNCTIONS.lr, 10, X_RING, 0)];
  const middle = between !== null && 'instruction' in between ? [between.instruction] : [];
  const program = [...setup, ...middle, amo(AMO_FUNCTIONS.sc, 11, X_RING, 12)];
  program.forEach((word, i) => (machine.memory.i32[i] = word));
  // The reserved page is written (hence writable and dirty) before the LR, so that a fast-path
  // store would not need the slow path for any other reason.
  machine.memory.writeU32(RESERVED_PAGE - RAM_BASE, 0x1234, 'device');
  machine.cpu.pc = RAM_BASE | 0;
  machine.run(setup.length + middle.length);
  assert.equal(machine.cpu.x[10], 0x1234, 'LR.W read the word');
  if (between !== null && 'host' in between) between.host(machine);
  machine.run(1);
  assert.equal(machine.cpu.pc, (RAM_BASE + 4 * program.length) | 0, 'no trap');
  return { sc: machine.cpu.x[11]!, word: machine.memory.readU32(RESERVED_PAGE - RAM_BASE) };
}

/**
 * The host's side of a frame arriving: the packet NIC is given one receive buffer, at the start of
 * the reserved page, and a frame; the next run() moves it there by DMA before the SC.W.
 */
function receiveFrameIntoReservedPage(machine: Machine): void {
  const net = machine.net;
  machine.memory.writeU32(RX_DESCRIPTORS - RAM_BASE, RESERVED_PAGE, 'cpu');
  machine.memory.writeU32(RX_DESCRIPTORS - RAM_BASE + 4, 2048, 'cpu');
  net.write(NET_RX_BASE, 4, RX_DESCRIPTORS);
  net.write(NET_RX_COUNT, 4, 8);
  net.write(NET_TX_BASE, 4, TX_DESCRIPTORS);
  net.write(NET_TX_COUNT, 4, 8);
  net.write(NET_CTRL, 4, NET_CTRL_ENABLE);
  net.write(NET_RX_AVAIL, 4, 1);
  assert.equal(net.receive(new Uint8Array(64).fill(0xab)), 'queued');
}

for (const engine of CPU_ENGINES) {
  test(`${engine}: SC.W succeeds after LR.W, and fails after any store into the reservation's page`, () => {
    assert.deepEqual(lrThenSc(engine, null), { sc: 0, word: 0x77 });
    assert.equal(lrThenSc(engine, { instruction: sw(0, X_RING, 64) }).sc, 1, 'a CPU store elsewhere in the page');
    assert.equal(lrThenSc(engine, { instruction: amo(AMO_FUNCTIONS.add, 0, X_RING, 0) }).sc, 1, 'an AMO (adding 0)');
    assert.equal(lrThenSc(engine, { instruction: sw(0, X_OTHER, 0) }).sc, 0, 'a store to another page leaves it');
    const dma = lrThenSc(engine, { host: receiveFrameIntoReservedPage });
    assert.equal(dma.sc, 1, "the packet NIC's DMA of a received frame into the page");
    assert.notEqual(dma.word, 0x77, 'and the SC.W wrote nothing');
    const restored = lrThenSc(engine, {
      host: (machine) => {
        machine.setState(machine.getState());
      },
    });
    assert.equal(restored.sc, 1, 'a restored state holds no reservation');
  });
}
