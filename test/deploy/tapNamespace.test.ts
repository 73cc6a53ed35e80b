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

    // The guest's console reaches stdout in pieces: wait for the whole line.
    for (let i = 0; i < 200 && !/kvnet: listening on \S+\n/.test(log); i++) await sleep(50);
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

    // Every test redis-benchmark names in the issue, with no warning about what it asks on connect.
    const all = await inNamespace(
      'redis-benchmark',
      ['-h', GUEST_IP, '-q', '-n', '2000', '-c', '20', '-t', 'set,get,incr,mset,ping'],
      120_000,
    );
    assert.equal(all.code, 0, `redis-benchmark failed:\n${all.output}\n--- hbft:\n${log}`);
    assert.equal(all.stdout.split(/[\r\n]+/).filter((line) => /requests per second/.test(line)).length, 6, all.output);
    assert.doesNotMatch(all.output, /WARNING|ERR/, all.output);
    // A thousand real connections at once.
    const many = await inNamespace('redis-benchmark', ['-h', GUEST_IP, '-q', '-n', '4000', '-c', '1000', '-t', 'get'], 120_000);
    assert.equal(many.code, 0, `redis-benchmark -c 1000 failed:\n${many.output}\n--- hbft:\n${log}`);
    assert.match(many.stdout, /GET: [\d.]+ requests per second/);
    // A reply of over 1 MB (280 values of 3,800 bytes: each request fits a 64 MiB guest's 4 KiB input buffer), far beyond lwIP's 64 KiB send buffer, through the kernel's TCP.
    const keys = 280;
    const load = await inNamespace('sh', [
      '-c',
      `${process.execPath} -e 'for (let i = 0; i < ${keys}; i++) console.log("SET big:" + i + " " + String.fromCharCode(97 + (i % 26)).repeat(3800))' | redis-cli -h ${GUEST_IP}`,
    ]);
    assert.equal(load.code, 0, load.output);
    const mget = await cli('MGET', ...Array.from({ length: keys }, (_, i) => `big:${i}`));
    const values = mget.stdout.trim().split('\n');
    assert.equal(values.length, keys, `every value came back (${mget.stdout.length} bytes)`);
    assert.ok(
      values.every((value, i) => value === String.fromCharCode(97 + (i % 26)).repeat(3800)),
      'every value whole',
    );

    node.kill('SIGINT');
    assert.equal(await exited, 0, log);
    assert.match(log, /hbft: stopped after \d+ instructions; frames in \d+, out \d+/);
  } finally {
    if (node && node.exitCode === null) node.kill('SIGKILL');
    await runCommand('ip', ['netns', 'del', NAMESPACE]);
  }
});
