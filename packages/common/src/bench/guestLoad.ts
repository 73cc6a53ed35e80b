import { readFileSync } from 'node:fs';
import { Machine } from '../guest/machine.ts';
import { resolveGuestImage, type GuestName } from '../guest/images.ts';
import { encodeCommand, ReplyReader } from '../session/resp.ts';
import { SeededRandom } from '../random.ts';

/**
 * Benchmark guests: a workload image with arguments sized to run far longer than any measurement,
 * and for `kv` an in-process client that keeps the server busy with a mix of SET, GET and INCR
 * over a large key space (scattered small writes, like the paper's SPECweb).
 */
export const BENCH_WORKLOAD_ARGS: Record<GuestName, string> = {
  cfp: 'mb=16 rounds=1000000',
  cint: 'mb=8 rounds=1000000',
  jbb: 'mb=16 rounds=100000000',
  web: 'mb=64 rounds=100000000',
  kv: 'ring_kib=256',
};

export interface BenchGuest {
  machine: Machine;
  /** Called between run slices: feeds clients, counts replies. */
  pump(): void;
  /** Completed requests (kv) or 0. */
  completedRequests(): number;
  /** The machine was restored to a snapshot: requests in flight were never seen by it. */
  reset(): void;
}

const KV_CONNECTIONS = 8;
const KV_DEPTH_PER_CONNECTION = 16;
const KV_KEYS = 200_000;

export function createBenchGuest(name: GuestName, memoryBytes: number, seed = 1): BenchGuest {
  const machine = new Machine({ memoryBytes, args: BENCH_WORKLOAD_ARGS[name] });
  machine.loadElf(readFileSync(resolveGuestImage(name)), `${name}.elf`);
  if (name !== 'kv') return { machine, pump: () => {}, completedRequests: () => 0, reset: () => {} };

  const random = new SeededRandom(seed);
  const value = 'v'.repeat(64);
  const readers: ReplyReader[] = [];
  const outstanding: number[] = [];
  let completed = 0;
  const slots: number[] = [];
  machine.nic.host = {
    onTransmit(slot, bytes) {
      const index = slots.indexOf(slot);
      if (index < 0) return;
      readers[index]!.push(bytes);
      while (readers[index]!.next() !== undefined) {
        outstanding[index]!--;
        completed++;
      }
    },
    onGuestClose() {},
  };
  for (let i = 0; i < KV_CONNECTIONS; i++) {
    slots.push(machine.nic.openConnection(`bench-${i}`));
    readers.push(new ReplyReader());
    outstanding.push(0);
  }
  const request = (): Uint8Array => {
    const key = `key:${random.below(KV_KEYS)}`;
    const kind = random.below(10);
    if (kind < 4) return encodeCommand(['SET', key, value]);
    if (kind < 8) return encodeCommand(['GET', key]);
    return encodeCommand(['INCR', `counter:${random.below(KV_KEYS / 10)}`]);
  };
  return {
    machine,
    pump() {
      for (let i = 0; i < KV_CONNECTIONS; i++) {
        if (outstanding[i]! > KV_DEPTH_PER_CONNECTION / 2) continue;
        const batch: Uint8Array[] = [];
        while (outstanding[i]! < KV_DEPTH_PER_CONNECTION) {
          batch.push(request());
          outstanding[i]!++;
        }
        machine.nic.deliver(slots[i]!, Buffer.concat(batch));
      }
    },
    completedRequests: () => completed,
    reset() {
      for (let i = 0; i < KV_CONNECTIONS; i++) {
        outstanding[i] = 0;
        readers[i] = new ReplyReader();
      }
    },
  };
}
