// Proves docker-compose.yml's client network in network namespaces, without a Docker engine: in a
// namespace wired as Docker wires a node container (eth0 on the network's bridge, an address from
// the containers' range, the default route through the gateway), deploy/guest-network.sh makes eth0
// and a persistent TAP ports of a bridge that takes over the address and route, and runs its
// command as the unprivileged user; a guest on that TAP is then reached at the compose guest
// address from another "container" and from the Docker host, and a second run (a container
// restart) finds everything in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, REPO, runCommand } from './runScript.ts';

const PREFIX = `hbft-c${process.pid.toString(36)}`;
const DOCKER = `${PREFIX}-docker`;
const NODE = `${PREFIX}-node`;
const CLIENT = `${PREFIX}-client`;
const UNPRIVILEGED = 'nobody';

/** The compose file's client network and guest address, read from it. */
function composeSettings(): { subnet: string; guest: string; gateway: string } {
  const compose = readFileSync(`${REPO}/docker-compose.yml`, 'utf8');
  const subnet = /subnet: ([0-9./]+)/.exec(compose)?.[1];
  const gateway = /gateway: ([0-9.]+)/.exec(compose)?.[1];
  const guest = /HBFT_GUEST_IP: ([0-9./]+)/.exec(compose)?.[1];
  assert.ok(subnet && gateway && guest, 'docker-compose.yml names the client subnet, its gateway and the guest address');
  return { subnet, gateway, guest };
}

async function must(command: string, ...args: string[]): Promise<string> {
  const result = await runCommand(command, args);
  assert.equal(result.code, 0, `${command} ${args.join(' ')}: ${result.output}`);
  return result.stdout;
}

test('guest-network.sh bridges the client interface and the TAP in a container-like namespace, and the guest is reached', {
  timeout: 180_000,
}, async () => {
  assert.equal(process.getuid?.(), 0, 'this test needs root: it makes network namespaces, veth links and TAP devices (CI runs as root)');
  const { subnet, gateway, guest } = composeSettings();
  const base = subnet.split('/')[0]!.split('.').slice(0, 3).join('.');
  const [guestAddress] = guest.split('/') as [string];
  const runs: ChildProcess[] = [];
  let log = '';
  try {
    for (const ns of [DOCKER, NODE, CLIENT]) {
      await must('ip', 'netns', 'add', ns);
      await must('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    }
    // Docker's side: the network's bridge with the gateway address (the Docker host).
    await must('ip', '-n', DOCKER, 'link', 'add', 'client', 'type', 'bridge');
    await must('ip', '-n', DOCKER, 'addr', 'add', `${gateway}/24`, 'dev', 'client');
    await must('ip', '-n', DOCKER, 'link', 'set', 'client', 'up');
    for (const [ns, address, port] of [
      [NODE, `${base}.130`, 'node0'],
      [CLIENT, `${base}.131`, 'client0'],
    ] as const) {
      await must('ip', 'link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', DOCKER);
      await must('ip', '-n', DOCKER, 'link', 'set', port, 'master', 'client', 'up');
      await must('ip', '-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await must('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
      await must('ip', '-n', ns, 'route', 'add', 'default', 'via', gateway);
    }

    const start = () => {
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          NODE,
          'env',
          `HBFT_CLIENT_SUBNET=${subnet}`,
          'HBFT_TAP=hbft0',
          `HBFT_GUEST_IP=${guest}`,
          `HBFT_DAEMON_USER=${UNPRIVILEGED}`,
          `${REPO}/deploy/guest-network.sh`,
          process.execPath,
          CLI,
          'run',
          'kvnet',
          '--tap',
          'hbft0',
          '--guest-ip',
          guest,
          '--memory',
          '32MiB',
        ],
        { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout!.on('data', (chunk: Buffer) => (log += chunk));
      child.stderr!.on('data', (chunk: Buffer) => (log += chunk));
      runs.push(child);
      return child;
    };
    const untilListening = async (count: number) => {
      for (let i = 0; i < 600 && (log.match(/kvnet: listening/g)?.length ?? 0) < count; i++) await sleep(100);
      assert.equal(log.match(/kvnet: listening/g)?.length, count, `the guest did not come up:\n${log}`);
    };

    let run = start();
    await untilListening(1);
    assert.match(log, /guest-network: eth0 is a port of br0, which holds 172\.30\.77\.130\/24/);
    assert.match(await must('ip', '-n', NODE, '-br', '-4', 'addr', 'show', 'br0'), new RegExp(`${base.replaceAll('.', '\\.')}\\.130/24`));
    assert.match(
      await must('ip', '-n', NODE, 'route', 'show', 'default'),
      new RegExp(`default via ${gateway.replaceAll('.', '\\.')} dev br0`),
    );
    const ports = await must('ip', '-n', NODE, '-br', 'link', 'show', 'master', 'br0');
    assert.match(ports, /^eth0@/m);
    assert.match(ports, /^hbft0 /m);
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${run.pid}/status`, 'utf8'))?.[1];
    assert.equal(uid, (await must('id', '-u', UNPRIVILEGED)).trim(), 'the daemon runs as the unprivileged user');

    const fromClient = await runCommand('ip', ['netns', 'exec', CLIENT, 'redis-cli', '-h', guestAddress, 'INCR', 'compose']);
    assert.equal(fromClient.stdout.trim(), '1', `another container reaches the guest: ${fromClient.output}\n${log}`);
    const fromHost = await runCommand('ip', ['netns', 'exec', DOCKER, 'redis-cli', '-h', guestAddress, 'INCR', 'compose']);
    assert.equal(fromHost.stdout.trim(), '2', `the Docker host reaches the guest: ${fromHost.output}`);
    const node = await runCommand('ip', ['netns', 'exec', NODE, 'redis-cli', '-h', `${base}.130`, '-p', '1', 'PING']);
    assert.notEqual(node.code, null, 'the node itself still has its address');

    // A container restart: the script runs again over its own work.
    run.kill('SIGINT');
    await new Promise((resolve) => run.once('exit', resolve));
    run = start();
    await untilListening(2);
    const again = await runCommand('ip', ['netns', 'exec', CLIENT, 'redis-cli', '-h', guestAddress, 'PING']);
    assert.equal(again.stdout.trim(), 'PONG', `after a restart: ${again.output}\n${log}`);
  } finally {
    for (const run of runs) if (run.exitCode === null && run.signalCode === null) run.kill('SIGKILL');
    for (const ns of [NODE, CLIENT, DOCKER]) await runCommand('ip', ['netns', 'del', ns]);
  }
});
