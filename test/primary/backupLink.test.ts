// Proves that a primary retries an unreachable backup with exponential backoff: each delay lies
// between half and all of a ceiling that doubles from BACKUP_RECONNECT_MS to the cap, and the
// jitter comes from the injected random source (the same seed, the same delays); and that the
// failures it logs once per kind tell a changed refusal from the same one again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureKind, reconnectDelayMs } from '@hbft/primary/backupLink.ts';
import { BACKUP_RECONNECT_MAX_MS, BACKUP_RECONNECT_MS } from '@hbft/common/constants.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';

test('reconnection delays double up to the cap, jittered by the injected random source', (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed}`);
  const random = new SeededRandom(seed);
  const delays: number[] = [];
  for (let failures = 1; failures <= 12; failures++) {
    const ceilingMs = Math.min(BACKUP_RECONNECT_MAX_MS, BACKUP_RECONNECT_MS * 2 ** (failures - 1));
    const delayMs = reconnectDelayMs(failures, () => random.next());
    assert.ok(
      delayMs >= ceilingMs / 2 && delayMs <= ceilingMs,
      `failure ${failures}: ${delayMs} ms within [${ceilingMs / 2}, ${ceilingMs}] (seed ${seed})`,
    );
    delays.push(delayMs);
  }
  assert.equal(
    reconnectDelayMs(1, () => 0),
    BACKUP_RECONNECT_MS / 2,
  );
  assert.equal(
    reconnectDelayMs(50, () => 0.999_999),
    BACKUP_RECONNECT_MAX_MS,
    'the cap holds however long the backup stays away',
  );
  const again = new SeededRandom(seed);
  assert.deepEqual(
    delays,
    delays.map((_, i) => reconnectDelayMs(i + 1, () => again.next())),
    'the same seed, the same delays',
  );
  // Attempts in the first 15 s of an outage: at most as many as when every delay is its shortest
  // (half the ceiling), and that is well under a fixed 500 ms retry's 30.
  const attemptsIn15s = (next: () => number): number => {
    let elapsedMs = 0;
    let attempts = 0;
    while (elapsedMs < 15_000) elapsedMs += reconnectDelayMs(++attempts, next);
    return attempts;
  };
  const attemptsMax = attemptsIn15s(() => 0);
  assert.ok(attemptsMax <= (15_000 / BACKUP_RECONNECT_MS) * 0.6, `${attemptsMax} attempts in 15 s at the shortest delays`);
  const attempts = attemptsIn15s(() => random.next());
  assert.ok(attempts <= attemptsMax, `${attempts} attempts in 15 s (seed ${seed})`);
});

test('failures of one kind are one kind, whatever their numbers; another refusal is another kind', () => {
  const memory = (backupBytes: number) =>
    `E_PEER_ERROR: peer: E_MEMORY_MISMATCH: the primary's guest has 67108864 bytes of memory, this backup ${backupBytes}`;
  assert.equal(failureKind(memory(33554432)), failureKind(memory(16777216)));
  assert.notEqual(failureKind(memory(33554432)), failureKind('E_PEER_ERROR: peer: E_IMAGE_MISMATCH: another guest image'));
  assert.equal(failureKind('connect ECONNREFUSED 127.0.0.1:7001'), failureKind('connect ECONNREFUSED 127.0.0.1:7002'));
  assert.notEqual(failureKind('connect ECONNREFUSED 127.0.0.1:7001'), failureKind(memory(1)));
  assert.equal(failureKind('no handshake answer on the control channel'), 'no handshake answer on the control channel');
});
