// Proves, with a real primary and backup and a man in the middle on their replication link, that the link is sealed: a passive capture of both channels does not contain a value a client SET (while an --insecure run does, so the check can fail), a forged ACK is refused with E_FRAME_SEAL before it releases any output, and an altered page is refused and never applied.
// Starts daemons: run under the cluster lock (flock /tmp/hbft-cluster.lock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { SeededRandom } from '@hbft/common/random.ts';
import { Cluster, type ClusterOptions } from '../helpers/cluster.ts';
import { testSeed } from '../helpers/seed.ts';
import { ReplicationTap } from '../helpers/replicationTap.ts';

/**
 * A failover timeout long enough that the backup does not take over while the primary reconnects
 * after an attack, nor because the shared machine is busy (these tests are not about failure detection).
 */
const patientTiming = ['--heartbeat-ms', '50', '--failover-timeout-ms', '3000'];

/** One command on a plain RESP connection; resolves with the reply's bytes (simple, error, integer or bulk). */
async function command(port: number, args: string[]): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  let reply = '';
  for await (const chunk of socket) {
    reply += (chunk as Buffer).toString('latin1');
    const lineEnd = reply.indexOf('\r\n');
    if (lineEnd < 0) continue;
    if (reply[0] !== '$') break;
    const length = Number(reply.slice(1, lineEnd));
    if (length < 0 || reply.length >= lineEnd + 2 + length + 2) break;
  }
  socket.destroy();
  return reply;
}

function randomValue(random: SeededRandom): string {
  return Array.from({ length: 48 }, () => '0123456789abcdef'[random.below(16)]).join('');
}

async function tappedCluster(options: ClusterOptions = {}): Promise<{ cluster: Cluster; tap: ReplicationTap }> {
  let tap: ReplicationTap | undefined;
  const cluster = await Cluster.start({
    ...options,
    replicationVia: async (port) => {
      tap = await ReplicationTap.start(port);
      return tap.port;
    },
  });
  return { cluster, tap: tap! };
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
    const { cluster, tap } = await tappedCluster({
      insecure,
      primaryArgs: [...patientTiming, '--delta-cache-pages', '0'],
      backupArgs: patientTiming,
    });
    try {
      await cluster.waitProtected();
      // Output commit: the reply is released only once the backup has acknowledged the checkpoint
      // that holds the write, so by then the value has crossed the link.
      assert.equal(await command(cluster.ports.primaryServe, ['SET', key, value]), '+OK\r\n');
      assert.equal(await command(cluster.ports.primaryServe, ['GET', key]), `$${value.length}\r\n${value}\r\n`);
      const bulk = tap.captured('bulk');
      const control = tap.captured('control');
      assert.ok(
        bulk.length > 0 && control.length > 0,
        `both channels went through the tap (bulk ${bulk.length} B, control ${control.length} B)`,
      );
      const everything = Buffer.concat([bulk, control]);
      t.diagnostic(`captured ${bulk.length} bulk and ${control.length} control bytes`);
      if (insecure) {
        assert.ok(everything.includes(value), `the plaintext link shows the value (so the sealed run's check can fail)\n${cluster.logs()}`);
      } else {
        assert.equal(bulk.indexOf(value), -1, 'the value is not on the bulk channel');
        assert.equal(control.indexOf(value), -1, 'the value is not on the control channel');
        assert.equal(everything.indexOf(value.slice(0, 12)), -1, 'nor any 12 characters of it');
        assert.equal(everything.indexOf(key), -1, 'nor the key');
      }
    } finally {
      await cluster.stop();
      await tap.close();
    }
  });
}

test('a forged ACK injected on the control channel is refused with E_FRAME_SEAL, and no output is released on it', {
  timeout: 90_000,
}, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const value = randomValue(new SeededRandom(seed));
  const { cluster, tap } = await tappedCluster({ primaryArgs: patientTiming, backupArgs: patientTiming });
  try {
    await cluster.waitProtected();
    const order: string[] = [];
    tap.once('attackedControlClosedByPrimary', () => order.push('primary closed the attacked connection'));
    const attacked = once(tap, 'attacked');
    // From here on the backup's real ACKs never reach the primary on this connection: only the
    // forged one (for epoch 2^40) does. A reply released before the primary drops the connection
    // was released on the forgery.
    tap.forgeAck();
    const [description] = await attacked;
    t.diagnostic(description as string);
    const reply = await command(cluster.ports.primaryServe, ['SET', `forged-${seed}`, value]);
    order.push('reply released');
    assert.equal(reply, '+OK\r\n');
    assert.deepEqual(order, ['primary closed the attacked connection', 'reply released'], `no output on the forged ACK\n${cluster.logs()}`);
    const refusal = cluster.primary.log.find((line) => line.includes('backup lost') && line.includes('E_FRAME_SEAL'));
    assert.ok(refusal, `the primary logs why it dropped the backup (the forged frame's seal)\n${cluster.logs()}`);
    assert.match(refusal, /ACK \(sealed frame \d+ of this connection\) does not authenticate/);
  } finally {
    await cluster.stop();
    await tap.close();
  }
});

test('a PAGES frame altered on the bulk channel is refused with E_FRAME_SEAL and never applied: after a takeover the value reads back as written', {
  timeout: 120_000,
}, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const value = randomValue(new SeededRandom(seed));
  const key = `altered-${seed}`;
  const { cluster, tap } = await tappedCluster({ primaryArgs: patientTiming, backupArgs: patientTiming });
  try {
    await cluster.waitProtected();
    const attacked = once(tap, 'attacked');
    // The next PAGES frame is changed: at the value when it can be seen, else in its last byte; an
    // unsealed frame gets its CRC recomputed, so only a MAC can tell.
    tap.alterPages(Buffer.from(value));
    assert.equal(await command(cluster.ports.primaryServe, ['SET', key, value]), '+OK\r\n');
    const [description] = await attacked;
    t.diagnostic(description as string);
    // The reply above means the backup acknowledged a checkpoint holding the write (after the
    // primary reconnected and resynchronised). Take over from it and read the value back.
    cluster.killPrimary();
    await cluster.waitFor(
      cluster.ports.backupHttp,
      '/readyz',
      (status, body) => status === 200 && body.includes('"role":"primary"'),
      30_000,
      cluster.backup,
    );
    assert.equal(
      await command(cluster.ports.backupServe, ['GET', key]),
      `$${value.length}\r\n${value}\r\n`,
      `the value as written\n${cluster.logs()}`,
    );
    const refusal = cluster.backup.log.find((line) => line.includes('bulk connection closed') && line.includes('E_FRAME_SEAL'));
    assert.ok(refusal, `the backup logs why it closed the bulk channel\n${cluster.logs()}`);
    assert.match(refusal, /CHECKPOINT_PAGES \(sealed frame \d+ of this connection\) does not authenticate/);
  } finally {
    await cluster.stop();
    await tap.close();
  }
});
