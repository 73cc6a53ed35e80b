// Proves, with a real primary and backup and a man in the middle on their replication link, that the link is sealed. The kvnet guest on TAPs, with one plain redis-cli connection to the guest's own address: a passive capture of both channels does not contain a value the client SET (while an --insecure run does, so the check can fail), a forged ACK is refused with E_FRAME_SEAL before it releases any output, and an altered page is refused and never applied.
// Starts daemons, namespaces and TAPs: run under the cluster lock (flock /tmp/hbft-cluster.lock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { SeededRandom } from '@hbft/common/random.ts';
import { testSeed } from '../helpers/seed.ts';
import { ReplicationTap } from '../helpers/replicationTap.ts';
import { startKvnetPair } from '../helpers/kvnetPair.ts';
import type { Lan } from '../helpers/lan.ts';
import type { Pair, PairOptions } from '../helpers/pair.ts';
import { InteractiveRedisCli } from '../deploy/redisCli.ts';

/**
 * A failover timeout long enough that the backup does not take over while the primary reconnects
 * after an attack, nor because the shared machine is busy (these tests are not about failure detection).
 */
const patientTiming = { heartbeatMs: 50, failoverTimeoutMs: 3000 };

function randomValue(random: SeededRandom): string {
  return Array.from({ length: 48 }, () => '0123456789abcdef'[random.below(16)]).join('');
}

/**
 * The kvnet pair with the tap on the link from site a (the primary) to site b (the backup), and
 * one redis-cli connection to the guest, kept open (its replies come back one line each).
 */
async function tappedPair(
  name: string,
  subnet: number,
  options: Pick<PairOptions, 'insecure' | 'args'> = {},
): Promise<{ lan: Lan; pair: Pair; tap: ReplicationTap; cli: InteractiveRedisCli }> {
  let tap: ReplicationTap | undefined;
  const { lan, pair } = await startKvnetPair(name, subnet, {
    ...patientTiming,
    ...options,
    upstreamVia: async (site, upstream) => {
      if (site === 'a') return upstream;
      tap = await ReplicationTap.start(upstream.port, upstream.host);
      return { host: '127.0.0.1', port: tap.port };
    },
  });
  const cli = new InteractiveRedisCli(['ip', 'netns', 'exec', lan.namespace, 'redis-cli', '-h', lan.guestIp]);
  return { lan, pair, tap: tap!, cli };
}

async function stopAll({ lan, pair, tap, cli }: Partial<Awaited<ReturnType<typeof tappedPair>>>): Promise<void> {
  cli?.close();
  await pair?.stop();
  await tap?.close();
  await lan?.destroy();
}

for (const insecure of [false, true]) {
  const title = insecure
    ? 'control: with --insecure a passive capture of the link does contain the value a client SET'
    : 'a passive capture of both replication channels does not contain the value a client SET';
  test(title, { timeout: 90_000 }, async (t) => {
    const seed = testSeed();
    t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
    const value = randomValue(new SeededRandom(seed));
    const key = `capture-${seed}`;
    // No XOR deltas: every dirty page crosses the link whole, so the plaintext run always shows
    // the value (a delta against reused memory would hide it) and the sealed run hides raw pages.
    const setup = await tappedPair(insecure ? 'sealoff' : 'sealon', insecure ? 31 : 30, { insecure, args: ['--delta-cache-pages', '0'] });
    const { pair, tap, cli } = setup;
    try {
      // Output commit: the reply is released only once the backup has acknowledged the checkpoint
      // that holds the write, so by then the value has crossed the link.
      assert.equal(await cli.send(`SET ${key} ${value}`), 'OK', cli.transcript);
      assert.equal(await cli.send(`GET ${key}`), value, cli.transcript);
      const bulk = tap.captured('bulk');
      const control = tap.captured('control');
      assert.ok(
        bulk.length > 0 && control.length > 0,
        `both channels went through the tap (bulk ${bulk.length} B, control ${control.length} B)`,
      );
      const everything = Buffer.concat([bulk, control, tap.captured('heartbeat')]);
      t.diagnostic(`captured ${bulk.length} bulk and ${control.length} control bytes`);
      if (insecure) {
        assert.ok(everything.includes(value), `the plaintext link shows the value (so the sealed run's check can fail)\n${pair.logs()}`);
      } else {
        assert.equal(bulk.indexOf(value), -1, 'the value is not on the bulk channel');
        assert.equal(control.indexOf(value), -1, 'the value is not on the control channel');
        assert.equal(everything.indexOf(value.slice(0, 12)), -1, 'nor any 12 characters of it');
        assert.equal(everything.indexOf(key), -1, 'nor the key');
      }
    } finally {
      await stopAll(setup);
    }
  });
}

test('a forged ACK injected on the control channel is refused with E_FRAME_SEAL, and no output is released on it', {
  timeout: 90_000,
}, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const value = randomValue(new SeededRandom(seed));
  const setup = await tappedPair('sealack', 32);
  const { pair, tap, cli } = setup;
  try {
    // The connection is open before the attack, so that only the SET's reply is held after it.
    assert.equal(await cli.send('PING'), 'PONG', cli.transcript);
    const order: string[] = [];
    tap.once('attackedControlClosedByPrimary', () => order.push('primary closed the attacked connection'));
    const attacked = once(tap, 'attacked');
    // From here on the backup's real ACKs never reach the primary on this connection: only the
    // forged one (for epoch 2^40) does. A reply released before the primary drops the connection
    // was released on the forgery.
    tap.forgeAck();
    const [description] = await attacked;
    t.diagnostic(description as string);
    const reply = await cli.send(`SET forged-${seed} ${value}`);
    order.push('reply released');
    assert.equal(reply, 'OK', cli.transcript);
    assert.deepEqual(order, ['primary closed the attacked connection', 'reply released'], `no output on the forged ACK\n${pair.logs()}`);
    const refusal = pair.sites.a.runs[0]!.log.find((line) => line.includes('backup lost') && line.includes('E_FRAME_SEAL'));
    assert.ok(refusal, `the primary logs why it dropped the backup (the forged frame's seal)\n${pair.logs()}`);
    assert.match(refusal, /ACK \(sealed frame \d+ of this connection\) does not authenticate/);
  } finally {
    await stopAll(setup);
  }
});

test('a PAGES frame altered on the bulk channel is refused with E_FRAME_SEAL and never applied: after a takeover the value reads back as written', {
  timeout: 120_000,
}, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const value = randomValue(new SeededRandom(seed));
  const key = `altered-${seed}`;
  const setup = await tappedPair('sealpages', 33);
  const { pair, tap, cli } = setup;
  try {
    assert.equal(await cli.send('PING'), 'PONG', cli.transcript);
    const attacked = once(tap, 'attacked');
    // The next PAGES frame is changed: at the value when it can be seen, else in its last byte; an
    // unsealed frame gets its CRC recomputed, so only a MAC can tell.
    tap.alterPages(Buffer.from(value));
    assert.equal(await cli.send(`SET ${key} ${value}`), 'OK', cli.transcript);
    const [description] = await attacked;
    t.diagnostic(description as string);
    // The reply above means the backup acknowledged a checkpoint holding the write (after the
    // primary reconnected and resynchronised). Take over from it and read the value back, on the
    // same connection: the guest's address moved to the backup with the guest.
    pair.kill(pair.sites.a);
    await pair.waitPrimary(pair.sites.b, 2, 30_000);
    assert.equal(await cli.send(`GET ${key}`), value, `the value as written\n${cli.transcript}\n${pair.logs()}`);
    const refusal = pair.sites.b.runs[0]!.log.find((line) => line.includes('bulk connection closed') && line.includes('E_FRAME_SEAL'));
    assert.ok(refusal, `the backup logs why it closed the bulk channel\n${pair.logs()}`);
    assert.match(refusal, /CHECKPOINT_PAGES \(sealed frame \d+ of this connection\) does not authenticate/);
  } finally {
    await stopAll(setup);
  }
});
