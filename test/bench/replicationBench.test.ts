// Proves that the replication and false-takeover benches report what they now measure — every
// workload's throughput in MIPS (kv drives itself, no requests/s row), and the stall plain clients
// of kvnet's IP see across a kill, judged against the 500 ms goal — and that their flags
// are checked before anything starts (a bad workload or part is exit 2 naming what is accepted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { formatReplicationReport, type ReplicationBenchReport } from '@hbft/cli/bench/replication.ts';
import { formatFalseTakeoverReport } from '@hbft/cli/bench/falseTakeovers.ts';

const hbft = fileURLToPath(new URL('../../packages/cli/bin/hbft.js', import.meta.url));

test('the replication report shows MIPS for every workload and the stall across kills', () => {
  const report: ReplicationBenchReport = {
    machine: { cpus: 2, model: 'test', node: process.version },
    throughput: [
      {
        workload: 'kv',
        unit: 'MIPS',
        protected: 80.5,
        unprotected: 100.25,
        ratio: 0.8,
        ratioMin: 0.7,
        ratioMax: 0.9,
        rounds: 3,
        meetsTarget: true,
      },
    ],
    failover: [
      {
        taps: 'persistent',
        kills: 3,
        clients: 4,
        gapsMs: [310, 420, 650],
        takeoversBeforeKill: 0,
        announcedMsP50: 305.5,
        p50Ms: 420,
        p99Ms: 645.6,
        maxMs: 650,
        killsWithSilentClients: 1,
        unknown: 2,
        reconnects: 1,
        violations: 0,
        failoverTimeoutMs: 300,
        meetsTarget: false,
      },
      {
        taps: 'daemon',
        kills: 4,
        clients: 4,
        gapsMs: [320, 330, 340],
        takeoversBeforeKill: 1,
        announcedMsP50: 306,
        p50Ms: 330,
        p99Ms: 339.8,
        maxMs: 340,
        killsWithSilentClients: 0,
        unknown: 0,
        reconnects: 0,
        violations: 0,
        failoverTimeoutMs: 300,
        meetsTarget: true,
      },
    ],
  };
  const text = formatReplicationReport(report);
  assert.match(text, /\| kv +\| MIPS \| 80\.5 +\| 100\.3 +\| 80 % \(70–90\) \| yes \|/);
  assert.doesNotMatch(text, /requests\/s/);
  assert.match(text, /Stall of 4 plain clients of kvnet's IP across kill -9 of the primary, 3 kills .* target stall p99 ≤ 500 ms/);
  assert.match(
    text,
    /\| the operator, before the daemons \(persistent\) +\| 305\.5 +\| 420\.0 +\| 645\.6 +\| 650\.0 +\| 1 +\| 0 +\| 2 +\| 1 +\| 0 +\| NO +\|/,
  );
  assert.match(
    text,
    /\| the daemons \(--tap creates them\) +\| 306\.0 +\| 330\.0 +\| 339\.8 +\| 340\.0 +\| 0 +\| 1 +\| 0 +\| 0 +\| 0 +\| yes +\|/,
  );
  assert.match(text, /Worst client's stall per kill, daemon TAPs \(ms\): 320, 330, 340/);
});

test('the false-takeover report counts the load of plain clients', () => {
  const text = formatFalseTakeoverReport({
    load: 'loaded',
    durationS: 60,
    daemonArgs: [],
    falseTakeovers: 0,
    falseTakeoversPerHour: 0,
    pairs: [{ startedAtS: 0, endedAtS: 60, tookOver: false, takeoverReason: null, primaryDelayMs: null, backupDelayMs: null }],
    loadOperations: 1234,
    historiesOk: true,
    burstsRun: 2,
    loadAverage: [1, 1, 1],
  });
  assert.match(text, /load operations acknowledged 1234, histories OK; bursts of connections 2/);
});

async function run(args: string[]): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [hbft, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, err };
}

test('bad bench flags exit 2 naming what is accepted, before anything starts', async () => {
  const workload = await run(['bench', 'replication', '--parts', 'throughput', '--throughput-workloads', 'kvnet']);
  assert.equal(workload.code, 2, workload.err);
  assert.match(workload.err, /--throughput-workloads: unknown "kvnet"; accepted: kv, cfp, cint, jbb, web/);
  const part = await run(['bench', 'replication', '--parts', 'requests']);
  assert.equal(part.code, 2, part.err);
  assert.match(part.err, /--parts: unknown "requests"; accepted: stream, pause, latency, throughput, failover/);
  const taps = await run(['bench', 'replication', '--parts', 'failover', '--failover-taps', 'operator']);
  assert.equal(taps.code, 2, taps.err);
  assert.match(taps.err, /--failover-taps: unknown "operator"; accepted: persistent, daemon/);
});
