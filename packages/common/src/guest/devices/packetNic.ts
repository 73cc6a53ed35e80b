// Exempt from Biome's noNonNullAssertion (biome.json): the packet NIC: every `x[i]!` indexes a fixed-size
// array (the MAC, a register list whose length is checked above) or a queue known non-empty, in range by
// construction, on the MMIO path.
import { StateFormatError } from '../../errors.ts';
import { NET_BASE, NET_SIZE } from '../addressMap.ts';
import type { GuestMemory } from '../memory.ts';
import { expectBytes, expectDeviceState, expectUint32, type Device, type DeviceState } from './device.ts';

/*
 * Register offsets of the packet NIC; the C view is guests/include/hbft.h (HBFT_NET_*), and
 * test/guest/abi.test.ts checks that both agree. All registers are 32-bit.
 *
 *   0x00 ID           RO  NET_ID_VALUE: tells a guest the device is there
 *   0x04 MAC_LO       RO  MAC bytes 0..3 (byte 0 in bits 7:0)
 *   0x08 MAC_HI       RO  MAC bytes 4..5 in bits 15:0
 *   0x0c STATUS       bit 0 link up (RO), bit 1 receive pending (RO), bit 2 configuration refused,
 *                     bit 3 bad transmit descriptor skipped, bit 4 the link state changed (mip.MEIP
 *                     is set while it is); writing 1s clears bits 2, 3 and 4
 *   0x10 CTRL         bit 0 enable (write after the rings are set; enabling resets the indices);
 *                     bit 1 checksum offload, taken only with the write that enables: a guest that
 *                     reads it back set may leave IPv4 header and TCP checksums to the device (see
 *                     "Checksum offload" below); a device without it reads the bit back clear
 *   0x14 FRAME_MAX    RO  largest frame either way (Ethernet header + 1500, no FCS)
 *   0x18 RX_BASE      receive descriptor ring (8-byte aligned, in RAM), writable while disabled
 *   0x1c RX_COUNT     its descriptors: a power of two, 1..NET_RING_DESCRIPTORS_MAX
 *   0x20 RX_AVAIL     guest: free-running count of receive buffers posted
 *   0x24 RX_USED      device: free-running count of posted buffers it filled with a frame
 *   0x28 RX_CONSUMED  guest: free-running count of filled buffers it has taken; mip.MEIP is set
 *                     while RX_USED != RX_CONSUMED
 *   0x2c TX_BASE      transmit descriptor ring, as RX_BASE
 *   0x30 TX_COUNT     as RX_COUNT
 *   0x34 TX_AVAIL     guest: free-running count of frames posted. Writing it is the doorbell: the
 *                     device takes every frame up to it before the write returns, so afterwards
 *                     TX_USED == TX_AVAIL and every transmit buffer is the guest's again
 *   0x38 TX_USED      device
 *   0x3c RX_DROPPED   RO  frames from the network the guest never saw (any reason)
 *
 * A descriptor is 8 bytes: u32 buffer address, u32 length. Descriptor i of a ring sits at
 * BASE + 8 * (i & (COUNT - 1)). Receive: the guest writes the buffer's address and capacity and
 * advances RX_AVAIL; the device writes a frame into the buffer, overwrites the length with the
 * frame's, and advances RX_USED. Transmit: the guest writes the frame's address and length.
 * This is virtio-net's split ring reduced to what a single-queue NIC needs.
 *
 * Checksum offload (CTRL bit 1), as a real NIC's: on transmit the device fills in the IPv4 header
 * checksum of every IPv4 frame and the TCP checksum of every unfragmented TCP segment (whatever
 * the guest left there). On receive it verifies both and drops a frame whose checksum is wrong
 * (counted in rxBadChecksum and RX_DROPPED), so the guest need not verify them; a frame it cannot
 * check (an IPv4 header or segment cut short, a fragment) goes to the guest, whose stack drops it.
 * Emulated, a checksum costs the host a fraction of a microsecond and the guest a few hundred
 * instructions.
 */
export const NET_ID = 0x00;
export const NET_MAC_LO = 0x04;
export const NET_MAC_HI = 0x08;
export const NET_STATUS = 0x0c;
export const NET_CTRL = 0x10;
export const NET_FRAME_MAX = 0x14;
export const NET_RX_BASE = 0x18;
export const NET_RX_COUNT = 0x1c;
export const NET_RX_AVAIL = 0x20;
export const NET_RX_USED = 0x24;
export const NET_RX_CONSUMED = 0x28;
export const NET_TX_BASE = 0x2c;
export const NET_TX_COUNT = 0x30;
export const NET_TX_AVAIL = 0x34;
export const NET_TX_USED = 0x38;
export const NET_RX_DROPPED = 0x3c;

/** "hbnt" */
export const NET_ID_VALUE = 0x6862_6e74;
export const NET_CTRL_ENABLE = 1;
export const NET_CTRL_CHECKSUM_OFFLOAD = 2;
export const NET_STATUS_LINK_UP = 1;
export const NET_STATUS_RX_PENDING = 2;
export const NET_STATUS_CONFIG_ERROR = 4;
export const NET_STATUS_TX_ERROR = 8;
export const NET_STATUS_LINK_CHANGED = 16;

export const NET_DESCRIPTOR_BYTES = 8;
export const NET_RING_DESCRIPTORS_MAX = 4096;
/** An Ethernet header: destination, source, EtherType. Anything shorter is a runt. */
export const ETHERNET_HEADER_BYTES = 14;
/** 1500 bytes of payload (the standard MTU) and the header; frames carry no FCS. */
export const ETHERNET_FRAME_BYTES_MAX = 1514;
/** Frames received from the network but not yet in the guest's ring. */
export const NET_RX_QUEUE_FRAMES_MAX = 256;
export const MAC_BYTES = 6;

/** What happened to a frame handed to receive(). */
export type ReceiveOutcome = 'queued' | 'runt' | 'oversize' | 'queue-full' | 'link-down' | 'bad-checksum';

const ETHERTYPE_IPV4 = 0x0800;
const IP_PROTOCOL_TCP = 6;
/** Offsets in a frame: the EtherType, then the IPv4 header's fields (after the 14-byte Ethernet header). */
const ETHERTYPE_OFFSET = 12;
const IP_OFFSET = ETHERNET_HEADER_BYTES;
const IP_HEADER_BYTES_MIN = 20;
const IP_TOTAL_LENGTH = 2;
const IP_FRAGMENT = 6;
const IP_PROTOCOL = 9;
const IP_CHECKSUM = 10;
const IP_SOURCE = 12;
const TCP_CHECKSUM = 16;
const TCP_HEADER_BYTES_MIN = 20;

/** The ones' complement sum of bytes [from, to) as 16-bit big-endian words, folded to 16 bits (RFC 1071). */
function onesComplementSum(frame: Uint8Array, from: number, to: number, initial: number): number {
  let sum = initial;
  let i = from;
  for (; i + 1 < to; i += 2) sum += (frame[i]! << 8) | frame[i + 1]!;
  if (i < to) sum += frame[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * Where a frame's IPv4 header and (unfragmented) TCP segment are, or null when it is no IPv4 frame
 * whose header is all there. tcpOffset is -1 when there is no whole TCP segment to checksum.
 */
function ipv4Layout(frame: Uint8Array): { headerBytes: number; tcpOffset: number; tcpEnd: number } | null {
  if (frame.length < IP_OFFSET + IP_HEADER_BYTES_MIN) return null;
  if (((frame[ETHERTYPE_OFFSET]! << 8) | frame[ETHERTYPE_OFFSET + 1]!) !== ETHERTYPE_IPV4) return null;
  const versionAndLength = frame[IP_OFFSET]!;
  const headerBytes = (versionAndLength & 0x0f) * 4;
  if (versionAndLength >> 4 !== 4 || headerBytes < IP_HEADER_BYTES_MIN || IP_OFFSET + headerBytes > frame.length) return null;
  const totalLength = (frame[IP_OFFSET + IP_TOTAL_LENGTH]! << 8) | frame[IP_OFFSET + IP_TOTAL_LENGTH + 1]!;
  const fragment = ((frame[IP_OFFSET + IP_FRAGMENT]! << 8) | frame[IP_OFFSET + IP_FRAGMENT + 1]!) & 0x3fff;
  const whole = totalLength >= headerBytes + TCP_HEADER_BYTES_MIN && IP_OFFSET + totalLength <= frame.length && fragment === 0;
  const tcp = whole && frame[IP_OFFSET + IP_PROTOCOL] === IP_PROTOCOL_TCP;
  return { headerBytes, tcpOffset: tcp ? IP_OFFSET + headerBytes : -1, tcpEnd: IP_OFFSET + totalLength };
}

/** The TCP checksum's sum over the pseudo header and the segment, its checksum field included. */
function tcpSum(frame: Uint8Array, tcpOffset: number, tcpEnd: number): number {
  // Pseudo header: source and destination addresses, protocol, TCP length.
  const pseudo = onesComplementSum(frame, IP_OFFSET + IP_SOURCE, IP_OFFSET + IP_SOURCE + 8, IP_PROTOCOL_TCP + (tcpEnd - tcpOffset));
  return onesComplementSum(frame, tcpOffset, tcpEnd, pseudo);
}

/** Whether an IPv4 frame's header and TCP checksums are right (true for frames it cannot check). */
export function ipv4ChecksumsOk(frame: Uint8Array): boolean {
  const layout = ipv4Layout(frame);
  if (layout === null) return true;
  if (onesComplementSum(frame, IP_OFFSET, IP_OFFSET + layout.headerBytes, 0) !== 0xffff) return false;
  return layout.tcpOffset < 0 || tcpSum(frame, layout.tcpOffset, layout.tcpEnd) === 0xffff;
}

/** Fills in an IPv4 frame's header checksum and its TCP segment's checksum (in place). */
export function fillIpv4Checksums(frame: Uint8Array): void {
  const layout = ipv4Layout(frame);
  if (layout === null) return;
  frame[IP_OFFSET + IP_CHECKSUM] = frame[IP_OFFSET + IP_CHECKSUM + 1] = 0;
  const header = ~onesComplementSum(frame, IP_OFFSET, IP_OFFSET + layout.headerBytes, 0) & 0xffff;
  frame[IP_OFFSET + IP_CHECKSUM] = header >> 8;
  frame[IP_OFFSET + IP_CHECKSUM + 1] = header & 0xff;
  if (layout.tcpOffset < 0) return;
  frame[layout.tcpOffset + TCP_CHECKSUM] = frame[layout.tcpOffset + TCP_CHECKSUM + 1] = 0;
  const tcp = ~tcpSum(frame, layout.tcpOffset, layout.tcpEnd) & 0xffff;
  frame[layout.tcpOffset + TCP_CHECKSUM] = tcp >> 8;
  frame[layout.tcpOffset + TCP_CHECKSUM + 1] = tcp & 0xff;
}

export interface PacketNicCounters {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Shorter than an Ethernet header. */
  rxRunts: number;
  /** Longer than ETHERNET_FRAME_BYTES_MAX. */
  rxOversize: number;
  /** NET_RX_QUEUE_FRAMES_MAX frames were already waiting for receive buffers. */
  rxQueueFull: number;
  /** Arrived while the link was down. */
  rxLinkDown: number;
  /** Did not fit the guest's next receive buffer. */
  rxTooLargeForBuffer: number;
  /** IPv4 frames whose IP header or TCP checksum was wrong, with checksum offload on (dropped). */
  rxBadChecksum: number;
  /** Transmit descriptors with a bad length or address (skipped). */
  txErrors: number;
  /** Frames the guest transmitted while the link was down (not passed on). */
  txLinkDown: number;
}

/** The counters of a state's `counters` array, in order (rxBadChecksum came later: a field of its own). */
const COUNTER_NAMES: (keyof PacketNicCounters)[] = [
  'rxFrames',
  'rxBytes',
  'txFrames',
  'txBytes',
  'rxRunts',
  'rxOversize',
  'rxQueueFull',
  'rxLinkDown',
  'rxTooLargeForBuffer',
  'txErrors',
  'txLinkDown',
];

function zeroCounters(): PacketNicCounters {
  return { ...(Object.fromEntries(COUNTER_NAMES.map((name) => [name, 0])) as unknown as PacketNicCounters), rxBadChecksum: 0 };
}

export interface PacketNicHost {
  /** Every frame the guest transmits passes here, in order: output commit hangs on this. */
  onFrame(frame: Uint8Array): void;
}

/** CTRL's checksum offload bit and the rxBadChecksum counter (a field of its own, not in `counters`)
    came later without a new version: a state without them (no offload, nothing dropped) is the same. */
const STATE_VERSION = 1;
const REGISTER_COUNT = 11;

/**
 * The packet NIC: Ethernet frames into and out of the guest through two descriptor rings in guest
 * memory (layout above). Host side: receive() checks a frame and queues it (bounded), and pump()
 * moves queued frames into posted receive buffers by DMA through GuestMemory.writeBytes, so dirty
 * tracking sees every byte. Guest side: writing TX_AVAIL hands every posted frame to host.onFrame.
 *
 * Determinism: pump() runs only where the machine calls it (between run slices) and when the guest
 * posts buffers, so execution is a function of the frames and the points they arrive at. The MAC,
 * the link state, the rings' registers and the queued frames are all device state.
 */
export class PacketNic implements Device {
  readonly name = 'net';
  readonly base = NET_BASE;
  readonly size = NET_SIZE;
  host: PacketNicHost = { onFrame: () => {} };
  /** Called when mip.MEIP's source changes (receive pending or not). */
  onInterruptChange: () => void = () => {};

  private readonly memory: GuestMemory;
  private readonly macBytes = new Uint8Array(MAC_BYTES);
  private linkUp = true;
  private ctrl = 0;
  private status = 0;
  private rxBase = 0;
  private rxCount = 0;
  private rxAvail = 0;
  private rxUsed = 0;
  private rxConsumed = 0;
  private txBase = 0;
  private txCount = 0;
  private txAvail = 0;
  private txUsed = 0;
  private counterValues = zeroCounters();
  private queue: Uint8Array[] = [];

  constructor(memory: GuestMemory) {
    this.memory = memory;
  }

  get enabled(): boolean {
    return (this.ctrl & NET_CTRL_ENABLE) !== 0;
  }

  /** The guest turned checksum offload on (CTRL bit 1 with the enabling write). */
  get checksumOffload(): boolean {
    return (this.ctrl & NET_CTRL_CHECKSUM_OFFLOAD) !== 0;
  }

  /** Filled receive buffers the guest has not taken yet. */
  get rxPending(): boolean {
    return this.enabled && this.rxUsed !== this.rxConsumed;
  }

  /** mip.MEIP: a frame to take, or a link change to act on. */
  get interruptPending(): boolean {
    return this.rxPending || (this.enabled && (this.status & NET_STATUS_LINK_CHANGED) !== 0);
  }

  get mac(): Uint8Array {
    return Uint8Array.from(this.macBytes);
  }

  get link(): boolean {
    return this.linkUp;
  }

  /** Frames accepted from the network and waiting for receive buffers. */
  get queuedFrames(): number {
    return this.queue.length;
  }

  counters(): PacketNicCounters {
    return { ...this.counterValues };
  }

  setMac(mac: Uint8Array): void {
    if (mac.length !== MAC_BYTES) throw new RangeError(`a MAC address has ${MAC_BYTES} bytes, not ${mac.length}`);
    this.macBytes.set(mac);
  }

  /**
   * Link down: frames from the network are dropped and frames from the guest are not passed on.
   * A change is signalled to the guest (STATUS bit 4 and an interrupt): down and up again is how
   * the node that takes over tells a resumed guest that its cable moved.
   */
  setLink(up: boolean): void {
    if (up !== this.linkUp) {
      const wasPending = this.interruptPending;
      this.status |= NET_STATUS_LINK_CHANGED;
      if (this.interruptPending !== wasPending) this.onInterruptChange();
    }
    this.linkUp = up;
    if (!up) {
      this.counterValues.rxLinkDown += this.queue.length;
      this.queue = [];
    }
  }

  /** Checks a frame from the network and queues it for the guest; never throws on its content. */
  receive(frame: Uint8Array): ReceiveOutcome {
    const outcome = this.classify(frame);
    switch (outcome) {
      case 'queued':
        this.queue.push(Uint8Array.from(frame));
        break;
      case 'runt':
        this.counterValues.rxRunts++;
        break;
      case 'oversize':
        this.counterValues.rxOversize++;
        break;
      case 'queue-full':
        this.counterValues.rxQueueFull++;
        break;
      case 'link-down':
        this.counterValues.rxLinkDown++;
        break;
      case 'bad-checksum':
        this.counterValues.rxBadChecksum++;
        break;
    }
    return outcome;
  }

  private classify(frame: Uint8Array): ReceiveOutcome {
    if (!this.linkUp) return 'link-down';
    if (frame.length < ETHERNET_HEADER_BYTES) return 'runt';
    if (frame.length > ETHERNET_FRAME_BYTES_MAX) return 'oversize';
    if (this.queue.length >= NET_RX_QUEUE_FRAMES_MAX) return 'queue-full';
    if (this.checksumOffload && !ipv4ChecksumsOk(frame)) return 'bad-checksum';
    return 'queued';
  }

  /** Moves queued frames into posted receive buffers. Returns whether anything moved. */
  pump(): boolean {
    const wasPending = this.rxPending;
    const moved = this.fillReceiveBuffers();
    if (this.rxPending !== wasPending) this.onInterruptChange();
    return moved;
  }

  private fillReceiveBuffers(): boolean {
    if (!this.enabled) return false;
    let moved = false;
    while (this.queue.length > 0 && this.rxAvail !== this.rxUsed) {
      const frame = this.queue.shift()!;
      const descriptor = this.descriptorOffset(this.rxBase, this.rxCount, this.rxUsed);
      const address = this.memory.readU32(descriptor);
      const capacity = this.memory.readU32(descriptor + 4);
      const offset = this.bufferOffset(address, capacity);
      if (offset < 0) {
        // A buffer outside RAM: hand it back empty rather than write anywhere else.
        this.status |= NET_STATUS_CONFIG_ERROR;
        this.memory.writeU32(descriptor + 4, 0, 'device');
      } else if (frame.length > capacity) {
        this.counterValues.rxTooLargeForBuffer++;
        continue;
      } else {
        this.memory.writeBytes(offset, frame, 'device');
        this.memory.writeU32(descriptor + 4, frame.length, 'device');
        this.counterValues.rxFrames++;
        this.counterValues.rxBytes += frame.length;
      }
      this.rxUsed = (this.rxUsed + 1) >>> 0;
      moved = true;
    }
    return moved;
  }

  /** RAM offset of descriptor `index` of a ring (the ring was checked when the device was enabled). */
  private descriptorOffset(base: number, count: number, index: number): number {
    return this.memory.ramOffset(base) + (index & (count - 1)) * NET_DESCRIPTOR_BYTES;
  }

  /** RAM offset of a guest buffer, or -1 when [address, address + bytes) is not all in RAM. */
  private bufferOffset(address: number, bytes: number): number {
    const offset = this.memory.ramOffset(address);
    if (offset < 0 || bytes > this.memory.ramBytes - offset) return -1;
    return offset;
  }

  read(offset: number, sizeBytes: number): number {
    if (sizeBytes !== 4) return 0;
    switch (offset) {
      case NET_ID:
        return NET_ID_VALUE;
      case NET_MAC_LO:
        return (this.macBytes[0]! | (this.macBytes[1]! << 8) | (this.macBytes[2]! << 16) | (this.macBytes[3]! << 24)) >>> 0;
      case NET_MAC_HI:
        return this.macBytes[4]! | (this.macBytes[5]! << 8);
      case NET_STATUS:
        return (this.status | (this.linkUp ? NET_STATUS_LINK_UP : 0) | (this.rxPending ? NET_STATUS_RX_PENDING : 0)) >>> 0;
      case NET_CTRL:
        return this.ctrl;
      case NET_FRAME_MAX:
        return ETHERNET_FRAME_BYTES_MAX;
      case NET_RX_BASE:
        return this.rxBase;
      case NET_RX_COUNT:
        return this.rxCount;
      case NET_RX_AVAIL:
        return this.rxAvail;
      case NET_RX_USED:
        return this.rxUsed;
      case NET_RX_CONSUMED:
        return this.rxConsumed;
      case NET_TX_BASE:
        return this.txBase;
      case NET_TX_COUNT:
        return this.txCount;
      case NET_TX_AVAIL:
        return this.txAvail;
      case NET_TX_USED:
        return this.txUsed;
      case NET_RX_DROPPED: {
        const c = this.counterValues;
        return (c.rxRunts + c.rxOversize + c.rxQueueFull + c.rxLinkDown + c.rxTooLargeForBuffer + c.rxBadChecksum) >>> 0;
      }
      default:
        return 0;
    }
  }

  write(offset: number, sizeBytes: number, value: number): void {
    if (sizeBytes !== 4) return;
    value >>>= 0;
    switch (offset) {
      case NET_STATUS: {
        const wasPending = this.interruptPending;
        this.status &= ~(value & (NET_STATUS_CONFIG_ERROR | NET_STATUS_TX_ERROR | NET_STATUS_LINK_CHANGED));
        if (this.interruptPending !== wasPending) this.onInterruptChange();
        return;
      }
      case NET_CTRL:
        this.setControl(value);
        return;
      case NET_RX_BASE:
        if (!this.enabled) this.rxBase = value;
        return;
      case NET_RX_COUNT:
        if (!this.enabled) this.rxCount = value;
        return;
      case NET_TX_BASE:
        if (!this.enabled) this.txBase = value;
        return;
      case NET_TX_COUNT:
        if (!this.enabled) this.txCount = value;
        return;
      case NET_RX_AVAIL:
        // More buffers than the ring holds would make the device overwrite descriptors it has not
        // returned: refuse the write.
        if (!this.enabled) return;
        if ((value - this.rxUsed) >>> 0 > this.rxCount) {
          this.status |= NET_STATUS_CONFIG_ERROR;
          return;
        }
        this.rxAvail = value;
        this.pump();
        return;
      case NET_RX_CONSUMED: {
        // Only forward, and only over buffers the device filled.
        if (!this.enabled) return;
        const advance = (value - this.rxConsumed) >>> 0;
        if (advance > (this.rxUsed - this.rxConsumed) >>> 0) {
          this.status |= NET_STATUS_CONFIG_ERROR;
          return;
        }
        const wasPending = this.rxPending;
        this.rxConsumed = value;
        if (this.rxPending !== wasPending) this.onInterruptChange();
        return;
      }
      case NET_TX_AVAIL:
        if (!this.enabled) return;
        this.txAvail = value;
        this.transmitPosted();
        return;
    }
  }

  private ringValid(base: number, count: number): boolean {
    return (
      count >= 1 &&
      count <= NET_RING_DESCRIPTORS_MAX &&
      (count & (count - 1)) === 0 &&
      (base & 7) === 0 &&
      this.bufferOffset(base, count * NET_DESCRIPTOR_BYTES) >= 0
    );
  }

  private setControl(value: number): void {
    const enable = (value & NET_CTRL_ENABLE) !== 0;
    if (enable && !this.enabled) {
      if (!this.ringValid(this.rxBase, this.rxCount) || !this.ringValid(this.txBase, this.txCount)) {
        this.status |= NET_STATUS_CONFIG_ERROR;
        return;
      }
      this.status &= ~NET_STATUS_CONFIG_ERROR;
      this.rxAvail = this.rxUsed = this.rxConsumed = 0;
      this.txAvail = this.txUsed = 0;
      this.ctrl = NET_CTRL_ENABLE | (value & NET_CTRL_CHECKSUM_OFFLOAD);
    } else if (!enable && this.enabled) {
      const wasPending = this.rxPending;
      this.ctrl = 0;
      if (wasPending) this.onInterruptChange();
    }
  }

  /** Takes every posted transmit descriptor; a bad one is skipped and counted. */
  private transmitPosted(): void {
    if ((this.txAvail - this.txUsed) >>> 0 > this.txCount) {
      // The guest claims more frames than the ring holds: nothing of it can be trusted.
      this.status |= NET_STATUS_TX_ERROR;
      this.counterValues.txErrors++;
      this.txUsed = this.txAvail;
      return;
    }
    while (this.txUsed !== this.txAvail) {
      const descriptor = this.descriptorOffset(this.txBase, this.txCount, this.txUsed);
      const address = this.memory.readU32(descriptor);
      const length = this.memory.readU32(descriptor + 4);
      const offset = this.bufferOffset(address, length);
      this.txUsed = (this.txUsed + 1) >>> 0;
      if (length < ETHERNET_HEADER_BYTES || length > ETHERNET_FRAME_BYTES_MAX || offset < 0) {
        this.status |= NET_STATUS_TX_ERROR;
        this.counterValues.txErrors++;
        continue;
      }
      if (!this.linkUp) {
        this.counterValues.txLinkDown++;
        continue;
      }
      this.counterValues.txFrames++;
      this.counterValues.txBytes += length;
      const frame = Uint8Array.from(this.memory.readBytes(offset, length));
      if (this.checksumOffload) fillIpv4Checksums(frame);
      this.host.onFrame(frame);
    }
  }

  getState(): DeviceState {
    return {
      v: STATE_VERSION,
      mac: Uint8Array.from(this.macBytes),
      link: this.linkUp,
      regs: [
        this.ctrl,
        this.status,
        this.rxBase,
        this.rxCount,
        this.rxAvail,
        this.rxUsed,
        this.rxConsumed,
        this.txBase,
        this.txCount,
        this.txAvail,
        this.txUsed,
      ],
      counters: COUNTER_NAMES.map((name) => this.counterValues[name]),
      rxBadChecksum: this.counterValues.rxBadChecksum,
      queue: this.queue.map((frame) => Uint8Array.from(frame)),
    };
  }

  setState(state: unknown): void {
    const record = expectDeviceState(this.name, state, STATE_VERSION);
    const mac = expectBytes(this.name, record, 'mac');
    if (mac.length !== MAC_BYTES) throw new StateFormatError(`net state: "mac" must be ${MAC_BYTES} bytes`);
    if (typeof record.link !== 'boolean') throw new StateFormatError('net state: "link" must be a boolean');
    const regs = record.regs;
    if (!Array.isArray(regs) || regs.length !== REGISTER_COUNT) {
      throw new StateFormatError(`net state: "regs" must hold ${REGISTER_COUNT} registers`);
    }
    const regValues = regs.map((_, i) => expectUint32(this.name, regs as unknown as Record<string, unknown>, String(i)));
    const counters = record.counters;
    const badChecksum = record.rxBadChecksum ?? 0;
    if (typeof badChecksum !== 'number' || !Number.isSafeInteger(badChecksum) || badChecksum < 0) {
      throw new StateFormatError('net state: "rxBadChecksum" must be a non-negative integer');
    }
    if (
      !Array.isArray(counters) ||
      counters.length !== COUNTER_NAMES.length ||
      !counters.every((value) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)
    ) {
      throw new StateFormatError(`net state: "counters" must hold ${COUNTER_NAMES.length} non-negative integers`);
    }
    const queue = record.queue;
    if (!Array.isArray(queue) || queue.length > NET_RX_QUEUE_FRAMES_MAX) {
      throw new StateFormatError(`net state: "queue" must be an array of at most ${NET_RX_QUEUE_FRAMES_MAX} frames`);
    }
    const frames = queue.map((frame) => {
      if (!(frame instanceof Uint8Array) || frame.length < ETHERNET_HEADER_BYTES || frame.length > ETHERNET_FRAME_BYTES_MAX) {
        throw new StateFormatError('net state: a queued frame is not an Ethernet frame');
      }
      return Uint8Array.from(frame);
    });
    const [ctrl, , rxBase, rxCount, , , , txBase, txCount] = regValues as number[];
    if ((ctrl! & NET_CTRL_ENABLE) !== 0 && (!this.ringValid(rxBase!, rxCount!) || !this.ringValid(txBase!, txCount!))) {
      throw new StateFormatError('net state: enabled with rings outside RAM or of a bad size');
    }
    this.macBytes.set(mac);
    this.linkUp = record.link;
    [
      this.ctrl,
      this.status,
      this.rxBase,
      this.rxCount,
      this.rxAvail,
      this.rxUsed,
      this.rxConsumed,
      this.txBase,
      this.txCount,
      this.txAvail,
      this.txUsed,
    ] = regValues as [number, number, number, number, number, number, number, number, number, number, number];
    this.counterValues = {
      ...(Object.fromEntries(COUNTER_NAMES.map((name, i) => [name, counters[i] as number])) as unknown as PacketNicCounters),
      rxBadChecksum: badChecksum,
    };
    this.queue = frames;
  }
}
