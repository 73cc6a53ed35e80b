// Proves the core promise of issue 11 through the real checkpoint path: kvnet runs in a guest
// worker that captures a checkpoint every epoch into a replica; the frames it transmits in epoch e
// reach the client only once checkpoint e is applied (output commit per frame); when the primary
// stops mid-connection with a reply still held, a machine resumed from the replica continues the
// same TCP connection, and the client's retransmission of the unanswered request is answered once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { GuestWorker } from '@hbft/common/hypervisor/guestWorker.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { StagingRing } from '@hbft/common/checkpoint/staging.ts';
import type { CapturedCheckpoint } from '@hbft/common/checkpoint/capture.ts';
import { encodeCommand } from '@hbft/common/session/resp.ts';
import {
  ETHERTYPE_ARP,
  EthernetSegment,
  TCP_ACK,
  TCP_PSH,
  TCP_SYN,
  TcpClientConnection,
  arpPacket,
  ethernetFrame,
  macBytes,
  parseFrame,
} from '../helpers/ethernetClient.ts';

const MEMORY_BYTES = 32 * 1024 * 1024;
const PAGE = 4096;
const GUEST_MAC = macBytes('02:48:42:46:54:07');
const EPOCHS_MAX = 400;

test('a TCP connection to kvnet survives the primary stopping: output commit per frame, resume from the replica', async () => {
  const memory = new SharedArrayBuffer(MEMORY_BYTES);
  const stagingPages = MEMORY_BYTES / PAGE;
  const staging = new StagingRing(stagingPages, new SharedArrayBuffer(StagingRing.byteLengthFor(stagingPages)));
  const guest = await GuestWorker.start({
    memory,
    image: readFileSync(resolveGuestImage('kvnet')),
    imageName: 'kvnet.elf',
    args: 'ip=10.0.0.2/24',
    mac: GUEST_MAC,
    replication: {
      tracking: 'wfp',
      trackerOptions: {},
      mapper: { mapper: 'superpage', mapSlots: 4 },
      staging: staging.buffer,
      stagingPages,
      firstEpoch: 0,
    },
  });
  // The replica: a copy taken while the guest runs, then every checkpoint applied (as the backup).
  const replica = new SharedArrayBuffer(MEMORY_BYTES);
  const replicaBytes = new Uint8Array(replica);
  replicaBytes.set(new Uint8Array(memory));
  let replicaState: Uint8Array | null = null;
  const held = new Map<number, Uint8Array[]>();
  let epoch = 0;
  guest.on('frame', (bytes, frameEpoch) => {
    if (!held.has(frameEpoch)) held.set(frameEpoch, []);
    held.get(frameEpoch)!.push(bytes);
  });

  // The client's side. Its EthernetSegment never runs a machine until the failover; until then
  // frames go to the worker and come back through output commit.
  const segment = new EthernetSegment(new Machine({ memoryBytes: 16 * 1024 * 1024 }), '10.0.0.2');
  const deliver = (frames: Uint8Array[]) => frames.forEach((frame) => guest.deliverFrame(frame));

  /** One epoch: let the guest run, capture, apply to the replica, release that epoch's frames. */
  async function runEpoch(): Promise<void> {
    await sleep(4);
    const captured = once(guest, 'captured');
    guest.requestCapture(epoch);
    const [checkpoint] = (await captured) as [CapturedCheckpoint];
    assert.equal(checkpoint.epoch, epoch);
    const region = staging.region(checkpoint.allocation);
    checkpoint.pages.forEach((page, i) => replicaBytes.set(region.subarray(i * PAGE, (i + 1) * PAGE), page * PAGE));
    staging.release(checkpoint.allocation);
    replicaState = checkpoint.state;
    // The backup has the state that produced these frames: release them.
    segment.transmitted.push(...(held.get(epoch) ?? []));
    held.delete(epoch);
    epoch++;
    deliver(segment.answerTransmitted());
  }

  async function until(what: string, done: () => boolean): Promise<void> {
    for (let i = 0; i < EPOCHS_MAX && !done(); i++) await runEpoch();
    assert.ok(done(), `${what} within ${EPOCHS_MAX} epochs`);
  }

  let primaryStopped = false;
  try {
    deliver([
      ethernetFrame(
        macBytes('ff:ff:ff:ff:ff:ff'),
        segment.clientMac,
        ETHERTYPE_ARP,
        arpPacket(1, segment.clientMac, segment.clientIp, new Uint8Array(6), segment.guestIp),
      ),
    ]);
    await until('the guest answers ARP', () => segment.guestMac[0] === GUEST_MAC[0] && segment.guestMac[5] === GUEST_MAC[5]);

    const client = new TcpClientConnection(segment, 41000, 0x3000_0000);
    segment.connections.set(client.port, client);
    deliver([client.segmentFrame(TCP_SYN)]);
    await until('the connection is established', () => client.established);

    let received = '';
    deliver([client.segmentFrame(TCP_ACK | TCP_PSH, encodeCommand(['SET', 'x', '1']))]);
    await until('SET is answered', () => (received += client.take()).length > 0);
    assert.equal(received, '+OK\r\n');

    // INCR reaches the primary, which answers, but its epoch is never committed: the primary stops.
    const retransmitFrom = { sndNxt: client.sndNxt, rcvNxt: client.rcvNxt };
    const incr = encodeCommand(['INCR', 'x']);
    deliver([client.segmentFrame(TCP_ACK | TCP_PSH, incr)]);
    let answered = false;
    for (let i = 0; i < 200 && !answered; i++) {
      await sleep(5);
      answered = [...held.values()].flat().some((frame) => Buffer.from(parseFrame(frame).tcp?.payload ?? []).toString() === ':2\r\n');
    }
    assert.ok(answered, 'the primary answered INCR, in an epoch that was never committed');
    await guest.stop();
    primaryStopped = true;
    assert.equal(client.take(), '', 'the held reply never reached the client');

    // The backup resumes from the last applied checkpoint; the client's TCP retransmits INCR.
    const backup = new Machine({ memoryBuffer: replica });
    backup.setState(replicaState!);
    segment.attach(backup);
    client.sndNxt = retransmitFrom.sndNxt;
    assert.equal(client.rcvNxt, retransmitFrom.rcvNxt);
    assert.equal(segment.send(client, incr), ':2\r\n', 'the retransmitted INCR is answered, once');
    assert.equal(segment.send(client, encodeCommand(['INCR', 'x'])), ':3\r\n');
    assert.ok(!client.reset, 'the same connection, never reset');
  } finally {
    if (!primaryStopped) await guest.stop();
  }
});
