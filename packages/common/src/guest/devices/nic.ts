// Exempt from Biome's noNonNullAssertion (biome.json): the NIC: every `x[i]!` indexes a per-slot counter
// array with a slot checked against the slot count on entry, in range by construction, on the MMIO path.
import { StateFormatError, assert } from '../../errors.ts';
import {
  clientInputQueuedBytesMaxPerConnection,
  clientInputQueuedBytesMaxTotal,
  clientOutputOutstandingBytesHighPerConnection,
  clientOutputOutstandingBytesHighTotal,
  nicConnectionsMax,
  nicReceiveRingFillBytesMax,
} from '../../limits.ts';
import { NIC_BASE, NIC_SIZE } from '../addressMap.ts';
import type { GuestMemory } from '../memory.ts';
import { expectBytes, expectDeviceState, expectSafeUint, expectUint32, type Device, type DeviceState } from './device.ts';

/* Register offsets; the C view with the ring format is guests/include/hbft.h. */
export const NIC_RX_BASE = 0x00;
export const NIC_RX_SIZE = 0x04;
export const NIC_RX_HEAD = 0x08;
export const NIC_RX_TAIL = 0x0c;
export const NIC_TX_BASE = 0x10;
export const NIC_TX_SIZE = 0x14;
export const NIC_TX_HEAD = 0x18;
export const NIC_TX_TAIL = 0x1c;
export const NIC_CTRL = 0x20;
export const NIC_STATUS = 0x24;
export const NIC_CONN_MAX = 0x28;
export const NIC_RECORD_MAX = 0x2c;

export const NIC_CTRL_ENABLE = 1;
export const NIC_STATUS_RX_PENDING = 1;
export const NIC_STATUS_TX_ERROR = 2;
export const NIC_STATUS_CONFIG_ERROR = 4;

export const RECORD_PAD = 0;
export const RECORD_OPEN = 1;
export const RECORD_DATA = 2;
export const RECORD_CLOSE = 3;

export const NIC_CONNECTIONS_MAX = nicConnectionsMax;
/** Largest payload the device puts into one receive DATA record. */
export const NIC_RECORD_PAYLOAD_BYTES_MAX = 2048;
export const NIC_RECORD_HEADER_BYTES = 8;
export const NIC_RING_BYTES_MIN = 4096;
export const NIC_RING_BYTES_MAX = 16 * 1024 * 1024;

const SLOT_FREE = 0;
/** Open (the OPEN record may still be queued). */
const SLOT_OPEN = 1;
/** The client hung up: CLOSE is queued or delivered; the guest's own CLOSE frees the slot. */
const SLOT_HUNG_UP = 2;

interface PendingEvent {
  slot: number;
  type: number;
  /** The event's bytes are `bytes[0, length)`; DATA events grow in place as more input comes. */
  bytes: Uint8Array;
  length: number;
  /** How much of it is already in the ring. */
  sent: number;
}

export type DeliverResult = 'queued' | 'not-open' | 'over-limit';

/**
 * Flow control between the host's clients and the guest (limits.ts). Input: the queue is
 * bounded per connection and in total, because it is device state and rides in every checkpoint.
 * Output: a connection whose client has not taken this much of the guest's output (the host
 * reports what it took with `outputTaken`) gets no more input into the receive ring, so the guest
 * produces no more for it; the same over all connections.
 */
export interface NicFlowLimits {
  inputQueuedBytesMaxPerConnection: number;
  inputQueuedBytesMaxTotal: number;
  outputOutstandingBytesHighPerConnection: number;
  outputOutstandingBytesHighTotal: number;
}

export const NIC_FLOW_LIMITS: NicFlowLimits = {
  inputQueuedBytesMaxPerConnection: clientInputQueuedBytesMaxPerConnection,
  inputQueuedBytesMaxTotal: clientInputQueuedBytesMaxTotal,
  outputOutstandingBytesHighPerConnection: clientOutputOutstandingBytesHighPerConnection,
  outputOutstandingBytesHighTotal: clientOutputOutstandingBytesHighTotal,
};

/** Per-slot stream positions: the basis of client sessions that survive a failover. */
export interface NicStreamOffsets {
  /** Bytes from the client that the device has accepted (queued or in the ring). */
  rxAccepted: number;
  /** Bytes from the client written into the guest's receive ring. */
  rxDelivered: number;
  /** Bytes the guest has transmitted to the client. */
  txProduced: number;
}

export interface NicHost {
  /** Everything the guest transmits passes here, in order: output commit hangs on this. */
  onTransmit(slot: number, bytes: Uint8Array): void;
  /** The guest closed the connection on `slot`; the slot is free again. */
  onGuestClose(slot: number): void;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * The virtual NIC: byte streams of several client connections into and out of the guest through
 * two rings in guest memory (format in hbft.h). Host side: openConnection / deliver / hangUp put
 * events in one FIFO, and pump() moves them into the receive ring as space allows, by DMA through
 * GuestMemory.writeBytes so that dirty tracking sees them. Guest side: a write to TX_HEAD makes
 * the device consume every transmit record at once and hand the bytes to the host.
 *
 * Determinism: pump() runs only where the machine calls it (between run slices) and when the guest
 * frees ring space, so execution is a function of the inputs and the points they arrive at.
 */
export class VirtualNic implements Device {
  readonly name = 'nic';
  readonly base = NIC_BASE;
  readonly size = NIC_SIZE;
  host: NicHost = { onTransmit: () => {}, onGuestClose: () => {} };
  /** Called when the receive ring goes from empty to non-empty or back (mip.MEIP changes). */
  onInterruptChange: () => void = () => {};

  private readonly memory: GuestMemory;
  private rxBase = 0;
  private rxSize = 0;
  private rxHead = 0;
  private rxTail = 0;
  private txBase = 0;
  private txSize = 0;
  private txHead = 0;
  private txTail = 0;
  private ctrl = 0;
  private status = 0;
  private readonly slotState = new Uint8Array(NIC_CONNECTIONS_MAX);
  private readonly slotTag: string[] = new Array(NIC_CONNECTIONS_MAX).fill('');
  private readonly rxAccepted = new Float64Array(NIC_CONNECTIONS_MAX);
  private readonly rxDelivered = new Float64Array(NIC_CONNECTIONS_MAX);
  private readonly txProduced = new Float64Array(NIC_CONNECTIONS_MAX);
  private queue: PendingEvent[] = [];
  private queuedBytes = 0;
  private readonly slotQueuedBytes = new Float64Array(NIC_CONNECTIONS_MAX);
  /** A slot's last queued event when that is DATA: more input for the slot is appended to it. */
  private readonly lastData: (PendingEvent | null)[] = new Array(NIC_CONNECTIONS_MAX).fill(null);
  /**
   * Output of each open slot that its client has taken (host-reported; not device state: a host
   * that restores a state starts with nothing outstanding), and the sum of what is outstanding.
   */
  private readonly txTaken = new Float64Array(NIC_CONNECTIONS_MAX);
  private outputOutstandingBytes = 0;
  /** Per-call scratch of fillReceiveRing: slots whose queued events wait this time. */
  private readonly slotWaits = new Uint8Array(NIC_CONNECTIONS_MAX);
  /** Null: no flow control (a bare machine in tests and benchmarks); the guest worker sets it. */
  flowLimits: NicFlowLimits | null = null;

  constructor(memory: GuestMemory) {
    this.memory = memory;
  }

  get enabled(): boolean {
    return (this.ctrl & NIC_CTRL_ENABLE) !== 0;
  }

  /** mip.MEIP: records wait in the receive ring. */
  get rxPending(): boolean {
    return this.rxHead !== this.rxTail;
  }

  /** Bytes and events accepted from the host but not yet in the ring. */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  get pendingEvents(): number {
    return this.queue.length;
  }

  /** Input queued for `slot` and not yet in the ring. */
  pendingBytesOf(slot: number): number {
    return this.slotQueuedBytes[slot] ?? 0;
  }

  /** Output produced for open slots that their clients have not taken. */
  get outstandingOutputBytes(): number {
    return this.outputOutstandingBytes;
  }

  /** True while `slot`'s input is held back because its clients have not taken enough output. */
  inputHeld(slot: number): boolean {
    const limits = this.flowLimits;
    if (limits === null || this.slotState[slot] !== SLOT_OPEN) return false;
    return (
      this.txProduced[slot]! - this.txTaken[slot]! >= limits.outputOutstandingBytesHighPerConnection ||
      this.outputOutstandingBytes >= limits.outputOutstandingBytesHighTotal
    );
  }

  /**
   * The client of `slot` has taken its output up to stream offset `offset` (written to its socket,
   * or acknowledged): input held back for it may flow again, from the next pump().
   */
  outputTaken(slot: number, offset: number): void {
    if (this.slotState[slot] !== SLOT_OPEN) return;
    const taken = Math.min(Math.max(this.txTaken[slot]!, offset), this.txProduced[slot]!);
    this.outputOutstandingBytes -= taken - this.txTaken[slot]!;
    this.txTaken[slot] = taken;
  }

  /** The slot stops counting towards the output bound (its client is gone or it was closed). */
  private forgetOutstanding(slot: number): void {
    this.outputOutstandingBytes -= this.txProduced[slot]! - this.txTaken[slot]!;
    this.txTaken[slot] = this.txProduced[slot]!;
  }

  /** Opens a connection on a free slot and returns it, or -1 when every slot is taken. */
  openConnection(tag = ''): number {
    const slot = this.slotState.indexOf(SLOT_FREE);
    if (slot < 0) return -1;
    this.slotState[slot] = SLOT_OPEN;
    this.slotTag[slot] = tag;
    this.rxAccepted[slot] = 0;
    this.rxDelivered[slot] = 0;
    this.txProduced[slot] = 0;
    this.txTaken[slot] = 0;
    this.slotQueuedBytes[slot] = 0;
    this.lastData[slot] = null;
    this.queue.push({ slot, type: RECORD_OPEN, bytes: new Uint8Array(0), length: 0, sent: 0 });
    return slot;
  }

  isOpen(slot: number): boolean {
    return this.slotState[slot] === SLOT_OPEN;
  }

  tag(slot: number): string {
    return this.slotTag[slot] ?? '';
  }

  /** Slots in use (open, or hung up and waiting for the guest's CLOSE). */
  activeSlots(): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < NIC_CONNECTIONS_MAX; slot++) if (this.slotState[slot] !== SLOT_FREE) slots.push(slot);
    return slots;
  }

  offsets(slot: number): NicStreamOffsets {
    return { rxAccepted: this.rxAccepted[slot]!, rxDelivered: this.rxDelivered[slot]!, txProduced: this.txProduced[slot]! };
  }

  /**
   * Queues client bytes for `slot`. They are refused (nothing queued) when the slot is not open,
   * or when they would take the queue beyond its flow limits: the host keeps within them, so that
   * is the host's error, answered by closing the connection rather than by a checkpoint too large.
   */
  deliver(slot: number, bytes: Uint8Array): DeliverResult {
    if (this.slotState[slot] !== SLOT_OPEN) return 'not-open';
    if (bytes.length === 0) return 'queued';
    const limits = this.flowLimits;
    if (
      limits !== null &&
      (this.slotQueuedBytes[slot]! + bytes.length > limits.inputQueuedBytesMaxPerConnection ||
        this.queuedBytes + bytes.length > limits.inputQueuedBytesMaxTotal)
    ) {
      return 'over-limit';
    }
    const last = this.lastData[slot];
    if (last) {
      appendToEvent(last, bytes);
    } else {
      const event = { slot, type: RECORD_DATA, bytes: Uint8Array.from(bytes), length: bytes.length, sent: 0 };
      this.queue.push(event);
      this.lastData[slot] = event;
    }
    this.queuedBytes += bytes.length;
    this.slotQueuedBytes[slot]! += bytes.length;
    this.rxAccepted[slot]! += bytes.length;
    return 'queued';
  }

  /**
   * The client hung up: the guest gets CLOSE after any data still queued for it. Its output from
   * now on has no one to go to and is dropped here (it would only be held and then discarded).
   */
  hangUp(slot: number): void {
    if (this.slotState[slot] !== SLOT_OPEN) return;
    this.forgetOutstanding(slot);
    this.slotState[slot] = SLOT_HUNG_UP;
    this.lastData[slot] = null;
    this.queue.push({ slot, type: RECORD_CLOSE, bytes: new Uint8Array(0), length: 0, sent: 0 });
  }

  /** Moves queued events into the receive ring while they fit. Returns whether anything moved. */
  pump(): boolean {
    const wasPending = this.rxPending;
    const moved = this.fillReceiveRing();
    if (this.rxPending !== wasPending) this.onInterruptChange();
    return moved;
  }

  /**
   * Moves queued events into the ring, one record per connection per round so that a connection
   * with much input queued does not starve the others. Each connection's own events stay in
   * order; a connection whose input is held (flow control) waits, and so do its later events.
   */
  private fillReceiveRing(): boolean {
    if (!this.enabled) return false;
    let moved = false;
    const waits = this.slotWaits;
    for (let round = true; round; ) {
      round = false;
      waits.fill(0);
      for (let i = 0; i < this.queue.length; ) {
        const event = this.queue[i]!;
        if (waits[event.slot] === 1 || (event.type === RECORD_DATA && this.inputHeld(event.slot))) {
          waits[event.slot] = 1;
          i++;
          continue;
        }
        if (!this.writeRecord(event)) return moved;
        moved = round = true;
        if (event.sent === event.length) {
          this.queue.splice(i, 1);
          if (this.lastData[event.slot] === event) this.lastData[event.slot] = null;
        } else {
          waits[event.slot] = 1;
          i++;
        }
      }
    }
    return moved;
  }

  /**
   * Writes one record (or the next chunk of a DATA event). False when the ring is too full: the
   * device fills at most `nicReceiveRingFillBytesMax` of it, however large the guest made it.
   */
  private writeRecord(event: PendingEvent): boolean {
    const size = this.rxSize;
    const capacity = Math.min(size, nicReceiveRingFillBytesMax);
    const free = capacity - ((this.rxHead - this.rxTail) >>> 0);
    let position = this.rxHead & (size - 1);
    let contiguous = size - position;
    const remaining = event.length - event.sent;
    let payload = event.type === RECORD_DATA ? Math.min(remaining, NIC_RECORD_PAYLOAD_BYTES_MAX) : 0;
    // A DATA chunk shrinks to fit the space before the end of the ring, unless that space is tiny;
    // then a PAD record fills it and the record goes to the start.
    if (NIC_RECORD_HEADER_BYTES + align8(payload) > contiguous) {
      if (event.type === RECORD_DATA && contiguous >= NIC_RECORD_HEADER_BYTES + 64) {
        payload = Math.min(payload, contiguous - NIC_RECORD_HEADER_BYTES);
      } else {
        if (free < contiguous + NIC_RECORD_HEADER_BYTES + align8(payload)) return false;
        this.writeHeader(position, RECORD_PAD, 0, contiguous - NIC_RECORD_HEADER_BYTES);
        this.rxHead = (this.rxHead + contiguous) >>> 0;
        position = 0;
        contiguous = size;
      }
    }
    const recordBytes = NIC_RECORD_HEADER_BYTES + align8(payload);
    if (capacity - ((this.rxHead - this.rxTail) >>> 0) < recordBytes) return false;
    this.writeHeader(position, event.type, event.slot, payload);
    if (payload > 0) {
      const ramOffset = this.memory.ramOffset(this.rxBase) + position + NIC_RECORD_HEADER_BYTES;
      this.memory.writeBytes(ramOffset, event.bytes.subarray(event.sent, event.sent + payload), 'device');
      event.sent += payload;
      this.queuedBytes -= payload;
      this.slotQueuedBytes[event.slot]! -= payload;
      this.rxDelivered[event.slot]! += payload;
    }
    this.rxHead = (this.rxHead + recordBytes) >>> 0;
    return true;
  }

  private writeHeader(position: number, type: number, slot: number, length: number): void {
    const ramOffset = this.memory.ramOffset(this.rxBase) + position;
    this.memory.writeU32(ramOffset, (type & 0xffff) | (slot << 16), 'device');
    this.memory.writeU32(ramOffset + 4, length, 'device');
  }

  read(offset: number, sizeBytes: number): number {
    if (sizeBytes !== 4) return 0;
    switch (offset) {
      case NIC_RX_BASE:
        return this.rxBase;
      case NIC_RX_SIZE:
        return this.rxSize;
      case NIC_RX_HEAD:
        return this.rxHead;
      case NIC_RX_TAIL:
        return this.rxTail;
      case NIC_TX_BASE:
        return this.txBase;
      case NIC_TX_SIZE:
        return this.txSize;
      case NIC_TX_HEAD:
        return this.txHead;
      case NIC_TX_TAIL:
        return this.txTail;
      case NIC_CTRL:
        return this.ctrl;
      case NIC_STATUS:
        return (this.status | (this.rxPending ? NIC_STATUS_RX_PENDING : 0)) >>> 0;
      case NIC_CONN_MAX:
        return NIC_CONNECTIONS_MAX;
      case NIC_RECORD_MAX:
        return NIC_RECORD_PAYLOAD_BYTES_MAX;
      default:
        return 0;
    }
  }

  write(offset: number, sizeBytes: number, value: number): void {
    if (sizeBytes !== 4) return;
    value >>>= 0;
    switch (offset) {
      case NIC_RX_BASE:
        if (!this.enabled) this.rxBase = value;
        return;
      case NIC_RX_SIZE:
        if (!this.enabled) this.rxSize = value;
        return;
      case NIC_RX_TAIL: {
        // The guest consumed records: space freed, so queued events may go in now.
        // A tail may only move forward over records the device produced; ignore anything else.
        const stillUsed = (this.rxHead - value) >>> 0;
        if (stillUsed > (this.rxHead - this.rxTail) >>> 0 || (value & 7) !== 0) return;
        const wasPending = this.rxPending;
        this.rxTail = value;
        this.fillReceiveRing();
        if (this.rxPending !== wasPending) this.onInterruptChange();
        return;
      }
      case NIC_TX_BASE:
        if (!this.enabled) this.txBase = value;
        return;
      case NIC_TX_SIZE:
        if (!this.enabled) this.txSize = value;
        return;
      case NIC_TX_HEAD:
        this.txHead = value;
        this.consumeTransmitRing();
        return;
      case NIC_CTRL:
        this.setControl(value);
        return;
      case NIC_STATUS:
        // Writing 1s clears the sticky error bits.
        this.status &= ~value;
        return;
    }
  }

  private ringValid(base: number, size: number): boolean {
    const offset = this.memory.ramOffset(base);
    return (
      size >= NIC_RING_BYTES_MIN &&
      size <= NIC_RING_BYTES_MAX &&
      (size & (size - 1)) === 0 &&
      (base & 7) === 0 &&
      offset >= 0 &&
      offset + size <= this.memory.ramBytes
    );
  }

  private setControl(value: number): void {
    const enable = (value & NIC_CTRL_ENABLE) !== 0;
    if (enable && !this.enabled) {
      if (!this.ringValid(this.rxBase, this.rxSize) || !this.ringValid(this.txBase, this.txSize)) {
        this.status |= NIC_STATUS_CONFIG_ERROR;
        return;
      }
      this.status &= ~NIC_STATUS_CONFIG_ERROR;
      this.rxHead = this.rxTail = 0;
      this.txHead = this.txTail = 0;
      this.ctrl = NIC_CTRL_ENABLE;
      this.pump();
    } else if (!enable) {
      this.ctrl = 0;
    }
  }

  /** Consumes every transmit record up to TX_HEAD; a malformed record drops the rest. */
  private consumeTransmitRing(): void {
    if (!this.enabled) return;
    const size = this.txSize;
    const ringOffset = this.memory.ramOffset(this.txBase);
    while (this.txTail !== this.txHead) {
      const available = (this.txHead - this.txTail) >>> 0;
      const position = this.txTail & (size - 1);
      if (available > size || available < NIC_RECORD_HEADER_BYTES || (position & 7) !== 0) {
        this.dropTransmitRing();
        return;
      }
      const word = this.memory.readU32(ringOffset + position);
      const type = word & 0xffff;
      const slot = word >>> 16;
      const length = this.memory.readU32(ringOffset + position + 4);
      const recordBytes = NIC_RECORD_HEADER_BYTES + align8(length);
      if (length > size || recordBytes > size - position || recordBytes > available) {
        this.dropTransmitRing();
        return;
      }
      if (type === RECORD_DATA && slot < NIC_CONNECTIONS_MAX) {
        if (this.slotState[slot] === SLOT_OPEN && length > 0) {
          const bytes = Uint8Array.from(this.memory.readBytes(ringOffset + position + NIC_RECORD_HEADER_BYTES, length));
          this.txProduced[slot]! += length;
          this.outputOutstandingBytes += length;
          this.host.onTransmit(slot, bytes);
        } else if (this.slotState[slot] === SLOT_HUNG_UP) {
          // Nobody will read it (see hangUp); the stream position still moves.
          this.txProduced[slot]! += length;
          this.txTaken[slot] = this.txProduced[slot]!;
        }
      } else if (type === RECORD_CLOSE && slot < NIC_CONNECTIONS_MAX) {
        this.closeByGuest(slot);
      } else if (type !== RECORD_PAD) {
        this.dropTransmitRing();
        return;
      }
      this.txTail = (this.txTail + recordBytes) >>> 0;
    }
  }

  private dropTransmitRing(): void {
    this.status |= NIC_STATUS_TX_ERROR;
    this.txTail = this.txHead;
  }

  private closeByGuest(slot: number): void {
    if (this.slotState[slot] === SLOT_FREE) return;
    this.forgetOutstanding(slot);
    this.slotState[slot] = SLOT_FREE;
    this.slotTag[slot] = '';
    // Whatever the client still had queued for this slot is meaningless now.
    const kept: PendingEvent[] = [];
    for (const event of this.queue) {
      if (event.slot === slot) this.queuedBytes -= event.length - event.sent;
      else kept.push(event);
    }
    this.queue = kept;
    this.slotQueuedBytes[slot] = 0;
    this.lastData[slot] = null;
    this.host.onGuestClose(slot);
  }

  getState(): DeviceState {
    const slots = [];
    for (let slot = 0; slot < NIC_CONNECTIONS_MAX; slot++) {
      if (this.slotState[slot] === SLOT_FREE) continue;
      slots.push([
        slot,
        this.slotState[slot]!,
        this.slotTag[slot]!,
        this.rxAccepted[slot]!,
        this.rxDelivered[slot]!,
        this.txProduced[slot]!,
      ]);
    }
    return {
      v: 1,
      regs: [
        this.rxBase,
        this.rxSize,
        this.rxHead,
        this.rxTail,
        this.txBase,
        this.txSize,
        this.txHead,
        this.txTail,
        this.ctrl,
        this.status,
      ],
      slots,
      queue: this.queue.map((event) => [event.slot, event.type, event.bytes.subarray(event.sent, event.length)]),
    };
  }

  setState(state: unknown): void {
    const record = expectDeviceState(this.name, state, 1);
    const regs = record.regs;
    if (!Array.isArray(regs) || regs.length !== 10) throw new StateFormatError('nic state: "regs" must hold 10 registers');
    const regValues = regs.map((_, i) => expectUint32(this.name, regs as unknown as Record<string, unknown>, String(i)));
    const slots = record.slots;
    const queue = record.queue;
    if (!Array.isArray(slots) || !Array.isArray(queue)) throw new StateFormatError('nic state: "slots" and "queue" must be arrays');
    const slotState = new Uint8Array(NIC_CONNECTIONS_MAX);
    const parsedSlots = slots.map((entry) => {
      if (!Array.isArray(entry) || entry.length !== 6) throw new StateFormatError('nic state: malformed slot entry');
      const fields = entry as unknown as Record<string, unknown>;
      const slot = expectUint32(this.name, fields, '0');
      const stateValue = expectUint32(this.name, fields, '1');
      if (slot >= NIC_CONNECTIONS_MAX || (stateValue !== SLOT_OPEN && stateValue !== SLOT_HUNG_UP) || slotState[slot] !== 0) {
        throw new StateFormatError(`nic state: bad slot entry for slot ${slot}`);
      }
      if (typeof entry[2] !== 'string') throw new StateFormatError('nic state: slot tag must be a string');
      slotState[slot] = stateValue;
      return {
        slot,
        tag: entry[2] as string,
        rxAccepted: expectSafeUint(this.name, fields, '3'),
        rxDelivered: expectSafeUint(this.name, fields, '4'),
        txProduced: expectSafeUint(this.name, fields, '5'),
      };
    });
    const parsedQueue = queue.map((entry) => {
      if (!Array.isArray(entry) || entry.length !== 3) throw new StateFormatError('nic state: malformed queue entry');
      const fields = entry as unknown as Record<string, unknown>;
      const slot = expectUint32(this.name, fields, '0');
      const type = expectUint32(this.name, fields, '1');
      const bytes = expectBytes(this.name, fields, '2');
      if (slot >= NIC_CONNECTIONS_MAX || type < RECORD_OPEN || type > RECORD_CLOSE) {
        throw new StateFormatError('nic state: bad queue entry');
      }
      const copy = Uint8Array.from(bytes);
      return { slot, type, bytes: copy, length: copy.length, sent: 0 };
    });
    [this.rxBase, this.rxSize, this.rxHead, this.rxTail, this.txBase, this.txSize, this.txHead, this.txTail, this.ctrl, this.status] =
      regValues as [number, number, number, number, number, number, number, number, number, number];
    this.slotState.set(slotState);
    this.slotTag.fill('');
    this.rxAccepted.fill(0);
    this.rxDelivered.fill(0);
    this.txProduced.fill(0);
    for (const slot of parsedSlots) {
      this.slotTag[slot.slot] = slot.tag;
      this.rxAccepted[slot.slot] = slot.rxAccepted;
      this.rxDelivered[slot.slot] = slot.rxDelivered;
      this.txProduced[slot.slot] = slot.txProduced;
    }
    this.queue = parsedQueue;
    this.slotQueuedBytes.fill(0);
    this.lastData.fill(null);
    for (const event of parsedQueue) {
      this.lastData[event.slot] = event.type === RECORD_DATA ? event : null;
      if (event.type === RECORD_DATA) this.slotQueuedBytes[event.slot]! += event.length;
    }
    this.queuedBytes = parsedQueue.reduce((sum, event) => sum + (event.type === RECORD_DATA ? event.length : 0), 0);
    // Whoever restores a state starts with no client output outstanding.
    this.txTaken.set(this.txProduced);
    this.outputOutstandingBytes = 0;
    assert(this.queuedBytes >= 0, 'queued byte count is consistent');
  }
}

/** Appends `bytes` to a queued DATA event, growing its buffer geometrically (cheap for many small chunks). */
function appendToEvent(event: PendingEvent, bytes: Uint8Array): void {
  if (event.length + bytes.length > event.bytes.length) {
    const remaining = event.length - event.sent;
    const grown = new Uint8Array(Math.max(2 * (remaining + bytes.length), 256));
    grown.set(event.bytes.subarray(event.sent, event.length));
    event.bytes = grown;
    event.length = remaining;
    event.sent = 0;
  }
  event.bytes.set(bytes, event.length);
  event.length += bytes.length;
}
