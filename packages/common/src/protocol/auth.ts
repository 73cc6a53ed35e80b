/**
 * Mutual challenge–response authentication with a pre-shared key, as a pure state machine per
 * side (style.md, etcd raft): inputs are received frames and ticks with the time; outputs are
 * messages to send and a status. Randomness is injected. The driver runs it on every new
 * connection before anything else is accepted.
 *
 *   initiator                                   acceptor
 *   HELLO {authMode, nonceI}            →
 *                                       ←       CHALLENGE {authMode, nonceA, proofA}
 *   verify proofA; AUTH_PROOF {proofI}  →
 *                                       ←       verify proofI; AUTH_OK {authMode}
 *
 *   proofR = HMAC-SHA256(key, "hbft-auth\0" ‖ u8 protocolVersion ‖ u8 role R ‖ nonceI ‖ nonceA)
 *
 * Both nonces are fresh per connection (32 bytes each), so a recorded proof does not verify in
 * another session (replay). The role byte differs for the two proofs, so the acceptor's proof
 * cannot be sent back to it as the initiator's (reflection), and the initiator reveals its proof
 * only after the acceptor has proved knowledge of the key. Proofs are compared with
 * `crypto.timingSafeEqual`.
 *
 * With a key, both sides then seal every later frame of the connection with keys derived from the
 * key and both nonces (`sealKeys`, seal.ts): AUTH_OK is the acceptor's last plaintext frame, and
 * AUTH_PROOF the initiator's.
 *
 * Insecure mode (no key) must be chosen explicitly and by both sides: the same messages flow with
 * empty proofs, and nothing is sealed afterwards. A keyed side refuses an insecure peer and vice versa, with E_AUTH_MODE_MISMATCH.
 *
 * Anything other than the next expected message fails authentication (E_AUTH_UNEXPECTED). On any
 * failure the machine emits an ERROR for the peer (so its operator learns why), except when the
 * failure is the peer's own ERROR.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { assert } from '../errors.ts';
import { ProtocolErrorCode, protocolFailure, type ProtocolErrorCode as Code, type ProtocolFailure } from './codes.ts';
import type { Frame } from './frame.ts';
import { FrameKind, frameKindName, type Channel } from './kinds.ts';
import { authKeyBytesMin, authNonceBytes, authTimeoutMs as authTimeoutMsDefault, errorMessageBytesMax, protocolVersion } from './limits.ts';
import type { AuthMode, MetaOf } from './messages.ts';
import { sealKeysFor, type AuthRole, type SealKeys } from './seal.ts';

/** A key for HMAC mode, or explicit insecure mode. There is no default: the caller chooses. */
export type AuthConfig = { readonly mode: 'hmac'; readonly key: Buffer } | { readonly mode: 'insecure' };

/** A message for the driver to encode and send (it assigns sequence numbers; generation and epoch are 0). */
export type OutgoingMessage = { [K in FrameKind]: { readonly kind: K; readonly meta: MetaOf<K> } }[FrameKind];

export type AuthStatus =
  | { readonly state: 'pending' }
  | { readonly state: 'authenticated'; readonly mode: AuthMode }
  | { readonly state: 'failed'; readonly failure: ProtocolFailure };

export interface AuthStep {
  readonly send: readonly OutgoingMessage[];
  readonly status: AuthStatus;
}

export interface AuthMachineOptions {
  role: AuthRole;
  config: AuthConfig;
  /** The random source: crypto.randomBytes in production, a seeded one in tests. */
  randomBytes: (bytes: number) => Buffer;
  /** The time when the connection was established. */
  nowMs: number;
  authTimeoutMs?: number;
}

const proofLabel = Buffer.from('hbft-auth\0', 'latin1');
const roleByte: Record<AuthRole, number> = { initiator: 1, acceptor: 2 };
const emptyProof: Buffer = Buffer.alloc(0);
const pending: AuthStatus = { state: 'pending' };

/** The HMAC proof that `role` knows `key`, bound to both nonces and the protocol version. */
export function authProof(key: Buffer, role: AuthRole, nonceInitiator: Buffer, nonceAcceptor: Buffer): Buffer {
  return createHmac('sha256', key)
    .update(proofLabel)
    .update(Uint8Array.of(protocolVersion, roleByte[role]))
    .update(nonceInitiator)
    .update(nonceAcceptor)
    .digest();
}

type Phase = 'idle' | 'awaitHello' | 'awaitChallenge' | 'awaitProof' | 'awaitOk' | 'done';

export class AuthMachine {
  readonly role: AuthRole;
  private readonly config: AuthConfig;
  private readonly randomBytes: (bytes: number) => Buffer;
  private readonly deadlineMs: number;
  private phase: Phase = 'idle';
  private nonceInitiator: Buffer = emptyProof;
  private nonceAcceptor: Buffer = emptyProof;
  private statusNow: AuthStatus = pending;

  constructor(options: AuthMachineOptions) {
    if (options.config.mode === 'hmac') {
      assert(options.config.key.length >= authKeyBytesMin, `a pre-shared key has at least ${authKeyBytesMin} bytes`);
    }
    this.role = options.role;
    this.config = options.config;
    this.randomBytes = options.randomBytes;
    this.deadlineMs = options.nowMs + (options.authTimeoutMs ?? authTimeoutMsDefault);
  }

  get status(): AuthStatus {
    return this.statusNow;
  }

  get mode(): AuthMode {
    return this.config.mode;
  }

  /**
   * The keys that seal the rest of this connection on `channel` (seal.ts), once authenticated with
   * a key; null in insecure mode.
   */
  sealKeys(channel: Channel): SealKeys | null {
    assert(this.statusNow.state === 'authenticated', 'sealing keys exist once authenticated');
    if (this.config.mode !== 'hmac') return null;
    return sealKeysFor(this.config.key, this.role, channel, this.nonceInitiator, this.nonceAcceptor);
  }

  /** Called once when the connection is up: the initiator says HELLO, the acceptor waits. */
  start(): AuthStep {
    assert(this.phase === 'idle', 'auth starts once');
    if (this.role === 'acceptor') {
      this.phase = 'awaitHello';
      return this.step([]);
    }
    this.nonceInitiator = this.freshNonce();
    this.phase = 'awaitChallenge';
    return this.step([{ kind: FrameKind.HELLO, meta: { authMode: this.config.mode, nonce: this.nonceInitiator } }]);
  }

  /** A frame received while authenticating (the driver routes every frame here until done). */
  onFrame(frame: Frame): AuthStep {
    assert(this.phase !== 'idle', 'auth has started');
    if (this.phase === 'done') return this.step([]);
    if (frame.kind === FrameKind.ERROR) {
      return this.fail(ProtocolErrorCode.AUTH_REFUSED, `peer refused authentication: ${frame.meta.code}: ${frame.meta.message}`, false);
    }
    switch (this.phase) {
      case 'awaitHello':
        if (frame.kind === FrameKind.HELLO) return this.onHello(frame);
        break;
      case 'awaitChallenge':
        if (frame.kind === FrameKind.CHALLENGE) return this.onChallenge(frame);
        break;
      case 'awaitProof':
        if (frame.kind === FrameKind.AUTH_PROOF) return this.onAuthProof(frame);
        break;
      case 'awaitOk':
        if (frame.kind === FrameKind.AUTH_OK) return this.onAuthOk(frame);
        break;
    }
    return this.fail(
      ProtocolErrorCode.AUTH_UNEXPECTED,
      `${frameKindName(frame.kind)} received by the ${this.role} while waiting for ${expected[this.phase]}; nothing else is accepted before authentication`,
    );
  }

  /** Time passes: authentication that takes too long fails. */
  onTick(nowMs: number): AuthStep {
    if (this.phase === 'done' || this.phase === 'idle' || nowMs < this.deadlineMs) return this.step([]);
    return this.fail(
      ProtocolErrorCode.AUTH_TIMEOUT,
      `the ${this.role} was still waiting for ${expected[this.phase]} at the authentication deadline`,
    );
  }

  private onHello(frame: Frame<typeof FrameKind.HELLO>): AuthStep {
    const mismatch = this.modeMismatch(frame.meta.authMode);
    if (mismatch !== null) return mismatch;
    this.nonceInitiator = frame.meta.nonce;
    this.nonceAcceptor = this.freshNonce();
    this.phase = 'awaitProof';
    const proof =
      this.config.mode === 'hmac' ? authProof(this.config.key, 'acceptor', this.nonceInitiator, this.nonceAcceptor) : emptyProof;
    return this.step([{ kind: FrameKind.CHALLENGE, meta: { authMode: this.config.mode, nonce: this.nonceAcceptor, proof } }]);
  }

  private onChallenge(frame: Frame<typeof FrameKind.CHALLENGE>): AuthStep {
    const mismatch = this.modeMismatch(frame.meta.authMode);
    if (mismatch !== null) return mismatch;
    if (frame.meta.nonce.equals(this.nonceInitiator)) {
      return this.fail(ProtocolErrorCode.AUTH_FAILED, "the acceptor's nonce equals the initiator's (a reflected HELLO)");
    }
    this.nonceAcceptor = frame.meta.nonce;
    let proof = emptyProof;
    if (this.config.mode === 'hmac') {
      const expectedProof = authProof(this.config.key, 'acceptor', this.nonceInitiator, this.nonceAcceptor);
      if (!proofsEqual(frame.meta.proof, expectedProof)) {
        return this.fail(ProtocolErrorCode.AUTH_FAILED, "the acceptor's proof does not verify: the two nodes have different keys");
      }
      proof = authProof(this.config.key, 'initiator', this.nonceInitiator, this.nonceAcceptor);
    }
    this.phase = 'awaitOk';
    return this.step([{ kind: FrameKind.AUTH_PROOF, meta: { proof } }]);
  }

  private onAuthProof(frame: Frame<typeof FrameKind.AUTH_PROOF>): AuthStep {
    if (this.config.mode === 'hmac') {
      const expectedProof = authProof(this.config.key, 'initiator', this.nonceInitiator, this.nonceAcceptor);
      if (!proofsEqual(frame.meta.proof, expectedProof)) {
        return this.fail(
          ProtocolErrorCode.AUTH_FAILED,
          "the initiator's proof does not verify: a different key, or a replayed or reflected proof",
        );
      }
    } else if (frame.meta.proof.length !== 0) {
      return this.fail(ProtocolErrorCode.AUTH_MODE_MISMATCH, 'the initiator sent a proof in insecure mode');
    }
    return this.succeed([{ kind: FrameKind.AUTH_OK, meta: { authMode: this.config.mode } }]);
  }

  private onAuthOk(frame: Frame<typeof FrameKind.AUTH_OK>): AuthStep {
    const mismatch = this.modeMismatch(frame.meta.authMode);
    if (mismatch !== null) return mismatch;
    return this.succeed([]);
  }

  private modeMismatch(peerMode: AuthMode): AuthStep | null {
    if (peerMode === this.config.mode) return null;
    const peer = this.role === 'initiator' ? 'acceptor' : 'initiator';
    const reason =
      this.config.mode === 'hmac'
        ? `the ${this.role} requires HMAC authentication with a pre-shared key but the ${peer} runs in explicit insecure mode (no key); configure the same key on both nodes`
        : `the ${this.role} runs in explicit insecure mode (no key) but the ${peer} authenticates with a pre-shared key; both nodes must agree`;
    return this.fail(ProtocolErrorCode.AUTH_MODE_MISMATCH, reason);
  }

  private freshNonce(): Buffer {
    const nonce = this.randomBytes(authNonceBytes);
    assert(nonce.length === authNonceBytes, 'the random source gives the bytes asked for');
    return Buffer.from(nonce);
  }

  private succeed(send: OutgoingMessage[]): AuthStep {
    this.phase = 'done';
    this.statusNow = { state: 'authenticated', mode: this.config.mode };
    return this.step(send);
  }

  private fail(code: Code, reason: string, tellPeer = true): AuthStep {
    this.phase = 'done';
    this.statusNow = { state: 'failed', failure: protocolFailure(code, reason) };
    const message = reason.length > errorMessageBytesMax / 4 ? reason.slice(0, errorMessageBytesMax / 4) : reason;
    return this.step(tellPeer ? [{ kind: FrameKind.ERROR, meta: { code, message } }] : []);
  }

  private step(send: OutgoingMessage[]): AuthStep {
    return { send, status: this.statusNow };
  }
}

const expected: Record<Phase, string> = {
  idle: 'nothing',
  awaitHello: 'HELLO',
  awaitChallenge: 'CHALLENGE',
  awaitProof: 'AUTH_PROOF',
  awaitOk: 'AUTH_OK',
  done: 'nothing',
};

function proofsEqual(received: Buffer, expectedProof: Buffer): boolean {
  return received.length === expectedProof.length && timingSafeEqual(received, expectedProof);
}
