// Proves the primary's replication rules on a fake clock, with output commit as the runtime does
// it (the replicator says which epoch is committed, the frame ledger holds frames until then):
// output is released only when its epoch is acknowledged, the guest stalls when too many
// checkpoints wait, a silent backup is dropped, the backup-loss policy decides whether output
// waits or flows, and output goes out unacknowledged only while no backup can hold a state of
// this generation (the split-brain rule).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrimaryReplicator, type PrimaryEffect } from '@hbft/primary/replicator.ts';
import { FrameLedger } from '@hbft/primary/frameLedger.ts';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (frame: Uint8Array) => new TextDecoder().decode(frame);
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

/**
 * The runtime's output path over a replicator (runtime.ts onGuestFrame and releaseFrames): a frame
 * the guest sends goes out at once while the replicator releases without acks and nothing waits
 * before it; otherwise it waits in the ledger until the replicator commits its epoch.
 */
class Output {
  readonly ledger: FrameLedger;
  private readonly sent: string[] = [];

  constructor(
    private readonly r: PrimaryReplicator,
    firstEpoch = 0,
  ) {
    this.ledger = new FrameLedger({ heldBytesMax: 1 << 20, heldFramesMax: 1024 }, firstEpoch - 1);
  }

  /** The guest sends `frame` in `epoch`: true when it went out at once. */
  guestSends(epoch: number, frame: string): boolean {
    if (this.r.releasesWithoutAck && this.ledger.releaseAtOnce()) {
      this.sent.push(frame);
      return true;
    }
    this.ledger.hold(epoch, bytes(frame), 0);
    return false;
  }

  /** Carries out the replicator's commits among `effects` (as the runtime does), and returns them. */
  after(effects: PrimaryEffect[]): PrimaryEffect[] {
    for (const effect of effects) {
      if (effect.type === 'commit') for (const held of this.ledger.commitThrough(effect.epoch)) this.sent.push(text(held.frame));
    }
    return effects;
  }

  /** What went out since the last call, in order. */
  take(): string[] {
    return this.sent.splice(0);
  }

  get held(): number {
    return this.ledger.heldFrames;
  }
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
  const out = new Output(r, 1);
  out.guestSends(1, '+OK');
  out.guestSends(1, ':1');
  assert.deepEqual(types(out.after(r.tick(40))), ['sendHeartbeat', 'requestCapture']);
  assert.deepEqual(types(out.after(r.onCaptured(1, 41))), ['sendCheckpoint'], 'capture alone releases nothing');
  assert.deepEqual(out.take(), []);
  out.guestSends(2, '+later');
  assert.deepEqual(types(out.after(r.onAck(1, 45))), ['commit']);
  assert.equal(r.status(45).lastCommittedEpoch, 1);
  assert.deepEqual(out.take(), ['+OK', ':1'], 'in order, and not epoch 2');
  assert.equal(out.held, 1);
});

test('acknowledgements are cumulative', () => {
  const r = replicator({ checkpointsInFlightMax: 5 });
  protect(r);
  const out = new Output(r, 1);
  for (const [epoch, at] of [
    [1, 40],
    [2, 60],
    [3, 80],
  ] as const) {
    r.tick(at);
    out.guestSends(epoch, String(epoch));
    out.after(r.onCaptured(epoch, at + 1));
  }
  assert.equal(r.status(85).checkpointsInFlight, 3);
  assert.deepEqual(
    out.after(r.onAck(3, 85)).filter((e) => e.type === 'commit'),
    [{ type: 'commit', epoch: 3 }],
  );
  assert.deepEqual(out.take(), ['1', '2', '3']);
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
  const out = new Output(r, 1);
  out.guestSends(1, 'x');
  r.onBackupHeard(30);
  assert.ok(!types(r.tick(120)).includes('dropBackup'), '90 ms of silence is within the timeout');
  const effects = out.after(r.tick(131));
  assert.ok(types(effects).includes('dropBackup'));
  assert.equal(r.status(131).mode, 'unprotected');
  out.after(r.onCaptured(1, 135));
  assert.equal(out.held, 1, 'hold: output waits for a backup');
  assert.deepEqual(out.take(), []);
});

test('without a backup (release before the first checkpoint), output flows at once', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release' });
  const out = new Output(r);
  assert.equal(out.guestSends(0, 'x'), true);
  assert.deepEqual(types(r.tick(20)), ['requestCapture']);
  assert.deepEqual(types(out.after(r.onCaptured(0, 21))), ['discardCheckpoint', 'commit'], 'the epoch commits as it ends');
  assert.equal(out.held, 0);
  assert.equal(r.status(21).outputHeld, false);
  assert.equal(r.status(21).outputRelease, 'unprotected');
});

test('with --on-backup-loss continue-unsafe, output held while protected is released once the backup is lost', () => {
  const r = replicator({ onBackupLoss: 'continue-unsafe' });
  protect(r);
  const out = new Output(r, 1);
  assert.equal(out.guestSends(1, 'x'), false, 'protected: held');
  r.tick(40);
  out.after(r.onBackupLost('gone', 41));
  assert.deepEqual(types(out.after(r.onCaptured(1, 42))), ['discardCheckpoint', 'commit']);
  assert.deepEqual(out.take(), ['x']);
  assert.equal(r.status(42).outputRelease, 'unprotected');
});

// The split-brain rule (PrimaryReplicator's class comment): output of epoch e goes out only when
// every node that could take over holds a state at or past e.

test('a booted primary holds its output until its backup acknowledges the first checkpoint', () => {
  const r = replicator();
  const out = new Output(r);
  assert.equal(out.guestSends(0, 'x'), false, 'held at boot');
  assert.equal(r.status(0).outputHeld, true);
  assert.equal(r.status(0).outputRelease, 'holding');
  r.onBackupReady(1);
  assert.equal(r.status(1).outputRelease, 'syncing');
  r.onFullSyncSent();
  r.tick(20);
  out.after(r.onCaptured(0, 21));
  assert.equal(out.held, 1);
  assert.ok(types(out.after(r.onAck(0, 25))).includes('commit'));
  assert.deepEqual(out.take(), ['x']);
  assert.equal(r.status(25).outputHeld, false);
  assert.equal(r.status(25).outputRelease, 'committed');
});

test('a promoted primary releases at once while no backup has received a checkpoint of its generation', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  const out = new Output(r, 50);
  assert.equal(out.guestSends(50, 'a'), true, 'no backup yet');
  assert.equal(r.status(0).outputHeld, false);
  // A backup connects and its full synchronisation begins: still no checkpoint has gone out.
  r.onBackupReady(5);
  assert.equal(out.guestSends(50, 'b'), true, 'syncing, nothing sent yet');
  assert.equal(r.status(6).outputRelease, 'unprotected');
  // A backup lost before any checkpoint went to it cannot take over: output keeps flowing.
  r.onBackupLost('gone before its first checkpoint', 7);
  assert.equal(out.guestSends(50, 'c'), true);
  assert.deepEqual(out.take(), ['a', 'b', 'c']);
});

test('from the first checkpoint sent in its generation, a promoted primary releases only on acks', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  const out = new Output(r, 50);
  r.onBackupReady(0);
  r.onFullSyncSent();
  out.guestSends(50, 'a');
  r.tick(20);
  assert.deepEqual(types(out.after(r.onCaptured(50, 21))), ['commit', 'sendCheckpoint']);
  // The backup may apply checkpoint 50 before its ack arrives, and take over from it: output of
  // epoch 51 must wait for the ack of 51.
  assert.equal(out.guestSends(51, 'b'), false, 'held once a checkpoint is out');
  assert.equal(r.status(22).outputHeld, true);
  assert.equal(r.status(22).outputRelease, 'syncing');
  out.after(r.onAck(50, 25));
  assert.equal(out.held, 1, 'the ack of 50 does not release output of 51');
  r.tick(40);
  out.after(r.onCaptured(51, 41));
  assert.ok(types(out.after(r.onAck(51, 45))).includes('commit'));
  assert.deepEqual(out.take(), ['a', 'b']);
  assert.equal(r.status(45).outputRelease, 'committed');
});

test('a promoted primary that loses its backup after a checkpoint went out holds (--on-backup-loss hold)', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  const out = new Output(r, 50);
  r.onBackupReady(0);
  r.onFullSyncSent();
  r.tick(20);
  out.after(r.onCaptured(50, 21));
  out.after(r.onAck(50, 25));
  out.after(r.onBackupLost('partition', 30));
  assert.equal(r.status(30).outputRelease, 'holding');
  assert.equal(out.guestSends(51, 'x'), false, 'held: the lost backup may take over from 50');
  r.tick(40);
  assert.deepEqual(types(out.after(r.onCaptured(51, 41))), ['discardCheckpoint'], 'and not released at the epoch end');
  assert.equal(out.held, 1);
  // It holds even when the backup was lost before it acknowledged anything: the checkpoint went out.
  const early = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  const earlyOut = new Output(early, 50);
  early.onBackupReady(0);
  early.onFullSyncSent();
  early.tick(20);
  earlyOut.after(early.onCaptured(50, 21));
  earlyOut.after(early.onBackupLost('partition', 22));
  assert.equal(earlyOut.guestSends(51, 'x'), false);
  // A new backup synchronised again releases what waited.
  r.onBackupReady(50);
  r.onFullSyncSent();
  r.tick(60);
  out.after(r.onCaptured(52, 61));
  out.after(r.onAck(52, 65));
  assert.deepEqual(out.take(), ['x']);
  assert.equal(out.held, 0);
});

test('an epoch is committed once: a repeated or older commit changes nothing', () => {
  const r = replicator({ checkpointsInFlightMax: 5 });
  protect(r);
  r.tick(40);
  r.onCaptured(1, 41);
  r.tick(60);
  r.onCaptured(2, 61);
  assert.deepEqual(
    r.onAck(2, 65).filter((e) => e.type === 'commit'),
    [{ type: 'commit', epoch: 2 }],
  );
  assert.ok(!types(r.onAck(1, 66)).includes('commit'), 'an ack of an older epoch commits nothing');
  assert.equal(r.status(66).lastCommittedEpoch, 2);
});

test('no epoch ends while the full synchronisation is sent: the first checkpoint is captured after its last page was read', () => {
  const r = replicator({ outputBeforeFirstCheckpoint: 'release', firstEpoch: 50 });
  const out = new Output(r, 50);
  assert.deepEqual(types(r.onBackupReady(0)), ['startFullSync']);
  // The sync reads RAM while the guest runs: a checkpoint captured before its last read, applied
  // on top of it, would mix moments. The epoch runs on, and output still flows (none went out).
  assert.deepEqual(types(r.tick(20)), ['sendHeartbeat'], 'no boundary during the sync');
  r.onBackupHeard(150);
  assert.deepEqual(types(r.tick(200)), ['sendHeartbeat']);
  assert.ok(r.nextDeadlineMs() > 200 && r.nextDeadlineMs() <= 220, 'no overdue boundary keeps the ticker spinning');
  assert.equal(out.guestSends(50, 'a'), true);
  r.onFullSyncSent();
  assert.deepEqual(types(r.tick(202)), ['requestCapture']);
  assert.deepEqual(types(out.after(r.onCaptured(50, 203))), ['commit', 'sendCheckpoint']);
  assert.equal(out.guestSends(51, 'b'), false, 'held from the first checkpoint sent');
  out.after(r.onAck(50, 210));
  assert.equal(r.status(210).mode, 'protected');
  assert.equal(out.held, 1, 'output of 51 waits for the ack of 51');
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
