// Proves the walk-through on the real `hbft demo --network loopback` (what `npm start` runs when it
// may not build namespaces; demoNetns.test.ts covers the namespaces): it starts and
// protects the kv guest, `scripts/chaos.sh latency 100` slows the replication link without a false
// takeover, `scripts/kill-primary.sh` kills the primary under load and sees the backup take over
// with nothing lost, twice (the demo rewrites demo.json as the roles move), chaos.sh after a
// failover changes and clears both proxies of the link, and Ctrl-C (to the whole process group,
// twice, as a terminal under `npm start` delivers it) stops everything, removes demo.json and
// leaves the load's history complete: the checker reads it and finds nothing lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runCommand, runScript } from './runScript.ts';

interface ChaosProxy {
  name: string;
  enabled: boolean;
  toxics: { type: string; stream: string }[];
}

interface Readiness {
  role: string;
  generation: number;
}

async function readiness(http: string): Promise<Readiness> {
  return (await (await fetch(`http://${http}/readyz`)).json()) as Readiness;
}

test('the demo survives chaos.sh latency 100, kill-primary.sh sees both takeovers, and Ctrl-C stops it all', {
  timeout: 180_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hbft-demo-'));
  const basePort = 20_000 + Math.floor(Math.random() * 20_000);
  // Its own process group, so that the test can signal the group as a terminal's Ctrl-C does.
  const demo = spawn(process.execPath, [CLI, 'demo', '--network', 'loopback', '--dir', dir, '--base-port', String(basePort)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  demo.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  demo.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  const exited = once(demo, 'exit');
  const env = { HBFT_STATE_DIR: dir };
  try {
    const deadline = Date.now() + 90_000;
    while (!output.includes('Ctrl-C stops everything')) {
      assert.ok(Date.now() < deadline && demo.exitCode === null, `the demo did not come up:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const state = JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')) as { primary: { http: string }; backup: { http: string } };

    const slow = await runScript('chaos.sh', ['latency', '100'], env);
    assert.equal(slow.code, 0, slow.output);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.deepEqual(
      [await readiness(state.primary.http), await readiness(state.backup.http)].map((r) => `${r.role} ${r.generation}`),
      ['primary 1', 'backup 1'],
      `100 ms each way is no dead primary:\n${output}`,
    );
    const cleared = await runScript('chaos.sh', ['clear'], env);
    assert.equal(cleared.code, 0, cleared.output);

    const kill = await runScript('kill-primary.sh', ['--mode', 'local', '--seconds', '4'], env);
    t.diagnostic(
      kill.stdout
        .split('\n')
        .filter((line) => /took over|failover time|verdict/.test(line))
        .join('\n'),
    );
    assert.equal(kill.code, 0, `${kill.output}\n--- demo ---\n${output}`);
    assert.match(kill.stdout, /the backup node took over: primary 2 /);
    assert.match(kill.stdout, /failover time: [0-9.]+ ms without a response, as the clients saw it \(generation 1 → 2\)/);
    assert.match(kill.stdout, /verdict: OK/);

    // The demo restarts the killed site as the new backup; kill the other site this time (the
    // slots of demo.json have moved with the roles).
    const protectedAgain = Date.now() + 60_000;
    for (;;) {
      const moved = JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')) as { backup: { http: string } };
      const backup = await readiness(moved.backup.http).catch(() => null);
      if (backup?.role === 'backup' && (backup as unknown as { ready: boolean }).ready) break;
      assert.ok(Date.now() < protectedAgain, `the demo did not bring a backup back:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // After a failover the link runs through the other proxy: every chaos.sh command reaches both
    // of them (a change to one alone was left behind by the next takeover), and status lists both.
    const chaosApi = (JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')) as { chaos: { api: string } }).chaos.api;
    const proxies = async () => (await (await fetch(`http://${chaosApi}/proxies`)).json()) as Record<string, ChaosProxy>;
    const latency = await runScript('chaos.sh', ['latency', '20'], env);
    assert.equal(latency.code, 0, latency.output);
    for (const proxy of Object.values(await proxies())) {
      assert.deepEqual(
        proxy.toxics
          .filter((toxic) => toxic.type === 'latency')
          .map((toxic) => toxic.stream)
          .sort(),
        ['downstream', 'upstream'],
        `latency on ${proxy.name}:\n${latency.output}`,
      );
    }
    const status = await runScript('chaos.sh', ['status'], env);
    assert.equal(status.code, 0, status.output);
    assert.match(status.stdout, /^to-a: .*latency/m);
    assert.match(status.stdout, /^to-b: .*latency/m);
    const clear = await runScript('chaos.sh', ['clear'], env);
    assert.equal(clear.code, 0, clear.output);
    for (const proxy of Object.values(await proxies())) {
      assert.deepEqual(proxy.toxics, [], `clear reaches ${proxy.name}:\n${clear.output}`);
      assert.equal(proxy.enabled, true);
    }

    const again = await runScript('kill-primary.sh', ['--mode', 'local', '--seconds', '4'], env);
    assert.equal(again.code, 0, `${again.output}\n--- demo ---\n${output}`);
    assert.match(again.stdout, /the backup node took over: primary 3 /);
    assert.match(again.stdout, /generation 2 → 3/);

    // Ctrl-C: the terminal signals the whole foreground group, and `npm start` passes it on again.
    process.kill(-demo.pid!, 'SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (demo.exitCode === null) process.kill(-demo.pid!, 'SIGINT');
    await exited;
    assert.match(output, /demo: stopped; every process has exited and the ports are free/);
    assert.equal(existsSync(join(dir, 'demo.json')), false, `demo.json is gone:\n${output}`);
    const history = join(dir, 'load-history.jsonl');
    assert.ok(existsSync(history), `the load's history was written:\n${output}`);
    const check = await runCommand(process.execPath, [CLI, 'load', '--check', history]);
    t.diagnostic(
      check.stdout
        .split('\n')
        .filter((line) => /operations:|verdict/.test(line))
        .join('\n'),
    );
    assert.equal(check.code, 0, `the checker reads the history and finds nothing wrong:\n${check.output}\n--- demo ---\n${output}`);
    assert.match(check.stdout, /verdict: OK/);
  } finally {
    if (demo.exitCode === null && demo.signalCode === null) {
      // A failed assertion: stop it the way that also stops its children, and kill it if that hangs.
      demo.kill('SIGTERM');
      const killer = setTimeout(() => process.kill(-demo.pid!, 'SIGKILL'), 40_000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
