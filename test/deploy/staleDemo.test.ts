// Proves that the scripts refuse a demo.json whose demo is not running (left behind by a demo that
// was killed), naming the problem and the way out, instead of talking to ports nobody serves; and
// the same when the demo runs but its chaos proxy has died.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScript } from './runScript.ts';

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

function writeDemo(dir: string, pid: number, chaosPid: number): void {
  // The shape `hbft demo` writes (demo/supervisor.ts, DemoState), as an ordinary user's demo would.
  const demo = {
    mode: 'local',
    network: 'netns',
    namespaces: {
      route: 'user',
      holder: pid,
      exec: `nsenter --target ${pid} --user --mount --preserve-credentials -- ip netns exec hbft-demo-x-client`,
    },
    pid,
    primary: { site: 'a', pid: null, serve: '127.0.0.1:1', http: '127.0.0.1:2', replication: '10.77.1.3:3', netns: 'hbft-demo-x-primary' },
    backup: { site: 'b', pid: null, serve: '127.0.0.1:1', http: '127.0.0.1:5', listen: '10.77.1.2:6', netns: 'hbft-demo-x-backup' },
    chaos: { api: '127.0.0.1:7', proxies: ['to-a', 'to-b'], pid: chaosPid },
    load: null,
  };
  writeFileSync(join(dir, 'demo.json'), JSON.stringify(demo, null, 2));
}

test('the scripts refuse a stale demo.json and name the problem', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hbft-stale-demo-'));
  // A live process whose command line names hbft, standing in for a running demo.
  const standIn = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', 'hbft-demo-stand-in'], { stdio: 'ignore' });
  try {
    const dead = await deadPid();
    writeDemo(dir, dead, dead);
    const env = { HBFT_STATE_DIR: dir };
    for (const [script, args] of [
      ['chaos.sh', ['status']],
      ['chaos.sh', ['latency', '100', '--mode', 'local']],
      ['kill-primary.sh', ['--seconds', '2']],
    ] as const) {
      const result = await runScript(script, [...args], env);
      assert.equal(result.code, 1, `${script} ${args.join(' ')}:\n${result.output}`);
      assert.match(
        result.stderr,
        new RegExp(`demo\\.json is stale: the demo that wrote it \\(pid ${dead}\\) is not running\\. Remove it`),
        result.output,
      );
    }

    writeDemo(dir, standIn.pid!, dead);
    const noChaos = await runScript('chaos.sh', ['status'], env);
    assert.equal(noChaos.code, 1, noChaos.output);
    assert.match(noChaos.stderr, new RegExp(`its chaos proxy \\(pid ${dead}\\) does not`), noChaos.output);
  } finally {
    standIn.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
