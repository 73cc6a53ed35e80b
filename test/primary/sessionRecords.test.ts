// Proves that session output sent in a checkpoint that was never committed goes to the next
// backup again: a checkpoint written to a connection that then breaks may never have been applied,
// and output not yet released is in no window, so without this a takeover later found a replica
// with no record of a reply its client had not received (E_SESSION_GAP in the nemesis soak at
// seed 718863587). Committed output is not sent again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@hbft/common/log.ts';
import { SESSION_RECORD_OUTPUT, type SessionRecord } from '@hbft/common/checkpoint/sessionOutput.ts';
import { ClientFlow } from '@hbft/primary/clientFlow.ts';
import { SessionManager } from '@hbft/primary/sessions.ts';

const TAG = `s:${'ab'.repeat(16)}`;

function manager(): SessionManager {
  const nic = { open: () => {}, hangUp: () => {}, deliver: () => {}, outputTaken: () => {} };
  const sessions = new SessionManager(nic, new ClientFlow(nic), silentLogger(), () => 1);
  sessions.adopt([{ tag: TAG, rxAccepted: 0, rxDelivered: 0, txProduced: 0 }], 0);
  return sessions;
}

const outputs = (records: SessionRecord[]) =>
  records.filter((record) => record.type === SESSION_RECORD_OUTPUT).map((record) => [record.offset, Buffer.from(record.data).toString()]);

test('output of a checkpoint that was sent but never committed is sent again after a full synchronisation', () => {
  const sessions = manager();
  sessions.onProduced(TAG, Buffer.from(':1\r\n'), 5);
  assert.deepEqual(outputs(sessions.takeCheckpointRecords(5)), [[0, ':1\r\n']]);
  // The connection broke after the checkpoint was written; a new backup is synchronised.
  sessions.onProduced(TAG, Buffer.from(':2\r\n'), 6);
  sessions.discardEpoch(6);
  sessions.onFullSync();
  assert.deepEqual(outputs(sessions.takeCheckpointRecords(7)), [
    [0, ':1\r\n'],
    [4, ':2\r\n'],
  ]);
});

test('committed output is not sent again', () => {
  const sessions = manager();
  sessions.onProduced(TAG, Buffer.from(':1\r\n'), 5);
  sessions.takeCheckpointRecords(5);
  sessions.onCommitted(5);
  sessions.onFullSync();
  assert.deepEqual(outputs(sessions.takeCheckpointRecords(6)), []);
});

test('a checkpoint given back is sent once, not twice, after a full synchronisation', () => {
  const sessions = manager();
  sessions.onProduced(TAG, Buffer.from(':1\r\n'), 5);
  sessions.giveBack(5, sessions.takeCheckpointRecords(5));
  sessions.onFullSync();
  assert.deepEqual(outputs(sessions.takeCheckpointRecords(6)), [[0, ':1\r\n']]);
});
