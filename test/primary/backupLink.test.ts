// Proves that a primary retries an unreachable backup with exponential backoff: each delay lies
// between half and all of a ceiling that doubles from BACKUP_RECONNECT_MS to the cap, and the
// jitter comes from the injected random source (the same seed, the same delays); and that the
// failures it logs once per kind tell a changed refusal from the same one again.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { BackupLink, failureKind, reconnectDelayMs } from '@hbft/primary/backupLink.ts';
import { silentLogger } from '@hbft/common/log.ts';
import type { AuthConfig } from '@hbft/common/protocol/auth.ts';
import { ProtocolErrorCode } from '@hbft/common/protocol/codes.ts';
import type { Frame } from '@hbft/common/protocol/frame.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import type { FrameConnection } from '@hbft/common/transport/connection.ts';
import { listen } from '@hbft/common/transport/listener.ts';
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

// A backup played by a bare listener: it answers both channels' handshakes, then ends the link the
// way the test says. Only an ERROR frame whose code is E_DEPOSED deposes the primary; a peer that
// closes with a reason quoting E_DEPOSED (a deposed old primary, running as a backup, saying why it
// stops) has not deposed anyone, and the link must treat it as a lost backup.
async function linkAgainst(
  t: TestContext,
  end: (connection: FrameConnection) => void,
  when: 'handshake' | 'after-handshake',
): Promise<'deposed' | 'lost'> {
  const memoryBytes = 16 * 1024 * 1024;
  const limits = protocolLimitsFor(memoryBytes);
  const auth: AuthConfig = { mode: 'hmac', key: Buffer.from('a pre-shared key of 32 bytes....') };
  const listener = await listen({ host: '127.0.0.1', port: 0, auth, limits, logger: silentLogger() });
  t.after(() => listener.close());
  const opened: FrameConnection[] = [];
  listener.on('connection', (connection: FrameConnection) => {
    opened.push(connection);
    connection.on('frame', (frame: Frame) => {
      if (frame.kind !== FrameKind.HANDSHAKE) return;
      if (when === 'handshake') return end(connection);
      connection.send(
        FrameKind.HANDSHAKE_OK,
        { role: 'backup', channel: connection.channel, sessionId: frame.meta.sessionId, appliedEpoch: null },
        { generation: frame.generation },
      );
      if (opened.length === 2) setTimeout(() => end(opened[0]!), 20);
    });
  });
  const link = new BackupLink({
    host: '127.0.0.1',
    port: listener.address().port,
    auth,
    limits,
    logger: silentLogger(),
    memoryBytes,
    guestImageHash: Buffer.alloc(32, 7),
    generation: 2,
    instanceId: Buffer.alloc(16, 1),
    random: () => 0.5,
  });
  t.after(() => link.stop());
  const outcome = new Promise<'deposed' | 'lost'>((resolve) => {
    link.once('deposed', () => resolve('deposed'));
    link.once('lost', () => resolve('lost'));
    if (when === 'handshake') {
      // A refused handshake is retried, not reported as lost: the retry shows it was not a deposition.
      listener.on('connection', () => {
        if (opened.length > 2) resolve('lost');
      });
    }
  });
  link.start();
  return outcome;
}

const quotingReason = 'deposed: E_PEER_ERROR: peer: E_DEPOSED: this node took over as primary at generation 2';

for (const when of ['handshake', 'after-handshake'] as const) {
  test(`an ERROR frame with code E_DEPOSED deposes the primary (${when})`, async (t) => {
    const outcome = await linkAgainst(t, (c) => c.fail({ code: ProtocolErrorCode.DEPOSED, reason: 'the backup took over' }), when);
    assert.equal(outcome, 'deposed');
  });

  test(`a close whose reason only quotes E_DEPOSED does not depose the primary (${when})`, async (t) => {
    assert.equal(await linkAgainst(t, (c) => c.close(quotingReason), when), 'lost', 'GOODBYE quoting E_DEPOSED');
    assert.equal(
      await linkAgainst(t, (c) => c.fail({ code: ProtocolErrorCode.STALE_INSTANCE, reason: quotingReason }), when),
      'lost',
      'an ERROR of another code quoting E_DEPOSED',
    );
  });
}
