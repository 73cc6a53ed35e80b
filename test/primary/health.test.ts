// Proves that a primary's health follows its replicator's release of output: ready only while it
// answers clients (protected, or releasing without a backup's ack), `holding` when output waits
// with no backup, `syncing` while a backup it has sent a checkpoint to catches up, and `fenced`
// above all once deposed; for a primary that booted, one that took over, and continue-unsafe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrimaryReplicator, type PrimaryReplicatorConfig } from '@hbft/primary/replicator.ts';
import { primaryHealth } from '@hbft/primary/health.ts';

function replicator(config: Pick<PrimaryReplicatorConfig, 'onBackupLoss' | 'outputBeforeFirstCheckpoint'>) {
  return new PrimaryReplicator({
    epochMs: 20,
    heartbeatMs: 20,
    backupSilenceMs: 100,
    checkpointsInFlightMax: 2,
    firstEpoch: 0,
    nowMs: 0,
    ...config,
  });
}

const holding = { reason: 'holding', answersClients: false };
const syncing = { reason: 'syncing', answersClients: false };
const protectedHealth = { reason: 'protected', answersClients: true };
const unprotected = { reason: 'unprotected', answersClients: true };

/** Synchronises a backup: full sync sent, first checkpoint captured and sent, then acked. */
function synchronise(r: PrimaryReplicator, nowMs: number, health: (nowMs: number) => unknown, beforeFirstCheckpoint: unknown): void {
  r.onBackupReady(nowMs);
  assert.deepEqual(health(nowMs), beforeFirstCheckpoint, 'while the full synchronisation is sent');
  r.onFullSyncSent();
  const epoch = r.status(nowMs).epoch;
  r.tick(nowMs + 20);
  r.onCaptured(epoch, nowMs + 21);
  assert.deepEqual(health(nowMs + 21), syncing, 'a checkpoint is out: output waits for its ack');
  r.onAck(epoch, nowMs + 25);
  assert.deepEqual(health(nowMs + 25), protectedHealth);
}

test('a primary that booted holds until its first sync, and holds again when it loses the backup', () => {
  const r = replicator({ onBackupLoss: 'hold', outputBeforeFirstCheckpoint: 'hold' });
  const health = (nowMs: number, fenced = false) => primaryHealth({ outputRelease: r.status(nowMs).outputRelease, fenced });
  assert.deepEqual(health(0), holding, 'before any backup');
  synchronise(r, 0, health, syncing);
  assert.deepEqual(health(25, true), { reason: 'fenced', answersClients: false }, 'a deposed node never answers');
  r.onBackupLost('cut', 30);
  assert.deepEqual(health(30), holding, 'after the backup is lost');
  // Silence instead of a broken connection ends the same way.
  r.onBackupReady(40);
  r.tick(1_000);
  assert.deepEqual(health(1_000), holding, 'after the backup fell silent');
});

test('a node that took over answers until its first checkpoint goes out, then only on acks', () => {
  const r = replicator({ onBackupLoss: 'hold', outputBeforeFirstCheckpoint: 'release' });
  const health = (nowMs: number) => primaryHealth({ outputRelease: r.status(nowMs).outputRelease, fenced: false });
  assert.deepEqual(health(0), unprotected, 'no node can take over from it yet');
  synchronise(r, 0, health, unprotected);
  r.onBackupLost('cut', 30);
  assert.deepEqual(health(30), holding, 'its backup may have taken over: it holds like any primary');
});

test('continue-unsafe answers without a backup after losing one', () => {
  const r = replicator({ onBackupLoss: 'continue-unsafe', outputBeforeFirstCheckpoint: 'release' });
  const health = (nowMs: number) => primaryHealth({ outputRelease: r.status(nowMs).outputRelease, fenced: false });
  synchronise(r, 0, health, unprotected);
  r.onBackupLost('cut', 30);
  assert.deepEqual(health(30), unprotected);
});
