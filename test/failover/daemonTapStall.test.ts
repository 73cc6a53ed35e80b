// Proves that a client's stall across kill -9 of the primary stays under a second when the daemons
// make their own TAPs (`--tap` of a device that does not exist), so the dead primary's bridge port
// goes with it. The primary's TAP is given the lowest MAC on the bridge, the draw that made about
// half of such kills stall every client for 5-10 s: a bridge without a MAC of its own takes its
// ports' lowest and changes it when that port goes, while the guest's ARP cache still holds the old
// one for the client's address (fixed by the bridge keeping its MAC; see test/helpers/lan.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lan, type LanNode } from '../helpers/lan.ts';
import { describeMarkStalls, PlainLoad } from '../helpers/plainLoad.ts';
import { testSeed } from '../helpers/seed.ts';

const STALL_MS_MAX = 1_000;
/** Below any MAC the kernel gives a TAP (locally administered, random), so this port is the bridge's lowest. */
const LOWEST_MAC = '02:00:00:00:00:01';

test('daemon-made TAPs: the stall across a kill of the primary whose TAP held the lowest MAC is under a second', async (t) => {
  const seed = testSeed();
  const lan = await Lan.create('dtap', '10.77.31', []);
  const nodes: LanNode[] = [];
  let load: PlainLoad | undefined;
  t.after(async () => {
    load?.kill();
    for (const node of nodes) await node.stop();
    await lan.destroy();
  });
  const key = join(mkdtempSync(join(tmpdir(), 'hbft-dtap-')), 'key');
  writeFileSync(key, 'daemon-tap-stall-test-key-0123456789\n');
  const flags = (node: string, http: string) => [
    ...lan.kvnetNodeFlags(node, { keyFile: key, memory: '64MiB', http }),
    '--heartbeat-ms',
    '30',
    '--failover-timeout-ms',
    '300',
  ];
  const backup = lan.startNode('backup', ['backup', ...flags('b', '127.0.0.1:9182'), '--listen', '127.0.0.1:7000']);
  nodes.push(backup);
  await lan.bridgeDaemonTap(Lan.tapOf('b'), backup);
  await backup.waitForLog(/waiting for a primary/, 30_000);
  const primary = lan.startNode('primary', ['primary', ...flags('a', '127.0.0.1:9181'), '--backup', '127.0.0.1:7000']);
  nodes.push(primary);
  await lan.bridgeDaemonTap(Lan.tapOf('a'), primary, LOWEST_MAC);
  await primary.waitForLog(/the guest is protected/, 60_000);
  const bridgeMacBefore = await lan.bridgeMac();

  load = await PlainLoad.start(lan, { seed, keyPrefix: `dtap${seed}`, clients: 4, keys: 4 });
  await waitFor(load.served(50), 20_000, 'the load before the kill');
  primary.kill();
  load.mark();
  await primary.exited;
  await backup.waitForLog(/announced the guest/, 10_000);
  await waitFor(load.served(50), 20_000, 'the load after the kill');
  const bridgeMacAfter = await lan.bridgeMac();
  const result = await load.finish();
  const stalls = describeMarkStalls(result.verdict);
  console.log(`seed ${seed}; bridge MAC ${bridgeMacBefore} before the kill, ${bridgeMacAfter} after; ${stalls.join('; ')}`);

  assert.equal(bridgeMacAfter, bridgeMacBefore, "the bridge's MAC stayed when the dead primary's port went");
  assert.equal(result.code, 0, result.output);
  assert.equal(result.verdict.ok, true, `seed ${seed}: ${JSON.stringify(result.verdict.violationCounts)}`);
  const [mark] = result.verdict.stalls.marks;
  assert.ok(mark, 'the kill was marked');
  assert.equal(mark.clientsWithoutReply, 0, stalls.join('\n'));
  assert.ok(
    mark.gapMsMax < STALL_MS_MAX,
    `seed ${seed}: a client stalled ${mark.gapMsMax.toFixed(0)} ms across the kill (limit ${STALL_MS_MAX})`,
  );
});

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    assert.ok(performance.now() < deadline, `${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
