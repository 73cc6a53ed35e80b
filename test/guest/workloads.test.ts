// Proves that every shipped workload, built for rv32im and for rv32imac, runs to its known
// checksum on the emulator, and that saving the machine mid-run, restoring it into a fresh machine
// and continuing gives exactly the run that never stopped (same console, same final state hash).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';

const MEMORY_BYTES = 32 * 1024 * 1024;
const ARGS = 'mb=2 rounds=2 seed=5';
/** Checksums for ARGS, as computed natively, under QEMU and on the guest author's simulator. */
const CHECKSUMS: Record<string, string> = {
  cfp: 'e5945e93f1387dae',
  cint: '7522afdae3cbc977',
  jbb: 'e24291d3b9db08ab',
  web: '35a7bee1e346c122',
  kv: 'a24b888f8f8cf808',
};

function boot(name: string): { machine: Machine; console: () => string } {
  const machine = new Machine({ memoryBytes: MEMORY_BYTES, args: ARGS });
  let text = '';
  machine.uart.onOutput = (byte) => (text += String.fromCharCode(byte));
  machine.loadElf(readFileSync(resolveGuestImage(name)));
  return { machine, console: () => text };
}

function runToEnd(machine: Machine, limit = 2e9): void {
  let executed = 0;
  while (!machine.halted && executed < limit) executed += machine.run(1_000_000).executed;
}

const IMAGES = Object.entries(CHECKSUMS).flatMap(([name, checksum]): [string, string][] => [
  [name, checksum],
  [`${name}.rv32imac`, checksum],
]);

for (const [name, checksum] of IMAGES) {
  test(`${name}: runs to its checksum, and a save/restore mid-run changes nothing`, () => {
    const straight = boot(name);
    runToEnd(straight.machine);
    assert.deepEqual(straight.machine.exit, { kind: 'exit', code: 0, via: 'finisher' });
    assert.match(straight.console(), new RegExp(`checksum=${checksum}`));

    // Stop at an odd instruction count, save everything, and continue elsewhere.
    const first = boot(name);
    const stopAt = Math.floor(straight.machine.cpu.instret * 0.37) + 13;
    while (first.machine.cpu.instret < stopAt) first.machine.run(Math.min(1_000_000, stopAt - first.machine.cpu.instret));
    const ram = first.machine.memory.u8.slice();
    const state = first.machine.getState();
    const consoleSoFar = first.console();

    const second = new Machine({ memoryBytes: MEMORY_BYTES });
    let text = consoleSoFar;
    second.uart.onOutput = (byte) => (text += String.fromCharCode(byte));
    second.memory.u8.set(ram);
    second.setState(state);
    assert.equal(second.stateHash(), first.machine.stateHash(), 'restored state hashes the same');
    runToEnd(second);
    assert.equal(text, straight.console(), 'same console output');
    assert.equal(second.cpu.instret, straight.machine.cpu.instret, 'same instruction count');
    assert.equal(second.stateHash(), straight.machine.stateHash(), 'same final state');
  });
}
