/**
 * The kvnet guest booted in this process on a hand-built client's Ethernet segment
 * (ethernetClient.ts): the start of every in-process test and cost script of kvnet.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { EthernetSegment, macBytes } from './ethernetClient.ts';

/** The guest's memory, unless a test asks for more (a machine restored from its state needs the same). */
export const KVNET_MEMORY_BYTES = 64 * 1024 * 1024;
/** The MAC the host gives the guest's NIC. */
export const KVNET_GUEST_MAC = macBytes('02:48:42:46:54:02');

export interface BootedKvnet {
  machine: Machine;
  segment: EthernetSegment;
  /** Everything the guest has written to its console so far. */
  console: () => string;
}

/** Boots kvnet at 10.0.0.2/24 until it listens, and resolves its MAC as a client's kernel would first. */
export function bootKvnet(args = 'ip=10.0.0.2/24', memoryBytes = KVNET_MEMORY_BYTES): BootedKvnet {
  const machine = new Machine({ memoryBytes, args });
  machine.loadElf(readFileSync(resolveGuestImage('kvnet')));
  machine.net.setMac(KVNET_GUEST_MAC);
  let output = '';
  machine.uart.onOutput = (byte) => (output += String.fromCharCode(byte));
  const segment = new EthernetSegment(machine, '10.0.0.2');
  segment.runUntilIdle();
  assert.match(output, /kvnet: listening on 10\.0\.0\.2:6379/);
  segment.resolveGuest();
  return { machine, segment, console: () => output };
}
