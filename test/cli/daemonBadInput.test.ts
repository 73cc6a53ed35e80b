// Proves that the daemons answer bad flags and unusable addresses with one line naming the problem
// and a non-zero exit: no stack trace, and no process left running (a port that cannot be bound
// after the guest worker started must not leave the process up serving nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../helpers/cluster.ts';

const hbft = fileURLToPath(new URL('../../packages/cli/bin/hbft.js', import.meta.url));
/** Far above a daemon's start-up (about 1.5 s); reaching it means the process hung. */
const HANG_MS = 30_000;

async function run(args: string[]): Promise<{ code: number | null; err: string; hung: boolean }> {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('HBFT_')) delete env[name];
  const child = spawn(process.execPath, [hbft, ...args, '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), HANG_MS);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  return { code, err, hung: signal === 'SIGKILL' };
}

test('bad daemon flags exit 2 naming the flag', async () => {
  const cases: [string[], RegExp][] = [
    [
      ['primary', '--guest', 'kv', '--backup', '127.0.0.1:7300'],
      /no replication key: give --key-file FILE or set HBFT_KEY; or pass --insecure/,
    ],
    [['primary', '--guest', 'kv', '--key-file', '/nonexistent/hbft-key'], /--key-file: cannot read \/nonexistent\/hbft-key \(ENOENT\)/],
    [['backup', '--insecure', '--listen', '127.0.0.1:7300', '--failover-timeout-ms', '50', '--heartbeat-ms', '20'], /failover-timeout-ms/],
    [['primary', '--insecure', '--tracking', 'bogus'], /tracking.*Choices: "none", "origin", "rfr", "wfp", "pml"/s],
    [['primary', '--insecure', '--memory', '3MiB'], /--memory: 3MiB is out of range/],
    [['backup', '--insecure', '--listen', 'nohost'], /--listen: expected HOST:PORT/],
    // Plain `continue` is split brain under a partition: refused, with the risk and the name to use.
    [
      ['primary', '--insecure', '--on-backup-loss', 'continue'],
      /--on-backup-loss continue: .*split brain.*acknowledged are lost.*continue-unsafe/s,
    ],
    [['backup', '--insecure', '--listen', '127.0.0.1:7300', '--on-backup-loss', 'continue'], /--on-backup-loss continue: .*split brain/s],
    [['primary', '--insecure', '--on-backup-loss', 'bogus'], /--on-backup-loss: expected one of hold, continue-unsafe, got "bogus"/],
  ];
  const results = await Promise.all(cases.map(([args]) => run(args)));
  for (const [i, [args, message]] of cases.entries()) {
    const result = results[i]!;
    assert.equal(result.code, 2, `${args.join(' ')}: exit ${result.code}\n${result.err}`);
    assert.match(result.err, message);
    assert.doesNotMatch(result.err, /\n\s+at /, 'no stack trace');
  }
});

test('an address that cannot be bound ends the daemon with one line naming the flag, and the process exits', async () => {
  const [busyPort, a, b] = await freePorts(3);
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(busyPort, '127.0.0.1', resolve));
  try {
    const taken = `127.0.0.1:${busyPort}`;
    const cases: [string[], RegExp][] = [
      [
        ['backup', '--insecure', '--listen', taken, '--http', `127.0.0.1:${b}`],
        /--listen \(replication\): cannot listen on .*already in use/,
      ],
      [
        ['backup', '--insecure', '--listen', `127.0.0.1:${a}`, '--http', taken],
        /--http \(status and dashboard\): cannot listen on .*already in use/,
      ],
      [
        ['primary', '--insecure', '--guest', 'cfp', '--memory', '64MiB', '--http', taken],
        /--http \(status and dashboard\): cannot listen on .*already in use/,
      ],
    ];
    // One at a time: the cases share the free ports a, b and c.
    for (const [args, message] of cases) {
      const result = await run(args);
      assert.equal(result.hung, false, `${args.join(' ')}: still running after ${HANG_MS} ms`);
      assert.equal(result.code, 1, `${args.join(' ')}: exit ${result.code}\n${result.err}`);
      assert.match(result.err, message);
      assert.doesNotMatch(result.err, /\n\s+at /, 'no stack trace');
    }
  } finally {
    busy.close();
  }
});

test('--on-backup-loss continue-unsafe is accepted by both daemons (the risk is named)', async () => {
  for (const args of [
    ['primary', '--insecure'],
    ['backup', '--insecure', '--listen', '127.0.0.1:7300'],
  ]) {
    const env = { ...process.env };
    for (const name of Object.keys(env)) if (name.startsWith('HBFT_')) delete env[name];
    const child = spawn(process.execPath, [hbft, ...args, '--on-backup-loss', 'continue-unsafe', '--dry-run'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, `${args[0]} --on-backup-loss continue-unsafe --dry-run: exit ${code}`);
    assert.equal(JSON.parse(out).onBackupLoss, 'continue-unsafe');
  }
});

test('--serve, the retired client port, is ignored with a line that says where clients go now', async () => {
  for (const args of [
    ['primary', '--insecure', '--serve', '127.0.0.1:6379'],
    ['backup', '--insecure', '--listen', '127.0.0.1:7300', '--serve', '127.0.0.1:6380'],
  ]) {
    const env = { ...process.env };
    for (const name of Object.keys(env)) if (name.startsWith('HBFT_')) delete env[name];
    const child = spawn(process.execPath, [hbft, ...args, '--dry-run'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, `${args.join(' ')} --dry-run: exit ${code}\n${err}`);
    assert.match(err, /--serve 127\.0\.0\.1:63(79|80) is ignored \(retired: clients reach the guest at its own address/);
    assert.equal(JSON.parse(out).serve, undefined, 'no client port in the configuration');
  }
});
