import { MAC_BYTES } from '../guest/devices/packetNic.ts';

const ETHERTYPE_ARP = 0x0806;
const ETHERTYPE_IPV4 = 0x0800;
const ARP_REQUEST = 1;
/** Ethernet's minimum frame without FCS: shorter frames are padded, as a NIC would. */
const ETHERNET_FRAME_BYTES_MIN = 60;

/**
 * A gratuitous ARP for a guest: a broadcast request whose sender and target address are both the
 * guest's (RFC 5227 section 3's "ARP Announcement"), so that bridges learn the guest's MAC on the
 * port it now sits behind and hosts on the segment refresh their caches. The node that takes over a
 * guest sends it from its TAP as the guest resumes, as QEMU's announce_self and Cuju's RARP do.
 */
export function gratuitousArpFrame(mac: Uint8Array, ipv4: number): Uint8Array {
  if (mac.length !== MAC_BYTES) throw new RangeError(`a MAC address has ${MAC_BYTES} bytes, not ${mac.length}`);
  const frame = new Uint8Array(ETHERNET_FRAME_BYTES_MIN);
  const view = new DataView(frame.buffer);
  frame.fill(0xff, 0, 6);
  frame.set(mac, 6);
  view.setUint16(12, ETHERTYPE_ARP);
  view.setUint16(14, 1); // hardware: Ethernet
  view.setUint16(16, ETHERTYPE_IPV4);
  frame[18] = MAC_BYTES;
  frame[19] = 4;
  view.setUint16(20, ARP_REQUEST);
  frame.set(mac, 22);
  view.setUint32(28, ipv4 >>> 0);
  // Target hardware address stays zero; the target protocol address is the guest's own.
  view.setUint32(38, ipv4 >>> 0);
  return frame;
}

/** "A.B.C.D" or "A.B.C.D/N" to the address as a number, or undefined when malformed. */
export function parseIpv4(text: string): number | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/\d{1,2})?$/.exec(text);
  if (!match) return undefined;
  const parts = match.slice(1, 5).map(Number);
  if (parts.some((part) => part > 255)) return undefined;
  return parts.reduce((address, part) => address * 256 + part, 0);
}
