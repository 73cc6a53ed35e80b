// The TAP as `hbft run --tap` opens it: frames are read on the calling thread (no reader thread),
// written by a writer thread that runs under SCHED_BATCH, so that waking it never takes the main
// thread's core. In a network namespace of its own, as root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REPO, runCommand } from '../deploy/runScript.ts';

const NAMESPACE = `hbft-t${process.pid.toString(36)}-thr`;

test('a TAP read on the main thread gets the kernel frames, and its writer thread runs under SCHED_BATCH and delivers', {
  timeout: 60_000,
}, async () => {
  assert.equal(process.getuid?.(), 0, 'this test needs root: it makes a network namespace and a TAP device (CI runs as root)');
  await runCommand('ip', ['netns', 'del', NAMESPACE]);
  const added = await runCommand('ip', ['netns', 'add', NAMESPACE]);
  assert.equal(added.code, 0, added.output);
  try {
    const probe = await runCommand(
      'ip',
      ['netns', 'exec', NAMESPACE, process.execPath, '--import', 'tsx', 'test/net/tapThreadsProbe.ts', 'hbftthr0'],
      { timeoutMs: 45_000, cwd: REPO },
    );
    assert.equal(probe.code, 0, probe.output);
    const result = JSON.parse(probe.stdout.trim().split('\n').at(-1) ?? '{}') as {
      batchThreads: number;
      ethertypes: number[];
      sent: number;
      counters: { framesRead: number; framesWritten: number; writeErrors: number };
    };
    assert.equal(result.batchThreads, 1, `exactly the writer thread runs under SCHED_BATCH: ${probe.stdout}`);
    assert.ok(result.ethertypes.includes(0x0806), `the kernel's ARP requests were read: ${probe.stdout}`);
    assert.ok(result.counters.framesRead >= 1, probe.stdout);
    assert.equal(result.sent, 1, `the frame sent reached the kernel: ${probe.stdout}`);
    assert.equal(result.counters.framesWritten, 1, probe.stdout);
    assert.equal(result.counters.writeErrors, 0, probe.stdout);
  } finally {
    await runCommand('ip', ['netns', 'del', NAMESPACE]);
  }
});
