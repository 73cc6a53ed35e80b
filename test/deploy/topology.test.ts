// Proves the namespace topology of netns/topology.ts and the forwarder of netns/forward.ts: the
// guest on a node's persistent TAP is reached at its own address from the client's namespace and
// from 127.0.0.1 on the host through a Unix socket, a guest process started again on the same node
// is on the same bridge port at once, and down leaves no namespace and no process behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, REPO, runCommand } from './runScript.ts';
import {
  FRONT_ADDRESS,
  FRONT_LINK,
  GUEST_ADDRESS,
  GUEST_TAP,
  NetnsTopology,
  namespaceExists,
} from '../../packages/cli/src/netns/topology.ts';
import { forwardTcpToUnix } from '../../packages/cli/src/netns/forward.ts';

const PREFIX = `hbft-o${process.pid.toString(36)}`;

/** A process in a node's namespace, its output collected. */
function spawnIn(
  topology: NetnsTopology,
  node: 'primary' | 'backup' | 'client',
  argv: string[],
): { child: ChildProcess; log: () => string } {
  const [command, ...args] = topology.execArgv(node, argv);
  const child = spawn(command!, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (chunk: Buffer) => (log += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk));
  return { child, log: () => log };
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  assert.fail(`timed out waiting until ${what}`);
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

test('the guest on a node TAP is reached from the client namespace and through the host forwarder; down removes everything', {
  timeout: 180_000,
}, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root: it makes network namespaces, bridges and TAP devices (CI runs as root)');
  const topology = new NetnsTopology(PREFIX);
  const dir = mkdtempSync(join(tmpdir(), 'hbft-topology-'));
  const socket = join(dir, 'guest.sock');
  const guest = () =>
    spawnIn(topology, 'primary', [
      process.execPath,
      CLI,
      'run',
      'kvnet',
      '--tap',
      GUEST_TAP,
      '--guest-ip',
      `${GUEST_ADDRESS}/24`,
      '--memory',
      '32MiB',
    ]);
  let host: Awaited<ReturnType<typeof forwardTcpToUnix>> | undefined;
  try {
    topology.up();
    topology.up(); // idempotent
    const bridge = await runCommand('ip', ['-n', topology.namespace('primary'), '-br', 'addr', 'show', FRONT_LINK]);
    assert.match(
      bridge.stdout,
      new RegExp(`${FRONT_ADDRESS.primary.replaceAll('.', '\\.')}/24`),
      "the node's host address is on its bridge",
    );
    const ports = await runCommand('ip', ['-n', topology.namespace('primary'), '-br', 'link', 'show', 'master', FRONT_LINK]);
    assert.match(ports.stdout, /^uplink0@/m, 'the uplink to the LAN is a port of the node bridge');
    assert.match(ports.stdout, new RegExp(`^${GUEST_TAP}\\b`, 'm'), "the guest's TAP is a port of the node bridge");

    let run = guest();
    await until('kvnet listens', () => run.log().includes('kvnet: listening'));
    const forwarder = spawnIn(topology, 'client', [
      process.execPath,
      CLI,
      'topology',
      'forward',
      '--unix',
      socket,
      '--to',
      `${GUEST_ADDRESS}:6379`,
    ]);
    await until('the forwarder listens', () => forwarder.log().includes('forward:'));
    host = await forwardTcpToUnix('127.0.0.1', 0, socket, 'the test forwarder');
    const port = String(host.port);

    const direct = await runCommand('ip', ['netns', 'exec', topology.namespace('client'), 'redis-cli', '-h', GUEST_ADDRESS, 'INCR', 'x']);
    assert.equal(
      direct.stdout.trim(),
      '1',
      `the client namespace reaches the guest's address over the LAN: ${direct.output}\n${run.log()}`,
    );
    const forwarded = await runCommand('redis-cli', ['-p', port, 'INCR', 'x']);
    assert.equal(forwarded.stdout.trim(), '2', `127.0.0.1 on the host reaches the guest through the forwarder: ${forwarded.output}`);
    const pipelined = await runCommand('sh', ['-c', `printf 'PING\\r\\nINCR x\\r\\nGET x\\r\\n' | redis-cli -p ${port}`]);
    assert.deepEqual(pipelined.stdout.trim().split('\n'), ['PONG', '3', '3'], pipelined.output);

    // The guest process ends and starts again on the same node: the TAP stayed on the bridge.
    run.child.kill('SIGINT');
    await exited(run.child);
    const kept = await runCommand('ip', ['-n', topology.namespace('primary'), '-d', 'link', 'show', GUEST_TAP]);
    assert.match(kept.stdout, new RegExp(`master ${FRONT_LINK}`), `the TAP outlives its process on the bridge:\n${kept.output}`);
    run = guest();
    await until('kvnet listens again', () => run.log().includes('kvnet: listening'));
    const again = await runCommand('redis-cli', ['-p', port, 'PING']);
    assert.equal(again.stdout.trim(), 'PONG', `a new guest is reached through the same port: ${again.output}`);
    t.diagnostic(`forwarder: ${JSON.stringify(host.counters)}`);
    assert.equal(host.counters.failed, 0);
  } finally {
    host?.close();
    topology.down();
    rmSync(dir, { recursive: true, force: true });
  }
  for (const name of topology.namespaces()) assert.equal(namespaceExists(name), false, `${name} is gone`);
  const left = await runCommand('pgrep', ['-f', socket]);
  assert.equal(left.stdout.trim(), '', 'no forwarder is left running');
});
