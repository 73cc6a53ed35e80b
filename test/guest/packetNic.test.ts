// Proves that the packet NIC moves Ethernet frames through its descriptor rings in guest memory
// (receive into posted buffers, transmit to the host callback), that runts, oversize frames and a
// full queue are dropped and counted, that its DMA is seen by dirty tracking, and that its whole
// state (MAC, link, rings, queue, counters) survives a save/restore, as part of the machine's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import msgpack from 'msgpack-lite';
import { GuestMemory } from '@hbft/common/guest/memory.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import { NET_BASE, RAM_BASE } from '@hbft/common/guest/addressMap.ts';
import {
  ETHERNET_FRAME_BYTES_MAX,
  NET_CTRL,
  NET_CTRL_ENABLE,
  NET_ID,
  NET_ID_VALUE,
  NET_MAC_HI,
  NET_MAC_LO,
  NET_RX_AVAIL,
  NET_RX_BASE,
  NET_RX_CONSUMED,
  NET_RX_COUNT,
  NET_RX_DROPPED,
  NET_RX_QUEUE_FRAMES_MAX,
  NET_RX_USED,
  NET_STATUS,
  NET_STATUS_CONFIG_ERROR,
  NET_STATUS_LINK_CHANGED,
  NET_STATUS_RX_PENDING,
  NET_STATUS_TX_ERROR,
  NET_TX_AVAIL,
  NET_TX_BASE,
  NET_TX_COUNT,
  NET_TX_USED,
  PacketNic,
} from '@hbft/common/guest/devices/packetNic.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import { StateFormatError } from '@hbft/common/errors.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
const RX_RING = RAM_BASE + 0x10_0000;
const TX_RING = RAM_BASE + 0x10_1000;
const RX_BUFFERS = RAM_BASE + 0x20_0000;
const TX_BUFFERS = RAM_BASE + 0x30_0000;
const BUFFER_BYTES = 2048;
const RING_COUNT = 8;

/** Plays the guest's side of the rings, as a driver would, through registers and RAM. */
class GuestSide {
  rxPosted = 0;
  rxConsumed = 0;
  txPosted = 0;
  interrupts = 0;

  constructor(
    readonly memory: GuestMemory,
    readonly nic: PacketNic,
  ) {
    nic.onInterruptChange = () => this.interrupts++;
  }

  enable(): void {
    this.nic.write(NET_RX_BASE, 4, RX_RING);
    this.nic.write(NET_RX_COUNT, 4, RING_COUNT);
    this.nic.write(NET_TX_BASE, 4, TX_RING);
    this.nic.write(NET_TX_COUNT, 4, RING_COUNT);
    this.nic.write(NET_CTRL, 4, NET_CTRL_ENABLE);
    assert.equal(this.nic.read(NET_CTRL, 4), NET_CTRL_ENABLE);
  }

  private offset(address: number): number {
    return this.memory.ramOffset(address);
  }

  postReceiveBuffers(count: number): void {
    for (let i = 0; i < count; i++) {
      const slot = this.rxPosted & (RING_COUNT - 1);
      this.memory.writeU32(this.offset(RX_RING) + slot * 8, RX_BUFFERS + slot * BUFFER_BYTES, 'cpu');
      this.memory.writeU32(this.offset(RX_RING) + slot * 8 + 4, BUFFER_BYTES, 'cpu');
      this.rxPosted++;
    }
    this.nic.write(NET_RX_AVAIL, 4, this.rxPosted);
  }

  /** Takes every filled buffer, in order. */
  takeFrames(): Uint8Array[] {
    const frames: Uint8Array[] = [];
    const used = this.nic.read(NET_RX_USED, 4);
    while (this.rxConsumed !== used) {
      const slot = this.rxConsumed & (RING_COUNT - 1);
      const address = this.memory.readU32(this.offset(RX_RING) + slot * 8);
      const length = this.memory.readU32(this.offset(RX_RING) + slot * 8 + 4);
      frames.push(Uint8Array.from(this.memory.readBytes(this.offset(address), length)));
      this.rxConsumed++;
    }
    this.nic.write(NET_RX_CONSUMED, 4, this.rxConsumed);
    return frames;
  }

  /** Posts frames (a length of its own may describe a bad descriptor) and rings the doorbell. */
  transmit(frames: { bytes: Uint8Array; length?: number; address?: number }[]): void {
    for (const frame of frames) {
      const slot = this.txPosted & (RING_COUNT - 1);
      const address = frame.address ?? TX_BUFFERS + slot * BUFFER_BYTES;
      if (frame.address === undefined) this.memory.writeBytes(this.offset(address), frame.bytes, 'cpu');
      this.memory.writeU32(this.offset(TX_RING) + slot * 8, address, 'cpu');
      this.memory.writeU32(this.offset(TX_RING) + slot * 8 + 4, frame.length ?? frame.bytes.length, 'cpu');
      this.txPosted++;
    }
    this.nic.write(NET_TX_AVAIL, 4, this.txPosted);
  }
}

/** A frame whose bytes say which it is. */
function frame(id: number, bytes = 60): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (id * 31 + i) & 0xff;
  return out;
}

function setup(): { memory: GuestMemory; nic: PacketNic; guest: GuestSide; sent: Uint8Array[] } {
  const memory = new GuestMemory(MEMORY_BYTES);
  const nic = new PacketNic(memory);
  const sent: Uint8Array[] = [];
  nic.host = { onFrame: (bytes) => sent.push(bytes) };
  const guest = new GuestSide(memory, nic);
  guest.enable();
  return { memory, nic, guest, sent };
}

test('the MAC and link state are what the host set, and the device identifies itself', () => {
  const { nic } = setup();
  nic.setMac(Uint8Array.of(0x02, 0x48, 0x42, 0x46, 0x54, 0x01));
  assert.equal(nic.read(NET_ID, 4), NET_ID_VALUE);
  assert.equal(nic.read(NET_MAC_LO, 4), 0x46424802);
  assert.equal(nic.read(NET_MAC_HI, 4), 0x0154);
  assert.equal(nic.read(NET_STATUS, 4) & 1, 1, 'link up by default');
  nic.setLink(false);
  assert.equal(nic.read(NET_STATUS, 4) & 1, 0);
  assert.throws(() => nic.setMac(new Uint8Array(5)), RangeError);
});

test('a link change (down, then up: a takeover moved the cable) is signalled by a sticky status bit and an interrupt until the guest clears it', () => {
  const { nic, guest } = setup();
  assert.equal(nic.read(NET_STATUS, 4) & NET_STATUS_LINK_CHANGED, 0);
  assert.equal(nic.interruptPending, false);
  const interrupts = guest.interrupts;
  nic.setLink(false);
  nic.setLink(true);
  assert.equal(nic.read(NET_STATUS, 4) & NET_STATUS_LINK_CHANGED, NET_STATUS_LINK_CHANGED);
  assert.equal(nic.read(NET_STATUS, 4) & 1, 1, 'the link is up again');
  assert.equal(nic.interruptPending, true, 'mip.MEIP while the change is not acted on');
  assert.ok(guest.interrupts > interrupts);
  nic.setLink(true);
  nic.write(NET_STATUS, 4, NET_STATUS_LINK_CHANGED);
  assert.equal(nic.read(NET_STATUS, 4) & NET_STATUS_LINK_CHANGED, 0);
  assert.equal(nic.interruptPending, false);
  // The bit is device state: a checkpoint taken before the guest saw it carries it to the backup.
  nic.setLink(false);
  nic.setLink(true);
  const restored = new PacketNic(new GuestMemory(MEMORY_BYTES));
  restored.setState(msgpack.decode(msgpack.encode(nic.getState())));
  assert.equal(restored.read(NET_STATUS, 4) & NET_STATUS_LINK_CHANGED, NET_STATUS_LINK_CHANGED);
});

test('received frames land in posted buffers in order; frames wait (bounded) for buffers', () => {
  const { nic, guest } = setup();
  guest.postReceiveBuffers(4);
  for (let id = 0; id < 6; id++) assert.equal(nic.receive(frame(id, 60 + id * 100)), 'queued');
  nic.pump();
  assert.ok(nic.rxPending);
  assert.equal(nic.read(NET_STATUS, 4) & NET_STATUS_RX_PENDING, NET_STATUS_RX_PENDING);
  assert.equal(guest.interrupts, 1, 'one interrupt change: receive became pending');
  assert.equal(nic.queuedFrames, 2, 'two frames wait for buffers');
  const first = guest.takeFrames();
  assert.deepEqual(
    first,
    [0, 1, 2, 3].map((id) => frame(id, 60 + id * 100)),
  );
  assert.equal(nic.rxPending, false);
  guest.postReceiveBuffers(4);
  assert.deepEqual(
    guest.takeFrames(),
    [4, 5].map((id) => frame(id, 60 + id * 100)),
  );
  assert.equal(nic.counters().rxFrames, 6);
});

test('runts, oversize frames and a full queue are dropped and counted, and the guest still gets the rest', () => {
  const { nic, guest } = setup();
  assert.equal(nic.receive(new Uint8Array(13)), 'runt');
  assert.equal(nic.receive(new Uint8Array(0)), 'runt');
  assert.equal(nic.receive(new Uint8Array(ETHERNET_FRAME_BYTES_MAX + 1)), 'oversize');
  assert.equal(nic.receive(new Uint8Array(64 * 1024)), 'oversize');
  for (let id = 0; id < NET_RX_QUEUE_FRAMES_MAX; id++) assert.equal(nic.receive(frame(id)), 'queued');
  assert.equal(nic.receive(frame(999)), 'queue-full');
  assert.equal(nic.receive(frame(ETHERNET_FRAME_BYTES_MAX)), 'queue-full');
  const counters = nic.counters();
  assert.equal(counters.rxRunts, 2);
  assert.equal(counters.rxOversize, 2);
  assert.equal(counters.rxQueueFull, 2);
  assert.equal(nic.read(NET_RX_DROPPED, 4), 6);
  // The queue drains as the guest posts buffers; the largest legal frame goes through.
  let taken = 0;
  while (nic.queuedFrames > 0) {
    guest.postReceiveBuffers(RING_COUNT);
    taken += guest.takeFrames().length;
  }
  assert.equal(taken, NET_RX_QUEUE_FRAMES_MAX);
  assert.equal(nic.receive(frame(7, ETHERNET_FRAME_BYTES_MAX)), 'queued');
  guest.postReceiveBuffers(1);
  assert.deepEqual(guest.takeFrames(), [frame(7, ETHERNET_FRAME_BYTES_MAX)]);
  nic.setLink(false);
  assert.equal(nic.receive(frame(8)), 'link-down');
});

test('a frame larger than the posted buffer is dropped, and the buffer keeps waiting for the next', () => {
  const { memory, nic, guest } = setup();
  guest.postReceiveBuffers(1);
  memory.writeU32(memory.ramOffset(RX_RING) + 4, 100, 'cpu'); // shrink the posted buffer
  nic.receive(frame(1, 200));
  nic.receive(frame(2, 80));
  nic.pump();
  assert.deepEqual(guest.takeFrames(), [frame(2, 80)]);
  assert.equal(nic.counters().rxTooLargeForBuffer, 1);
});

test('the guest cannot post more buffers than the ring holds or consume what was not filled', () => {
  const { nic, guest } = setup();
  nic.write(NET_RX_AVAIL, 4, RING_COUNT + 1);
  assert.equal(nic.read(NET_RX_AVAIL, 4), 0);
  assert.equal(nic.read(NET_STATUS, 4) & NET_STATUS_CONFIG_ERROR, NET_STATUS_CONFIG_ERROR);
  nic.write(NET_STATUS, 4, NET_STATUS_CONFIG_ERROR);
  nic.write(NET_RX_CONSUMED, 4, 1);
  assert.equal(nic.read(NET_RX_CONSUMED, 4), 0);
  assert.equal(nic.read(NET_STATUS, 4) & NET_STATUS_CONFIG_ERROR, NET_STATUS_CONFIG_ERROR);
  guest.postReceiveBuffers(2);
  nic.receive(frame(1));
  nic.pump();
  assert.equal(guest.takeFrames().length, 1);
});

test('enabling refuses rings outside RAM or of a bad size', () => {
  const memory = new GuestMemory(MEMORY_BYTES);
  const nic = new PacketNic(memory);
  for (const [base, count] of [
    [RX_RING, 3],
    [RX_RING, 0],
    [RX_RING + 4, 8],
    [0x1000, 8],
    [RAM_BASE + MEMORY_BYTES - 8, 8],
  ] as const) {
    nic.write(NET_RX_BASE, 4, base);
    nic.write(NET_RX_COUNT, 4, count);
    nic.write(NET_TX_BASE, 4, TX_RING);
    nic.write(NET_TX_COUNT, 4, 8);
    nic.write(NET_CTRL, 4, NET_CTRL_ENABLE);
    assert.equal(nic.read(NET_CTRL, 4), 0, `ring at 0x${base.toString(16)} with ${count} descriptors refused`);
    assert.equal(nic.read(NET_STATUS, 4) & NET_STATUS_CONFIG_ERROR, NET_STATUS_CONFIG_ERROR);
  }
});

test('every transmitted frame reaches the host callback in order; bad descriptors are skipped and counted', () => {
  const { nic, guest, sent } = setup();
  guest.transmit([{ bytes: frame(1) }, { bytes: frame(2, 1514) }]);
  assert.deepEqual(sent, [frame(1), frame(2, 1514)]);
  assert.equal(nic.read(NET_TX_USED, 4), 2);
  guest.transmit([
    { bytes: frame(3), length: 13 },
    { bytes: frame(4), length: ETHERNET_FRAME_BYTES_MAX + 1 },
    { bytes: frame(5), address: 0x1000 },
    { bytes: frame(6) },
  ]);
  assert.deepEqual(sent, [frame(1), frame(2, 1514), frame(6)]);
  assert.equal(nic.counters().txErrors, 3);
  assert.equal(nic.read(NET_STATUS, 4) & NET_STATUS_TX_ERROR, NET_STATUS_TX_ERROR);
  // A doorbell claiming more frames than the ring holds is refused whole.
  nic.write(NET_TX_AVAIL, 4, guest.txPosted + RING_COUNT + 1);
  assert.equal(sent.length, 3);
  assert.equal(nic.counters().txErrors, 4);
  // Link down: the guest's frames are taken but not passed on.
  nic.setLink(false);
  guest.txPosted = nic.read(NET_TX_USED, 4);
  guest.transmit([{ bytes: frame(7) }]);
  assert.equal(sent.length, 3);
  assert.equal(nic.counters().txLinkDown, 1);
});

test('the device writes guest memory through the tracked write path', () => {
  const { memory, nic, guest } = setup();
  const tracker = trackMemory(memory, createTracker('origin'));
  guest.postReceiveBuffers(2);
  tracker.endEpoch();
  tracker.beginEpoch();
  nic.receive(frame(1, 1000));
  nic.receive(frame(2, 1000));
  nic.pump();
  const dirty = [...tracker.endEpoch().dirtyPages].sort((a, b) => a - b);
  const page = (address: number) => memory.ramOffset(address) >>> 12;
  // Both buffers (one page: 2 × 2 KiB) and the descriptor ring's page (lengths written back).
  assert.deepEqual(dirty, [page(RX_RING), page(RX_BUFFERS)]);
});

test('its state survives a save/restore (encoded as the machine encodes it), and a bad state is refused', () => {
  const { memory, nic, guest, sent } = setup();
  nic.setMac(Uint8Array.of(2, 0, 0, 0, 0, 9));
  guest.postReceiveBuffers(2);
  for (let id = 0; id < 4; id++) nic.receive(frame(id));
  nic.pump();
  nic.receive(new Uint8Array(3));
  guest.transmit([{ bytes: frame(50) }]);
  const saved = msgpack.decode(msgpack.encode(nic.getState()));

  const restored = new PacketNic(memory);
  const restoredSent: Uint8Array[] = [];
  restored.host = { onFrame: (bytes) => restoredSent.push(bytes) };
  restored.setState(saved);
  assert.deepEqual(restored.getState(), nic.getState());
  assert.deepEqual(restored.mac, Uint8Array.of(2, 0, 0, 0, 0, 9));
  assert.equal(restored.queuedFrames, 2);
  assert.ok(restored.rxPending);
  // The restored device continues where the first stopped: the guest's next steps work on it.
  const continued = new GuestSide(memory, restored);
  Object.assign(continued, { rxPosted: guest.rxPosted, rxConsumed: guest.rxConsumed, txPosted: guest.txPosted });
  assert.deepEqual(continued.takeFrames(), [frame(0), frame(1)]);
  continued.postReceiveBuffers(2);
  assert.deepEqual(continued.takeFrames(), [frame(2), frame(3)]);
  continued.transmit([{ bytes: frame(51) }]);
  assert.deepEqual(restoredSent, [frame(51)]);
  assert.equal(sent.length, 1);
  assert.equal(restored.counters().rxRunts, 1);

  const bad = (mutate: (state: Record<string, unknown>) => void) => {
    const state = msgpack.decode(msgpack.encode(nic.getState())) as Record<string, unknown>;
    mutate(state);
    assert.throws(() => new PacketNic(memory).setState(state), StateFormatError);
  };
  bad((s) => (s.v = 2));
  bad((s) => (s.mac = new Uint8Array(5)));
  bad((s) => (s.regs = [1, 2, 3]));
  bad((s) => ((s.regs as number[])[2] = 0x1000)); // enabled with a receive ring outside RAM
  bad((s) => (s.queue = [new Uint8Array(3)]));
  bad((s) => (s.queue = new Array(NET_RX_QUEUE_FRAMES_MAX + 1).fill(frame(0))));
  bad((s) => (s.counters = [-1]));
  bad((s) => (s.link = 'up'));
});

test('the machine maps the packet NIC at NET_BASE, raises MEIP for it and saves it with the rest', () => {
  const machine = new Machine({ memoryBytes: MEMORY_BYTES });
  assert.equal(machine.bus.load(NET_BASE + NET_ID, 4), NET_ID_VALUE);
  const guest = new GuestSide(machine.memory, machine.net);
  machine.net.onInterruptChange = () => {};
  guest.enable();
  guest.postReceiveBuffers(1);
  machine.net.setMac(Uint8Array.of(2, 1, 2, 3, 4, 5));
  machine.net.receive(frame(1));
  machine.net.receive(frame(2));
  machine.net.pump();
  const copy = new Machine({ memoryBytes: MEMORY_BYTES });
  copy.memory.u8.set(machine.memory.u8);
  copy.setState(machine.getState());
  assert.deepEqual(copy.net.getState(), machine.net.getState());
  assert.ok(copy.net.rxPending);
  assert.equal(copy.net.queuedFrames, 1);
});

test('a machine state saved with the byte-stream NIC (version 1) is refused by version, with a reason, and changes nothing', () => {
  const machine = new Machine({ memoryBytes: MEMORY_BYTES });
  const before = machine.getState();
  const old = msgpack.decode(before) as { v: number; devices: Record<string, unknown> };
  old.v = 1;
  old.devices.nic = { v: 1, slots: [] };
  assert.throws(
    () => machine.setState(msgpack.encode(old)),
    (error: unknown) =>
      error instanceof StateFormatError && /version 1 is not supported \(expected 2\).*byte-stream NIC/.test(error.message),
  );
  assert.deepEqual(machine.getState(), before);
});
