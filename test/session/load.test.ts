// Proves end to end against a reference RESP server with output commit (replies held until an
// epoch commits) that a load of plain clients through repeated connection cuts and takeovers
// (restarts from the committed state) ends with a clean verdict, its in-flight requests recorded as
// indeterminate and its clients reconnected; that a server which loses acknowledged writes or
// applies an INCR twice is caught; that `hbft load` and `hbft load --check` report and exit as
// documented (a history of the former session clients is refused with a clear error, `--plain` is a
// deprecated no-op); that a run stopped by a signal leaves a complete history the checker accepts;
// that a stall is reported across a SIGUSR2 mark; and that a run against a server that never answers
// ends with an error instead of waiting for ever.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '@hbft/cli';
import { runLoad } from '@hbft/common/session/load.ts';
import { parseHistory } from '@hbft/common/session/history.ts';
import { formatVerdict } from '@hbft/common/session/checker.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';
import { FakeRespServer } from './fakeRespServer.ts';

const servers: FakeRespServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function startServer(options: Parameters<typeof FakeRespServer.start>[0]): Promise<FakeRespServer> {
  const server = await FakeRespServer.start(options);
  servers.push(server);
  return server;
}

/** Every 40–100 ms until stopped: a takeover (restart from the committed state) or a cut of every connection. */
function nemesis(server: FakeRespServer, random: SeededRandom): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, 40 + random.below(60)));
      if (!running) break;
      if (random.chance(0.5)) server.restart();
      else server.dropAllConnections();
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

test('a load run through repeated takeovers and cuts is judged clean, its broken requests indeterminate', {
  timeout: 60_000,
}, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const server = await startServer({ epochMs: 3 });
  const stop = nemesis(server, new SeededRandom(seed + 1));
  const progress: number[] = [];
  const result = await runLoad({
    servers: [server.address],
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
  assert.ok(verdict.stats.unknown > 0, `seed ${seed}: requests in flight at a cut are indeterminate`);
  assert.ok(verdict.reconnects > 0, `seed ${seed}: the clients reconnected`);
  assert.equal(verdict.reconnects, result.history.filter((entry) => entry.type === 'reconnect').length);
  assert.ok(progress.length >= 2 && progress.at(-1) === verdict.stats.ok);
  // Each counter lies between its acknowledged INCRs and those plus its indeterminate ones.
  for (const [key, value] of Object.entries(result.final)) {
    if (!key.includes(':c:')) continue;
    const incrs = result.history.filter((entry) => entry.type === 'op' && entry.key === key);
    const acknowledged = incrs.filter((entry) => entry.type === 'op' && entry.result === 'ok').length;
    const unknown = incrs.filter((entry) => entry.type === 'op' && entry.result === 'unknown').length;
    const final = Number(value ?? 0);
    assert.ok(
      final >= acknowledged && final <= acknowledged + unknown,
      `seed ${seed}: ${key} = ${final}, ${acknowledged} ok, ${unknown} unknown`,
    );
  }
  t.diagnostic(
    `${server.stats.restarts} takeovers, ${server.stats.drops} cuts; ${verdict.stats.unknown} unknown, ${verdict.reconnects} reconnects`,
  );
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
  const server = await startServer({ epochMs: 2 });
  const directory = mkdtempSync(join(tmpdir(), 'hbft-load-'));
  const historyFile = join(directory, 'history.jsonl');
  const run = await hbft(
    'load',
    '--servers',
    server.address,
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
  assert.equal(parseHistory(readFileSync(historyFile, 'utf8'), historyFile).header?.clientKind, 'plain');

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

  // A history of the former session clients (no client kind in its header) is refused, exit 2.
  const sessionHistory = join(directory, 'session.jsonl');
  writeFileSync(sessionHistory, readFileSync(historyFile, 'utf8').replace('"clientKind":"plain",', ''));
  const refused = await hbft('load', '--check', sessionHistory);
  assert.equal(refused.code, 2, refused.out + refused.err);
  assert.match(refused.err, /session\.jsonl:1: a history of hbft session clients .* not checked/);

  const usage = await hbft('load', '--servers', 'nonsense');
  assert.equal(usage.code, 2);
  assert.match(usage.err, /--servers: expected HOST:PORT/);
  assert.equal((await hbft('load', '--servers', server.address, '--mix', 'incr=1,del=2')).code, 2);

  // --plain is what every client is now: accepted with a warning, and the run is the same.
  const plain = await hbft('load', '--plain', '--servers', server.address, '--operations', '50', '--clients', '2', '--json');
  assert.equal(plain.code, 0, plain.err);
  assert.match(plain.err, /--plain is deprecated and does nothing/);
  assert.equal(JSON.parse(plain.out).verdict.stats.operations, 50);
});

test('hbft load writes its history as it goes, and SIGTERM ends the run with the final read', { timeout: 60_000 }, async () => {
  const server = await startServer({ epochMs: 2 });
  const historyFile = join(mkdtempSync(join(tmpdir(), 'hbft-load-')), 'history.jsonl');
  const cli = new URL('../../packages/cli/bin/hbft.js', import.meta.url).pathname;
  const load = spawn(
    process.execPath,
    [cli, 'load', '--servers', server.address, '--duration-s', '600', '--clients', '2', '--history', historyFile],
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

test('hbft load reports the stall across a SIGUSR2 mark, with no operation in doubt', { timeout: 60_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed}`);
  const server = await startServer({ epochMs: 3 });
  const cli = new URL('../../packages/cli/bin/hbft.js', import.meta.url).pathname;
  const load = spawn(
    process.execPath,
    [cli, 'load', '--servers', server.address, '--duration-s', '3', '--clients', '4', '--seed', String(seed), '--json'],
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
  server.holdCommits(holdMs);
  load.kill('SIGUSR2');
  const [code] = await exited;
  assert.equal(code, 0, err);
  const { verdict } = JSON.parse(out);
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
function connectionCutter(server: FakeRespServer, random: SeededRandom, holdMs: number): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    for (let cuts = 0; running; cuts++) {
      await new Promise((resolve) => setTimeout(resolve, 60 + random.below(60)));
      if (!running) break;
      if (cuts !== 5) server.dropAllConnections();
      else {
        server.holdCommits(holdMs);
        await new Promise((resolve) => setTimeout(resolve, holdMs));
      }
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

test('hbft load: dropped connections and timed-out replies are indeterminate, the clients reconnect, and the verdict is clean', {
  timeout: 60_000,
}, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const server = await startServer({ epochMs: 3 });
  const historyFile = join(mkdtempSync(join(tmpdir(), 'hbft-load-')), 'plain.jsonl');
  // Once, no reply for longer than the response timeout.
  const stopCutting = connectionCutter(server, new SeededRandom(seed), 1_000);
  const args = ['load', '--servers', server.address, '--operations', '2000', '--clients', '4', '--keys', '3'];
  const run = await hbft(...args, '--seed', String(seed), '--response-timeout-ms', '300', '--history', historyFile, '--json');
  await stopCutting();
  assert.equal(run.code, 0, run.out + run.err);
  const { verdict } = JSON.parse(run.out);
  assert.deepEqual(verdict.violations, [], `seed ${seed}`);
  assert.ok(verdict.stats.unknown > 0, `seed ${seed}: requests in flight at a cut are indeterminate`);
  assert.ok(verdict.reconnects > 0, `seed ${seed}: the clients reconnected`);
  const history = parseHistory(readFileSync(historyFile, 'utf8'), historyFile);
  const reasons = new Set(history.reconnects.map((record) => record.reason.replace(/^.*: /, '')));
  t.diagnostic(`${verdict.stats.unknown} unknown, ${verdict.reconnects} reconnects; reasons: ${[...reasons].join(' | ')}`);
  assert.ok(
    history.operations.some(
      (operation) =>
        operation.result === 'unknown' && /the response timeout \(300 ms\) passed before the reply/.test(operation.error ?? ''),
    ),
    `seed ${seed}: the stall timed replies out`,
  );
  // --check judges it the same way: indeterminate operations bound the counters, they are no violation.
  const check = await hbft('load', '--check', historyFile);
  assert.equal(check.code, 0, check.out + check.err);
  assert.match(check.out, /reconnection/);
  assert.equal(JSON.parse((await hbft('load', '--check', historyFile, '--json')).out).verdict.stats.unknown, verdict.stats.unknown);
});

test('hbft load: a server that loses acknowledged writes fails the check with exit 3', { timeout: 60_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const server = await startServer({ epochMs: 3, restoreStaleSnapshot: true });
  // The node restarts from the snapshot before its last one: what its last commit acknowledged is gone.
  let running = true;
  const random = new SeededRandom(seed);
  const restarts = (async () => {
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, 60 + random.below(60)));
      if (running) server.restart();
    }
  })();
  const run = await hbft(
    'load',
    '--servers',
    server.address,
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

test('hbft load: a server that applies an INCR twice fails the check', { timeout: 60_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed}`);
  const server = await startServer({ epochMs: 3 });
  const result = await runLoad({
    servers: [server.address],
    clients: 3,
    operations: 300,
    keys: 2,
    mix: { incr: 1, set: 0, get: 0 },
    seed,
    keyPrefix: 'twice',
    // Once the run is under way, one INCR adds 2 (and answers as if it had added 1).
    markSource: () => {
      const timer = setTimeout(() => server.applyNextIncrsTwice(1), 100);
      return () => clearTimeout(timer);
    },
  });
  const { verdict } = result;
  assert.equal(verdict.ok, false, `seed ${seed}: the duplicated increment went unnoticed`);
  assert.deepEqual(Object.keys(verdict.violationCounts), ['counter-duplicated'], formatVerdict(verdict));
  assert.equal(verdict.stats.unknown, 0);
});

test('a run against a server that accepts connections and never answers ends with an error, not a wait for ever', {
  timeout: 30_000,
}, async () => {
  // No epoch ever commits: the server holds every reply, as a primary holding its output for good does.
  const server = await startServer({ epochMs: 0 });
  const run = runLoad({
    servers: [server.address],
    clients: 2,
    durationMs: 200,
    seed: 1,
    keyPrefix: 'silent',
    responseTimeoutMs: 300,
    reconnectDeadlineMs: 2_000,
    drainTimeoutMs: 500,
  });
  await assert.rejects(run, { code: 'E_LOAD_FINAL_READ', message: /no answer within 2000 ms/ });
});
