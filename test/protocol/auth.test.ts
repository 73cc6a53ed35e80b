// Proves that the challenge–response authenticates two sides that share a key, and refuses a wrong key, a replayed or reflected proof, any other message before authentication, a timeout, and a keyed side facing an insecure one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '@hbft/common/random.ts';
import { AuthMachine, authProof, type AuthConfig, type AuthStep, type OutgoingMessage } from '@hbft/common/protocol/auth.ts';
import type { AuthRole } from '@hbft/common/protocol/seal.ts';
import { ProtocolErrorCode } from '@hbft/common/protocol/codes.ts';
import { FrameDecoder } from '@hbft/common/protocol/decoder.ts';
import { FrameEncoder, concatFrame, type Frame } from '@hbft/common/protocol/frame.ts';
import { FrameKind, authKinds, frameKinds } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';

const limits = protocolLimitsFor(64 * 1024 * 1024);
const key = Buffer.from('0123456789abcdef0123456789abcdef');
const otherKey = Buffer.from('fedcba9876543210fedcba9876543210');
const keyed: AuthConfig = { mode: 'hmac', key };
const insecure: AuthConfig = { mode: 'insecure' };

/** One side: its machine plus real frame encoding and decoding, so messages cross the wire format. */
class Side {
  readonly machine: AuthMachine;
  private readonly encoder = new FrameEncoder(limits);
  private readonly decoder = new FrameDecoder({ limits, kindsAccepted: new Set(frameKinds), kindsAcceptedWhere: 'in this test' });
  last: AuthStep;

  constructor(role: AuthRole, config: AuthConfig, seed: number, nowMs = 0) {
    const random = new SeededRandom(seed);
    this.machine = new AuthMachine({ role, config, randomBytes: (n) => Buffer.from(random.bytes(n)), nowMs, authTimeoutMs: 1000 });
    this.last = this.machine.start();
  }

  /** Encodes messages from the other side and feeds the decoded frames to this machine. */
  receive(messages: readonly OutgoingMessage[]): AuthStep {
    const sent: OutgoingMessage[] = [];
    for (const message of messages) {
      const bytes = concatFrame(this.encoder.encode(message.kind, message.meta as never));
      const step = this.decoder.push(bytes);
      assert.equal(step.failure, null);
      for (const frame of step.frames) {
        this.last = this.machine.onFrame(frame);
        sent.push(...this.last.send);
      }
    }
    this.last = { send: sent, status: this.machine.status };
    return this.last;
  }
}

/** Runs the exchange until neither side has anything to send. */
function run(initiator: Side, acceptor: Side): void {
  let toAcceptor = initiator.last.send;
  for (let round = 0; round < 10 && toAcceptor.length > 0; round++) {
    const toInitiator = acceptor.receive(toAcceptor).send;
    toAcceptor = initiator.receive(toInitiator).send;
  }
}

function frameOf<K extends FrameKind>(kind: K, meta: Frame<K>['meta'], sequence = 0): Frame {
  return { kind, flags: 0, generation: 0, epoch: 0, sequence, checksum: 0, meta, payload: Buffer.alloc(0) } as unknown as Frame;
}

test('two sides with the same key authenticate each other', () => {
  const initiator = new Side('initiator', keyed, 1);
  const acceptor = new Side('acceptor', keyed, 2);
  assert.equal(initiator.last.send[0]!.kind, FrameKind.HELLO);
  assert.equal(acceptor.last.send.length, 0, 'the acceptor waits for HELLO');
  run(initiator, acceptor);
  assert.deepEqual(initiator.machine.status, { state: 'authenticated', mode: 'hmac' });
  assert.deepEqual(acceptor.machine.status, { state: 'authenticated', mode: 'hmac' });
});

test('explicit insecure mode on both sides connects', () => {
  const initiator = new Side('initiator', insecure, 1);
  const acceptor = new Side('acceptor', insecure, 2);
  run(initiator, acceptor);
  assert.deepEqual(initiator.machine.status, { state: 'authenticated', mode: 'insecure' });
  assert.deepEqual(acceptor.machine.status, { state: 'authenticated', mode: 'insecure' });
});

test('a wrong key fails on the initiator, which tells the acceptor', () => {
  const initiator = new Side('initiator', { mode: 'hmac', key: otherKey }, 1);
  const acceptor = new Side('acceptor', keyed, 2);
  run(initiator, acceptor);
  const status = initiator.machine.status;
  assert.equal(status.state, 'failed');
  assert.equal(status.state === 'failed' && status.failure.code, ProtocolErrorCode.AUTH_FAILED);
  const acceptorStatus = acceptor.machine.status;
  assert.equal(acceptorStatus.state === 'failed' && acceptorStatus.failure.code, ProtocolErrorCode.AUTH_REFUSED);
  assert.match(acceptorStatus.state === 'failed' ? acceptorStatus.failure.reason : '', /E_AUTH_FAILED/);
});

test('an initiator with a wrong key that skips checking is still refused by the acceptor', () => {
  const acceptor = new Side('acceptor', keyed, 2);
  const hello = { kind: FrameKind.HELLO, meta: { authMode: 'hmac' as const, nonce: Buffer.alloc(32, 9) } };
  const challenge = acceptor.receive([hello]).send[0]!;
  assert.equal(challenge.kind, FrameKind.CHALLENGE);
  const nonceA = challenge.kind === FrameKind.CHALLENGE ? challenge.meta.nonce : Buffer.alloc(0);
  const forged = authProof(otherKey, 'initiator', Buffer.alloc(32, 9), nonceA);
  const step = acceptor.receive([{ kind: FrameKind.AUTH_PROOF, meta: { proof: forged } }]);
  assert.equal(step.status.state === 'failed' && step.status.failure.code, ProtocolErrorCode.AUTH_FAILED);
  assert.equal(step.send[0]!.kind, FrameKind.ERROR, 'the acceptor tells the peer why');
});

test('a recorded proof does not verify in a new session (replay)', () => {
  // Record a genuine session.
  const initiator = new Side('initiator', keyed, 1);
  const acceptor = new Side('acceptor', keyed, 2);
  const hello = initiator.last.send;
  const challenge = acceptor.receive(hello).send;
  const proof = initiator.receive(challenge).send;
  assert.equal(proof[0]!.kind, FrameKind.AUTH_PROOF);
  // Replay HELLO and the proof to a fresh acceptor: its nonce differs, so the proof is stale.
  const victim = new Side('acceptor', keyed, 3);
  victim.receive(hello);
  const step = victim.receive(proof);
  assert.equal(step.status.state === 'failed' && step.status.failure.code, ProtocolErrorCode.AUTH_FAILED);
});

test("the acceptor's own proof sent back to it does not verify (reflection)", () => {
  const acceptor = new Side('acceptor', keyed, 2);
  const challenge = acceptor.receive([{ kind: FrameKind.HELLO, meta: { authMode: 'hmac', nonce: Buffer.alloc(32, 1) } }]).send[0]!;
  const reflected = challenge.kind === FrameKind.CHALLENGE ? challenge.meta.proof : Buffer.alloc(0);
  assert.equal(reflected.length, 32);
  const step = acceptor.receive([{ kind: FrameKind.AUTH_PROOF, meta: { proof: reflected } }]);
  assert.equal(step.status.state === 'failed' && step.status.failure.code, ProtocolErrorCode.AUTH_FAILED);
});

test('the initiator refuses a CHALLENGE that echoes its own nonce (reflected HELLO)', () => {
  const initiator = new Side('initiator', keyed, 1);
  const hello = initiator.last.send[0]!;
  const nonce = hello.kind === FrameKind.HELLO ? hello.meta.nonce : Buffer.alloc(0);
  const step = initiator.receive([{ kind: FrameKind.CHALLENGE, meta: { authMode: 'hmac', nonce, proof: Buffer.alloc(32) } }]);
  assert.equal(step.status.state === 'failed' && step.status.failure.code, ProtocolErrorCode.AUTH_FAILED);
});

test('nothing but the next auth message is accepted before authentication', () => {
  const heartbeat = frameOf(FrameKind.HEARTBEAT, { sentAtMs: 1 });
  for (const [role, frame] of [
    ['acceptor', heartbeat],
    ['initiator', heartbeat],
    ['acceptor', frameOf(FrameKind.AUTH_PROOF, { proof: Buffer.alloc(32) })],
    ['initiator', frameOf(FrameKind.AUTH_OK, { authMode: 'hmac' })],
    ['acceptor', frameOf(FrameKind.CHECKPOINT_BEGIN, { pageCount: 0, partCount: 0 })],
  ] as const) {
    const machine = new AuthMachine({ role, config: keyed, randomBytes: (n) => Buffer.alloc(n, 1), nowMs: 0 });
    machine.start();
    const step = machine.onFrame(frame);
    assert.equal(
      step.status.state === 'failed' && step.status.failure.code,
      ProtocolErrorCode.AUTH_UNEXPECTED,
      `${role} given ${frame.kind}`,
    );
    assert.equal(step.send[0]?.kind, FrameKind.ERROR);
  }
  // A second HELLO after the first is out of order too.
  const acceptor = new Side('acceptor', keyed, 2);
  const hello = { kind: FrameKind.HELLO, meta: { authMode: 'hmac' as const, nonce: Buffer.alloc(32, 1) } };
  acceptor.receive([hello]);
  assert.equal(acceptor.receive([hello]).status.state, 'failed');
  assert.ok(authKinds.has(FrameKind.HELLO));
});

test('a keyed side refuses an insecure peer, in both directions, with a clear error', () => {
  {
    const initiator = new Side('initiator', insecure, 1);
    const acceptor = new Side('acceptor', keyed, 2);
    run(initiator, acceptor);
    const a = acceptor.machine.status;
    assert.equal(a.state === 'failed' && a.failure.code, ProtocolErrorCode.AUTH_MODE_MISMATCH);
    assert.match(a.state === 'failed' ? a.failure.reason : '', /acceptor requires HMAC .* initiator runs in explicit insecure mode/);
    const i = initiator.machine.status;
    assert.equal(i.state === 'failed' && i.failure.code, ProtocolErrorCode.AUTH_REFUSED);
    assert.match(i.state === 'failed' ? i.failure.reason : '', /E_AUTH_MODE_MISMATCH/);
  }
  {
    const initiator = new Side('initiator', keyed, 1);
    const acceptor = new Side('acceptor', insecure, 2);
    run(initiator, acceptor);
    const a = acceptor.machine.status;
    assert.equal(a.state === 'failed' && a.failure.code, ProtocolErrorCode.AUTH_MODE_MISMATCH);
    assert.match(a.state === 'failed' ? a.failure.reason : '', /acceptor runs in explicit insecure mode/);
  }
  {
    // A keyed initiator never accepts an insecure CHALLENGE, even if the acceptor skipped its check.
    const initiator = new Side('initiator', keyed, 1);
    const step = initiator.receive([
      { kind: FrameKind.CHALLENGE, meta: { authMode: 'insecure', nonce: Buffer.alloc(32, 7), proof: Buffer.alloc(0) } },
    ]);
    assert.equal(step.status.state === 'failed' && step.status.failure.code, ProtocolErrorCode.AUTH_MODE_MISMATCH);
  }
});

test('authentication that takes too long fails on a tick', () => {
  const acceptor = new Side('acceptor', keyed, 2, 5_000);
  assert.equal(acceptor.machine.onTick(5_999).status.state, 'pending');
  const step = acceptor.machine.onTick(6_000);
  assert.equal(step.status.state === 'failed' && step.status.failure.code, ProtocolErrorCode.AUTH_TIMEOUT);
  assert.equal(step.send[0]?.kind, FrameKind.ERROR);
});

test('the same seeds give the same exchange (randomness is injected)', () => {
  const transcript = (): string[] => {
    const initiator = new Side('initiator', keyed, 11);
    const acceptor = new Side('acceptor', keyed, 12);
    const hello = initiator.last.send;
    const challenge = acceptor.receive(hello).send;
    return [...hello, ...challenge].map((m) => JSON.stringify(m.meta));
  };
  assert.deepEqual(transcript(), transcript());
});
