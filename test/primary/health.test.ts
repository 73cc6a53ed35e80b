// Proves that a primary's health follows its replicator's state: ready only while it answers
// clients (protected, or unprotected under `continue`), `holding` when it has lost its backup
// under `hold`, `syncing` while a new backup catches up, and `fenced` above all once deposed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrimaryReplicator } from '@hbft/primary/replicator.ts';
import { primaryHealth } from '@hbft/primary/health.ts';
import type { BackupLossPolicy } from '@hbft/common/constants.ts';

function replicator(onBackupLoss: BackupLossPolicy) {
  return new PrimaryReplicator({ epochMs: 20, heartbeatMs: 20, backupSilenceMs: 100, checkpointsInFlightMax: 2, onBackupLoss, firstEpoch: 0, nowMs: 0 });
}

test('health follows the replicator through sync, protection and the loss of the backup', () => {
  for (const onBackupLoss of ['hold', 'continue'] as const) {
    const r = replicator(onBackupLoss);
    const health = (nowMs: number, fenced = false) => primaryHealth({ mode: r.status(nowMs).mode, onBackupLoss, fenced });
    const lost = onBackupLoss === 'hold' ? { reason: 'holding', answersClients: false } : { reason: 'unprotected', answersClients: true };

    assert.deepEqual(health(0), lost, `${onBackupLoss}: before any backup`);
    r.onBackupReady(0);
    assert.deepEqual(health(0), { reason: 'syncing', answersClients: false }, `${onBackupLoss}: output waits for the first ack`);
    r.tick(20);
    r.onCaptured(0, 21);
    r.onAck(0, 25);
    assert.deepEqual(health(25), { reason: 'protected', answersClients: true });
    assert.deepEqual(health(25, true), { reason: 'fenced', answersClients: false }, 'a deposed node never answers');
    r.onBackupLost('cut', 30);
    assert.deepEqual(health(30), lost, `${onBackupLoss}: after the backup is lost`);
    // Silence instead of a broken connection ends the same way.
    r.onBackupReady(40);
    r.tick(1_000);
    assert.deepEqual(health(1_000), lost, `${onBackupLoss}: after the backup fell silent`);
  }
});
