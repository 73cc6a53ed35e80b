// The packet NIC's checksum offload (CTRL bit 1): asked for with the enabling write, it fills in
// IPv4 header and TCP checksums of transmitted frames and drops received frames whose checksums
// are wrong (counted); without it nothing is touched. The kvnet guest uses it: its frames carry
// right checksums that the device, not lwIP, computed, and a corrupted segment never reaches lwIP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RAM_BASE } from '@hbft/common/guest/addressMap.ts';
import { GuestMemory } from '@hbft/common/guest/memory.ts';
import {
  NET_CTRL,
  NET_CTRL_CHECKSUM_OFFLOAD,
  NET_CTRL_ENABLE,
  NET_RX_AVAIL,
  NET_RX_BASE,
  NET_RX_COUNT,
  NET_RX_DROPPED,
  NET_TX_AVAIL,
  NET_TX_BASE,
  NET_TX_COUNT,
  PacketNic,
  fillIpv4Checksums,
  ipv4ChecksumsOk,
} from '@hbft/common/guest/devices/packetNic.ts';
import { encodeCommand } from '@hbft/common/session/resp.ts';
import { bootKvnet } from '../helpers/kvnetMachine.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';
import { ETHERTYPE_IPV4, TCP_ACK, TCP_PSH, ethernetFrame, ipv4, ipv4TcpPacket, macBytes, parseFrame } from '../helpers/ethernetClient.ts';

const RX_RING = RAM_BASE + 0x1000;
const TX_RING = RAM_BASE + 0x2000;
const TX_BUFFER = RAM_BASE + 0x3000;

function tcpFrame(payload: string): Uint8Array {
  return ethernetFrame(
    macBytes('02:00:00:00:00:02'),
    macBytes('02:00:00:00:00:01'),
    ETHERTYPE_IPV4,
    ipv4TcpPacket(ipv4('10.0.0.1'), ipv4('10.0.0.2'), {
      sourcePort: 40000,
      destinationPort: 6379,
      seq: 1,
      ack: 2,
      flags: TCP_ACK | TCP_PSH,
      window: 65535,
      payload: Buffer.from(payload),
    }),
  );
}

function nicWith(ctrl: number): { memory: GuestMemory; nic: PacketNic; sent: Uint8Array[] } {
  const memory = new GuestMemory(16 * 1024 * 1024);
  const nic = new PacketNic(memory);
  const sent: Uint8Array[] = [];
  nic.host = { onFrame: (frame) => sent.push(frame) };
  nic.write(NET_RX_BASE, 4, RX_RING);
  nic.write(NET_RX_COUNT, 4, 8);
  nic.write(NET_TX_BASE, 4, TX_RING);
  nic.write(NET_TX_COUNT, 4, 8);
  nic.write(NET_CTRL, 4, ctrl);
  return { memory, nic, sent };
}

function transmit(memory: GuestMemory, nic: PacketNic, frame: Uint8Array): void {
  memory.writeBytes(memory.ramOffset(TX_BUFFER), frame, 'cpu');
  memory.writeU32(memory.ramOffset(TX_RING), TX_BUFFER, 'cpu');
  memory.writeU32(memory.ramOffset(TX_RING) + 4, frame.length, 'cpu');
  nic.write(NET_TX_AVAIL, 4, 1);
}

test('checksums: right ones pass, any flipped bit of a header or payload fails, and fill puts them right', () => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  for (let round = 0; round < 200; round++) {
    const frame = tcpFrame('x'.repeat(random.below(301)));
    assert.ok(ipv4ChecksumsOk(frame), `seed ${seed}`);
    const corrupt = Uint8Array.from(frame);
    // Any one bit after the IP version and header length (a frame that is no IPv4 is not checked).
    const at = 15 + random.below(corrupt.length - 15);
    corrupt[at]! ^= 1 << random.below(8);
    assert.ok(!ipv4ChecksumsOk(corrupt), `seed ${seed}: a flipped bit at ${at} went unnoticed`);
    const zeroed = Uint8Array.from(frame);
    zeroed.fill(0, 14 + 10, 14 + 12); // the IP header checksum
    zeroed.fill(0, 34 + 16, 34 + 18); // the TCP checksum
    assert.ok(!ipv4ChecksumsOk(zeroed));
    fillIpv4Checksums(zeroed);
    assert.deepEqual(zeroed, frame, `seed ${seed}`);
  }
  // Frames it cannot check pass: ARP, an IPv4 header cut short.
  assert.ok(ipv4ChecksumsOk(Uint8Array.from({ length: 42 }, (_, i) => (i === 12 ? 8 : i === 13 ? 6 : 0))));
  assert.ok(ipv4ChecksumsOk(tcpFrame('abc').subarray(0, 20)));
});

test('the device offloads only when the enabling write asks for it, and then drops bad frames and fills in checksums', () => {
  const plain = nicWith(NET_CTRL_ENABLE | 0);
  assert.equal(plain.nic.read(NET_CTRL, 4), NET_CTRL_ENABLE);
  const bad = tcpFrame('hello');
  bad[bad.length - 1]! ^= 0x20;
  assert.equal(plain.nic.receive(bad), 'queued');
  const zeroed = tcpFrame('hello');
  zeroed.fill(0, 34 + 16, 34 + 18);
  transmit(plain.memory, plain.nic, zeroed);
  assert.deepEqual(plain.sent[0], zeroed, 'without offload the frame goes out as the guest wrote it');

  const offload = nicWith(NET_CTRL_ENABLE | NET_CTRL_CHECKSUM_OFFLOAD);
  assert.equal(offload.nic.read(NET_CTRL, 4), NET_CTRL_ENABLE | NET_CTRL_CHECKSUM_OFFLOAD);
  assert.equal(offload.nic.receive(bad), 'bad-checksum');
  assert.equal(offload.nic.receive(tcpFrame('hello')), 'queued');
  assert.equal(offload.nic.counters().rxBadChecksum, 1);
  assert.equal(offload.nic.read(NET_RX_DROPPED, 4), 1);
  offload.nic.write(NET_RX_AVAIL, 4, 0);
  transmit(offload.memory, offload.nic, zeroed);
  assert.deepEqual(offload.sent[0], tcpFrame('hello'));
  // Offload and the count are device state; a state from before offload (no count) still loads.
  const restored = nicWith(0).nic;
  restored.setState(offload.nic.getState());
  assert.ok(restored.checksumOffload);
  assert.equal(restored.counters().rxBadChecksum, 1);
  const { rxBadChecksum: _, ...before } = plain.nic.getState() as Record<string, unknown>;
  restored.setState(before);
  assert.equal(restored.counters().rxBadChecksum, 0);
  assert.equal(restored.checksumOffload, false);
  assert.throws(() => restored.setState({ ...before, rxBadChecksum: -1 }), /rxBadChecksum/);
});

test('kvnet leaves its checksums to the device: its frames are right, and a corrupted request never reaches it', () => {
  const { machine, segment } = bootKvnet();
  assert.ok(machine.net.checksumOffload, 'the guest asked for checksum offload');
  const client = segment.connect();
  assert.equal(segment.send(client, encodeCommand(['SET', 'k', 'v'])), '+OK\r\n');
  // Every frame the guest sent so far had right checksums (the segment counts wrong ones).
  assert.equal(segment.badChecksums, 0);
  // What the host gets from the device: right checksums on every frame.
  const raw: Uint8Array[] = [];
  const host = machine.net.host;
  machine.net.host = { onFrame: (frame) => (raw.push(Uint8Array.from(frame)), host.onFrame(frame)) };
  assert.equal(segment.send(client, encodeCommand(['GET', 'k'])), '$1\r\nv\r\n');
  assert.ok(raw.length > 0 && raw.every((frame) => ipv4ChecksumsOk(frame)));
  // A request with a flipped payload bit is dropped by the device; the client's retransmission
  // (here: the same bytes again, right) is answered.
  const request = encodeCommand(['INCR', 'n']);
  const corrupt = client.segmentFrame(TCP_ACK | TCP_PSH, request);
  client.sndNxt = (client.sndNxt - request.length) >>> 0;
  corrupt[corrupt.length - 3]! ^= 0x01;
  const dropped = machine.net.counters().rxBadChecksum;
  segment.exchange([corrupt]);
  assert.equal(machine.net.counters().rxBadChecksum, dropped + 1);
  assert.equal(client.take(), '');
  assert.equal(segment.send(client, request), ':1\r\n');
  assert.ok(parseFrame(raw[0]!).tcp?.checksumOk);
});
