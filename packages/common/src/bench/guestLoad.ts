import { readFileSync } from 'node:fs';
import { Machine } from '../guest/machine.ts';
import { resolveGuestImage, type GuestName } from '../guest/images.ts';

/**
 * Benchmark guests: each workload image with arguments sized to run far longer than any
 * measurement. `kv` drives its own load from inside the guest (8 pipelined connections of SET, GET
 * and INCR over 200,000 keys with 64-byte values: scattered small writes, like the paper's
 * SPECweb), so no benchmark needs a client for it.
 */
export const BENCH_WORKLOAD_ARGS: Record<GuestName, string> = {
  cfp: 'mb=16 rounds=1000000',
  cint: 'mb=8 rounds=1000000',
  jbb: 'mb=16 rounds=100000000',
  web: 'mb=64 rounds=100000000',
  kv: 'mb=64 keys=200000 rounds=100000000',
};

/** A machine with `name` loaded and its benchmark arguments. */
export function createBenchMachine(name: GuestName, memoryBytes: number): Machine {
  const machine = new Machine({ memoryBytes, args: BENCH_WORKLOAD_ARGS[name] });
  machine.loadElf(readFileSync(resolveGuestImage(name)), `${name}.elf`);
  return machine;
}
