// Proves that the kvnet guest serves the Redis protocol over TCP from inside the guest (lwIP on
// the packet NIC), driven by a hand-built Ethernet/ARP/TCP client: ARP, commands, pipelining,
// CONFIG GET, clear errors for unknown and oversized input without hurting other clients, 1,024
// concurrent connections with a closed slot free at once and long-idle ones evicted when all are
// taken, backpressure on a client that does not read, bad frames dropped and counted, and that
// a TCP connection survives a save/restore of the machine, as it must survive a failover.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '@hbft/common/guest/machine.ts';
import { encodeCommand } from '@hbft/common/session/resp.ts';
import { KVNET_GUEST_MAC, KVNET_MEMORY_BYTES, bootKvnet } from '../helpers/kvnetMachine.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';
import {
  ETHERTYPE_ARP,
  TCP_ACK,
  TCP_PSH,
  TCP_SYN,
  arpPacket,
  ethernetFrame,
  ipv4,
  macBytes,
  parseFrame,
} from '../helpers/ethernetClient.ts';

function command(...args: (string | number)[]): Uint8Array {
  return encodeCommand(args);
}

test('the guest answers ARP for its address with the MAC the host gave its NIC', () => {
  const { segment } = bootKvnet();
  assert.deepEqual(segment.guestMac, KVNET_GUEST_MAC);
  // A request for another address goes unanswered.
  segment.exchange([
    ethernetFrame(
      macBytes('ff:ff:ff:ff:ff:ff'),
      segment.clientMac,
      ETHERTYPE_ARP,
      arpPacket(1, segment.clientMac, segment.clientIp, new Uint8Array(6), ipv4('10.0.0.9')),
    ),
  ]);
  assert.equal(segment.transmitted.length, 0);
});

test('a TCP client gets RESP answers: commands, pipelining, split requests, CONFIG GET and errors', () => {
  const { segment } = bootKvnet();
  const client = segment.connect();
  assert.ok(client.established && !client.reset);
  assert.equal(segment.send(client, command('PING')), '+PONG\r\n');
  assert.equal(segment.send(client, 'SET a 1\r\nGET a\r\nINCR a\r\nINCRBY a 40\r\n'), '+OK\r\n$1\r\n1\r\n:2\r\n:42\r\n');
  // What redis-benchmark and redis-cli send first.
  assert.equal(segment.send(client, command('CONFIG', 'GET', 'save')), '*2\r\n$4\r\nsave\r\n$0\r\n\r\n');
  assert.equal(segment.send(client, command('CONFIG', 'GET', 'appendonly')), '*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n');
  // One request split over three segments.
  const split = command('SET', 'k', 'v'.repeat(100));
  assert.equal(segment.send(client, split.subarray(0, 5)), '');
  assert.equal(segment.send(client, split.subarray(5, 50)), '');
  assert.equal(segment.send(client, split.subarray(50)), '+OK\r\n');
  // A pipeline larger than one segment: 200 INCRs, answered in order.
  const pipeline = Buffer.concat(Array.from({ length: 200 }, () => command('INCR', 'n')));
  assert.ok(pipeline.length > 1460);
  assert.equal(segment.send(client, pipeline), Array.from({ length: 200 }, (_, i) => `:${i + 1}\r\n`).join(''));
  assert.equal(segment.send(client, command('FOO', 'bar')), "-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n");
  assert.equal(segment.badChecksums, 0, 'every segment from the guest had a valid TCP checksum');
});

test('what redis-cli and redis-benchmark send on connect is answered so that they proceed: HELLO, COMMAND DOCS, CONFIG GET, CLIENT SETINFO', () => {
  const { segment } = bootKvnet();
  const client = segment.connect();
  // HELLO 3 (redis-cli -3, and clients that try RESP3 first) gets NOPROTO: the client stays on RESP2.
  assert.equal(segment.send(client, command('HELLO', '3')), '-NOPROTO sorry, this protocol version is not supported\r\n');
  const hello = segment.send(client, command('HELLO', '2', 'SETNAME', 'bench'));
  assert.match(hello, /^\*14\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n\$7\r\nversion\r\n\$5\r\n7\.0\.0\r\n\$5\r\nproto\r\n:2\r\n/);
  assert.equal(segment.send(client, command('HELLO', 'x')), '-ERR Protocol version is not an integer or out of range\r\n');
  assert.equal(segment.send(client, command('COMMAND', 'DOCS')), '*0\r\n');
  assert.equal(segment.send(client, command('CLIENT', 'SETINFO', 'lib-name', 'redis-py')), '+OK\r\n');
  assert.equal(segment.send(client, command('CONFIG', 'GET', 'save')), '*2\r\n$4\r\nsave\r\n$0\r\n\r\n');
  assert.equal(segment.send(client, command('PING')), '+PONG\r\n', 'the same connection goes on');
});

test('a reply far larger than the send buffer (a 1 MB MGET) is delivered whole, and INFO shows it waited in the spill', () => {
  const { segment } = bootKvnet('ip=10.0.0.2/24', 256 * 1024 * 1024);
  const client = segment.connect();
  const other = segment.connect();
  const keys = 100;
  const value = (i: number) => String.fromCharCode(97 + (i % 26)).repeat(10_000);
  for (let i = 0; i < keys; i++) assert.equal(segment.send(client, command('SET', `big:${i}`, value(i))), '+OK\r\n');
  const expected = `*${keys}\r\n${Array.from({ length: keys }, (_, i) => `$10000\r\n${value(i)}\r\n`).join('')}`;
  assert.ok(expected.length > 1_000_000);
  let received = segment.send(client, command('MGET', ...Array.from({ length: keys }, (_, i) => `big:${i}`)));
  for (let round = 0; round < 100 && received.length < expected.length; round++) {
    segment.exchange([client.segmentFrame(TCP_ACK)]);
    received += client.take();
  }
  assert.equal(received.length, expected.length);
  assert.ok(received === expected, 'every byte, in order');
  assert.ok(!client.reset);
  assert.equal(segment.send(client, command('PING')), '+PONG\r\n', 'the connection goes on');
  const info = segment.send(other, command('INFO'));
  assert.match(info, /replies_spilled:1\r\n/);
  assert.match(info, /spill_chunks_in_use:0\r\n/, 'the spill went back to the pool');
  assert.match(info, /connections_reset_for_output:0\r\n/);
});

test('a client that never reads 1 MB replies holds at most one reply in the guest: its requests wait in its TCP window, others are served', () => {
  const { segment } = bootKvnet('ip=10.0.0.2/24', 256 * 1024 * 1024);
  const hog = segment.connect();
  const other = segment.connect();
  const keys = 100;
  for (let i = 0; i < keys; i++) assert.equal(segment.send(other, command('SET', `big:${i}`, 'h'.repeat(10_000))), '+OK\r\n');
  hog.paused = true;
  const mget = command('MGET', ...Array.from({ length: keys }, (_, i) => `big:${i}`));
  // Forty 1 MB replies asked for at once (40 MB): the guest may hold one, never all.
  segment.push(hog, Buffer.concat(Array.from({ length: 40 }, () => mget)));
  const info = segment.send(other, command('INFO'));
  const inUse = Number(/spill_chunks_in_use:(\d+)\r\n/.exec(info)?.[1]);
  assert.ok(inUse > 0 && inUse * 16 * 1024 <= 1_100_000, `one reply waits in the spill, no more (${inUse} chunks of 16 KiB)`);
  assert.ok(hog.unreadBytes <= 65535, 'the guest sent no more than the client window');
  assert.equal(segment.send(other, command('PING')), '+PONG\r\n', 'others are served meanwhile');
  assert.ok(!hog.reset, 'the slow client is not dropped for being slow');
});

test('a 1 MiB value is stored and read back whole: its SET is gathered in a large-request buffer, and a second large request meanwhile is refused clearly', () => {
  const { segment } = bootKvnet();
  const writer = segment.connect();
  const rival = segment.connect();
  const bystander = segment.connect();
  const value = `first${'m'.repeat(1024 * 1024 - 9)}last`;
  const set = command('SET', 'huge', value);
  // Half of it, then a rival's large request while the one large buffer (64 MiB guest) is taken.
  const half = Math.floor(set.length / 2 / 1460) * 1460;
  segment.push(writer, set.subarray(0, half));
  assert.equal(segment.send(bystander, command('PING')), '+PONG\r\n', 'small requests go on meanwhile');
  const rivalAnswer = segment.send(rival, command('SET', 'other', 'r'.repeat(64 * 1024)));
  assert.equal(rivalAnswer, '-ERR request too large: every large-request buffer is in use, try again\r\n');
  segment.push(writer, set.subarray(half));
  assert.equal(writer.take(), '+OK\r\n');
  let received = segment.send(writer, command('GET', 'huge'));
  const expected = `$${value.length}\r\n${value}\r\n`;
  for (let round = 0; round < 100 && received.length < expected.length; round++) {
    segment.exchange([writer.segmentFrame(TCP_ACK)]);
    received += writer.take();
  }
  assert.ok(received === expected, `the 1 MiB value came back whole (${received.length} of ${expected.length} bytes)`);
  // The large buffer is free again: another client's large request now succeeds.
  const next = segment.connect();
  assert.equal(segment.send(next, command('SET', 'other', 'r'.repeat(64 * 1024))), '+OK\r\n');
  assert.equal(segment.send(bystander, command('EXISTS', 'huge', 'other')), ':2\r\n');
});

test('a 2 MB pipeline gets every reply, in order, while another client is served meanwhile', () => {
  const { segment } = bootKvnet();
  const pipeliner = segment.connect();
  const other = segment.connect();
  const requests = Buffer.concat(Array.from({ length: 16_000 }, (_, i) => command('SET', `pipe:${i}`, 'p'.repeat(100))));
  assert.ok(requests.length >= 2 * 1024 * 1024, `${requests.length} bytes`);
  let replies = '';
  let otherServed = 0;
  const segmentBytes = 1460;
  for (let offset = 0; offset < requests.length; offset += segmentBytes) {
    segment.push(pipeliner, requests.subarray(offset, offset + segmentBytes));
    replies += pipeliner.take();
    if (offset % (256 * segmentBytes) === 0) {
      assert.equal(segment.send(other, command('INCR', 'other')), `:${++otherServed}\r\n`, 'the other client is answered at once');
    }
  }
  assert.equal(replies, '+OK\r\n'.repeat(16_000));
  assert.ok(otherServed >= 5);
  assert.equal(segment.send(other, command('GET', 'pipe:15999')), `$100\r\n${'p'.repeat(100)}\r\n`);
  assert.ok(!pipeliner.reset);
});

test('1,024 connections that each send one byte and go quiet cannot lock a new client out: the oldest idle one is evicted', () => {
  const { segment } = bootKvnet();
  const idlers = Array.from({ length: 1024 }, () => segment.connect());
  for (const idler of idlers) assert.equal(segment.send(idler, '*'), '', 'one byte of a request, never finished');
  assert.ok(segment.connect().reset, 'while they are fresh, every slot is taken');
  segment.advanceGuestMs(11_000);
  const newcomer = segment.connect();
  assert.ok(newcomer.established && !newcomer.reset, 'the newcomer is served');
  assert.equal(segment.send(newcomer, command('PING')), '+PONG\r\n');
  assert.deepEqual(
    idlers.flatMap((idler, i) => (idler.reset ? [i] : [])),
    [0],
    'exactly the connection idle longest was evicted',
  );
  const info = segment.send(newcomer, command('INFO'));
  assert.match(info, /connections_evicted_idle:1\r\n/);
  assert.match(info, /connections_refused:1\r\n/);
});

test('an oversized request gets a clear error and closes only that client', () => {
  const { segment } = bootKvnet();
  const victim = segment.connect();
  const bystander = segment.connect();
  assert.equal(segment.send(bystander, command('SET', 'x', 'kept')), '+OK\r\n');
  // Beyond the largest request (2 MiB and a little): refused at its header, before its bytes arrive.
  const huge = command('SET', 'big', 'v'.repeat(3 * 1024 * 1024));
  const answer = segment.send(victim, huge);
  assert.match(answer, /^-ERR Protocol error: /);
  assert.ok(victim.finReceived || victim.reset, 'the oversized client is closed');
  assert.equal(segment.send(bystander, command('GET', 'x')), '$4\r\nkept\r\n');
  assert.equal(segment.send(bystander, command('EXISTS', 'big')), ':0\r\n');
});

test('1,024 clients are served at once; the next is refused, a closed slot is free at once, and a long-idle one is evicted when all are taken', () => {
  const { segment, console } = bootKvnet();
  assert.match(console(), /1024 connection slots/);
  const clients = Array.from({ length: 1024 }, () => segment.connect());
  assert.ok(clients.every((client) => client.established && !client.reset));
  // Every client is open at once; a sample of them (first, last, every 64th) is served.
  let served = 0;
  for (const [i, client] of clients.entries()) {
    if (i % 64 !== 0 && i !== clients.length - 1) continue;
    served++;
    assert.equal(segment.send(client, command('INCR', 'clients')), `:${served}\r\n`);
  }
  const extra = segment.connect();
  assert.ok(extra.reset, 'the 1,025th client is reset');
  segment.close(clients[7]!);
  assert.ok(clients[7]!.finReceived, 'the guest closed its side as soon as the client did');
  const next = segment.connect();
  assert.ok(next.established && !next.reset, 'the freed slot serves the next client');
  assert.equal(segment.send(next, command('PING')), '+PONG\r\n');
  assert.equal(segment.send(clients[1023]!, command('PING')), '+PONG\r\n');
  // Every slot taken again. Once connections have been idle 10 s, a newcomer evicts the one idle
  // longest (client 1: opened early and silent since) rather than being refused.
  segment.advanceGuestMs(11_000);
  assert.equal(segment.send(clients[5]!, command('PING')), '+PONG\r\n');
  const newcomer = segment.connect();
  assert.ok(newcomer.established && !newcomer.reset, 'the newcomer is served');
  assert.equal(segment.send(newcomer, command('PING')), '+PONG\r\n');
  assert.deepEqual(
    clients.flatMap((client, i) => (client.reset ? [i] : [])),
    [1],
    'exactly the connection idle longest was evicted',
  );
});

test('a client that does not read is held by TCP flow control, others are served, and it gets every reply once it reads', () => {
  const { segment } = bootKvnet();
  const reader = segment.connect();
  const other = segment.connect();
  const value = 'v'.repeat(4000);
  assert.equal(segment.send(reader, command('SET', 'big', value)), '+OK\r\n');
  const requests = 100;
  const expected = `$${value.length}\r\n${value}\r\n`.repeat(requests);
  reader.paused = true;
  segment.push(reader, Buffer.concat(Array.from({ length: requests }, () => command('GET', 'big'))));
  const held = reader.unreadBytes;
  assert.ok(held > 0 && held <= 65535, `the guest sent no more than the client's window (${held} bytes)`);
  assert.ok(held < expected.length / 4, 'most replies wait');
  assert.equal(segment.send(other, command('PING')), '+PONG\r\n', 'other clients are served meanwhile');
  // The client reads: each window update lets the guest send (and run) more.
  reader.paused = false;
  let received = reader.take();
  for (let round = 0; round < 200 && received.length < expected.length; round++) {
    segment.exchange([reader.segmentFrame(TCP_ACK)]);
    received += reader.take();
  }
  assert.equal(received.length, expected.length);
  assert.ok(received === expected, 'every reply, in order');
  assert.ok(!reader.reset);
});

test('bad frames are dropped and counted, and the guest keeps serving', () => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  const { machine, segment } = bootKvnet();
  const client = segment.connect();
  const net = machine.net;
  assert.equal(net.receive(new Uint8Array(10)), 'runt');
  assert.equal(net.receive(new Uint8Array(9000)), 'oversize');
  // Garbage of every length, a TCP segment with a broken checksum, frames for another MAC.
  const garbage = Array.from({ length: 200 }, () => random.bytes(14 + random.below(1500)));
  const corrupt = client.segment.tcpFrame({
    sourcePort: client.port,
    destinationPort: 6379,
    seq: client.sndNxt,
    ack: client.rcvNxt,
    flags: TCP_ACK | TCP_PSH,
    window: 65535,
    payload: command('FLUSHALL'),
  });
  corrupt[corrupt.length - 3]! ^= 0xff;
  segment.exchange([...garbage, corrupt]);
  assert.equal(segment.send(client, command('SET', 'after', 'garbage')), '+OK\r\n', 'the corrupt FLUSHALL was never run');
  // An ARP flood: more than the device queues at once.
  const flood = Array.from({ length: 2000 }, (_, i) =>
    ethernetFrame(
      macBytes('ff:ff:ff:ff:ff:ff'),
      macBytes(`02:00:00:00:${(i >> 8) & 0xff}:${i & 0xff}`),
      ETHERTYPE_ARP,
      arpPacket(
        1,
        macBytes(`02:00:00:00:${(i >> 8) & 0xff}:${i & 0xff}`),
        ipv4(`10.0.${(i >> 8) & 0xff}.${i & 0xff}`),
        new Uint8Array(6),
        segment.guestIp,
      ),
    ),
  );
  segment.exchange(flood);
  const counters = net.counters();
  assert.equal(counters.rxRunts, 1);
  assert.equal(counters.rxOversize, 1);
  assert.ok(counters.rxQueueFull > 0, 'the flood overflowed the bounded queue');
  assert.equal(segment.send(client, command('GET', 'after')), '$7\r\ngarbage\r\n', `the guest still serves (seed ${seed})`);
});

test('a SYN flood of 3,000 leaves existing clients served, and a new client still connects', () => {
  const { segment } = bootKvnet();
  const client = segment.connect();
  for (let batch = 0; batch < 15; batch++) {
    const syns = Array.from({ length: 200 }, (_, i) =>
      segment.tcpFrame({
        sourcePort: 1024 + batch * 200 + i,
        destinationPort: 6379,
        seq: 7 + i,
        ack: 0,
        flags: TCP_SYN,
        window: 65535,
        payload: new Uint8Array(0),
      }),
    );
    segment.exchange(syns);
  }
  assert.equal(segment.send(client, command('PING')), '+PONG\r\n');
  const fresh = segment.connect();
  assert.ok(fresh.established && !fresh.reset, 'a new client connects right after the flood');
  assert.equal(segment.send(fresh, command('PING')), '+PONG\r\n');
  const dropped = /half_open_dropped:(\d+)\r\n/.exec(segment.send(fresh, command('INFO')));
  assert.ok(dropped && Number(dropped[1]) > 2000, `the flood's half-open connections made way for newer SYNs (${dropped?.[1]})`);
});

test('a TCP connection survives a save/restore: the restored machine answers the retransmitted request on the same connection', () => {
  const { machine, segment } = bootKvnet();
  const client = segment.connect();
  assert.equal(segment.send(client, command('SET', 'x', '1')), '+OK\r\n');

  // The checkpoint: RAM and CPU/device state, as the backup holds them.
  const checkpointRam = Uint8Array.from(machine.memory.u8);
  const checkpointState = machine.getState();
  const clientBefore = { sndNxt: client.sndNxt, rcvNxt: client.rcvNxt };

  // The primary runs on: it receives INCR and answers, but that answer is output of an epoch the
  // backup never acknowledged, so it is never released; then the primary dies.
  const incr = command('INCR', 'x');
  machine.net.receive(client.segmentFrame(TCP_ACK | TCP_PSH, incr));
  segment.runUntilIdle();
  const heldOutput = segment.transmitted.splice(0).map(parseFrame);
  assert.ok(
    heldOutput.some((frame) => frame.tcp && Buffer.from(frame.tcp.payload).toString() === ':2\r\n'),
    'the primary did answer',
  );

  // The backup resumes from the checkpoint on its own RAM.
  const backup = new Machine({ memoryBytes: KVNET_MEMORY_BYTES });
  backup.memory.u8.set(checkpointRam);
  backup.setState(checkpointState);
  segment.attach(backup);
  assert.deepEqual(backup.net.mac, KVNET_GUEST_MAC, 'the MAC moved with the state');

  // The client never saw an acknowledgement of INCR, so its TCP sends the same segment again.
  client.sndNxt = clientBefore.sndNxt;
  assert.equal(client.rcvNxt, clientBefore.rcvNxt);
  assert.equal(segment.send(client, incr), ':2\r\n', 'the retransmitted INCR is answered once, on the same connection');
  assert.equal(segment.send(client, command('INCR', 'x')), ':3\r\n');
  assert.equal(segment.send(client, command('GET', 'x')), '$1\r\n3\r\n');
  assert.ok(!client.reset && !client.finReceived, 'no reset, no reconnect');
});

test('after a link change the guest asks its neighbours for their MACs again, and sends to the MAC a neighbour answers with', () => {
  const { machine, segment } = bootKvnet();
  const client = segment.connect();
  assert.equal(segment.send(client, command('SET', 'k', 'v')), '+OK\r\n');
  machine.net.setLink(false);
  machine.net.setLink(true);
  segment.runUntilIdle();
  const asked = segment.transmitted
    .splice(0)
    .map(parseFrame)
    .filter((frame) => frame.arp?.operation === 1);
  assert.ok(
    asked.some((frame) => frame.arp?.targetIp === segment.clientIp && frame.arp.senderIp === segment.guestIp),
    'an ARP request for the client, which the guest had cached',
  );
  // The client's segment now reaches the guest through another MAC (as through a router or a bridge
  // whose address changed): its answer says so.
  const movedMac = macBytes('02:00:00:00:00:77');
  machine.net.receive(
    ethernetFrame(segment.guestMac, movedMac, ETHERTYPE_ARP, arpPacket(2, movedMac, segment.clientIp, segment.guestMac, segment.guestIp)),
  );
  machine.net.receive(client.segmentFrame(TCP_ACK | TCP_PSH, command('GET', 'k')));
  segment.runUntilIdle();
  const replies = segment.transmitted.map(parseFrame).filter((frame) => frame.tcp?.destinationPort === client.port);
  assert.ok(replies.length > 0, 'the guest answered the GET');
  for (const reply of replies) assert.deepEqual(reply.destination, movedMac, 'sent to the MAC the client answered with');
  segment.exchange();
  assert.match(segment.send(client, command('INFO')), /link_changes:1\r\narp_refreshes:1\r\n/);
});

test('told of a link change after a takeover, the guest announces itself, sends again what its client has not acknowledged, and asks with duplicate ACKs for what it never saw', () => {
  const { machine, segment } = bootKvnet();
  const waiting = segment.connect();
  const answered = segment.connect();
  assert.equal(segment.send(waiting, command('SET', 'x', '1')), '+OK\r\n');
  // `answered`'s request is in the checkpoint with its reply sent but not acknowledged: the reply
  // was output of an epoch the old primary never released.
  machine.net.receive(answered.segmentFrame(TCP_ACK | TCP_PSH, command('SET', 'y', '2')));
  segment.runUntilIdle();
  segment.transmitted.length = 0;
  const checkpointRam = Uint8Array.from(machine.memory.u8);
  const checkpointState = machine.getState();

  const backup = new Machine({ memoryBytes: KVNET_MEMORY_BYTES });
  backup.memory.u8.set(checkpointRam);
  backup.setState(checkpointState);
  segment.attach(backup);
  segment.transmitted.length = 0;
  backup.net.setLink(false);
  backup.net.setLink(true);
  segment.runUntilIdle();
  const frames = segment.transmitted.splice(0).map(parseFrame);
  const guestIp = ipv4('10.0.0.2');
  assert.ok(
    frames.some((frame) => frame.arp?.senderIp === guestIp && frame.arp.targetIp === guestIp),
    'a gratuitous ARP from the guest itself',
  );
  const toWaiting = frames.filter((frame) => frame.tcp?.destinationPort === waiting.port);
  assert.equal(
    toWaiting.length,
    4,
    'a window update and three duplicate ACKs to the client whose request may have died with the old primary',
  );
  for (const frame of toWaiting) {
    assert.equal(frame.tcp?.payload.length, 0);
    assert.equal(frame.tcp?.ack, waiting.sndNxt >>> 0);
    assert.equal(frame.tcp?.window, toWaiting[0]?.tcp?.window);
  }
  const toAnswered = frames.filter((frame) => frame.tcp?.destinationPort === answered.port);
  assert.ok(
    toAnswered.some((frame) => Buffer.from(frame.tcp?.payload ?? []).toString() === '+OK\r\n'),
    'the unacknowledged reply is sent again at once',
  );
  assert.equal(backup.net.read(0x0c, 4) & 16, 0, 'the guest cleared the link change');
});
