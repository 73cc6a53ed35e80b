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
  // One record per connection: its NIC slot, its reply reader and the requests it has outstanding.
  const connections: { slot: number; reader: ReplyReader; outstanding: number }[] = [];
  let completed = 0;
  machine.nic.host = {
    onTransmit(slot, bytes) {
      const connection = connections.find((candidate) => candidate.slot === slot);
      if (connection === undefined) return;
      connection.reader.push(bytes);
      while (connection.reader.next() !== undefined) {
        connection.outstanding--;
        completed++;
      }
    },
    onGuestClose() {},
  };
  for (let i = 0; i < KV_CONNECTIONS; i++) {
    connections.push({ slot: machine.nic.openConnection(`bench-${i}`), reader: new ReplyReader(), outstanding: 0 });
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
      for (const connection of connections) {
        if (connection.outstanding > KV_DEPTH_PER_CONNECTION / 2) continue;
        const batch: Uint8Array[] = [];
        while (connection.outstanding < KV_DEPTH_PER_CONNECTION) {
          batch.push(request());
          connection.outstanding++;
        }
        machine.nic.deliver(connection.slot, Buffer.concat(batch));
      }
    },
    completedRequests: () => completed,
    reset() {
      for (const connection of connections) {
        connection.outstanding = 0;
        connection.reader = new ReplyReader();
      }
    },
  };
}
