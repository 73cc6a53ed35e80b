// Measures what a machine resumed from a checkpoint pays before it answers at full speed: kvnet
// with 20 TCP connections that have each done ROUNDS INCRs, then one INCR on every connection on
// (a) the same machine (its compiled blocks warm) and (b) a new machine over a copy of its memory
// and state (what a promoted standby runs: no compiled blocks). Prints wall time, instructions and
// blocks compiled for each, over a few rounds after the switch.
// Usage: npx tsx scripts/kvnet-resume-cost.ts [ROUNDS]
import { Machine } from '@hbft/common/guest/machine.ts';
import { encodeCommand } from '@hbft/common/session/resp.ts';
import { KVNET_MEMORY_BYTES, bootKvnet } from '../test/helpers/kvnetMachine.ts';

const ROUNDS = Number(process.argv[2] ?? 100);
const { machine, segment } = bootKvnet();
const clients = Array.from({ length: 20 }, () => segment.connect());
const round = () => {
  const started = performance.now();
  const instret = segment.machine.cpu.instret;
  for (const [i, client] of clients.entries()) segment.send(client, encodeCommand(['INCR', `k${i}`]));
  return { ms: performance.now() - started, instructions: Number(segment.machine.cpu.instret - instret) };
};
for (let i = 0; i < ROUNDS; i++) round();
const show = (label: string, m: Machine) => {
  const rows = Array.from({ length: Number(process.env.SHOW ?? 8) }, () => round());
  console.log(
    `${label}: ${rows.map((row) => `${row.ms.toFixed(1)} ms/${(row.instructions / 1000).toFixed(0)}k`).join(', ')} (blocks compiled ${JSON.stringify(m.cpu.blockStats ?? null)})`,
  );
};
show('warm machine, 20 INCRs per round', machine);
const copy = new SharedArrayBuffer(KVNET_MEMORY_BYTES);
new Uint8Array(copy).set(machine.memory.u8);
const resumed = new Machine({
  memoryBuffer: copy,
  engine: (process.env.ENGINE as 'blocks' | 'interpreter' | undefined) ?? 'blocks',
  cpu: process.env.ENTRIES ? { blockEntriesBeforeCompile: Number(process.env.ENTRIES) } : undefined,
});
resumed.setState(machine.getState());
if (process.env.HOLD) resumed.cpu.holdCompiles(Number(process.env.HOLD));
segment.attach(resumed);
show('resumed machine (no compiled blocks)', resumed);
