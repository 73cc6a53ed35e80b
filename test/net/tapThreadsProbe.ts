// Run by tapThreads.test.ts inside a network namespace of its own (as root): opens a TAP device the
// way `hbft run --tap` does (frames read on this thread, a writer thread under SCHED_BATCH), and
// prints one JSON line: the scheduling policy of each thread, the frames read from the kernel
// (its ARP request for an address behind the TAP) and whether a frame sent reached the kernel.
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync, readdirSync } from 'node:fs';
import { gratuitousArpFrame, parseIpv4 } from '@hbft/common/net/arp.ts';
import { TapDevice } from '@hbft/common/net/tap.ts';

const name = process.argv[2] ?? 'hbftthr0';
const tap = await TapDevice.open(name, { writerThread: true, threadsBatchPolicy: true });
execFileSync('ip', ['addr', 'add', '10.98.0.1/24', 'dev', name]);
execFileSync('ip', ['link', 'set', name, 'up']);
// stat's field 41 is the policy (0 SCHED_OTHER, 3 SCHED_BATCH); the comm may hold spaces.
const policies = (): number[] =>
  readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]);
  });
// The worker sets its policy once it has started: give it a moment.
let batchThreads = 0;
for (let i = 0; i < 100 && batchThreads === 0; i++) {
  await new Promise((resolve) => setTimeout(resolve, 20));
  batchThreads = policies().filter((policy) => policy === 3).length;
}
// A datagram to 10.98.0.2 makes the kernel send ARP requests for it out of the TAP: this thread reads them.
const socket = createSocket('udp4');
socket.send('x', 9, '10.98.0.2');
const ethertypes: number[] = [];
const deadline = performance.now() + 5000;
while (ethertypes.length === 0 && performance.now() < deadline) {
  await tap.waitReadable(200);
  tap.readFrames(16, (frame) => ethertypes.push((frame[12]! << 8) | frame[13]!));
}
socket.close();
const received = (): number => Number(readFileSync(`/sys/class/net/${name}/statistics/rx_packets`, 'latin1'));
const before = received();
tap.send(gratuitousArpFrame(Uint8Array.of(0x02, 0, 0, 0, 0, 0x22), parseIpv4('10.98.0.3')!));
tap.flush();
let after = before;
for (let i = 0; i < 100 && after === before; i++) {
  await new Promise((resolve) => setTimeout(resolve, 20));
  after = received();
}
process.stdout.write(
  `${JSON.stringify({ threads: policies().length, batchThreads, ethertypes, sent: after - before, counters: tap.counters })}\n`,
);
tap.close();
