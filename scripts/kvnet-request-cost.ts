// What one request costs the unprotected kvnet guest without a TAP or a kernel in the way: CLIENTS
// TCP connections (a hand-built client in this process), each with one request outstanding, as
// redis-benchmark -c CLIENTS drives it. Each round delivers one request frame per connection (its
// ACK of the previous reply piggybacked, as Linux's is), runs the guest until it is idle and takes
// the replies. Prints guest instructions per request, host time per request in Machine.run, and
// frames in and out per request.
// With SAMPLE=1 the guest runs on the interpreter in slices of a few instructions and the
// program counter after each is kept: prints where the instructions go, by function (from nm).
// DUMP=file writes every sampled pc with its count per request (for addr2line).
// KVNET_IMAGE=path measures another build of kvnet; ENGINE=interpreter runs it without the block compiler.
// Usage: npx tsx scripts/kvnet-request-cost.ts [ROUNDS] [CLIENTS] [COMMAND: set|get|incr]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { STOP_IDLE } from '@hbft/common/guest/cpu.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { encodeCommand } from '@hbft/common/session/resp.ts';
import { EthernetSegment, TCP_ACK, TCP_PSH, macBytes, parseFrame } from '../test/helpers/ethernetClient.ts';

const ROUNDS = Number(process.argv[2] ?? 400);
const CLIENTS = Number(process.argv[3] ?? 50);
const COMMAND = process.argv[4] ?? 'set';
const IMAGE = process.env.KVNET_IMAGE ?? resolveGuestImage('kvnet');
const SAMPLE = process.env.SAMPLE === '1';
const machine = new Machine({
  memoryBytes: 256 * 1024 * 1024,
  args: 'ip=10.0.0.2/24',
  engine: SAMPLE ? 'interpreter' : ((process.env.ENGINE as 'blocks' | 'interpreter' | undefined) ?? 'blocks'),
});
const samples = new Map<number, number>();
// SLICE=1 counts every instruction (exact, slower); the default 17 samples.
const SAMPLE_SLICE = Number(process.env.SLICE ?? 17);
// CALLERS=function: also where that (leaf) function was called from, by its return address.
const symbolTable = (): { start: number; size: number; name: string }[] =>
  execFileSync('riscv64-unknown-elf-nm', ['-S', '--size-sort', IMAGE], { encoding: 'latin1' })
    .split('\n')
    .map((line) => line.split(' '))
    .filter((cells) => cells.length === 4 && /[tTwW]/.test(cells[2] ?? ''))
    .map(([address, size, , name]) => ({
      start: Number.parseInt(address ?? '0', 16),
      size: Number.parseInt(size ?? '0', 16),
      name: name ?? '?',
    }));
const callersOf = process.env.CALLERS === undefined ? undefined : symbolTable().find((s) => s.name === process.env.CALLERS);
const callers = new Map<number, number>();
machine.loadElf(readFileSync(IMAGE));
machine.net.setMac(macBytes('02:48:42:46:54:02'));
const segment = new EthernetSegment(machine, '10.0.0.2');
segment.runUntilIdle();
segment.resolveGuest();
const clients = Array.from({ length: CLIENTS }, () => segment.connect());
const request = (i: number): Uint8Array => {
  // redis-benchmark's: key:__rand_int__ with a 3-byte value.
  const key = `key:${String(i).padStart(12, '0')}`;
  if (COMMAND === 'get') return encodeCommand(['GET', key]);
  if (COMMAND === 'incr') return encodeCommand(['INCR', 'counter:__rand_int__']);
  return encodeCommand(['SET', key, 'xxx']);
};
let runMs = 0;
let cpuUs = 0;
let instructions = 0;
let framesIn = 0;
let framesOut = 0;
let requests = 0;
const round = (measure: boolean): void => {
  const frames = clients.map((client, i) => client.segmentFrame(TCP_ACK | TCP_PSH, request(i)));
  const instret = machine.cpu.instret;
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  for (const frame of frames) machine.net.receive(frame);
  if (SAMPLE && measure) {
    for (let slice = 0; slice < 1_000_000 && machine.run(SAMPLE_SLICE).stop !== STOP_IDLE; slice++) {
      const pc = machine.cpu.pc >>> 0;
      samples.set(pc, (samples.get(pc) ?? 0) + 1);
      if (callersOf !== undefined && pc >= callersOf.start && pc < callersOf.start + callersOf.size) {
        const ra = (machine.cpu.x[1] ?? 0) >>> 0;
        callers.set(ra, (callers.get(ra) ?? 0) + 1);
      }
    }
  } else {
    for (let slice = 0; slice < 1000 && machine.run(200_000).stop !== STOP_IDLE; slice++);
  }
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpuStarted);
  const out = segment.transmitted.splice(0);
  for (const frame of out) {
    const parsed = parseFrame(frame);
    if (parsed.tcp) segment.connections.get(parsed.tcp.destinationPort)?.onSegment(parsed.tcp);
  }
  for (const client of clients) client.take();
  if (!measure) return;
  runMs += elapsed;
  cpuUs += cpu.user + cpu.system;
  instructions += Number(machine.cpu.instret - instret);
  framesIn += frames.length;
  framesOut += out.length;
  requests += clients.length;
};
for (let i = 0; i < 50; i++) round(false);
for (let i = 0; i < ROUNDS; i++) round(true);
console.log(
  `${COMMAND}, ${CLIENTS} clients, ${requests} requests: ${(instructions / requests).toFixed(0)} guest instructions/request, ` +
    `${((runMs * 1000) / requests).toFixed(2)} µs/request in Machine.run (${(instructions / runMs / 1000).toFixed(0)} M instructions/s; CPU time ${(cpuUs / requests).toFixed(2)} µs/request), ` +
    `frames per request in ${(framesIn / requests).toFixed(2)}, out ${(framesOut / requests).toFixed(2)}`,
);
if (machine.cpu.blockStats !== undefined) console.log(`block cache: ${JSON.stringify(machine.cpu.blockStats)}`);
if (SAMPLE) {
  const symbols = symbolTable();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const [pc, count] of samples) {
    const symbol = symbols.find((s) => pc >= s.start && pc < s.start + s.size);
    const name = symbol?.name ?? `0x${pc.toString(16)}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + count);
    total += count;
  }
  // DUMP=file: every sampled pc and its count per request, one "0xpc count" a line (for addr2line).
  if (process.env.DUMP !== undefined) {
    const lines = [...samples].map(([pc, count]) => `0x${pc.toString(16)} ${((count / total) * (instructions / requests)).toFixed(2)}`);
    writeFileSync(process.env.DUMP, `${lines.join('\n')}\n`);
  }
  const detail = symbols.find((s) => s.name === process.env.DETAIL);
  if (detail !== undefined) {
    const pcs = [...samples].filter(([pc]) => pc >= detail.start && pc < detail.start + detail.size).sort((a, b) => b[1] - a[1]);
    for (const [pc, count] of pcs.slice(0, 24))
      console.log(`  0x${pc.toString(16)} ${((count / total) * (instructions / requests)).toFixed(0)}/request`);
  }
  if (callersOf !== undefined) {
    const callerTotal = [...callers.values()].reduce((a, b) => a + b, 0);
    const byCaller = new Map<string, number>();
    for (const [ra, count] of callers) {
      const name = symbols.find((s) => ra >= s.start && ra < s.start + s.size)?.name ?? `0x${ra.toString(16)}`;
      byCaller.set(name, (byCaller.get(name) ?? 0) + count);
    }
    for (const [name, count] of [...byCaller].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
      console.log(`  ${callersOf.name} from ${name}: ${((100 * count) / callerTotal).toFixed(0)} %`);
    }
  }
  for (const [name, count] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40))) {
    console.log(
      `${((100 * count) / total).toFixed(1).padStart(5)} %  ${((count / total) * (instructions / requests)).toFixed(0).padStart(5)}/request  ${name}`,
    );
  }
}
