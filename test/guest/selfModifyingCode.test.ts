// Proves that code changed under the compiled-block engine runs in its new form at the very next fetch, whether the guest's own stores, device DMA (GuestMemory.writeBytes, a packet NIC receive buffer) or a wholesale RAM restore followed by setState changed it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FINISHER_BASE, FINISHER_PASS, PAGE_BYTES, RAM_BASE } from '@hbft/common/guest/addressMap.ts';
import {
  NET_CTRL,
  NET_CTRL_ENABLE,
  NET_RX_AVAIL,
  NET_RX_BASE,
  NET_RX_COUNT,
  NET_RX_USED,
  NET_TX_BASE,
  NET_TX_COUNT,
} from '@hbft/common/guest/devices/packetNic.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import type { CpuEngine } from '@hbft/common/guest/cpu.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import { addi, bne, jal, li, sw, xor } from './rv32Assembler.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
const ENGINES: CpuEngine[] = ['interpreter', 'blocks'];
/** The loop's page, and the page of its exit. */
const LOOP = RAM_BASE + PAGE_BYTES;
const EXIT = RAM_BASE + 2 * PAGE_BYTES;

const ADD_ONE = addi(10, 10, 1);
const ADD_HUNDRED = addi(10, 10, 100);

function writeWords(machine: Machine, address: number, words: number[]): void {
  words.forEach((word, i) => {
    machine.memory.i32[((address - RAM_BASE) >>> 2) + i] = word;
  });
}

/** Writes the finisher's PASS and spins: the run ends there. */
function exitCode(): number[] {
  return [...li(12, FINISHER_BASE), ...li(13, FINISHER_PASS), sw(13, 12, 0), jal(0, 0)];
}

/**
 * A counting loop at LOOP + 16 (the first 16 bytes are left for the head of a received frame):
 * x10 += 1 (the instruction that gets patched), x11 -= 1, until x11 is 0; then EXIT.
 */
function countingMachine(engine: CpuEngine, iterations: number): Machine {
  const machine = new Machine({ memoryBytes: MEMORY_BYTES, engine });
  const start = LOOP + 16;
  writeWords(machine, start, [ADD_ONE, addi(11, 11, -1), bne(11, 0, -8), jal(EXIT - (start + 12), 0)]);
  writeWords(machine, EXIT, exitCode());
  machine.cpu.x[11] = iterations;
  machine.cpu.pc = start | 0;
  return machine;
}

function runToExit(machine: Machine): void {
  for (let slices = 0; slices < 1000 && !machine.halted; slices++) machine.run(10_007);
  assert.deepEqual(machine.exit, { kind: 'exit', code: 0, via: 'finisher' });
}

/** Runs the counting loop for `before` passes, patches it with `patch`, and runs it out. */
function patchMidway(engine: CpuEngine, patch: (machine: Machine) => void): Machine {
  const iterations = 300;
  const before = 100;
  const machine = countingMachine(engine, iterations);
  machine.run(3 * before);
  assert.equal(machine.cpu.x[10], before, `${engine}: ran ${before} passes before the patch`);
  if (engine === 'blocks') assert.ok(machine.cpu.blockStats!.blocksCached > 0, 'the loop was compiled before the patch');
  patch(machine);
  runToExit(machine);
  assert.equal(machine.cpu.x[10], before + (iterations - before) * 100, `${engine}: every pass after the patch ran the new instruction`);
  return machine;
}

test('a store that patches a later instruction of its own block takes effect in that same pass', () => {
  const results = ENGINES.map((engine) => {
    const machine = new Machine({ memoryBytes: MEMORY_BYTES, engine, cpu: { blockEntriesBeforeCompile: 0 } });
    // Each pass stores x15 over the instruction at +12 and flips x15 between the two versions.
    writeWords(machine, LOOP, [sw(15, 16, 12), xor(15, 15, 17), addi(11, 11, -1), ADD_ONE, bne(11, 0, -16), jal(EXIT - (LOOP + 20), 0)]);
    writeWords(machine, EXIT, exitCode());
    machine.cpu.x.set([ADD_HUNDRED, LOOP | 0, ADD_ONE ^ ADD_HUNDRED], 15);
    const passes = 40;
    machine.cpu.x[11] = passes;
    machine.cpu.pc = LOOP | 0;
    runToExit(machine);
    let expected = 0;
    for (let pass = 0; pass < passes; pass++) expected += pass % 2 === 0 ? 100 : 1;
    assert.equal(machine.cpu.x[10], expected, `${engine}: each pass ran the instruction its own store had just written`);
    return machine;
  });
  const blocks = results[1]!.cpu.blockStats!;
  assert.ok(blocks.pagesInvalidated > 0, 'the stores invalidated compiled code');
  assert.equal(results[1]!.stateHash(), results[0]!.stateHash());
});

test('a CPU store from another page replaces a compiled instruction', () => {
  const results = ENGINES.map((engine) =>
    patchMidway(engine, (machine) => {
      // A little program on the exit page stores the new instruction, then jumps back to the loop.
      const patcher = EXIT + 0x100;
      writeWords(machine, patcher, [...li(20, ADD_HUNDRED), ...li(21, LOOP + 16), sw(20, 21, 0), jal(LOOP + 16 - (patcher + 20), 0)]);
      const resume = machine.cpu.pc;
      assert.equal(resume, (LOOP + 16) | 0, 'paused at the top of the loop');
      machine.cpu.pc = patcher | 0;
      machine.run(6);
      assert.equal(machine.cpu.pc, resume);
    }),
  );
  assert.ok(results[1]!.cpu.blockStats!.pagesInvalidated > 0);
  assert.equal(results[1]!.stateHash(), results[0]!.stateHash());
});

test('device DMA through GuestMemory.writeBytes replaces a compiled instruction, with dirty tracking on', () => {
  const results = ENGINES.map((engine) =>
    patchMidway(engine, (machine) => {
      const tracker = trackMemory(machine.memory, createTracker('wfp'));
      machine.memory.writeBytes(LOOP + 16 - RAM_BASE, new Uint8Array(Int32Array.of(ADD_HUNDRED).buffer), 'device');
      assert.deepEqual([...tracker.endEpoch().dirtyPages], [(LOOP - RAM_BASE) / PAGE_BYTES], 'the DMA dirtied the code page');
      tracker.beginEpoch();
    }),
  );
  assert.equal(results[1]!.cpu.blockStats!.pagesInvalidated, 1);
});

test('a packet NIC receive buffer laid over code replaces a compiled instruction', () => {
  const results = ENGINES.map((engine) => {
    const machine = patchMidway(engine, (m) => {
      // The buffer starts at the loop's page: the frame's first 16 bytes (zero, as the page was)
      // are never executed, and its last 4 land on the loop's first instruction.
      const rxDescriptors = RAM_BASE + 0x10_0000;
      m.memory.writeU32(rxDescriptors - RAM_BASE, LOOP, 'cpu');
      m.memory.writeU32(rxDescriptors - RAM_BASE + 4, PAGE_BYTES, 'cpu');
      m.net.write(NET_RX_BASE, 4, rxDescriptors);
      m.net.write(NET_RX_COUNT, 4, 8);
      m.net.write(NET_TX_BASE, 4, RAM_BASE + 0x10_1000);
      m.net.write(NET_TX_COUNT, 4, 8);
      m.net.write(NET_CTRL, 4, NET_CTRL_ENABLE);
      m.net.write(NET_RX_AVAIL, 4, 1);
      const frame = new Uint8Array(20);
      frame.set(new Uint8Array(Int32Array.of(ADD_HUNDRED).buffer), 16);
      assert.equal(m.net.receive(frame), 'queued');
      // Machine.run moves queued frames into the receive buffers before the CPU runs.
    });
    assert.equal(machine.net.read(NET_RX_USED, 4), 1, 'the frame was received');
    return machine;
  });
  assert.ok(results[1]!.cpu.blockStats!.pagesInvalidated > 0);
});

test('RAM rewritten behind the write path and then setState drops every compiled block', () => {
  for (const engine of ENGINES) {
    patchMidway(engine, (machine) => {
      // As a backup applying a checkpoint: RAM changes in bulk, then the CPU state is restored.
      const state = machine.getState();
      machine.memory.u8.set(new Uint8Array(Int32Array.of(ADD_HUNDRED).buffer), LOOP + 16 - RAM_BASE);
      machine.setState(state);
    });
  }
});
