// Proves the two-host topology of scripts/two-hosts.sh: node hosts, whose bridge holds their
// address and the guest's persistent TAP, share a client LAN with the client; the protected kvnet
// guest is reached at its own address by one interactive redis-cli connection that keeps being
// answered, with the data, when cutting the replication link makes the backup take over and when
// the next primary is killed with kill -9; the deposed primary gives up once the link is back, a
// restarted node rejoins as the new backup, and down leaves no namespace behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, runScript, type ScriptResult } from './runScript.ts';
import { InteractiveRedisCli } from './redisCli.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

// Unique per run, and recognisable: a run that died before its `down` is swept by the next one.
const PREFIX = `hbft-t${process.pid.toString(36)}`;
const STALE = /^hbft-t([0-9a-z]+)-(?:primary|backup|client|chaos|sw)\b/;

/** Takes down the namespaces of earlier runs whose test process is gone. */
async function sweepStaleRuns(): Promise<string[]> {
  const listed = await runCommand('ip', ['netns', 'list']);
  const prefixes = new Set<string>();
  for (const line of listed.stdout.split('\n')) {
    const match = STALE.exec(line);
    if (match && !isAlive(parseInt(match[1]!, 36))) prefixes.add(`hbft-t${match[1]}`);
  }
  for (const prefix of prefixes) await runScript('two-hosts.sh', ['down'], { HBFT_NETNS_PREFIX: prefix, HBFT_STATE_DIR: tmpdir() });
  return [...prefixes];
}
const PRIMARY = { front: '10.77.0.1', http: '10.77.0.1:9100' };
const BACKUP = { front: '10.77.0.2', http: '10.77.0.2:9101' };
/** The guest's own address on the client LAN, wherever it runs. */
const GUEST = '10.77.0.10';

test('two hosts in network namespaces: replication, cut link, takeover, rejoin, kill -9, teardown', { timeout: 150_000 }, async (t) => {
  assert.equal(
    process.getuid?.(),
    0,
    'this test needs root: scripts/two-hosts.sh makes network namespaces and veth links (CI runs as root; run the tests as root or with sudo)',
  );
  const swept = await sweepStaleRuns();
  if (swept.length > 0) t.diagnostic(`took down namespaces left by earlier runs: ${swept.join(', ')}`);
  const stateDir = mkdtempSync(join(tmpdir(), 'hbft-two-hosts-'));
  const env = {
    HBFT_NETNS_PREFIX: PREFIX,
    HBFT_STATE_DIR: stateDir,
    HBFT_MEMORY: '32MiB',
    // Generous: the test shares two cores with other tests, and a stall longer than the failover
    // timeout would be a takeover nobody asked for.
    HBFT_HEARTBEAT_MS: '50',
    HBFT_FAILOVER_TIMEOUT_MS: '1000',
  };
  const twoHosts = async (...args: string[]): Promise<ScriptResult> => {
    const result = await runScript('two-hosts.sh', args, env);
    t.diagnostic(`two-hosts.sh ${args.join(' ')} → exit ${result.code}`);
    return result;
  };
  const inClient = (...args: string[]) => runCommand('ip', ['netns', 'exec', `${PREFIX}-client`, ...args], { timeoutMs: 30_000 });
  const readyz = async (http: string): Promise<Record<string, unknown> | null> => {
    const result = await inClient('curl', '-sS', '--max-time', '2', `http://${http}/readyz`);
    try {
      return JSON.parse(result.stdout) as Record<string, unknown>;
    } catch {
      return null;
    }
  };
  const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000) => {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`timed out waiting until ${what}\n${logs()}`);
  };
  const logs = () =>
    ['primary', 'backup', 'chaos']
      .map((node) => {
        try {
          return `--- ${node} ---\n${readFileSync(join(stateDir, `netns-${PREFIX}`, `${node}.log`), 'utf8')
            .split('\n')
            .slice(-15)
            .join('\n')}`;
        } catch {
          return `--- ${node}: no log ---`;
        }
      })
      .join('\n');
  const clientNs = (argv: string[]) => ['ip', 'netns', 'exec', `${PREFIX}-client`, ...argv];
  const clis: InteractiveRedisCli[] = [];

  try {
    // up is idempotent and gives each node its own address.
    for (let round = 0; round < 2; round++) {
      const up = await twoHosts('up');
      assert.equal(up.code, 0, up.output);
    }
    const status = await twoHosts('status');
    assert.equal(status.code, 0, status.output);
    // A node's bridge has its MAC set (topology.ts), and the kernel then reports its operstate as
    // UNKNOWN, not UP, while it forwards (as it does for lo).
    assert.match(status.stdout, /primary \(\S+-primary\): front0 (?:UP|UNKNOWN) 10\.77\.0\.1\/24 +repl0 UP 10\.77\.1\.1\/24/);
    assert.match(status.stdout, /backup \(\S+-backup\): front0 (?:UP|UNKNOWN) 10\.77\.0\.2\/24 +repl0 UP 10\.77\.1\.2\/24/);
    assert.match(status.stdout, /client \(\S+-client\): front0 UP 10\.77\.0\.3\/24/);
    assert.equal(
      status.stdout.match(/guest TAP hbft0: master front0, no node attached/g)?.length,
      2,
      `each node host has the guest's TAP on its bridge:\n${status.stdout}`,
    );
    const ports = await twoHosts('exec', 'backup', 'ip', '-br', 'link', 'show', 'master', 'front0');
    assert.match(ports.stdout, /^uplink0@\S+ +UP/m, "the node's uplink to the LAN is a port of its bridge");
    const inNamespace = await twoHosts('exec', 'client', 'ip', '-4', '-br', 'addr', 'show', 'front0');
    assert.match(inNamespace.stdout, /10\.77\.0\.3\/24/, "exec runs inside the node's namespace");

    // start: chaos proxy, backup, primary; it returns once the pair is protected.
    const start = await twoHosts('start');
    assert.equal(start.code, 0, `${start.output}\n${logs()}`);
    const backupReady = await readyz(BACKUP.http);
    assert.equal(backupReady?.role, 'backup');
    assert.equal(backupReady?.ready, true, 'the backup holds a checkpoint, reached from the client across the LAN switch');
    assert.equal(backupReady?.peerConnected, true);
    const primaryReady = await readyz(PRIMARY.http);
    assert.equal(primaryReady?.role, 'primary');
    assert.equal(primaryReady?.generation, 1);

    // One redis-cli, one connection to the guest's own address, kept open through everything below.
    const cli = new InteractiveRedisCli(['ip', 'netns', 'exec', `${PREFIX}-client`, 'redis-cli', '-h', GUEST]);
    clis.push(cli);
    assert.equal(await cli.send('SET two-hosts replicated'), 'OK', cli.transcript);
    assert.equal(await cli.send('INCR visits'), '1');
    const connection = await cli.connections(clientNs);
    assert.equal(connection.length, 1, `redis-cli holds one connection: ${connection.join(', ')}`);
    assert.match(connection[0]!, new RegExp(`^10\\.77\\.0\\.3:\\d+ ${GUEST.replaceAll('.', '\\.')}:6379$`));

    // Cut the primary's replication link: the backup hears nothing, takes over and announces the
    // guest from its own TAP; the client's connection goes on.
    const cut = await twoHosts('cut');
    assert.equal(cut.code, 0, cut.output);
    await waitFor('the backup runs as primary at generation 2', async () => {
      const state = await readyz(BACKUP.http);
      return state?.role === 'primary' && state.generation === 2 && state.ready === true;
    });
    assert.equal(
      await cli.send('GET two-hosts'),
      'replicated',
      `the guest kept the data through the takeover\n${cli.transcript}\n${logs()}`,
    );
    assert.equal(await cli.send('INCR visits'), '2');
    assert.deepEqual(await cli.connections(clientNs), connection, 'the same TCP connection, not a new one');

    // Restore: the old primary reaches the backup again, learns it was deposed and stops.
    const restore = await twoHosts('restore');
    assert.equal(restore.code, 0, restore.output);
    const deposedPid = Number(readFileSync(join(stateDir, `netns-${PREFIX}`, 'primary.pid'), 'utf8'));
    await waitFor('the deposed primary has exited', async () => !isAlive(deposedPid));
    assert.match(readFileSync(join(stateDir, `netns-${PREFIX}`, 'primary.log'), 'utf8'), /DEPOSED/);

    // start again: the dead primary slot rejoins as the backup of the new primary, on the TAP
    // that stayed on its bridge.
    const rejoin = await twoHosts('start');
    assert.equal(rejoin.code, 0, `${rejoin.output}\n${logs()}`);
    assert.match(rejoin.stdout, /backup: already running/);
    const rejoined = await readyz(PRIMARY.http);
    assert.equal(rejoined?.role, 'backup', 'the old primary came back as a backup');
    assert.equal(rejoined?.ready, true);
    const promoted = await readyz(BACKUP.http);
    assert.equal(promoted?.peerConnected, true, 'the promoted node is protected again');

    // kill -9 of whichever node is primary now (the backup slot): the rejoined node takes over and
    // the same connection is answered.
    const victim = Number(readFileSync(join(stateDir, `netns-${PREFIX}`, 'backup.pid'), 'utf8'));
    process.kill(victim, 'SIGKILL');
    t.diagnostic(`kill -9 ${victim} (the backup slot, primary at generation 2)`);
    assert.equal(await cli.send('INCR visits'), '3', `answered on the same connection after kill -9\n${cli.transcript}\n${logs()}`);
    assert.deepEqual(await cli.connections(clientNs), connection, 'still the same TCP connection after kill -9');
    const afterKill = await readyz(PRIMARY.http);
    assert.equal(afterKill?.role, 'primary');
    assert.equal(afterKill?.generation, 3);
    const again = await twoHosts('start');
    assert.equal(again.code, 0, `the killed node rejoins as the new backup: ${again.output}\n${logs()}`);
    assert.equal((await readyz(PRIMARY.http))?.peerConnected, true, 'protected again');
    assert.equal(await cli.send('GET two-hosts'), 'replicated', 'the data survived two takeovers');
  } finally {
    for (const cli of clis) cli.close();
    const down = await twoHosts('down');
    const left = await runCommand('ip', ['netns', 'list']);
    rmSync(stateDir, { recursive: true, force: true });
    assert.equal(down.code, 0, down.output);
    assert.doesNotMatch(left.stdout, new RegExp(`^${PREFIX}-`, 'm'), 'down removes every namespace of the run');
  }
});
