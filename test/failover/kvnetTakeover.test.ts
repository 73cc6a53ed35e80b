// Proves the core of transparent failover with real processes on a real L2 network: kvnet runs
// under hbft primary and hbft backup, each node attached to a persistent TAP on one bridge; an
// interactive redis-cli (one process, one connection) and 20 plain RESP connections keep getting
// the right answers on the same TCP connections through kill -9 of the primary, the survivor's
// re-protection to the restarted node, and kill -9 of the survivor; and redis-benchmark runs
// through a kill to exit 0. It prints the client-visible stall across each kill (p50 and max).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SeededRandom } from '@hbft/common/random.ts';
import { percentile } from '@hbft/common/stats.ts';
import { Lan, type LanNode } from '../helpers/lan.ts';
import { testSeed } from '../helpers/seed.ts';
import { REPO } from '../deploy/runScript.ts';

const MEMORY = '64MiB';
const PROBE_CLIENTS = 20;
const PORTS = {
  a: { listen: '127.0.0.1:7001', serve: '127.0.0.1:6381', http: '127.0.0.1:9181' },
  b: { listen: '127.0.0.1:7002', serve: '127.0.0.1:6382', http: '127.0.0.1:9182' },
};
const PROTECTED = /the guest is protected/;
const nowMs = () => performance.timeOrigin + performance.now();

function keyFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'hbft-kvnet-')), 'key');
  writeFileSync(file, 'kvnet-takeover-test-key-0123456789\n');
  return file;
}

/** The flags both roles of node `name` share: its TAP, the guest's address, its own ports. */
function nodeFlags(lan: Lan, name: 'a' | 'b', key: string): string[] {
  return lan.kvnetNodeFlags(name, { keyFile: key, memory: MEMORY, ...PORTS[name] });
}

function startBackup(lan: Lan, name: 'a' | 'b', peer: 'a' | 'b', key: string): LanNode {
  return lan.startNode(name, ['backup', ...nodeFlags(lan, name, key), '--listen', PORTS[name].listen, '--reprotect', PORTS[peer].listen]);
}

function startPrimary(lan: Lan, name: 'a' | 'b', peer: 'a' | 'b', key: string): LanNode {
  return lan.startNode(name, ['primary', ...nodeFlags(lan, name, key), '--backup', PORTS[peer].listen]);
}

/** Backup b, then primary a, each pushed onto `nodes` as it starts; resolves once the guest is protected. */
async function startProtectedPair(lan: Lan, key: string, nodes: LanNode[]): Promise<{ primaryA: LanNode; backupB: LanNode }> {
  const backupB = startBackup(lan, 'b', 'a', key);
  nodes.push(backupB);
  await backupB.waitForLog(/waiting for a primary/, 30_000);
  const primaryA = startPrimary(lan, 'a', 'b', key);
  nodes.push(primaryA);
  await primaryA.waitForLog(PROTECTED, 60_000);
  return { primaryA, backupB };
}

/** An interactive redis-cli: one process, stdin kept open, one line per reply. */
class InteractiveCli {
  private readonly lines: string[] = [];
  private readonly errors: string[] = [];
  readonly exited: Promise<number | null>;

  constructor(
    private readonly lan: Lan,
    readonly process = lan.spawn('redis-cli', ['-h', lan.guestIp], { stdio: ['pipe', 'pipe', 'pipe'] }),
  ) {
    let partial = '';
    this.process.stdout?.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.process.stderr?.on('data', (chunk: Buffer) => this.errors.push(chunk.toString()));
    this.exited = new Promise((resolve) => this.process.once('exit', (code) => resolve(code)));
  }

  /** Sends one command line and waits for its reply line; returns it and when it came. */
  async command(line: string, timeoutMs = 20_000): Promise<{ reply: string; atMs: number }> {
    const before = this.lines.length;
    this.process.stdin?.write(`${line}\n`);
    const deadline = performance.now() + timeoutMs;
    while (this.lines.length === before) {
      assert.ok(performance.now() < deadline, `redis-cli: no reply to ${line} within ${timeoutMs} ms; stderr: ${this.errors.join('')}`);
      await sleep(1);
    }
    return { reply: this.lines[before] ?? '', atMs: nowMs() };
  }

  /** The TCP connections redis-cli has open to the guest, as "local -> remote" (from ss). */
  async connections(): Promise<string[]> {
    const result = await this.lan.run('ss', ['-tnpH', 'state', 'established', 'dst', this.lan.guestIp]);
    assert.equal(result.code, 0, result.output);
    return result.stdout
      .split('\n')
      .filter((line) => line.includes(`pid=${this.process.pid},`))
      .map((line) => line.trim().split(/\s+/).slice(2, 4).join(' -> '));
  }

  get output(): string {
    return `stdout: ${this.lines.join(' | ')}\nstderr: ${this.errors.join('')}`;
  }

  async close(): Promise<number | null> {
    this.process.stdin?.end();
    return this.exited;
  }
}

interface ProbeRecord {
  key: string;
  times: number[];
  lastValue: number;
  error: string | null;
}

/**
 * Per probe client, the stall it saw across the kill: the longest wait between two of its replies
 * around it (from half a second before it).
 */
function stallsAcross(records: ProbeRecord[], killAtMs: number): number[] {
  return records.map((record) => {
    let previous = record.times.findLast((time) => time <= killAtMs - 500);
    assert.ok(previous !== undefined, `${record.key} got replies before the kill`);
    let longest = 0;
    for (const time of record.times) {
      if (time <= previous) continue;
      longest = Math.max(longest, time - previous);
      previous = time;
      if (time > killAtMs + 5_000) break;
    }
    assert.ok(previous > killAtMs, `${record.key} got a reply after the kill at ${killAtMs}`);
    return longest;
  });
}

function describe(stallsMs: number[]): string {
  return `p50 ${percentile(stallsMs, 0.5).toFixed(0)} ms, max ${percentile(stallsMs, 1).toFixed(0)} ms (${stallsMs.length} clients)`;
}

test('one redis-cli connection and 20 plain RESP connections survive kill -9 of the primary, re-protection, and kill -9 of the survivor', {
  timeout: 240_000,
}, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed})`);
  const lan = await Lan.create('kvnet', '10.77.12', ['a', 'b']);
  const key = keyFile();
  const nodes: LanNode[] = [];
  let probe: ReturnType<Lan['spawn']> | undefined;
  let cli: InteractiveCli | undefined;
  const logs = () => nodes.map((node) => `--- ${node.name} (${node.running ? 'up' : 'down'}) ---\n${node.tail()}`).join('\n');
  try {
    const { primaryA, backupB } = await startProtectedPair(lan, key, nodes);

    cli = new InteractiveCli(lan);
    assert.equal((await cli.command('INCR x')).reply, '1', cli.output);
    const connection = await cli.connections();
    assert.equal(connection.length, 1, `redis-cli holds one connection to the guest: ${connection.join(', ')}`);

    let probeOutput = '';
    probe = lan.spawn(process.execPath, [
      join(REPO, 'scripts/resp-stall-probe.mjs'),
      `${lan.guestIp}:6379`,
      String(PROBE_CLIENTS),
      `probe${seed}`,
    ]);
    probe.stdout?.on('data', (chunk: Buffer) => (probeOutput += chunk));
    probe.stderr?.on('data', (chunk: Buffer) => (probeOutput += chunk));
    const probeExited = new Promise((resolve) => probe?.once('exit', resolve));
    await sleep(1_500 + random.below(1_000));

    // Kill 1: the primary, with the interactive client's request sent right after.
    assert.equal((await cli.command('INCR x')).reply, '2');
    const kill1AtMs = nowMs();
    primaryA.kill();
    const afterKill1 = await cli.command('INCR x');
    assert.equal(afterKill1.reply, '3', `${cli.output}\n${logs()}`);
    const cliStall1Ms = afterKill1.atMs - kill1AtMs;
    await backupB.waitForLog(/announced the guest/, 10_000);
    assert.deepEqual(await cli.connections(), connection, 'the same TCP connection (same ports), and no other');

    // The killed node comes back as the backup; the survivor protects the guest to it.
    const backupA = startBackup(lan, 'a', 'b', key);
    nodes.push(backupA);
    await backupB.waitForLog(PROTECTED, 90_000);
    await backupA.waitForLog(/first checkpoint applied/, 30_000);
    assert.equal((await cli.command('INCR x')).reply, '4');
    await sleep(500 + random.below(1_000));

    // Kill 2: the survivor.
    const kill2AtMs = nowMs();
    backupB.kill();
    const afterKill2 = await cli.command('INCR x');
    assert.equal(afterKill2.reply, '5', `${cli.output}\n${logs()}`);
    const cliStall2Ms = afterKill2.atMs - kill2AtMs;
    await backupA.waitForLog(/announced the guest/, 10_000);
    assert.deepEqual(await cli.connections(), connection, 'still the same TCP connection');
    assert.equal((await cli.command('GET x')).reply, '5');

    await sleep(500);
    probe.kill('SIGTERM');
    await probeExited;
    const records = (JSON.parse(probeOutput.trim().split('\n').at(-1) ?? '{}') as { clients: ProbeRecord[] }).clients;
    assert.equal(records.length, PROBE_CLIENTS, probeOutput);
    for (const record of records) {
      assert.equal(record.error, null, `${record.key}: ${record.error}\n${logs()}`);
      assert.ok(record.lastValue > 0);
    }
    // Every acknowledged increment is there, and none twice: each key holds its client's last reply.
    for (const record of records.slice(0, 5)) {
      assert.equal((await cli.command(`GET ${record.key}`)).reply, String(record.lastValue));
    }
    const stalls1 = stallsAcross(records, kill1AtMs);
    const stalls2 = stallsAcross(records, kill2AtMs);
    const takeover1Ms = (backupB.loggedAtMs(/announced the guest/) ?? NaN) - kill1AtMs;
    const takeover2Ms = (backupA.loggedAtMs(/announced the guest/) ?? NaN) - kill2AtMs;
    t.diagnostic(`takeover (kill to the guest announced): ${takeover1Ms.toFixed(0)} ms, then ${takeover2Ms.toFixed(0)} ms`);
    for (const node of [backupB, backupA]) t.diagnostic(node.log.find((line) => /announced the guest/.test(line)) ?? '');
    t.diagnostic(`redis-cli stall across kill 1: ${cliStall1Ms.toFixed(0)} ms; across kill 2: ${cliStall2Ms.toFixed(0)} ms`);
    t.diagnostic(
      `stalls across kill 1, sorted: ${[...stalls1]
        .sort((x, y) => x - y)
        .map((ms) => ms.toFixed(0))
        .join(' ')}`,
    );
    t.diagnostic(`plain RESP clients, longest wait for a reply across kill 1: ${describe(stalls1)}`);
    t.diagnostic(`plain RESP clients, longest wait for a reply across kill 2 (after re-protection): ${describe(stalls2)}`);

    assert.equal(await cli.close(), 0, cli.output);
    assert.doesNotMatch(cli.output, /Error|Could not connect|closed/i, 'redis-cli never lost or reopened its connection');
  } finally {
    probe?.kill('SIGKILL');
    cli?.process.kill('SIGKILL');
    await Promise.all(nodes.map((node) => node.stop()));
    await lan.destroy();
  }
});

test('redis-benchmark -t set,incr -c 50 runs through kill -9 of the primary and exits 0', { timeout: 180_000 }, async (t) => {
  const seed = testSeed();
  const random = new SeededRandom(seed);
  const lan = await Lan.create('bench', '10.77.13', ['a', 'b']);
  const key = keyFile();
  const nodes: LanNode[] = [];
  try {
    const { primaryA, backupB } = await startProtectedPair(lan, key, nodes);
    const killAfterMs = 1_500 + random.below(1_500);
    t.diagnostic(`seed ${seed} (replay with HBFT_SEED=${seed}); kill after ${killAfterMs} ms`);
    const started = nowMs();
    const bench = lan.run('redis-benchmark', ['-h', lan.guestIp, '-q', '-c', '50', '-n', '20000', '-t', 'set,incr'], 150_000);
    await sleep(killAfterMs);
    primaryA.kill();
    const result = await bench;
    const elapsedMs = nowMs() - started;
    assert.equal(result.code, 0, `redis-benchmark failed:\n${result.output}\n${backupB.tail()}`);
    const lines = result.stdout.split(/[\r\n]+/).filter((line) => /requests per second/.test(line));
    assert.equal(lines.length, 2, `one result line per test:\n${result.output}`);
    assert.ok(elapsedMs > killAfterMs, 'the benchmark was still running at the kill');
    assert.equal(backupB.count(/announced the guest/), 1, 'the backup took over during the run');
    t.diagnostic(lines.join(' | '));
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
    await lan.destroy();
  }
});
