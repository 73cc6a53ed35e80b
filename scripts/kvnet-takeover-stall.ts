// Measures what plain clients see across repeated kvnet takeovers, and where the time goes: the
// protected pair of kvnetTakeover.test.ts (a bridge and a TAP per node in a network namespace, 20
// ms epochs, 300 ms failover timeout), 20 plain RESP connections (scripts/resp-stall-probe.mjs)
// and KILLS kill -9s, each of the current primary, the killed node coming back as the backup in
// between. tcpdump records the bridge. Per kill it prints the takeover's steps from the new
// primary's log (relative to the kill), the stall p50/max over the connections, and for the
// slowest connections the packets around the kill.
// Usage (root, under the cluster lock): npx tsx scripts/kvnet-takeover-stall.ts [KILLS] [OUT_DIR]
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from '@hbft/common/stats.ts';
import { Lan, type LanNode } from '../test/helpers/lan.ts';
import { REPO, runCommand } from '../test/deploy/runScript.ts';

const KILLS = Number(process.argv[2] ?? 4);
const OUT = process.argv[3] ?? '/tmp/kvnet-stall';
const CLIENTS = 20;
mkdirSync(OUT, { recursive: true });
// Clients reach the guest at its own address: a node has no client port of its own.
const PORTS = {
  a: { listen: '127.0.0.1:7001', http: '127.0.0.1:9181' },
  b: { listen: '127.0.0.1:7002', http: '127.0.0.1:9182' },
};
const nowMs = () => performance.timeOrigin + performance.now();
const keyFile = join(OUT, 'key');
writeFileSync(keyFile, 'kvnet-takeover-test-key-0123456789\n');

const lan = await Lan.create('stall', '10.77.18', ['a', 'b']);
const flags = (name: 'a' | 'b') => lan.kvnetNodeFlags(name, { keyFile, memory: '64MiB', ...PORTS[name] });
const other = (name: 'a' | 'b') => (name === 'a' ? 'b' : 'a');
const backup = (name: 'a' | 'b') =>
  lan.startNode(name, ['backup', ...flags(name), '--listen', PORTS[name].listen, '--reprotect', PORTS[other(name)].listen]);
const nodes: LanNode[] = [];
const capture = spawn('ip', ['netns', 'exec', lan.namespace, 'tcpdump', '-i', 'br0', '-n', '-w', join(OUT, 'br0.pcap'), '-s', '128'], {
  stdio: 'ignore',
});
let probeOutput = '';
const kills: { atMs: number; survivor: LanNode }[] = [];
try {
  let backupNode = backup('b');
  nodes.push(backupNode);
  await backupNode.waitForLog(/waiting for a primary/, 30_000);
  let primaryNode = lan.startNode('a', ['primary', ...flags('a'), '--backup', PORTS.b.listen]);
  nodes.push(primaryNode);
  await primaryNode.waitForLog(/the guest is protected/, 60_000);
  const load = lan.spawn(process.execPath, [join(REPO, 'scripts/resp-stall-probe.mjs'), `${lan.guestIp}:6379`, String(CLIENTS), 'stall']);
  load.stdout?.on('data', (chunk: Buffer) => (probeOutput += chunk));
  load.stderr?.on('data', (chunk: Buffer) => (probeOutput += chunk));
  const loadExited = new Promise((resolve) => load.once('exit', resolve));
  await sleep(2_000);
  for (let kill = 0; kill < KILLS; kill++) {
    const atMs = nowMs();
    primaryNode.kill();
    await backupNode.waitForLog(/announced the guest/, 10_000);
    kills.push({ atMs, survivor: backupNode });
    if (kill === KILLS - 1) break;
    const restarted = backup(primaryNode.name as 'a' | 'b');
    nodes.push(restarted);
    await backupNode.waitForLog(/the guest is protected/, 90_000);
    await restarted.waitForLog(/first checkpoint applied/, 30_000);
    await sleep(1_500);
    [primaryNode, backupNode] = [backupNode, restarted];
  }
  await sleep(1_000);
  load.kill('SIGTERM');
  await loadExited;
} finally {
  capture.kill('SIGINT');
  await sleep(500);
  await Promise.all(nodes.map((node) => node.stop()));
}
for (const node of nodes) writeFileSync(join(OUT, `node-${node.name}-${nodes.indexOf(node)}.log`), node.log.join('\n'));
const records = (
  JSON.parse(probeOutput.trim().split('\n').at(-1) ?? '{}') as { clients: { key: string; times: number[]; error: string | null }[] }
).clients;
const errors = records.filter((record) => record.error !== null);
if (errors.length > 0)
  console.log(
    'ERRORS',
    errors.map((record) => `${record.key}: ${record.error}`),
  );

// The guest's replies by client port, from the capture.
// Without tcpdump (it is optional) the table still comes, without the packets.
const dump = await runCommand('tcpdump', ['-tt', '-n', '-r', join(OUT, 'br0.pcap')], { timeoutMs: 60_000 }).catch((error: Error) => {
  console.log(`no capture to read (${error.message}): install tcpdump for the packets around each kill`);
  return { stdout: '' };
});
const packets = dump.stdout.split('\n').filter(Boolean);
const guestIp = lan.guestIp;
const at = (line: string) => Number(line.split(' ')[0]) * 1000;

const timeline = (killAtMs: number, eventMs: (pattern: RegExp) => number | undefined) => {
  const rel = (pattern: RegExp) => {
    const ms = eventMs(pattern);
    return ms === undefined ? '-' : `${(ms - killAtMs).toFixed(0)}`;
  };
  return `failed ${rel(/PRIMARY FAILED/)} | announced ${rel(/announced the guest/)} | serving ${rel(/serving clients/)}`;
};
console.log(`| kill | decision / GARP (ms after kill) | stall p50 | max | sorted stalls (ms) |`);
console.log('|---|---|---:|---:|---|');
const slowReports: string[] = [];
kills.forEach(({ atMs, survivor }, index) => {
  // Up to the next kill: a stall after it is that kill's.
  const untilMs = Math.min(atMs + 5_000, (kills[index + 1]?.atMs ?? Number.POSITIVE_INFINITY) - 300);
  const stalls = records.map((record) => {
    let previous = record.times.findLast((time) => time <= atMs - 300) ?? record.times[0] ?? 0;
    let longest = 0;
    for (const time of record.times) {
      if (time <= previous) continue;
      if (time > untilMs) break;
      longest = Math.max(longest, time - previous);
      previous = time;
    }
    return { key: record.key, ms: longest, last: record.times.findLast((time) => time <= atMs) ?? 0 };
  });
  const values = stalls.map((stall) => stall.ms);
  const garpMs = (survivor.loggedAtMs(/announced the guest/) ?? Number.NaN) - atMs;
  const decideMs = (survivor.loggedAtMs(/PRIMARY FAILED/) ?? Number.NaN) - atMs;
  console.log(
    `| ${index + 1} | ${decideMs.toFixed(0)} / ${garpMs.toFixed(0)} | ${percentile(values, 0.5).toFixed(0)} | ${percentile(values, 1).toFixed(0)} | ${[
      ...values,
    ]
      .sort((x, y) => x - y)
      .map((v) => v.toFixed(0))
      .join(' ')} |`,
  );
  const steps = /"stepsMs":(\{[^}]*\})/.exec(survivor.log.find((line) => /announced the guest/.test(line)) ?? '')?.[1] ?? '-';
  slowReports.push(
    `kill ${index + 1}: ${timeline(atMs, (pattern) => survivor.loggedAtMs(pattern))} | takeover steps (ms after the decision's start()): ${steps}`,
  );
  // Frames leaving the guest between the kill and 1.5 s after, relative to the kill.
  const window = packets.filter((line) => at(line) > atMs - 300 && at(line) < atMs + 3_000);
  const guestOut = window.filter((line) => line.includes(` ${guestIp}.6379 > `));
  if (guestOut.length > 0) {
    const after = guestOut.filter((line) => at(line) > atMs);
    slowReports.push(
      `  guest frames after the kill: ${after.length}, first at ${(at(after[0] ?? '0') - atMs).toFixed(0)} ms; offsets: ${after
        .slice(0, 60)
        .map((line) => (at(line) - atMs).toFixed(0))
        .join(' ')}`,
    );
  }
  for (const stall of [...stalls].sort((x, y) => y.ms - x.ms).slice(0, 3)) {
    slowReports.push(`  ${stall.key} stalled ${stall.ms.toFixed(0)} ms`);
  }
  const arps = window.filter((line) => / ARP/.test(line));
  slowReports.push(`  ARP: ${arps.map((line) => `${(at(line) - atMs).toFixed(0)} ${line.split(' ').slice(1, 9).join(' ')}`).join(' || ')}`);
});
console.log(slowReports.join('\n'));
// Per client port the packets around each kill, for the slowest ones (written to a file).
const byPort = new Map<string, string[]>();
for (const line of packets) {
  const match = new RegExp(`${lan.clientIp.replaceAll('.', '\\.')}\\.(\\d+)`).exec(line);
  if (match) byPort.set(match[1] ?? '', [...(byPort.get(match[1] ?? '') ?? []), line]);
}
const lines: string[] = [];
for (const { atMs } of kills) {
  lines.push(`=== kill at ${atMs}`);
  for (const [port, portLines] of byPort) {
    const around = portLines.filter((line) => at(line) > atMs - 200 && at(line) < atMs + 3_000);
    lines.push(`--- port ${port}`);
    for (const line of around) lines.push(`${(at(line) - atMs).toFixed(1)} ${line.split(' ').slice(1).join(' ')}`);
  }
}
writeFileSync(join(OUT, 'per-port.txt'), lines.join('\n'));
await lan.destroy();
console.log(`capture and logs in ${OUT}`);
