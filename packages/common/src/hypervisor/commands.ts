import type { Machine } from '../guest/machine.ts';

/**
 * Commands the main thread may send to the guest worker. They run between slices (or while
 * paused) on the worker's thread, so they see the machine at an instruction boundary.
 */
export const workerCommands: Record<string, (machine: Machine, args: unknown) => unknown> = {
  getState: (machine) => machine.getState(),
  stateHash: (machine) => machine.stateHash(),
  counters: (machine) => ({ instret: machine.cpu.instret, pc: machine.cpu.pc >>> 0, halted: machine.halted }),
  /**
   * A takeover: the packet NIC's link goes down and up again (the guest's cable moved to this
   * node), which the guest sees as a status bit and an interrupt. Returns the NIC's MAC.
   */
  netLinkChange: (machine) => {
    machine.net.setLink(false);
    machine.net.setLink(true);
    return Array.from(machine.net.mac);
  },
};
