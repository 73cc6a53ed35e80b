// Proves failover end to end with real processes and unmodified clients: the kvnet guest (its own
// TCP/IP) protected by a pair on TAPs in a network namespace, plain RESP clients (`hbft
// load` to the guest's address, Jepsen style: a request whose reply never came is
// indeterminate), and kill -9 of the primary at a seeded random moment. The backup takes over and
// is the primary of generation 2; the checker, run on the recorded history, finds no acknowledged
// write lost, none applied twice, and every counter within its acknowledged and indeterminate
// increments; every client is answered after the kill. It prints the stall clients saw across the
// kill. HBFT_SEED replays an iteration; HBFT_SOAK=1 runs 20 of them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { SeededRandom } from '@hbft/common/random.ts';
import { Lan } from '../helpers/lan.ts';
import { Pair } from '../helpers/pair.ts';
import { describeMarkStalls, PlainLoad } from '../helpers/plainLoad.ts';
import { testSeed } from '../helpers/seed.ts';

const ITERATIONS = process.env.HBFT_SOAK ? 20 : 3;
const CLIENTS = 4;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// One LAN for the file: each iteration starts a fresh pair (a fresh guest) on the same TAPs.
let lan: Lan;
let link: { hostIp: string; namespaceIp: string };
before(async () => {
  lan = await Lan.create('kill', '10.77.15', ['a', 'b']);
  link = await lan.linkToHost('10.78.15');
});
after(async () => {
  await lan?.destroy();
});

for (let iteration = 0; iteration < ITERATIONS; iteration++) {
  test(`kill -9 of the kvnet primary under plain RESP load loses and duplicates nothing (${iteration + 1}/${ITERATIONS})`, {
    timeout: 90_000,
  }, async (t) => {
    const seed = testSeed();
    const random = new SeededRandom(seed);
    const killAfterMs = 200 + random.below(1_500);
    t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed}); kill ${killAfterMs} ms after the load is served`);
    const startedMs = performance.now();
    const pair = await Pair.start(lan.kvnetPairOptions(link));
    const { a, b } = pair.sites;
    let load: PlainLoad | undefined;
    try {
      // Ends with the daemons' logs before the test's own timeout would end it without them.
      await pair.within(80_000 - (performance.now() - startedMs), async () => {
        load = await PlainLoad.start(lan, { seed, keyPrefix: `kill${seed}`, clients: CLIENTS });
        await pair.waitUntil('the load is served', load.served(50), 20_000);
        await sleep(killAfterMs);
        pair.kill(a);
        load.mark();
        await pair.waitPrimary(b, 2);
        // Served by the survivor (the killed site comes back as its backup meanwhile).
        await pair.waitUntil('the load is served after the takeover', load.served(100), 30_000);
        const survivor = await pair.readiness(b);
        const { code, verdict, output } = await load.finish();

        t.diagnostic(
          `${verdict.checked.operations} operations checked (${verdict.stats.ok} ok, ${verdict.stats.unknown} indeterminate); ${verdict.reconnects} reconnections`,
        );
        for (const line of describeMarkStalls(verdict)) t.diagnostic(line);
        assert.ok(verdict.ok, formatVerdict(verdict));
        assert.equal(code, 0, `hbft load's own verdict and exit:\n${output}`);
        assert.ok(verdict.checked.increments > 0 && verdict.checked.writes > 0, 'the load did work');
        assert.equal(survivor?.body.role, 'primary', 'the backup took over');
        assert.equal(survivor?.body.generation, 2, 'as the primary of generation 2');
        const [kill] = verdict.stalls.marks;
        assert.ok(kill, 'the kill is marked in the history');
        assert.equal(kill.clients, CLIENTS, `every client was answered after the kill (${kill.clientsWithoutReply} were not)`);
      });
    } finally {
      load?.kill();
      await pair.stop();
    }
  });
}
