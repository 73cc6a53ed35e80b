// Measures what a re-protection costs (the scenario of reprotect.test.ts (b) without the slow link
// and the mid-sync stall): the kvnet guest on TAPs in a network namespace, holding VALUES values of
// 3,800 bytes, under plain RESP load (`hbft load` to the guest's address); a partition,
// the takeover, the heal, and the survivor's full synchronisation of the restarted node. Prints
// the survivor's steps of the re-protection, its event-loop and heartbeat-thread stalls from "full
// synchronisation started" to "synchronised" (and the largest), and the stall the clients saw
// meanwhile, with the checker's verdict on their history.
// Usage (root, under the cluster lock): npx tsx scripts/reprotect-stall-probe.ts [MEMORY] [VALUES]
// PROF_DIR=DIR adds --cpu-prof to the daemons.
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { Lan, loggedAtMs } from '../test/helpers/lan.ts';
import { roles } from '../test/helpers/nemesis.ts';
import { Pair } from '../test/helpers/pair.ts';
import { describeMarkStalls, fillGuest, historyMsAt, PlainLoad, stallsWithin } from '../test/helpers/plainLoad.ts';

const MEMORY = process.argv[2] ?? '64MiB';
const VALUES = Number(process.argv[3] ?? 5_600);
const VALUE_BYTES = 3_800;
const SYNC_STARTED = /backup connected: full synchronisation started/;
const SYNCHRONISED = /backup synchronised: the guest is protected/;

const lan = await Lan.create('probe', '10.77.17', ['a', 'b']);
let pair: Pair | undefined;
let load: PlainLoad | undefined;
try {
  const link = await lan.linkToHost('10.78.17');
  pair = await Pair.start({
    ...lan.kvnetPairOptions(link, MEMORY),
    nodeArgs: process.env.PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF_DIR}`] : [],
  });
  const fillStartedMs = performance.now();
  await fillGuest(lan, VALUES, VALUE_BYTES);
  console.log(`filled the guest with ${VALUES} values of ${VALUE_BYTES} bytes in ${(performance.now() - fillStartedMs).toFixed(0)} ms`);
  load = await PlainLoad.start(lan, { seed: 7, keyPrefix: `probe${Date.now().toString(36)}` });
  await pair.waitUntil('the load is served', load.served(50), 20_000);
  // Whoever is the primary now (a busy machine may have moved it already) is partitioned away.
  const current = await roles(pair);
  if (current === null) throw new Error('no primary serves');
  const generation = Number((await pair.readiness(current.primary))?.body.generation);
  console.log(`partition: site ${current.primary.name} is the primary of generation ${generation}`);
  await pair.partition();
  load.mark();
  await pair.waitPrimary(current.backup, generation + 1);
  await pair.heal();
  try {
    await pair.waitProtected(current.primary, 60_000);
  } catch {
    console.log(`site ${current.primary.name} was not protected within 60 s`);
  }
  await pair.waitUntil('the load is served after the re-protection', load.served(50), 30_000);
  const { verdict, history } = await load.finish();
  const run = current.backup.runs.at(-1);
  if (run === undefined) throw new Error(`site ${current.backup.name} never ran`);
  // Its log from its takeover on.
  const takeover = run.log.findLastIndex((line) => /PRIMARY FAILED/.test(line));
  const survivor = { ...run, log: run.log.slice(Math.max(0, takeover)) };
  console.log(formatVerdict(verdict));
  for (const line of describeMarkStalls(verdict)) console.log(line);
  console.log(`survivor (site ${current.backup.name}) exit ${survivor.child.exitCode ?? 'running'}, pid ${survivor.child.pid}`);
  let inSync = false;
  let stallMsMax = 0;
  for (const line of survivor.log) {
    if (SYNC_STARTED.test(line)) inSync = true;
    if (/full synchronisation (started|sent|interrupted)|backup synchronised|first checkpoint|backup lost|PRIMARY FAILED/.test(line))
      console.log(line.slice(0, 240));
    const stall = /"stallMs":(\d+)/.exec(line);
    if (stall && inSync) {
      stallMsMax = Math.max(stallMsMax, Number(stall[1]));
      console.log(`  stall ${stall[1]} ms: ${/"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 120)}`);
    }
    if (SYNCHRONISED.test(line)) inSync = false;
  }
  console.log(`largest stall of the survivor during the re-protection: ${stallMsMax} ms`);
  const startedMs = loggedAtMs(survivor.log, SYNC_STARTED);
  const doneMs = loggedAtMs(survivor.log, SYNCHRONISED);
  if (startedMs !== undefined && doneMs !== undefined) {
    const fromMs = historyMsAt(history, startedMs);
    const toMs = historyMsAt(history, doneMs);
    const clients = stallsWithin(history.operations, fromMs, toMs);
    console.log(
      `clients during the re-protection (${(toMs - fromMs).toFixed(0)} ms): ${clients.repliesWithin} replies; each client's longest wait for a reply ` +
        `overlapping it p50 ${clients.gapMsP50.toFixed(0)} ms, max ${clients.gapMsMax.toFixed(0)} ms (${clients.clients} clients)`,
    );
  }
} finally {
  load?.kill();
  await pair?.stop();
  await lan.destroy();
}
