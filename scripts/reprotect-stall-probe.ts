// Measures the survivor's event-loop stalls while it re-protects (the scenario of reprotect.test.ts
// (b) without the mid-sync stall): a 64 MiB kv guest holding ~20 MiB of values, a partition, the
// takeover, the heal, and the full synchronisation of the restarted node. Prints the gaps between
// ticks the survivor logged from "backup connected" to "backup synchronised", and the largest.
// Usage (under the cluster lock): npx tsx scripts/reprotect-stall-probe.ts [MEMORY] [BATCHES]
// PROF_DIR=DIR adds --cpu-prof to the daemons.
import { PlainClient } from '@hbft/common/session/plainClient.ts';
import { runLoad } from '@hbft/common/session/load.ts';
import { Pair } from '../test/helpers/pair.ts';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pair = await Pair.start({
  memory: process.argv[2] ?? '64MiB',
  nodeArgs: process.env.PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF_DIR}`] : [],
});
const { a, b } = pair.sites;
try {
  const filler = new PlainClient({ servers: pair.servers });
  const value = 'v'.repeat(60_000);
  for (let batch = 0; batch < Number(process.argv[3] ?? 44); batch++)
    await Promise.all(Array.from({ length: 8 }, (_, i) => filler.request(['SET', `fill:${batch * 8 + i}`, value])));
  filler.close();
  const load = runLoad({
    servers: pair.servers,
    clients: 4,
    durationMs: 12_000,
    keys: 8,
    seed: 7,
    keyPrefix: 'r',
    responseTimeoutMs: 2_000,
    reconnectDeadlineMs: 30_000,
  });
  load.catch(() => {});
  await sleep(1500);
  await pair.partition();
  await pair.waitPrimary(b, 2);
  await sleep(300);
  await pair.heal();
  try {
    await pair.waitProtected(a, 40_000);
  } catch {
    console.log('not protected');
  }
  await sleep(2000);
  const { verdict } = await load;
  const run = b.runs.at(-1);
  if (run === undefined) throw new Error('site b never ran');
  console.log('verdict ok', verdict.ok, 'b exit', run.child.exitCode);
  let inSync = false;
  let max = 0;
  for (const line of run.log) {
    if (/backup connected: full synchronisation started/.test(line)) {
      inSync = true;
      console.log(line.slice(0, 200));
    }
    if (/full synchronisation sent|backup synchronised|first checkpoint|backup lost|PRIMARY FAILED/.test(line))
      console.log(line.slice(0, 240));
    const m = /"stallMs":(\d+)/.exec(line);
    if (m && inSync) {
      max = Math.max(max, Number(m[1]));
      console.log('  stall', m[1], line.slice(20, 45));
    }
    if (/backup synchronised/.test(line)) inSync = false;
  }
  console.log('max stall during re-protection (ms):', max, 'survivor pid', run.child.pid);
} finally {
  await pair.stop();
}
