/**
 * A client on the guest's Ethernet segment, for tests only: it builds ARP, IPv4 and TCP frames by
 * hand and plays the client's side of TCP connections to a guest whose packet NIC it drives. It is
 * the smallest honest peer for a guest's TCP/IP stack: in-order data only, no retransmission of its
 * own unless a test resends a segment on purpose, every segment checksummed as a kernel would.
 */
import assert from 'node:assert/strict';
import { STOP_IDLE } from '@hbft/common/guest/cpu.ts';
import type { Machine } from '@hbft/common/guest/machine.ts';
import { TIMEBASE_HZ } from '@hbft/common/guest/addressMap.ts';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
const IP_PROTOCOL_TCP = 6;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export function ipv4(text: string): number {
  const parts = text.split('.').map(Number);
  assert.equal(parts.length, 4);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function macBytes(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((part) => parseInt(part, 16)));
}

function checksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ethernetFrame(destination: Uint8Array, source: Uint8Array, etherType: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(14 + payload.length);
  frame.set(destination, 0);
  frame.set(source, 6);
  new DataView(frame.buffer).setUint16(12, etherType);
  frame.set(payload, 14);
  return frame;
}

export function arpPacket(operation: 1 | 2, senderMac: Uint8Array, senderIp: number, targetMac: Uint8Array, targetIp: number): Uint8Array {
  const packet = new Uint8Array(28);
  const view = new DataView(packet.buffer);
  view.setUint16(0, 1); // Ethernet
  view.setUint16(2, ETHERTYPE_IPV4);
  packet[4] = 6;
  packet[5] = 4;
  view.setUint16(6, operation);
  packet.set(senderMac, 8);
  view.setUint32(14, senderIp);
  packet.set(targetMac, 18);
  view.setUint32(24, targetIp);
  return packet;
}

export interface TcpSegment {
  sourcePort: number;
  destinationPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payload: Uint8Array;
}

export function ipv4TcpPacket(source: number, destination: number, segment: TcpSegment): Uint8Array {
  const tcp = new Uint8Array(20 + segment.payload.length);
  const tcpView = new DataView(tcp.buffer);
  tcpView.setUint16(0, segment.sourcePort);
  tcpView.setUint16(2, segment.destinationPort);
  tcpView.setUint32(4, segment.seq >>> 0);
  tcpView.setUint32(8, segment.ack >>> 0);
  tcp[12] = 5 << 4;
  tcp[13] = segment.flags;
  tcpView.setUint16(14, segment.window);
  tcp.set(segment.payload, 20);
  const pseudo = new Uint8Array(12);
  const pseudoView = new DataView(pseudo.buffer);
  pseudoView.setUint32(0, source);
  pseudoView.setUint32(4, destination);
  pseudo[9] = IP_PROTOCOL_TCP;
  pseudoView.setUint16(10, tcp.length);
  const partial = ~checksum(pseudo) & 0xffff;
  tcpView.setUint16(16, checksum(tcp, partial));

  const ip = new Uint8Array(20 + tcp.length);
  const ipView = new DataView(ip.buffer);
  ip[0] = 0x45;
  ipView.setUint16(2, ip.length);
  ip[8] = 64;
  ip[9] = IP_PROTOCOL_TCP;
  ipView.setUint32(12, source);
  ipView.setUint32(16, destination);
  ipView.setUint16(10, checksum(ip.subarray(0, 20)));
  ip.set(tcp, 20);
  return ip;
}

export interface ParsedFrame {
  destination: Uint8Array;
  source: Uint8Array;
  etherType: number;
  arp?: { operation: number; senderMac: Uint8Array; senderIp: number; targetIp: number };
  tcp?: TcpSegment & { sourceIp: number; destinationIp: number; checksumOk: boolean };
}

export function parseFrame(frame: Uint8Array): ParsedFrame {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const parsed: ParsedFrame = { destination: frame.subarray(0, 6), source: frame.subarray(6, 12), etherType: view.getUint16(12) };
  if (parsed.etherType === ETHERTYPE_ARP) {
    parsed.arp = {
      operation: view.getUint16(20),
      senderMac: frame.slice(22, 28),
      senderIp: view.getUint32(28),
      targetIp: view.getUint32(38),
    };
  } else if (parsed.etherType === ETHERTYPE_IPV4 && frame[23] === IP_PROTOCOL_TCP) {
    const ihl = (frame[14]! & 0x0f) * 4;
    const total = view.getUint16(16);
    const tcpStart = 14 + ihl;
    const tcp = frame.subarray(tcpStart, 14 + total);
    const dataOffset = (tcp[12]! >>> 4) * 4;
    const pseudo = new Uint8Array(12);
    pseudo.set(frame.subarray(26, 34), 0);
    pseudo[9] = IP_PROTOCOL_TCP;
    new DataView(pseudo.buffer).setUint16(10, tcp.length);
    parsed.tcp = {
      sourceIp: view.getUint32(26),
      destinationIp: view.getUint32(30),
      sourcePort: view.getUint16(tcpStart),
      destinationPort: view.getUint16(tcpStart + 2),
      seq: view.getUint32(tcpStart + 4),
      ack: view.getUint32(tcpStart + 8),
      flags: tcp[13]!,
      window: view.getUint16(tcpStart + 14),
      payload: Uint8Array.from(tcp.subarray(dataOffset)),
      checksumOk: checksum(tcp, ~checksum(pseudo) & 0xffff) === 0,
    };
  }
  return parsed;
}

/** One client connection's TCP state, as the client's kernel would keep it (in order only). */
export class TcpClientConnection {
  sndNxt: number;
  rcvNxt = 0;
  established = false;
  reset = false;
  finReceived = false;
  /** A client that does not read: its receive window shrinks by what it holds unread. */
  paused = false;
  private readonly received: number[] = [];

  constructor(
    readonly segment: EthernetSegment,
    readonly port: number,
    isn: number,
  ) {
    this.sndNxt = isn >>> 0;
  }

  get unreadBytes(): number {
    return this.received.length;
  }

  /** The window this client advertises: all of it, or what its unread bytes leave when paused. */
  get window(): number {
    return this.paused ? Math.max(0, 65535 - this.received.length) : 65535;
  }

  /** Everything the guest sent on this connection so far, as text; takes it. */
  take(): string {
    const text = Buffer.from(this.received).toString('latin1');
    this.received.length = 0;
    return text;
  }

  /** A segment from the client with the current sequence numbers, advancing them. */
  segmentFrame(flags: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    const frame = this.segment.tcpFrame({
      sourcePort: this.port,
      destinationPort: this.segment.guestPort,
      seq: this.sndNxt,
      ack: (flags & TCP_ACK) !== 0 ? this.rcvNxt : 0,
      flags,
      window: this.window,
      payload,
    });
    this.sndNxt = (this.sndNxt + payload.length + ((flags & (TCP_SYN | TCP_FIN)) !== 0 ? 1 : 0)) >>> 0;
    return frame;
  }

  onSegment(segment: TcpSegment): boolean {
    if ((segment.flags & TCP_RST) !== 0) {
      this.reset = true;
      return false;
    }
    if ((segment.flags & TCP_SYN) !== 0 && (segment.flags & TCP_ACK) !== 0 && !this.established) {
      this.rcvNxt = (segment.seq + 1) >>> 0;
      this.established = true;
      return true;
    }
    let advanced = false;
    if (segment.payload.length > 0 && segment.seq === this.rcvNxt) {
      this.received.push(...segment.payload);
      this.rcvNxt = (this.rcvNxt + segment.payload.length) >>> 0;
      advanced = true;
    }
    if ((segment.flags & TCP_FIN) !== 0 && (segment.seq + segment.payload.length) >>> 0 === this.rcvNxt) {
      this.rcvNxt = (this.rcvNxt + 1) >>> 0;
      this.finReceived = true;
      advanced = true;
    }
    return advanced;
  }
}

/**
 * The client side of one Ethernet segment with a guest on it: delivers frames to the guest's
 * packet NIC, runs the guest until it is idle, answers its ARP requests and feeds its TCP segments
 * to the matching client connection (which acknowledges what arrived).
 */
export class EthernetSegment {
  readonly clientMac = macBytes('02:00:00:00:00:01');
  readonly clientIp = ipv4('10.0.0.1');
  readonly guestIp: number;
  readonly guestPort: number;
  guestMac = macBytes('ff:ff:ff:ff:ff:ff');
  readonly connections = new Map<number, TcpClientConnection>();
  /** Frames the guest transmitted, as the host callback saw them. */
  readonly transmitted: Uint8Array[] = [];
  badChecksums = 0;
  private nextPort = 40000;
  private machineRef: Machine;

  constructor(machine: Machine, guestIp: string, guestPort = 6379) {
    this.machineRef = machine;
    this.guestIp = ipv4(guestIp);
    this.guestPort = guestPort;
    this.attach(machine);
  }

  get machine(): Machine {
    return this.machineRef;
  }

  /** Moves the segment to another machine (a restored copy): the client's TCP state stays. */
  attach(machine: Machine): void {
    this.machineRef = machine;
    machine.net.host = { onFrame: (frame) => this.transmitted.push(frame) };
  }

  tcpFrame(segment: TcpSegment): Uint8Array {
    return ethernetFrame(this.guestMac, this.clientMac, ETHERTYPE_IPV4, ipv4TcpPacket(this.clientIp, this.guestIp, segment));
  }

  /** Delivers frames, then runs the guest and handles what it sends until nothing more happens. */
  exchange(frames: Uint8Array[] = []): void {
    let pending = frames;
    for (let round = 0; round < 64; round++) {
      for (const frame of pending) this.machine.net.receive(frame);
      this.runUntilIdle();
      pending = this.answerTransmitted();
      if (pending.length === 0) return;
    }
    assert.fail('the guest and the client kept exchanging frames for 64 rounds');
  }

  runUntilIdle(): void {
    for (let slice = 0; slice < 2000; slice++) {
      if (this.machine.exit !== null) assert.fail(`the guest stopped: ${JSON.stringify(this.machine.exit)}`);
      if (this.machine.run(500_000).stop === STOP_IDLE) return;
    }
    assert.fail('the guest never went idle');
  }

  /**
   * Takes the frames the guest transmitted (as far as they reached the client): answers ARP
   * requests, feeds TCP segments to their connections, and returns the frames the client sends
   * back (ARP replies, acknowledgements).
   */
  answerTransmitted(): Uint8Array[] {
    const replies: Uint8Array[] = [];
    const frames = this.transmitted.splice(0);
    for (const frame of frames) {
      const parsed = parseFrame(frame);
      if (parsed.arp) {
        if (parsed.arp.operation === 1 && parsed.arp.targetIp === this.clientIp) {
          replies.push(
            ethernetFrame(
              parsed.arp.senderMac,
              this.clientMac,
              ETHERTYPE_ARP,
              arpPacket(2, this.clientMac, this.clientIp, parsed.arp.senderMac, parsed.arp.senderIp),
            ),
          );
        }
        if (parsed.arp.operation === 2 && parsed.arp.senderIp === this.guestIp) this.guestMac = parsed.arp.senderMac;
        continue;
      }
      if (!parsed.tcp) continue;
      if (!parsed.tcp.checksumOk) {
        this.badChecksums++;
        continue;
      }
      const connection = this.connections.get(parsed.tcp.destinationPort);
      if (connection?.onSegment(parsed.tcp)) replies.push(connection.segmentFrame(TCP_ACK));
    }
    return replies;
  }

  /** Lets `ms` of guest time pass by skipping the idle guest's clock from timer to timer. */
  advanceGuestMs(ms: number): void {
    const target = this.machine.cpu.currentCycle() + (ms * TIMEBASE_HZ) / 1000;
    for (let step = 0; step < 10_000 && this.machine.cpu.currentCycle() < target; step++) {
      if (!this.machine.cpu.skipToTimer()) assert.fail('the guest is not waiting for a timer');
      this.exchange();
    }
    assert.ok(this.machine.cpu.currentCycle() >= target, 'guest time advanced');
  }

  /** Resolves the guest's MAC with an ARP request, as a client's kernel does first. */
  resolveGuest(): void {
    this.exchange([
      ethernetFrame(
        macBytes('ff:ff:ff:ff:ff:ff'),
        this.clientMac,
        ETHERTYPE_ARP,
        arpPacket(1, this.clientMac, this.clientIp, new Uint8Array(6), this.guestIp),
      ),
    ]);
  }

  /** Opens a connection (SYN, SYN-ACK, ACK); it may be refused (reset). */
  connect(): TcpClientConnection {
    const port = this.nextPort++;
    const connection = new TcpClientConnection(this, port, 0x1000_0000 + port * 0x10000);
    this.connections.set(port, connection);
    this.exchange([connection.segmentFrame(TCP_SYN)]);
    if (connection.established) this.exchange([connection.segmentFrame(TCP_ACK)]);
    return connection;
  }

  /** Sends bytes (one segment per call, at most one MSS) and returns the guest's answer so far. */
  send(connection: TcpClientConnection, text: string | Uint8Array): string {
    this.push(connection, text);
    return connection.take();
  }

  /** Sends bytes in segments of at most one MSS, leaving what comes back unread. */
  push(connection: TcpClientConnection, text: string | Uint8Array): void {
    const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
    for (let offset = 0; offset < bytes.length; offset += 1460) {
      this.exchange([connection.segmentFrame(TCP_ACK | TCP_PSH, bytes.subarray(offset, offset + 1460))]);
    }
  }

  close(connection: TcpClientConnection): void {
    this.exchange([connection.segmentFrame(TCP_ACK | TCP_FIN)]);
  }
}
