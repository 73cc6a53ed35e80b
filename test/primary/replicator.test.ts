// Proves the primary's replication rules on a fake clock: output is released only when its epoch
// is acknowledged, the guest stalls when too many checkpoints wait, a silent backup is dropped,
// the backup-loss policy decides whether output waits or flows, and output goes out unacknowledged
// only while no backup can hold a state of this generation (the split-brain rule).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrimaryReplicator, type PrimaryEffect } from '@hbft/primary/replicator.ts';

const bytes = (text: string) => new TextEncoder().encode(text);
const types = (effects: PrimaryEffect[]) => effects.filter((e) => e.type !== 'log').map((e) => e.type);

function replicator(overrides: Partial<ConstructorParameters<typeof PrimaryReplicator>[0]> = {}) {
  return new PrimaryReplicator({
    epochMs: 20,
    heartbeatMs: 20,
    backupSilenceMs: 100,
    checkpointsInFlightMax: 2,
    onBackupLoss: 'hold',
    outputBeforeFirstCheckpoint: 'hold',
    firstEpoch: 0,
    nowMs: 0,
    ...overrides,
  });
}

/** Brings a replicator to the protected state at time `now` (epoch 0 captured, sent, acked). */
function protect(r: PrimaryReplicator): number {
  assert.deepEqual(types(r.onBackupReady(0)), ['startFullSync']);
  r.onFullSyncSent();
  assert.deepEqual(types(r.tick(20)), ['sendHeartbeat', 'requestCapture']);
  assert.deepEqual(types(r.onCaptured(0, 21)), ['sendCheckpoint']);
  r.onAck(0, 25);
  assert.equal(r.status(25).mode, 'protected');
  return 25;
}

test('output of an epoch is released only after its checkpoint is acknowledged', () => {
  const r = replicator();
  protect(r);
  r.onOutput(1, 'c1', bytes('+OK\r\n'), false, 0);
  r.onOutput(1, 'c2', bytes(':1\r\n'), false, 0);
  assert.deepEqual(types(r.tick(40)), ['sendHeartbeat', 'requestCapture']);
  assert.deepEqual(types(r.onCaptured(1, 41)), ['sendCheckpoint'], 'capture alone releases nothing');
  r.onOutput(2, 'c1', bytes('+later\r\n'), false, 0);
  const effects = r.onAck(1, 45);
  const release = effects.find((e) => e.type === 'release');
  assert.ok(release && release.type === 'release');
  assert.deepEqual(
    release.outputs.map((o) => o.tag),
    ['c1', 'c2'],
    'in order, and not epoch 2',
  );
  assert.equal(r.status(45).heldOutputChunks, 1);
});

test('acknowledgements are cumulative', () => {
  const r = replicator({ checkpointsInFlightMax: 5 });
  protect(r);
  for (const [epoch, at] of [
    [1, 40],
    [2, 60],
    [3, 80],
  ] as const) {
    r.tick(at);
    r.onOutput(epoch, 'c', bytes(String(epoch)), false, 0);
    r.onCaptured(epoch, at + 1);
  }
  assert.equal(r.status(85).checkpointsInFlight, 3);
  const release = r.onAck(3, 85).find((e) => e.type === 'release');
  assert.ok(release && release.type === 'release');
  assert.equal(release.outputs.length, 3);
  assert.equal(r.status(85).checkpointsInFlight, 0);
});

test('the guest stalls at an epoch boundary while too many checkpoints wait, and resumes on the next ack', () => {
  const r = replicator({ checkpointsInFlightMax: 2 });
  protect(r);
  r.tick(40);
  r.onCaptured(1, 41);
  r.tick(60);
  r.onCaptured(2, 61);
  const stall = r.tick(80);
  assert.ok(types(stall).includes('pauseGuest'));
  assert.ok(!types(stall).includes('requestCapture'));
  assert.equal(r.status(80).stalled, true);
  assert.ok(!types(r.tick(100)).includes('requestCapture'), 'no capture while stalled');
  const resume = types(r.onAck(1, 105));
  assert.deepEqual(resume.slice(-2), ['requestCapture', 'resumeGuest'], 'capture first, then resume');
  assert.equal(r.status(105).stalled, false);
  assert.equal(r.stalledMs, 25);
});

test('a silent backup is dropped after the failover timeout; held output stays held', () => {
  const r = replicator();
  protect(r);
  r.onOutput(1, 'c', bytes('x'), false, 0);
  r.onBackupHeard(30);
  assert.ok(!types(r.tick(120)).includes('dropBackup'), '90 ms of silence is within the timeout');
  const effects = r.tick(131);
  assert.ok(types(effects).includes('dropBackup'));
  assert.equal(r.status(131).mode, 'unprotected');
  r.onCaptured(1, 135);
  assert.equal(r.status(135).heldOutputChunks, 1, 'hold: output waits for a backup');
});

test('without a backup (release before the first checkpoint), output flows at once', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release' });
  assert.deepEqual(types(r.onOutput(0, 'c', bytes('x'), false, 0)), ['release']);
  assert.deepEqual(types(r.tick(20)), ['requestCapture']);
  assert.deepEqual(types(r.onCaptured(0, 21)), ['discardCheckpoint'], 'nothing was held');
  assert.equal(r.status(21).outputHeld, false);
  assert.equal(r.status(21).outputRelease, 'unprotected');
});

test('with --on-backup-loss continue-unsafe, output held while protected is released once the backup is lost', () => {
  const r = replicator({ onBackupLoss: 'continue-unsafe' });
  protect(r);
  assert.deepEqual(types(r.onOutput(1, 'c', bytes('x'), false, 30)), [], 'protected: held');
  r.tick(40);
  r.onBackupLost('gone', 41);
  assert.deepEqual(types(r.onCaptured(1, 42)), ['discardCheckpoint', 'release']);
  assert.equal(r.status(42).outputRelease, 'unprotected');
});

// The split-brain rule (PrimaryReplicator's class comment): output of epoch e goes out only when
// every node that could take over holds a state at or past e.

test('a booted primary holds its output until its backup acknowledges the first checkpoint', () => {
  const r = replicator();
  assert.deepEqual(types(r.onOutput(0, 'c', bytes('x'), false, 0)), [], 'held at boot');
  assert.equal(r.status(0).outputHeld, true);
  assert.equal(r.status(0).outputRelease, 'holding');
  r.onBackupReady(1);
  assert.equal(r.status(1).outputRelease, 'syncing');
  r.onFullSyncSent();
  r.tick(20);
  r.onCaptured(0, 21);
  assert.equal(r.status(21).heldOutputChunks, 1);
  assert.ok(types(r.onAck(0, 25)).includes('release'));
  assert.equal(r.status(25).outputHeld, false);
  assert.equal(r.status(25).outputRelease, 'committed');
});

test('a promoted primary releases at once while no backup has received a checkpoint of its generation', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  assert.deepEqual(types(r.onOutput(50, 'c', bytes('a'), false, 0)), ['release'], 'no backup yet');
  assert.equal(r.status(0).outputHeld, false);
  // A backup connects and its full synchronisation begins: still no checkpoint has gone out.
  r.onBackupReady(5);
  assert.deepEqual(types(r.onOutput(50, 'c', bytes('b'), false, 6)), ['release'], 'syncing, nothing sent yet');
  assert.equal(r.status(6).outputRelease, 'unprotected');
  // A backup lost before any checkpoint went to it cannot take over: output keeps flowing.
  r.onBackupLost('gone before its first checkpoint', 7);
  assert.deepEqual(types(r.onOutput(50, 'c', bytes('c'), false, 8)), ['release']);
});

test('from the first checkpoint sent in its generation, a promoted primary releases only on acks', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  r.onBackupReady(0);
  r.onFullSyncSent();
  r.onOutput(50, 'c', bytes('a'), false, 1);
  r.tick(20);
  assert.deepEqual(types(r.onCaptured(50, 21)), ['sendCheckpoint']);
  // The backup may apply checkpoint 50 before its ack arrives, and take over from it: output of
  // epoch 51 must wait for the ack of 51.
  assert.deepEqual(types(r.onOutput(51, 'c', bytes('b'), false, 22)), [], 'held once a checkpoint is out');
  assert.equal(r.status(22).outputHeld, true);
  assert.equal(r.status(22).outputRelease, 'syncing');
  r.onAck(50, 25);
  assert.equal(r.status(25).heldOutputChunks, 1, 'the ack of 50 does not release output of 51');
  r.tick(40);
  r.onCaptured(51, 41);
  assert.ok(types(r.onAck(51, 45)).includes('release'));
  assert.equal(r.status(45).outputRelease, 'committed');
});

test('a promoted primary that loses its backup after a checkpoint went out holds (--on-backup-loss hold)', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  r.onBackupReady(0);
  r.onFullSyncSent();
  r.tick(20);
  r.onCaptured(50, 21);
  r.onAck(50, 25);
  r.onBackupLost('partition', 30);
  assert.equal(r.status(30).outputRelease, 'holding');
  assert.deepEqual(types(r.onOutput(51, 'c', bytes('x'), false, 31)), [], 'held: the lost backup may take over from 50');
  r.tick(40);
  assert.deepEqual(types(r.onCaptured(51, 41)), ['discardCheckpoint'], 'and not released at the epoch end');
  assert.equal(r.status(41).heldOutputChunks, 1);
  // It holds even when the backup was lost before it acknowledged anything: the checkpoint went out.
  const early = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  early.onBackupReady(0);
  early.onFullSyncSent();
  early.tick(20);
  early.onCaptured(50, 21);
  early.onBackupLost('partition', 22);
  assert.deepEqual(types(early.onOutput(51, 'c', bytes('x'), false, 23)), []);
  // A new backup synchronised again releases what waited.
  r.onBackupReady(50);
  r.onFullSyncSent();
  r.tick(60);
  r.onCaptured(52, 61);
  const release = r.onAck(52, 65).find((e) => e.type === 'release');
  assert.ok(release && release.type === 'release' && release.outputs.length === 1);
});

test('no epoch ends while the full synchronisation is sent: the first checkpoint is captured after its last page was read', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  assert.deepEqual(types(r.onBackupReady(0)), ['startFullSync']);
  // The sync reads RAM while the guest runs: a checkpoint captured before its last read, applied
  // on top of it, would mix moments. The epoch runs on, and output still flows (none went out).
  assert.deepEqual(types(r.tick(20)), ['sendHeartbeat'], 'no boundary during the sync');
  r.onBackupHeard(150);
  assert.deepEqual(types(r.tick(200)), ['sendHeartbeat']);
  assert.ok(r.nextDeadlineMs() > 200 && r.nextDeadlineMs() <= 220, 'no overdue boundary keeps the ticker spinning');
  assert.deepEqual(types(r.onOutput(50, 'c', bytes('a'), false, 201)), ['release']);
  r.onFullSyncSent();
  assert.deepEqual(types(r.tick(202)), ['requestCapture']);
  assert.deepEqual(types(r.onCaptured(50, 203)), ['sendCheckpoint']);
  assert.deepEqual(types(r.onOutput(51, 'c', bytes('b'), false, 204)), [], 'held from the first checkpoint sent');
  r.onAck(50, 210);
  assert.equal(r.status(210).mode, 'protected');
  assert.equal(r.status(210).heldOutputChunks, 1, 'output of 51 waits for the ack of 51');
});

test('a capture under way when the backup connects is discarded and the sync starts after it', () => {
  const r = replicator();
  assert.deepEqual(types(r.tick(20)), ['requestCapture']);
  assert.deepEqual(types(r.onBackupReady(21)), [], 'the sync waits for the capture');
  assert.deepEqual(types(r.onCaptured(0, 22)), ['discardCheckpoint', 'startFullSync']);
  assert.deepEqual(types(r.tick(40)), ['sendHeartbeat'], 'then the epoch runs on until the sync is sent');
  r.onFullSyncSent();
  assert.deepEqual(types(r.tick(41)), ['requestCapture']);
  assert.deepEqual(types(r.onCaptured(1, 42)), ['sendCheckpoint']);
  // Lost before the sync ended: the next backup starts over.
  const lost = replicator();
  lost.onBackupReady(0);
  lost.onBackupLost('gone', 1);
  assert.deepEqual(types(lost.tick(20)), ['requestCapture'], 'unprotected: epochs end again');
});

test('nextDeadlineMs says when tick next has work: boundaries on a fixed grid, heartbeats, the silence limit', () => {
  const r = replicator();
  assert.equal(r.nextDeadlineMs(), 20, 'unprotected: only the epoch boundary');
  const now = protect(r);
  // protect() ticked at 20: the next boundary is 40, the next heartbeat 40, the silence limit 101.
  assert.equal(r.nextDeadlineMs(), 40);
  assert.ok(now < 40);
  assert.deepEqual(types(r.tick(39)), [], 'nothing before the deadline');
  // A tick a few ms late keeps the grid: the boundary after 43 is 60, not 63.
  r.onBackupHeard(42);
  assert.deepEqual(types(r.tick(43)), ['sendHeartbeat', 'requestCapture']);
  r.onCaptured(1, 44);
  assert.equal(r.nextDeadlineMs(), 60);
  // Silence: with heartbeats and boundaries far off, the limit is the deadline.
  const quiet = replicator({ heartbeatMs: 1000, epochMs: 1000 });
  quiet.onBackupReady(0);
  quiet.tick(0);
  assert.equal(quiet.nextDeadlineMs(), 101, 'the backup was last heard at 0; limit 100 ms');
  assert.deepEqual(types(quiet.tick(100)), [], 'not yet silent too long');
  assert.ok(types(quiet.tick(101)).includes('dropBackup'));
});
