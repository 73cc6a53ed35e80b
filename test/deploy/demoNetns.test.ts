// Proves `hbft demo --namespaces root` (what `npm start` runs as root): the protected kvnet guest on
// the namespace topology is reached with redis-cli on 127.0.0.1 through the forwarder, and one
// redis-cli connection opened before scripts/kill-primary.sh gets its next INCR answered on that
// same connection after the takeover, with the script's load (plain RESP through the same
// forwarder) finding nothing lost; after the takeover chaos.sh changes, lists and clears both
// proxies of the link; Ctrl-C then leaves no namespace, process or demo.json behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, interruptDemo, runCommand, runScript } from './runScript.ts';
import { InteractiveRedisCli } from './redisCli.ts';
import { NetnsTopology, namespaceExists, prefixForProcess } from '../../packages/cli/src/netns/topology.ts';

interface ChaosProxy {
  name: string;
  enabled: boolean;
  toxics: { type: string; stream: string }[];
}

interface DemoJson {
  network: string;
  namespaces: { route: string };
  chaos: { api: string };
  primary: { serve: string; http: string; netns: string };
  backup: { serve: string; http: string; netns: string };
}

test('the demo in namespaces: one redis-cli connection through kill-primary.sh, and Ctrl-C removes everything', {
  timeout: 240_000,
}, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root: the demo builds network namespaces and TAP devices (CI runs as root)');
  const dir = mkdtempSync(join(tmpdir(), 'hbft-demo-netns-'));
  const basePort = 20_000 + Math.floor(Math.random() * 20_000);
  const demo = spawn(
    process.execPath,
    [CLI, 'demo', '--namespaces', 'root', '--dir', dir, '--base-port', String(basePort), '--memory', '32MiB', '--clients', '2'],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  demo.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  demo.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  const exited = once(demo, 'exit');
  const topology = new NetnsTopology(prefixForProcess('hbft-demo', demo.pid!));
  const env = { HBFT_STATE_DIR: dir };
  const clis: InteractiveRedisCli[] = [];
  try {
    const deadline = Date.now() + 120_000;
    while (!output.includes('Ctrl-C stops everything')) {
      assert.ok(Date.now() < deadline && demo.exitCode === null, `the demo did not come up:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const state = JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')) as DemoJson;
    assert.equal(state.network, 'netns');
    assert.equal(state.namespaces.route, 'root');
    assert.equal(state.primary.netns, topology.namespace('primary'));
    const port = state.primary.serve.split(':')[1]!;
    assert.match(output, new RegExp(`redis-cli -p ${port} +\\(the guest at 10\\.77\\.0\\.10:6379`));

    const cli = new InteractiveRedisCli(['redis-cli', '-p', port]);
    clis.push(cli);
    assert.equal(await cli.send('INCR demo-visits'), '1', cli.transcript);
    const connection = await cli.connections();
    assert.equal(connection.length, 1, `one connection: ${connection.join(', ')}`);

    const kill = await runScript('kill-primary.sh', ['--mode', 'local', '--seconds', '6'], env, 180_000);
    t.diagnostic(
      kill.stdout
        .split('\n')
        .filter((line) => /took over|failover time|stall|verdict/.test(line))
        .join('\n'),
    );
    assert.equal(kill.code, 0, `${kill.output}\n--- demo ---\n${output}`);
    assert.match(kill.stdout, /the backup node took over: primary 2 /);
    assert.match(kill.stdout, /failover time: [0-9.]+ ms without a response, as the clients saw it \(generation 1 → 2\)/);
    assert.match(kill.stdout, /verdict: OK/);

    assert.equal(await cli.send('INCR demo-visits'), '2', `answered after the takeover:\n${cli.transcript}\n--- demo ---\n${output}`);
    assert.deepEqual(await cli.connections(), connection, 'on the same connection: redis-cli did not reconnect');

    // After a failover the link runs through the other proxy: every chaos.sh command reaches both
    // of them (a change to one alone was left behind by the next takeover), and status lists both.
    const proxies = async () => (await (await fetch(`http://${state.chaos.api}/proxies`)).json()) as Record<string, ChaosProxy>;
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

    const stopped = await interruptDemo(demo, exited);
    assert.ok(stopped, `the demo exits within 60 s of Ctrl-C, also with a client connected:\n${output}`);
    assert.match(output, /demo: stopped; every process has exited/);
    assert.equal(existsSync(join(dir, 'demo.json')), false, 'demo.json is gone');
    for (const name of topology.namespaces()) assert.equal(namespaceExists(name), false, `${name} is gone`);
    const left = await runCommand('pgrep', ['-f', dir]);
    assert.equal(left.stdout.trim(), '', `no process of the demo is left:\n${left.stdout}`);
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
    if (topology.exists()) topology.down();
    rmSync(dir, { recursive: true, force: true });
  }
});
