// Proves that `hbft run kvnet --tap NAME --guest-ip A/N` puts the guest on a real L2 network: in a
// network namespace with a Linux bridge, Debian's redis-cli and redis-benchmark, using the kernel's
// own TCP stack, reach the guest's address through the TAP device, and Ctrl-C stops the run cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, REPO, runCommand } from './runScript.ts';

const NAMESPACE = `hbft-t${process.pid.toString(36)}-tap`;
const TAP = 'hbfttap0';
const BRIDGE_ADDRESS = '10.77.9.1/24';
const GUEST_IP = '10.77.9.2';

async function inNamespace(command: string, args: string[], timeoutMs = 60_000) {
  return runCommand('ip', ['netns', 'exec', NAMESPACE, command, ...args], { timeoutMs });
}

async function mustRun(command: string, args: string[]): Promise<void> {
  const result = await runCommand(command, args);
  assert.equal(result.code, 0, `${command} ${args.join(' ')}: ${result.output}`);
}

test('redis-cli and redis-benchmark reach kvnet through a TAP device on a bridge', { timeout: 180_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root: it makes a network namespace, a bridge and a TAP device (CI runs as root)');
  for (const tool of ['redis-cli', 'redis-benchmark']) {
    const found = await runCommand('sh', ['-c', `command -v ${tool}`]);
    assert.equal(found.code, 0, `${tool} is missing: scripts/install-system-deps.sh installs redis-tools`);
  }
  await runCommand('ip', ['netns', 'del', NAMESPACE]);
  await mustRun('ip', ['netns', 'add', NAMESPACE]);
  let node: ChildProcess | undefined;
  let log = '';
  try {
    await mustRun('ip', ['-n', NAMESPACE, 'link', 'set', 'lo', 'up']);
    await mustRun('ip', ['-n', NAMESPACE, 'link', 'add', 'br0', 'type', 'bridge']);
    await mustRun('ip', ['-n', NAMESPACE, 'addr', 'add', BRIDGE_ADDRESS, 'dev', 'br0']);
    await mustRun('ip', ['-n', NAMESPACE, 'link', 'set', 'br0', 'up']);

    node = spawn(
      'ip',
      [
        'netns',
        'exec',
        NAMESPACE,
        process.execPath,
        CLI,
        'run',
        'kvnet',
        '--tap',
        TAP,
        '--guest-ip',
        `${GUEST_IP}/24`,
        '--memory',
        '64MiB',
      ],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    node.stdout!.on('data', (chunk: Buffer) => (log += chunk));
    node.stderr!.on('data', (chunk: Buffer) => (log += chunk));
    const exited = new Promise<number | null>((resolve) => node!.once('exit', (code) => resolve(code)));

    for (let i = 0; i < 200 && !log.includes('kvnet: listening'); i++) await sleep(50);
    assert.match(log, /attached to TAP hbfttap0, MAC ([0-9a-f]{2}:){5}[0-9a-f]{2}/);
    assert.match(log, /kvnet: listening on 10\.77\.9\.2:6379/);
    await mustRun('ip', ['-n', NAMESPACE, 'link', 'set', TAP, 'master', 'br0', 'up']);

    const cli = (...args: string[]) => inNamespace('redis-cli', ['-h', GUEST_IP, ...args], 20_000);
    const ping = await cli('PING');
    assert.equal(ping.stdout.trim(), 'PONG', ping.output);
    assert.equal((await cli('SET', 'greeting', 'hello')).stdout.trim(), 'OK');
    assert.equal((await cli('GET', 'greeting')).stdout.trim(), 'hello');
    assert.equal((await cli('INCR', 'visits')).stdout.trim(), '1');
    assert.equal((await cli('INCR', 'visits')).stdout.trim(), '2');

    const bench = await inNamespace('redis-benchmark', ['-h', GUEST_IP, '-q', '-n', '5000', '-c', '50', '-t', 'set,get,incr'], 120_000);
    assert.equal(bench.code, 0, `redis-benchmark failed:\n${bench.output}\n--- hbft:\n${log}`);
    const lines = bench.stdout.split(/[\r\n]+/).filter((line) => /requests per second/.test(line));
    assert.equal(lines.length, 3, `one result line per test:\n${bench.output}`);
    t.diagnostic(lines.join(' | '));
    assert.equal((await cli('GET', 'visits')).stdout.trim(), '2', 'the benchmark used its own keys');

    node.kill('SIGINT');
    assert.equal(await exited, 0, log);
    assert.match(log, /hbft: stopped after \d+ instructions; frames in \d+, out \d+/);
  } finally {
    if (node && node.exitCode === null) node.kill('SIGKILL');
    await runCommand('ip', ['netns', 'del', NAMESPACE]);
  }
});
