// Proves end to end against the reference server that a load run through repeated failovers ends
// with a clean verdict and no unknown operations, that a server which loses acknowledged state is
// caught, that `hbft load`, `hbft load --check` and `hbft client` report and exit as documented, and
// that `hbft load` stopped by a signal leaves a complete history the checker accepts; and, for
// `hbft load --plain` (ordinary RESP connections to one address), that a stall is reported across a
// SIGUSR2 mark, that dropped connections and timed-out replies leave indeterminate operations and a
// reconnection but a clean verdict, and that a lost acknowledged write or a write applied twice is
// a violation; and that a run against a node that accepts sessions but never answers ends with an
// error instead of waiting for ever.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { main } from '@hbft/cli';
import { runLoad } from '@hbft/common/session/load.ts';
import { parseHistory } from '@hbft/common/session/history.ts';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';
import { FakeCluster } from './fakeServer.ts';

const clusters: FakeCluster[] = [];
after(async () => {
  for (const cluster of clusters) await cluster.close();
});

async function startCluster(options: Parameters<typeof FakeCluster.start>[0]): Promise<FakeCluster> {
  const cluster = await FakeCluster.start(options);
  clusters.push(cluster);
  return cluster;
}

/** Fails the cluster over every 40–100 ms until stopped. */
function nemesis(cluster: FakeCluster, random: SeededRandom): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, 40 + random.below(60)));
      if (running) await cluster.failover({ oldNode: random.chance(0.5) ? 'down' : 'notServing' });
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

test('a load run through repeated failovers is judged clean, with no unknown operations', { timeout: 60_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const cluster = await startCluster({ nodes: 3, epochMs: 3, random: new SeededRandom(seed), cutProbability: 0.01 });
  const stop = nemesis(cluster, new SeededRandom(seed + 1));
  const progress: number[] = [];
  const result = await runLoad({
    servers: cluster.addresses,
    clients: 6,
    operations: 1000,
    keys: 4,
    seed,
    keyPrefix: 't',
    responseTimeoutMs: 1000,
    progressIntervalMs: 100,
    onProgress: (p) => progress.push(p.ok),
  });
  await stop();
  const { verdict } = result;
  assert.deepEqual(verdict.violations, [], `seed ${seed}`);
  assert.equal(verdict.ok, true);
  assert.equal(verdict.stats.operations, 1000);
  assert.equal(verdict.stats.unknown, 0);
  assert.ok(verdict.failovers.length >= 2, `seed ${seed}: ${verdict.failovers.length} failovers measured`);
  assert.ok(verdict.clientFailovers.count >= 2);
  assert.ok(progress.length >= 2 && progress.at(-1) === verdict.stats.ok);
  // Exactly once: every counter equals its acknowledged INCRs, and the store agrees with the final read.
  const increments = new Map<string, number>();
  for (const operation of result.history)
    if (operation.type === 'op' && operation.op === 'incr') increments.set(operation.key, (increments.get(operation.key) ?? 0) + 1);
  for (const [key, count] of increments) assert.equal(result.final[key], String(count), `seed ${seed}: ${key}`);
  t.diagnostic(`${cluster.stats.failovers} failovers, gaps ${verdict.failovers.map((gap) => gap.gapMs.toFixed(0)).join(', ')} ms`);
});

test('a server that loses acknowledged state fails the check', { timeout: 60_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const cluster = await startCluster({ nodes: 2, epochMs: 3, random: new SeededRandom(seed), restoreStaleSnapshot: true });
  const stop = nemesis(cluster, new SeededRandom(seed + 1));
  const result = await runLoad({
    servers: cluster.addresses,
    clients: 4,
    operations: 600,
    keys: 2,
    seed,
    keyPrefix: 'bad',
    responseTimeoutMs: 1000,
  });
  await stop();
  assert.equal(result.verdict.ok, false, `seed ${seed}: the lost state went unnoticed`);
  const rules = new Set(result.verdict.violations.map((violation) => violation.rule));
  t.diagnostic(`rules: ${[...rules].join(', ')}`);
  assert.ok(rules.has('unknown-operations') || rules.has('counter-lost') || rules.has('write-lost'));
});

/** Runs `hbft ARGS...` in this process; returns its standard output and exit code. */
async function hbft(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const writeOut = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  // Only strings are ours: the test runner reports to its parent through stdout with buffers.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    typeof chunk === 'string' ? ((out += chunk), true) : writeOut(chunk, ...rest)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    typeof chunk === 'string' ? ((err += chunk), true) : writeErr(chunk, ...rest)) as typeof process.stderr.write;
  try {
    process.exitCode = 0;
    await main(args);
    return { out, err, code: Number(process.exitCode ?? 0) };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
    process.exitCode = 0;
  }
}

test('hbft load and hbft load --check print the verdict and exit by it', { timeout: 60_000 }, async () => {
  const cluster = await startCluster({ epochMs: 2 });
  const directory = mkdtempSync(join(tmpdir(), 'hbft-load-'));
  const historyFile = join(directory, 'history.jsonl');
  const run = await hbft(
    'load',
    '--servers',
    cluster.addresses.join(','),
    '--operations',
    '200',
    '--clients',
    '3',
    '--seed',
    '99',
    '--json',
    '--history',
    historyFile,
  );
  assert.equal(run.code, 0, run.err);
  const report = JSON.parse(run.out);
  assert.equal(report.seed, 99);
  assert.equal(report.verdict.ok, true);
  assert.equal(report.verdict.stats.operations, 200);
  assert.match(run.err, /seed 99/);

  const check = await hbft('load', '--check', historyFile);
  assert.equal(check.code, 0);
  assert.match(check.out, /verdict: OK/);
  assert.match(check.out, /latency p50/);

  // Tamper with the final read: one increment too many.
  const history = parseHistory(readFileSync(historyFile, 'utf8'), historyFile);
  const counter = Object.keys(history.final!.values).find((key) => key.includes(':c:'))!;
  const tampered = readFileSync(historyFile, 'utf8')
    .split('\n')
    .map((line) => {
      if (!line.startsWith('{"type":"final"')) return line;
      const final = JSON.parse(line);
      final.values[counter] = String(Number(final.values[counter]) + 1);
      return JSON.stringify(final);
    })
    .join('\n');
  writeFileSync(join(directory, 'tampered.jsonl'), tampered);
  const bad = await hbft('load', '--check', join(directory, 'tampered.jsonl'));
  assert.equal(bad.code, 3);
  assert.match(bad.out, /counter-duplicated/);

  const usage = await hbft('load', '--servers', 'nonsense');
  assert.equal(usage.code, 2);
  assert.match(usage.err, /--servers: expected HOST:PORT/);
  assert.equal((await hbft('load', '--servers', cluster.addresses[0]!, '--mix', 'incr=1,del=2')).code, 2);
});

test('hbft client sends one command and prints the reply, over a session or plain', { timeout: 30_000 }, async () => {
  const cluster = await startCluster({ epochMs: 2 });
  const servers = cluster.addresses.join(',');
  assert.deepEqual(await hbft('client', '--servers', servers, 'SET', 'k', '007'), { out: 'OK\n', err: '', code: 0 });
  assert.equal((await hbft('client', '--servers', servers, '--no-raw', 'GET', 'k')).out, '"007"\n');
  assert.equal((await hbft('client', '--servers', servers, 'GET k')).out, '007\n');
  assert.equal((await hbft('client', '--servers', servers, '--plain', 'INCR', 'n')).out, '1\n');
  await cluster.failover();
  assert.equal((await hbft('client', '--servers', servers, '--plain', '--no-raw', 'INCR', 'n')).out, '(integer) 2\n');
  const error = await hbft('client', '--servers', servers, '--no-raw', 'INCR', 'k', 'extra');
  assert.equal(error.code, 1);
  assert.match(error.out, /^\(error\) ERR wrong number of arguments/);
});

test('hbft load writes its history as it goes, and SIGTERM ends the run with the final read', { timeout: 60_000 }, async () => {
  const cluster = await startCluster({ epochMs: 2 });
  const historyFile = join(mkdtempSync(join(tmpdir(), 'hbft-load-')), 'history.jsonl');
  const cli = new URL('../../packages/cli/bin/hbft.js', import.meta.url).pathname;
  const load = spawn(
    process.execPath,
    [cli, 'load', '--servers', cluster.addresses.join(','), '--duration-s', '600', '--clients', '2', '--history', historyFile],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  load.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  load.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  const exited = once(load, 'exit');
  const lines = () => (existsSync(historyFile) ? readFileSync(historyFile, 'utf8').split('\n').filter(Boolean).length : 0);
  const deadline = Date.now() + 30_000;
  while (lines() < 50) {
    assert.ok(Date.now() < deadline && load.exitCode === null, `operations reach the history file while the run goes on:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  load.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, output);
  assert.match(output, /verdict: OK/);
  const history = parseHistory(readFileSync(historyFile, 'utf8'), historyFile);
  assert.ok(history.header && history.final, 'header and final read are in');
  assert.ok(history.operations.length >= 49, `${history.operations.length} operations`);
  const check = await hbft('load', '--check', historyFile);
  assert.equal(check.code, 0, check.out + check.err);
  assert.match(check.out, /verdict: OK/);
});

test('hbft load --plain reports the stall across a SIGUSR2 mark, with no operation in doubt', { timeout: 60_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed}`);
  const cluster = await startCluster({ nodes: 1, epochMs: 3 });
  const cli = new URL('../../packages/cli/bin/hbft.js', import.meta.url).pathname;
  const load = spawn(
    process.execPath,
    [cli, 'load', '--plain', '--servers', cluster.addresses[0]!, '--duration-s', '3', '--clients', '4', '--seed', String(seed), '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  load.stdout!.on('data', (chunk: Buffer) => (out += chunk));
  load.stderr!.on('data', (chunk: Buffer) => (err += chunk));
  const exited = once(load, 'exit');
  // The first progress line: the run is going.
  const deadline = Date.now() + 20_000;
  while (!/ok [1-9]/.test(err)) {
    assert.ok(Date.now() < deadline && load.exitCode === null, `the load makes progress:\n${err}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The backup stops acking for 700 ms, marked at its start as a kill test marks its kill.
  const holdMs = 700;
  cluster.holdCommits(holdMs);
  load.kill('SIGUSR2');
  const [code] = await exited;
  assert.equal(code, 0, err);
  const report = JSON.parse(out);
  assert.equal(report.clientKind, 'plain');
  const { verdict } = report;
  assert.equal(verdict.ok, true, err);
  assert.equal(verdict.stats.unknown, 0, 'a stall shorter than the response timeout leaves nothing in doubt');
  assert.equal(verdict.reconnects, 0, 'every connection survived the stall');
  assert.equal(verdict.stalls.clients, 4);
  assert.ok(verdict.stalls.gapMsMax >= holdMs - 5, `longest gap ${verdict.stalls.gapMsMax} ms covers the ${holdMs} ms hold`);
  const [mark] = verdict.stalls.marks;
  assert.equal(mark?.label, 'SIGUSR2');
  assert.equal(mark.clients, 4, 'every client got a reply after the mark');
  // The signal reaches the load a little after the hold began: a reply may come that much sooner.
  assert.ok(mark.afterMarkMsP50 >= holdMs - 200 && mark.afterMarkMsMax >= mark.afterMarkMsP50, JSON.stringify(mark));
  assert.ok(mark.gapMsMax >= mark.afterMarkMsMax, JSON.stringify(mark));
  t.diagnostic(`stall across the mark: ${JSON.stringify(mark)}`);
});

/**
 * Cuts every connection (state kept, held replies gone) every 60–120 ms until stopped, except that
 * the sixth time it releases no reply for `holdMs` instead.
 */
function connectionCutter(cluster: FakeCluster, random: SeededRandom, holdMs: number): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    for (let cuts = 0; running; cuts++) {
      await new Promise((resolve) => setTimeout(resolve, 60 + random.below(60)));
      if (!running) break;
      if (cuts !== 5) cluster.dropAllConnections();
      else {
        cluster.holdCommits(holdMs);
        await new Promise((resolve) => setTimeout(resolve, holdMs));
      }
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

test('hbft load --plain: dropped connections and timed-out replies are indeterminate, the clients reconnect, and the verdict is clean', {
  timeout: 60_000,
}, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const cluster = await startCluster({ nodes: 1, epochMs: 3 });
  const historyFile = join(mkdtempSync(join(tmpdir(), 'hbft-load-')), 'plain.jsonl');
  // Once, no reply for longer than the response timeout.
  const stopCutting = connectionCutter(cluster, new SeededRandom(seed), 1_000);
  const args = ['load', '--plain', '--servers', cluster.addresses[0]!, '--operations', '2000', '--clients', '4', '--keys', '3'];
  const run = await hbft(...args, '--seed', String(seed), '--response-timeout-ms', '300', '--history', historyFile, '--json');
  await stopCutting();
  assert.equal(run.code, 0, run.out + run.err);
  const { verdict } = JSON.parse(run.out);
  assert.deepEqual(verdict.violations, [], `seed ${seed}`);
  assert.equal(verdict.exactlyOnce, false);
  assert.ok(verdict.stats.unknown > 0, `seed ${seed}: requests in flight at a cut are indeterminate`);
  assert.ok(verdict.reconnects > 0, `seed ${seed}: the clients reconnected`);
  const history = parseHistory(readFileSync(historyFile, 'utf8'), historyFile);
  assert.equal(history.header?.clientKind, 'plain');
  const reasons = new Set(history.reconnects.map((record) => record.reason.replace(/^.*: /, '')));
  t.diagnostic(`${verdict.stats.unknown} unknown, ${verdict.reconnects} reconnects; reasons: ${[...reasons].join(' | ')}`);
  assert.ok(
    history.operations.some(
      (operation) =>
        operation.result === 'unknown' && /the response timeout \(300 ms\) passed before the reply/.test(operation.error ?? ''),
    ),
    `seed ${seed}: the stall timed replies out`,
  );
  // The history says it is plain, so --check judges it without exactly-once; as a session history
  // its indeterminate operations would be violations.
  const check = await hbft('load', '--check', historyFile);
  assert.equal(check.code, 0, check.out + check.err);
  assert.match(check.out, /reconnection/);
  const asSession = join(dirname(historyFile), 'as-session.jsonl');
  writeFileSync(asSession, readFileSync(historyFile, 'utf8').replace('"clientKind":"plain"', '"clientKind":"session"'));
  const strict = await hbft('load', '--check', asSession);
  assert.equal(strict.code, 3);
  assert.match(strict.out, /unknown-operations/);
});

test('hbft load --plain: a server that loses acknowledged writes fails the check with exit 3', { timeout: 60_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const cluster = await startCluster({ nodes: 1, epochMs: 3, restoreStaleSnapshot: true });
  // The node restarts from the snapshot before its last one: what its last commit acknowledged is gone.
  let running = true;
  const random = new SeededRandom(seed);
  const restarts = (async () => {
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, 60 + random.below(60)));
      if (running) await cluster.failover({ to: 0 });
    }
  })();
  const run = await hbft(
    'load',
    '--plain',
    '--servers',
    cluster.addresses[0]!,
    '--operations',
    '1500',
    '--clients',
    '4',
    '--keys',
    '2',
    '--mix',
    'incr=1',
    '--seed',
    String(seed),
  );
  running = false;
  await restarts;
  assert.equal(run.code, 3, `seed ${seed}: ${run.out}${run.err}`);
  assert.match(run.out, /counter-lost|incr-result-repeated/);
});

test('hbft load --plain: a server that applies an INCR twice fails the check', { timeout: 60_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed}`);
  const cluster = await startCluster({ nodes: 1, epochMs: 3 });
  const result = await runLoad({
    servers: cluster.addresses.slice(0, 1),
    clientKind: 'plain',
    clients: 3,
    operations: 300,
    keys: 2,
    mix: { incr: 1, set: 0, get: 0 },
    seed,
    keyPrefix: 'twice',
    // Once the run is under way, one INCR adds 2 (and answers as if it had added 1).
    markSource: () => {
      const timer = setTimeout(() => cluster.applyNextIncrsTwice(1), 100);
      return () => clearTimeout(timer);
    },
  });
  const { verdict } = result;
  assert.equal(verdict.ok, false, `seed ${seed}: the duplicated increment went unnoticed`);
  assert.deepEqual(Object.keys(verdict.violationCounts), ['counter-duplicated'], formatVerdict(verdict));
  assert.equal(verdict.stats.unknown, 0);
});

test('a run against a node that accepts sessions and never answers ends with an error, not a wait for ever', {
  timeout: 30_000,
}, async () => {
  // No epoch ever commits: the node attaches sessions and holds every reply, as a primary holding
  // its output for good does.
  for (const clientKind of ['session', 'plain'] as const) {
    const cluster = await startCluster({ nodes: 1, epochMs: 0 });
    const run = runLoad({
      servers: cluster.addresses,
      clientKind,
      clients: 2,
      durationMs: 200,
      seed: 1,
      keyPrefix: `silent-${clientKind}`,
      responseTimeoutMs: 300,
      reconnectDeadlineMs: 2_000,
      drainTimeoutMs: 500,
    });
    await assert.rejects(run, { code: 'E_LOAD_FINAL_READ', message: /no answer within 2000 ms/ }, clientKind);
  }
});
