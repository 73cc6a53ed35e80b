// Proves `npm start` (`hbft demo`) as an ordinary user: run as nobody on a machine whose
// /dev/net/tun users may open (a private mount namespace stands in for one; this machine's is
// 0600), the demo builds its namespaces inside a user namespace of nobody's (none of them is the
// machine's), forwards the user's own 127.0.0.1 to the guest, and nobody's redis-cli keeps one
// connection through nobody's scripts/chaos.sh latency 100 (no false takeover) and
// scripts/kill-primary.sh (the backup takes over, the script's load finds nothing lost), getting
// the right answers on it. Ctrl-C (to the process group, twice, as `npm start` passes it on) then
// leaves no process, namespace holder, socket or demo.json behind, and the demo's own load history
// checks out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, interruptDemo, REPO, runCommand } from './runScript.ts';
import { InteractiveRedisCli } from './redisCli.ts';
import { NOBODY, asNobody, whyNobodyCannotRun, withTunMode } from './asUser.ts';

interface DemoJson {
  namespaces: { route: string; holder: number; exec: string };
  primary: { serve: string; http: string; netns: string; pid: number };
  backup: { http: string };
}

interface Readiness {
  role: string;
  generation: number;
}

async function readiness(http: string): Promise<Readiness> {
  return (await (await fetch(`http://${http}/readyz`)).json()) as Readiness;
}

function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Uid:'));
  return Number(line?.split(/\s+/)[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('npm start as an ordinary user: namespaces in a user namespace, one redis-cli connection through chaos.sh and kill-primary.sh', {
  timeout: 240_000,
}, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root to stand in for a machine whose /dev/net/tun users may open (CI runs as root)');
  const dir = mkdtempSync(join(tmpdir(), 'hbft-demo-user-'));
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  chownSync(dir, NOBODY, NOBODY);
  chownSync(tmp, NOBODY, NOBODY);
  const cannot = await whyNobodyCannotRun(tmp);
  if (cannot !== null) {
    t.diagnostic(`skipped: ${cannot}`);
    t.skip(cannot);
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  const basePort = 20_000 + Math.floor(Math.random() * 20_000);
  const env = { TMPDIR: tmp, HBFT_STATE_DIR: dir };
  const [command, ...args] = withTunMode(
    '0666',
    asNobody([process.execPath, CLI, 'demo', '--dir', dir, '--base-port', String(basePort), '--memory', '32MiB', '--clients', '2'], env),
  );
  const demo = spawn(command!, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  demo.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  demo.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  const exited = once(demo, 'exit');
  const clis: InteractiveRedisCli[] = [];
  const asUser = (argv: string[]) => {
    const [head, ...rest] = asNobody(argv, env);
    return runCommand(head!, rest, { timeoutMs: 180_000 });
  };
  let holder = 0;
  try {
    const deadline = Date.now() + 150_000;
    while (!output.includes('Ctrl-C stops everything')) {
      assert.ok(Date.now() < deadline && demo.exitCode === null, `the demo did not come up:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(output, /building the network namespaces \(in a user namespace of this user\)/);
    const state = JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')) as DemoJson;
    holder = state.namespaces.holder;
    assert.equal(state.namespaces.route, 'user');
    assert.match(state.namespaces.exec, new RegExp(`^nsenter --target ${holder} --user --mount --preserve-credentials -- ip netns exec `));
    // Every process of the demo is nobody's; the node's namespaces are neither the machine's nor named on it.
    assert.equal(uidOf(demo.pid!), NOBODY);
    assert.equal(uidOf(state.primary.pid), NOBODY, 'the primary runs as nobody (root only inside its user namespace)');
    for (const kind of ['user', 'net']) {
      assert.notEqual(
        readlinkSync(`/proc/${state.primary.pid}/ns/${kind}`),
        readlinkSync(`/proc/self/ns/${kind}`),
        `the primary's ${kind} namespace`,
      );
    }
    const listed = await runCommand('ip', ['netns', 'list']);
    assert.doesNotMatch(listed.stdout, new RegExp(state.primary.netns), "the namespaces are not the machine's");

    const port = state.primary.serve.split(':')[1]!;
    const cli = new InteractiveRedisCli(asNobody(['redis-cli', '-p', port]));
    clis.push(cli);
    assert.equal(await cli.send('INCR demo-visits'), '1', cli.transcript);
    const connection = await cli.connections();
    assert.equal(connection.length, 1, `one connection: ${connection.join(', ')}`);

    const slow = await asUser(['bash', `${REPO}/scripts/chaos.sh`, 'latency', '100']);
    assert.equal(slow.code, 0, slow.output);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.deepEqual(
      [await readiness(state.primary.http), await readiness(state.backup.http)].map((r) => `${r.role} ${r.generation}`),
      ['primary 1', 'backup 1'],
      `100 ms each way is no dead primary:\n${output}`,
    );
    const cleared = await asUser(['bash', `${REPO}/scripts/chaos.sh`, 'clear']);
    assert.equal(cleared.code, 0, cleared.output);
    assert.equal(await cli.send('INCR demo-visits'), '2', cli.transcript);

    const kill = await asUser(['bash', `${REPO}/scripts/kill-primary.sh`, '--mode', 'local', '--seconds', '6']);
    t.diagnostic(
      kill.stdout
        .split('\n')
        .filter((line) => /kill -9 of|took over|failover time|verdict/.test(line))
        .join('\n'),
    );
    assert.equal(kill.code, 0, `${kill.output}\n--- demo ---\n${output}`);
    assert.match(kill.stdout, /the backup node took over: primary 2 /);
    assert.match(kill.stdout, /failover time: [0-9.]+ ms without a response, as the clients saw it \(generation 1 → 2\)/);
    assert.match(kill.stdout, /verdict: OK/);
    assert.equal(await cli.send('INCR demo-visits'), '3', `answered after the takeover:\n${cli.transcript}\n--- demo ---\n${output}`);
    assert.deepEqual(await cli.connections(), connection, 'on the same connection: redis-cli did not reconnect');

    const stopped = await interruptDemo(demo, exited);
    assert.ok(stopped, `the demo exits within 60 s of Ctrl-C, also with a client connected:\n${output}`);
    assert.match(output, /demo: stopped; every process has exited/);
    assert.equal(existsSync(join(dir, 'demo.json')), false, 'demo.json is gone');
    assert.equal(alive(holder), false, 'the namespace holder has exited');
    const left = await runCommand('pgrep', ['-u', String(NOBODY), '-f', dir]);
    assert.equal(left.stdout.trim(), '', `no process of the demo is left:\n${left.stdout}`);
    assert.deepEqual(
      readdirSync(tmp).filter((name) => name.startsWith('hbft-demo-')),
      [],
      'no socket directory is left',
    );
    const check = await runCommand(process.execPath, [CLI, 'load', '--check', join(dir, 'load-history.jsonl')]);
    assert.equal(check.code, 0, `the demo's own load finds nothing wrong:\n${check.output}`);
  } finally {
    for (const cli of clis) cli.close();
    if (demo.exitCode === null && demo.signalCode === null) {
      demo.kill('SIGTERM');
      const killer = setTimeout(() => process.kill(-demo.pid!, 'SIGKILL'), 40_000);
      await exited;
      clearTimeout(killer);
    }
    if (holder > 0 && alive(holder)) process.kill(holder, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
