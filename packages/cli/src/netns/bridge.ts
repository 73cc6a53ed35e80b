import { randomBytes } from 'node:crypto';
import { formatMac } from '@hbft/common/net/mac.ts';

/**
 * The `ip` arguments that make a Linux bridge with a MAC of its own (a random locally administered
 * one, as systemd-networkd gives its bridges). A bridge made without one takes its ports' lowest
 * MAC, and another when that port goes: when a daemon that made its TAP died, the guest's ARP
 * cache still held the old MAC for the clients' address (the bridge's), and its replies went
 * nowhere until a client's ARP probe 5-10 s later (BENCHMARKS.md, the failover section).
 */
export function addBridgeArgs(name: string): string[] {
  const mac = randomBytes(6);
  // Locally administered, unicast: the first byte's low bits 10.
  mac.writeUInt8((mac.readUInt8(0) & 0xfc) | 0x02, 0);
  return ['link', 'add', name, 'address', formatMac(mac), 'type', 'bridge'];
}
