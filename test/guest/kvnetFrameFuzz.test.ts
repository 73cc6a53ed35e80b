// Proves that no frame from the network stops the kvnet guest or corrupts what it serves: seeded
// mutations of real frames (IPv4 headers with options of any length, TCP headers with any data
// offset and malformed options, lengths that disagree with the frame, fragments, truncations, flipped
// bytes, other ether types, ARP with odd fields) reach lwIP with their checksums made right (so the
// NIC's check does not drop them first), on the connections the client holds and on new ones. After
// every batch the guest must still run; at the end it must serve a fresh connection and still hold
// what was written before the fuzz. lwIP reads its headers as words (they are not packed), so this is
// also the test that a frame cannot make it read one misaligned, which would trap the guest.
// HBFT_SEED replays a run; `npm run test:soak` sends many more frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fillIpv4Checksums } from '@hbft/common/guest/devices/packetNic.ts';
import { encodeCommand } from '@hbft/common/session/resp.ts';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  type EthernetSegment,
  TCP_ACK,
  TCP_PSH,
  TCP_SYN,
  type TcpClientConnection,
  arpPacket,
  ethernetFrame,
  ipv4,
  macBytes,
} from '../helpers/ethernetClient.ts';
import { bootKvnet } from '../helpers/kvnetMachine.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';

const SOAK = Boolean(process.env.HBFT_SOAK);
const FRAMES = SOAK ? 60_000 : 4_000;
const BATCH = 40;
const ETH_HEADER = 14;

/** An IPv4 packet's header length in bytes, from its first byte. */
const ipHeaderBytes = (frame: Uint8Array): number => (frame[ETH_HEADER]! & 0x0f) * 4;

function setIpTotalLength(frame: Uint8Array, length: number): void {
  frame[ETH_HEADER + 2] = (length >> 8) & 0xff;
  frame[ETH_HEADER + 3] = length & 0xff;
}

/** The frame with `extra` bytes of random options added to its IPv4 header (IHL up to 15). */
function withIpOptions(random: SeededRandom, frame: Uint8Array): Uint8Array {
  const header = ipHeaderBytes(frame);
  const words = random.below(16 - header / 4);
  const grown = new Uint8Array(frame.length + words * 4);
  grown.set(frame.subarray(0, ETH_HEADER + header));
  grown.set(random.bytes(words * 4), ETH_HEADER + header);
  grown.set(frame.subarray(ETH_HEADER + header), ETH_HEADER + header + words * 4);
  grown[ETH_HEADER] = 0x40 | (header / 4 + words);
  setIpTotalLength(grown, grown.length - ETH_HEADER);
  return grown;
}

/** TCP options that look almost right: MSS, window scale, SACK, timestamps, with odd lengths. */
function tcpOptionBytes(random: SeededRandom, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; ) {
    const kind = random.pick([0, 1, 2, 3, 4, 5, 8, 30, random.below(256)]);
    bytes[at++] = kind;
    if (kind <= 1 || at >= length) continue;
    const declared = random.pick([0, 1, 2, 3, 4, 10, 40, 255, random.below(256)]);
    bytes[at++] = declared;
    for (let i = 0; i < random.below(6) && at < length; i++) bytes[at++] = random.below(256);
  }
  return bytes;
}

/** The frame with its TCP header's data offset set anywhere in 0–15, options inserted to match when it grows. */
function withTcpOptions(random: SeededRandom, frame: Uint8Array): Uint8Array {
  const tcpAt = ETH_HEADER + ipHeaderBytes(frame);
  if (frame.length < tcpAt + 20) return frame;
  const offsetWords = random.below(16);
  const optionBytes = Math.max(0, offsetWords * 4 - 20);
  const grown = new Uint8Array(frame.length + optionBytes);
  grown.set(frame.subarray(0, tcpAt + 20));
  grown.set(tcpOptionBytes(random, optionBytes), tcpAt + 20);
  grown.set(frame.subarray(tcpAt + 20), tcpAt + 20 + optionBytes);
  grown[tcpAt + 12] = (offsetWords << 4) | (grown[tcpAt + 12]! & 0x0f);
  setIpTotalLength(grown, grown.length - ETH_HEADER);
  return grown;
}

/** Whether the frame holds an IPv4 header (with `protocol`, when given) that the mutations can edit. */
function isIpv4(frame: Uint8Array, protocol?: number): boolean {
  if (frame.length < ETH_HEADER + 20 || frame[12] !== 0x08 || frame[13] !== 0x00 || frame[ETH_HEADER]! >> 4 !== 4) return false;
  return ETH_HEADER + ipHeaderBytes(frame) <= frame.length && (protocol === undefined || frame[ETH_HEADER + 9] === protocol);
}

/** One mutation of a frame, chosen at random (the IPv4 ones only for IPv4 frames, the TCP ones for TCP). */
function mutate(random: SeededRandom, frame: Uint8Array): Uint8Array {
  const copy = frame.slice();
  const ip = isIpv4(copy);
  const tcp = isIpv4(copy, 6);
  const kinds = [3, 6, 7, 8, ...(ip ? [0, 4, 5] : []), ...(tcp ? [1, 2, 1, 2] : [])];
  switch (random.pick(kinds)) {
    case 0:
      return withIpOptions(random, copy);
    case 1:
      return withTcpOptions(random, copy);
    case 2:
      return withTcpOptions(random, withIpOptions(random, copy));
    case 3: // Flipped bytes anywhere past the Ethernet addresses.
      for (let i = 0; i < 1 + random.below(8); i++) copy[12 + random.below(copy.length - 12)]! ^= 1 + random.below(255);
      return copy;
    case 4: // A total length that disagrees with the frame.
      setIpTotalLength(copy, random.pick([0, 1, 19, 20, 40, copy.length - ETH_HEADER + 1, 1500, 65535, random.below(65536)]));
      return copy;
    case 5: // A fragment (lwIP is built without reassembly).
      copy[ETH_HEADER + 6] = random.below(256) | random.pick([0x20, 0x00]);
      copy[ETH_HEADER + 7] = random.below(256);
      return copy;
    case 6: // Cut short anywhere.
      return copy.subarray(0, ETH_HEADER + random.below(copy.length - ETH_HEADER));
    case 7: // Another protocol in the IPv4 header, or another ether type.
      if (random.below(2) === 0) copy[ETH_HEADER + 9] = random.pick([0, 1, 2, 17, 41, 47, 132, random.below(256)]);
      else
        [copy[12], copy[13]] = random.pick([
          [0x81, 0x00],
          [0x86, 0xdd],
          [0x88, 0xa8],
          [random.below(256), random.below(256)],
        ]);
      return copy;
    default: // Random bytes appended.
      return Uint8Array.from([...copy, ...random.bytes(1 + random.below(200))]);
  }
}

/** The frames a fuzzing client starts from: data on a live connection, SYNs, ICMP, UDP, ARP. */
function template(random: SeededRandom, segment: EthernetSegment, connections: TcpClientConnection[]): Uint8Array {
  const connection = random.pick(connections);
  switch (random.below(5)) {
    case 0:
    case 1:
      return connection.segmentFrame(
        TCP_ACK | TCP_PSH,
        random.below(3) === 0 ? random.bytes(random.below(300)) : encodeCommand(['SET', `fuzz${random.below(50)}`, 'v']),
      );
    case 2:
      return segment.tcpFrame({
        // Below the client's own ports (40000 up), so that no fuzzed segment lands on its connections' 4-tuples.
        sourcePort: 1024 + random.below(38000),
        destinationPort: random.pick([6379, 6379, 80, random.below(65536)]),
        seq: random.below(2 ** 32),
        ack: random.below(2 ** 32),
        flags: random.pick([TCP_SYN, TCP_SYN, TCP_ACK, random.below(256)]),
        window: random.below(65536),
        payload: random.bytes(random.below(40)),
      });
    case 3: {
      // An IPv4 packet of another protocol: ICMP echo, UDP, anything, with a random body.
      const body = random.bytes(8 + random.below(100));
      const ip = new Uint8Array(20 + body.length);
      ip[0] = 0x45;
      ip[8] = 64;
      ip[9] = random.pick([1, 1, 17, random.below(256)]);
      if (ip[9] === 1) body[0] = random.pick([8, 0, 3, 5, 11, random.below(256)]);
      new DataView(ip.buffer).setUint32(12, segment.clientIp);
      new DataView(ip.buffer).setUint32(16, random.below(4) === 0 ? ipv4('10.0.0.255') : segment.guestIp);
      ip.set(body, 20);
      const frame = ethernetFrame(segment.guestMac, segment.clientMac, ETHERTYPE_IPV4, ip);
      setIpTotalLength(frame, ip.length);
      return frame;
    }
    default: {
      const arp = arpPacket(
        random.pick([1, 2]),
        random.bytes(6),
        random.pick([segment.clientIp, segment.guestIp, random.below(2 ** 32)]),
        random.bytes(6),
        random.pick([segment.guestIp, random.below(2 ** 32)]),
      );
      if (random.below(4) === 0) arp[random.below(8)] = random.below(256);
      return ethernetFrame(macBytes('ff:ff:ff:ff:ff:ff'), random.bytes(6), ETHERTYPE_ARP, arp);
    }
  }
}

test(`kvnet survives ${FRAMES} seeded mutations of real frames and still serves what it held`, {
  timeout: SOAK ? 900_000 : 120_000,
}, (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const random = new SeededRandom(seed);
  const { machine, segment, console: guestConsole } = bootKvnet();
  const keeper = segment.connect();
  assert.equal(segment.send(keeper, encodeCommand(['SET', 'kept', 'before the fuzz'])), '+OK\r\n');
  const connections = Array.from({ length: 4 }, () => segment.connect());
  let fixed = 0;
  for (let sent = 0; sent < FRAMES; sent += BATCH) {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < BATCH; i++) {
      const frame = mutate(random, template(random, segment, connections));
      if (random.below(5) !== 0) {
        fillIpv4Checksums(frame);
        fixed++;
      }
      frames.push(frame);
    }
    for (const frame of frames) machine.net.receive(frame);
    // Fails with the guest's exit (a trap, an lwIP assertion) if a frame stopped it.
    segment.runUntilIdle();
    assert.equal(machine.exit, null, `the guest stopped after frame ${sent + BATCH} (seed ${seed}): ${guestConsole().slice(-400)}`);
    // What the guest sent goes to the client's connections as usual (ACKs, resets); the fuzzed
    // connections may be reset, so new ones replace them.
    segment.exchange();
    for (const [index, connection] of connections.entries()) if (connection.reset) connections[index] = segment.connect();
  }
  t.diagnostic(`${FRAMES} frames, ${fixed} with checksums made right; NIC counters ${JSON.stringify(machine.net.counters())}`);
  assert.doesNotMatch(guestConsole(), /assert|panic|trap/i, `the guest's console (seed ${seed})`);
  const fresh = segment.connect();
  assert.ok(fresh.established && !fresh.reset, `a new connection is accepted after the fuzz (seed ${seed})`);
  assert.equal(segment.send(fresh, encodeCommand(['GET', 'kept'])), '$15\r\nbefore the fuzz\r\n', `seed ${seed}`);
  assert.equal(segment.send(fresh, encodeCommand(['INCR', 'after'])), ':1\r\n', `seed ${seed}`);
});
