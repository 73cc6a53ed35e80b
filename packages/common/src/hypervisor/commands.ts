import type { Machine } from '../guest/machine.ts';

/**
 * Commands the main thread may send to the guest worker. They run between slices (or while
 * paused) on the worker's thread, so they see the machine at an instruction boundary.
 */
export const workerCommands: Record<string, (machine: Machine, args: unknown) => unknown> = {
  getState: (machine) => machine.getState(),
  stateHash: (machine) => machine.stateHash(),
  counters: (machine) => ({ instret: machine.cpu.instret, pc: machine.cpu.pc >>> 0, halted: machine.halted }),
  nicOffsets: (machine) => machine.nic.activeSlots().map((slot) => ({ slot, tag: machine.nic.tag(slot), ...machine.nic.offsets(slot) })),
};
