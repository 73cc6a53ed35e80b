// Proves that scripts/kill-primary.sh and scripts/chaos.sh work. kill-primary.sh against the
// namespaces of scripts/two-hosts.sh (root): it kills the primary under a plain RESP load of the
// guest's own address, reports the failover and a clean verdict, restarts the killed node as the
// new backup, and refuses once nobody is left to take over. chaos.sh against a chaos proxy
// described by a demo.json (as `npm start` writes it): it changes the replication link's proxy as
// asked and `clear` undoes everything. Both refuse what they cannot do with a message, a demo.json
// of the loopback demo (gone) included.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../helpers/cluster.ts';
import { CLI, REPO, runScript, type ScriptResult } from './runScript.ts';

interface Toxic {
  name: string;
  type: string;
  stream: string;
  toxicity: number;
  attributes: Record<string, number>;
}
interface Proxy {
  name: string;
  enabled: boolean;
  partition: string | null;
  toxics: Toxic[];
}

let chaos: ChildProcess;
let chaosLog = '';
let apiPort = 0;
let stateDir = '';

async function proxy(): Promise<Proxy> {
  const response = await fetch(`http://127.0.0.1:${apiPort}/proxies/repl`);
  return (await response.json()) as Proxy;
}

/** A chaos proxy on its own: chaos.sh configures it; nothing needs to run behind it. */
async function startChaosProxy(): Promise<void> {
  const [api, listen, upstream] = (await freePorts(3)) as [number, number, number];
  apiPort = api;
  chaos = spawn(
    process.execPath,
    [CLI, 'chaos', 'proxy', '--api', `127.0.0.1:${api}`, '--proxy', `repl=127.0.0.1:${listen}>127.0.0.1:${upstream}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  chaos.stdout!.on('data', (chunk: Buffer) => (chaosLog += chunk));
  chaos.stderr!.on('data', (chunk: Buffer) => (chaosLog += chunk));
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${api}/version`)).ok) return;
    } catch {
      // not up yet
    }
    if (chaos.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the chaos proxy did not start:\n${chaosLog}`);
}

/** The fields the scripts read, in the shape `hbft demo` writes (in namespaces). */
function demoJson(network: string | undefined): string {
  return JSON.stringify(
    {
      mode: 'local',
      network,
      // The scripts check that the demo runs: the chaos proxy stands in for its supervisor.
      pid: chaos.pid,
      primary: { pid: null, serve: '127.0.0.1:1', http: '127.0.0.1:1', netns: 'none' },
      backup: { pid: null, serve: '127.0.0.1:1', http: '127.0.0.1:1', netns: 'none' },
      chaos: { api: `127.0.0.1:${apiPort}`, proxies: ['repl'], pid: chaos.pid },
      keyFile: 'unused',
    },
    null,
    2,
  );
}

before(async () => {
  await startChaosProxy();
  stateDir = mkdtempSync(join(tmpdir(), 'hbft-scripts-'));
  writeFileSync(join(stateDir, 'demo.json'), demoJson('netns'));
});

after(async () => {
  chaos?.kill('SIGTERM');
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

const local = () => ({ HBFT_STATE_DIR: stateDir });

test('kill-primary.sh --mode netns kills the primary under plain RESP load, reports a clean verdict, and the node rejoins', {
  timeout: 120_000,
}, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root: scripts/two-hosts.sh makes network namespaces (CI runs as root)');
  const netnsState = mkdtempSync(join(tmpdir(), 'hbft-scripts-netns-'));
  const prefix = `hbft-k${process.pid.toString(36)}`;
  const env = {
    HBFT_NETNS_PREFIX: prefix,
    HBFT_STATE_DIR: netnsState,
    HBFT_MEMORY: '32MiB',
    // Generous: the test shares two cores with other tests; the kill is the only takeover wanted.
    HBFT_HEARTBEAT_MS: '50',
    HBFT_FAILOVER_TIMEOUT_MS: '1000',
  };
  const logs = () =>
    ['primary', 'backup']
      .map((node) => {
        try {
          const log = readFileSync(join(netnsState, `netns-${prefix}`, `${node}.log`), 'utf8');
          return `--- ${node} ---\n${log.split('\n').slice(-15).join('\n')}`;
        } catch {
          return `--- ${node}: no log ---`;
        }
      })
      .join('\n');
  const killPrimary = async (args: string[]): Promise<ScriptResult> => {
    const started = performance.now();
    const result = await runScript('kill-primary.sh', ['--mode', 'netns', ...args], env);
    t.diagnostic(`kill-primary.sh ${args.join(' ')} → exit ${result.code} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return result;
  };
  try {
    const start = await runScript('two-hosts.sh', ['start'], env);
    assert.equal(start.code, 0, `${start.output}\n${logs()}`);

    const kill = await killPrimary(['--seconds', '4']);
    t.diagnostic(
      kill.stdout
        .split('\n')
        .filter((line) => /plain RESP|took over|failover time|verdict/.test(line))
        .join('\n'),
    );
    assert.equal(kill.code, 0, `${kill.output}\n${logs()}`);
    assert.match(kill.stdout, /load: 4 plain RESP clients for 4 s against the guest at 10\.77\.0\.10:6379/);
    assert.match(kill.stdout, /kill -9 of the primary node \(primary, generation 1\)/);
    assert.match(kill.stdout, /the backup node took over: primary 2 /);
    assert.match(kill.stdout, /failover time: [0-9.]+ ms without a response, as the clients saw it \(generation 1 → 2\)/);
    assert.match(kill.stdout, /verdict: OK/);
    // Put back together: the killed slot runs again, as the backup of the new primary.
    assert.match(kill.stdout, /protected: primary slot: backup 2 true true; backup slot: primary 2 true/);

    // Once more without the rejoin; then nobody is left to take over, and the script refuses
    // instead of taking the service down.
    const second = await killPrimary(['--seconds', '3', '--no-rejoin']);
    assert.equal(second.code, 0, `${second.output}\n${logs()}`);
    assert.match(second.stdout, /kill -9 of the backup node \(primary, generation 2\)/);
    assert.match(second.stdout, /verdict: OK/);
    const again = await killPrimary(['--seconds', '2']);
    assert.equal(again.code, 1, again.output);
    assert.match(again.stderr, /no protected pair to test/);
  } finally {
    await runScript('two-hosts.sh', ['down'], env);
    rmSync(netnsState, { recursive: true, force: true });
  }
});

test('the scripts refuse a demo.json of the loopback demo, which hbft no longer runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hbft-scripts-loopback-'));
  try {
    writeFileSync(join(dir, 'demo.json'), demoJson(undefined));
    for (const [script, args] of [
      ['kill-primary.sh', ['--mode', 'local']],
      ['chaos.sh', ['status', '--mode', 'local']],
    ] as const) {
      const result = await runScript(script, [...args], { HBFT_STATE_DIR: dir });
      assert.equal(result.code, 1, result.output);
      assert.match(result.stderr, /describes a demo on loopback ports .* which hbft no longer runs: stop that demo and start it again/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chaos.sh changes the replication proxy as asked and clear restores it', { timeout: 60_000 }, async () => {
  const latency = await runScript('chaos.sh', ['latency', '40', '10', '--mode', 'local'], local());
  assert.equal(latency.code, 0, latency.output);
  assert.match(latency.stdout, /hbft chaos latency 40 10 --proxy repl/, 'it prints what it does');
  let state = await proxy();
  const latencies = state.toxics.filter((toxic) => toxic.type === 'latency');
  assert.deepEqual(latencies.map((toxic) => toxic.stream).sort(), ['downstream', 'upstream'], 'both directions of the link');
  for (const toxic of latencies) assert.deepEqual(toxic.attributes, { latency: 40, jitter: 10 });

  // The same again is no change (idempotent), and other toxics add to it.
  assert.equal((await runScript('chaos.sh', ['latency', '40', '10'], local())).code, 0);
  assert.equal((await proxy()).toxics.filter((toxic) => toxic.type === 'latency').length, 2);
  const bandwidth = await runScript('chaos.sh', ['bandwidth', '1mbit'], local());
  assert.equal(bandwidth.code, 0, bandwidth.output);
  const loss = await runScript('chaos.sh', ['loss', '2'], local());
  assert.equal(loss.code, 0, loss.output);
  state = await proxy();
  assert.ok(
    state.toxics.some((toxic) => toxic.type === 'bandwidth' && toxic.attributes.rate === 125),
    JSON.stringify(state.toxics),
  );
  assert.ok(
    state.toxics.some((toxic) => toxic.type === 'loss' && toxic.attributes.probability === 0.02),
    JSON.stringify(state.toxics),
  );

  const partition = await runScript('chaos.sh', ['partition', 'stall'], local());
  assert.equal(partition.code, 0, partition.output);
  state = await proxy();
  assert.equal(state.enabled, false);
  assert.equal(state.partition, 'stall');
  const heal = await runScript('chaos.sh', ['heal'], local());
  assert.equal(heal.code, 0, heal.output);
  state = await proxy();
  assert.equal(state.enabled, true, 'heal ends the partition');
  assert.ok(state.toxics.length > 0, 'heal keeps the toxics');

  const status = await runScript('chaos.sh', ['status'], local());
  assert.equal(status.code, 0, status.output);
  assert.match(status.stdout, /^repl: .*latency/m);

  for (let round = 0; round < 2; round++) {
    const clear = await runScript('chaos.sh', ['clear'], local());
    assert.equal(clear.code, 0, clear.output);
    state = await proxy();
    assert.deepEqual(state.toxics, [], 'clear removes every toxic');
    assert.equal(state.enabled, true);
  }
});

test('chaos.sh refuses bad input with a message', async () => {
  const cases: [string[], RegExp][] = [
    [['latency'], /latency: expected MS \[JITTER_MS\]/],
    [['latency', 'fast'], /MS must be a number, got 'fast'/],
    [['partition', 'sideways'], /expected cut or stall/],
    [['shake'], /unknown action 'shake'/],
    [['latency', '5', '--mode', 'local', '--via', 'netem'], /--via netem is for --mode compose/],
    [['latency', '5', '--mode', 'moon'], /--mode: expected local, netns or compose/],
  ];
  for (const [args, message] of cases) {
    const result = await runScript('chaos.sh', args, local());
    assert.notEqual(result.code, 0, `chaos.sh ${args.join(' ')} should fail`);
    assert.match(result.stderr, message, result.output);
  }
  const noDemo = await runScript('chaos.sh', ['status', '--mode', 'local'], { HBFT_STATE_DIR: join(stateDir, 'nothing-here') });
  assert.notEqual(noDemo.code, 0);
  assert.match(noDemo.stderr, /demo\.json, which does not exist: start the demo \(npm start\)/);
});

test('compose mode: chaos.sh drives the chaos container, and --via netem keeps its settings together (stand-in docker)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hbft-fake-docker-'));
  try {
    const log = join(dir, 'docker.log');
    // Records every call; answers `compose version` and the proxy list like the real thing.
    writeFileSync(
      join(dir, 'docker'),
      '#!/usr/bin/env bash\necho "$*" >>"$FAKE_DOCKER_LOG"\ncase "$*" in\n  *"hbft chaos status --json"*) echo \'[{"name":"repl"},{"name":"reprotect"}]\' ;;\nesac\nexit 0\n',
      { mode: 0o755 },
    );
    const env = { PATH: `${dir}:${process.env.PATH}`, FAKE_DOCKER_LOG: log, HBFT_STATE_DIR: join(dir, 'state') };
    const calls = () =>
      readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('compose -f '));
    const compose = `compose -f ${join(REPO, 'docker-compose.yml')}`;

    const latency = await runScript('chaos.sh', ['--mode', 'compose', 'latency', '20', '5'], env);
    assert.equal(latency.code, 0, latency.output);
    for (const proxy of ['repl', 'reprotect']) {
      assert.ok(
        calls().includes(`${compose} exec -T chaos hbft chaos latency 20 5 --proxy ${proxy} --api 127.0.0.1:8474`),
        calls().join('\n'),
      );
    }

    const netem = `${compose} exec -T -u root chaos tc qdisc`;
    const steps: [string[], string][] = [
      [['latency', '50', '10'], `${netem} replace dev eth0 root netem delay 50ms 10ms`],
      [['loss', '1'], `${netem} replace dev eth0 root netem delay 50ms 10ms loss 1%`],
      [['bandwidth', '100KB/s'], `${netem} replace dev eth0 root netem delay 50ms 10ms loss 1% rate 100kbps`],
      [['partition'], `${netem} replace dev eth0 root netem delay 50ms 10ms loss 100% rate 100kbps`],
      [['heal'], `${netem} replace dev eth0 root netem delay 50ms 10ms loss 1% rate 100kbps`],
      [['clear'], `${netem} del dev eth0 root`],
    ];
    for (const [args, expected] of steps) {
      const result = await runScript('chaos.sh', ['--mode', 'compose', '--via', 'netem', ...args], env);
      assert.equal(result.code, 0, result.output);
      assert.equal(calls().at(-1), expected, `chaos.sh --via netem ${args.join(' ')}`);
    }
    const reset = await runScript('chaos.sh', ['--mode', 'compose', '--via', 'netem', 'loss', '5', 'reset'], env);
    assert.notEqual(reset.code, 0, 'netem drops packets; it cannot reset connections');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
