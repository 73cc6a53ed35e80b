// Proves that the kv guest, the kv engine driven by its own in-guest load (8 pipelined RESP
// connections of SET/GET/INCR, split at random bytes), is a deterministic workload: it runs to a
// known checksum on both CPU engines, its rv32imac build prints the same checksum as its rv32im one,
// the same arguments give the same run and another seed or key space another checksum, and
// arguments it cannot use are refused with a console message naming them (never a trap).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { CPU_ENGINES, type CpuEngine } from '@hbft/common/guest/cpu.ts';

const MEMORY_BYTES = 32 * 1024 * 1024;
const ARGS = 'mb=4 rounds=3 seed=9';
/** The checksum for ARGS: computed natively (guests/test/host-test.sh) and on rvsim alike. */
const CHECKSUM = 'bd6993e602052853';

interface Run {
  exit: Machine['exit'];
  console: string;
  instret: number;
}

function run(args: string, image = 'kv', engine?: CpuEngine): Run {
  const machine = new Machine({ memoryBytes: MEMORY_BYTES, args, engine });
  let text = '';
  machine.uart.onOutput = (byte) => (text += String.fromCharCode(byte));
  machine.loadElf(readFileSync(resolveGuestImage(image)));
  let executed = 0;
  while (!machine.halted && executed < 500_000_000) executed += machine.run(1_000_000).executed;
  assert.ok(machine.halted, `kv ${args} ended (it ran ${executed} instructions)`);
  return { exit: machine.exit, console: text, instret: machine.cpu.instret };
}

function checksumOf(r: Run): string {
  const match = /^checksum=([0-9a-f]{16})$/m.exec(r.console);
  assert.ok(match, `a checksum line in:\n${r.console}`);
  return match[1]!;
}

const OK = { kind: 'exit', code: 0, via: 'finisher' };

for (const engine of CPU_ENGINES) {
  for (const image of ['kv', 'kv.rv32imac']) {
    test(`${image} on the ${engine} engine runs its load to the known checksum`, () => {
      const r = run(ARGS, image, engine);
      assert.deepEqual(r.exit, OK, r.console);
      assert.equal(checksumOf(r), CHECKSUM);
      assert.match(r.console, /self-test passed/);
      // 3 rounds of 1,000 requests, every one executed, none answered with an error.
      assert.match(r.console, /^kv: 3000 requests \(\d+ SET, \d+ GET, \d+ INCR\)/m);
    });
  }
}

test('the same arguments give the same run; another seed or key space another checksum', () => {
  const first = run(ARGS);
  const again = run(ARGS);
  assert.equal(again.console, first.console, 'same console, line for line');
  assert.equal(again.instret, first.instret, 'same instruction count');
  const otherSeed = checksumOf(run('mb=4 rounds=3 seed=10'));
  const otherKeys = checksumOf(run('mb=4 rounds=3 seed=9 keys=500'));
  assert.notEqual(otherSeed, CHECKSUM);
  assert.notEqual(otherKeys, CHECKSUM);
  assert.notEqual(otherKeys, otherSeed);
  // The machine's RAM size is not part of the run: the engine gets exactly mb MiB.
  const bigger = new Machine({ memoryBytes: 2 * MEMORY_BYTES, args: ARGS });
  let text = '';
  bigger.uart.onOutput = (byte) => (text += String.fromCharCode(byte));
  bigger.loadElf(readFileSync(resolveGuestImage('kv')));
  while (!bigger.halted) bigger.run(1_000_000);
  assert.match(text, new RegExp(`^checksum=${CHECKSUM}$`, 'm'));
});

test('rounds=0 keeps the load running until the machine is stopped', () => {
  const machine = new Machine({ memoryBytes: MEMORY_BYTES, args: 'mb=4 rounds=0' });
  let text = '';
  machine.uart.onOutput = (byte) => (text += String.fromCharCode(byte));
  machine.loadElf(readFileSync(resolveGuestImage('kv')));
  // Past what rounds=3 needs to finish (about 7.5 M instructions), and still going.
  while (machine.cpu.instret < 30_000_000 && !machine.halted) machine.run(1_000_000);
  assert.equal(machine.halted, false, text);
  assert.match(text, /kv: mb=4 rounds=0 keys=12500 seed=1: .*self-test passed/);
  assert.doesNotMatch(text, /checksum=/);
});

test('arguments kv cannot use are refused with a message, not a trap', () => {
  const cases: [string, number, RegExp][] = [
    ['exit_after=100', 2, /kv: exit_after is an argument of the old NIC server, which is gone/],
    ['ring_kib=64', 2, /kv: ring_kib is an argument of the old NIC server/],
    ['mb=4 color=blue', 2, /kv: unknown argument 'color=blue' \(kv takes mb= rounds= keys= seed=\)/],
    ['keys=lots', 2, /args: keys=lots is not a number/],
    ['mb=0', 2, /kv: mb=0 is out of range \(1\.\.1536\)/],
    ['mb=4 keys=0', 2, /kv: keys=0 is out of range/],
    ['mb=2 keys=100000', 3, /kv: keys=100000 need about \d+ MiB of item space, mb=2 gives \d+ MiB: raise mb= or lower keys=/],
    ['mb=64', 3, /out of memory: kv engine memory \(mb=\) needs/],
  ];
  for (const [args, code, message] of cases) {
    const r = run(args);
    assert.deepEqual(r.exit, { kind: 'exit', code, via: 'finisher' }, `${args}: ${r.console}`);
    assert.match(r.console, message, args);
    assert.doesNotMatch(r.console, /trap|panic|checksum=/, args);
  }
});
