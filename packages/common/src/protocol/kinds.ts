/**
 * Frame kinds: one byte in the header. New kinds get new numbers; a number is never reused, and a
 * receiver refuses a kind it does not know (there is no "ignore unknown" class, because both nodes
 * run the same protocol version, checked in the handshake).
 */
export const FrameKind = {
  /** Initiator → acceptor: auth mode and the initiator's nonce. */
  HELLO: 1,
  /** Acceptor → initiator: auth mode, the acceptor's nonce and its proof. */
  CHALLENGE: 2,
  /** Initiator → acceptor: the initiator's proof. */
  AUTH_PROOF: 3,
  /** Acceptor → initiator: the initiator's proof was accepted. */
  AUTH_OK: 4,
  /** Primary → backup, on each channel after auth: who I am and what I run. */
  HANDSHAKE: 5,
  /** Backup → primary: the handshake is accepted. */
  HANDSHAKE_OK: 6,
  HEARTBEAT: 7,
  FULL_SYNC_BEGIN: 8,
  FULL_SYNC_PAGES: 9,
  FULL_SYNC_END: 10,
  CHECKPOINT_BEGIN: 11,
  CHECKPOINT_PAGES: 12,
  CHECKPOINT_END: 13,
  /** Backup → primary: the checkpoint (or full sync) of the header's epoch is applied. */
  ACK: 14,
  // 15 was NACK, which no backup ever sent (a refused checkpoint closes the connection): retired.
  /** Either way: a fatal error; the sender closes the connection after it. */
  ERROR: 16,
  /** Either way: an orderly close. */
  GOODBYE: 17,
  // 18 was CHECKPOINT_OUTPUT (the byte-stream sessions' output, carried for resuming clients);
  // the guest's own TCP stack in replicated memory made it unnecessary (issue 11): retired.
} as const;

export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];
export type FrameKindName = keyof typeof FrameKind;

const names: Array<FrameKindName | undefined> = [];
for (const [name, value] of Object.entries(FrameKind)) names[value] = name as FrameKindName;

export const frameKinds: readonly FrameKind[] = Object.values(FrameKind);

export function isFrameKind(value: number): value is FrameKind {
  return Number.isInteger(value) && names[value] !== undefined;
}

/** `CHECKPOINT_PAGES`, or `UNKNOWN(42)` for a number that is not a kind. */
export function frameKindName(kind: number): string {
  return names[kind] ?? `UNKNOWN(${kind})`;
}

/** The kinds exchanged while a connection authenticates (ERROR carries the peer's refusal). */
export const authKinds: ReadonlySet<FrameKind> = new Set([
  FrameKind.HELLO,
  FrameKind.CHALLENGE,
  FrameKind.AUTH_PROOF,
  FrameKind.AUTH_OK,
  FrameKind.ERROR,
]);

/** Kinds accepted on the control channel (ws) once authenticated: small messages only. */
export const controlKinds: ReadonlySet<FrameKind> = new Set([
  FrameKind.HANDSHAKE,
  FrameKind.HANDSHAKE_OK,
  FrameKind.HEARTBEAT,
  FrameKind.ACK,
  FrameKind.ERROR,
  FrameKind.GOODBYE,
]);

/** Kinds accepted on the bulk channel (raw TCP) once authenticated: checkpoint data. */
export const bulkKinds: ReadonlySet<FrameKind> = new Set([
  FrameKind.HANDSHAKE,
  FrameKind.HANDSHAKE_OK,
  FrameKind.FULL_SYNC_BEGIN,
  FrameKind.FULL_SYNC_PAGES,
  FrameKind.FULL_SYNC_END,
  FrameKind.CHECKPOINT_BEGIN,
  FrameKind.CHECKPOINT_PAGES,
  FrameKind.CHECKPOINT_END,
  FrameKind.ERROR,
  FrameKind.GOODBYE,
]);

/**
 * Kinds accepted on the heartbeat channel (ws, a connection of the primary's heartbeat thread)
 * once authenticated: nothing but liveness, so a busy main thread cannot delay it.
 */
export const heartbeatKinds: ReadonlySet<FrameKind> = new Set([
  FrameKind.HANDSHAKE,
  FrameKind.HANDSHAKE_OK,
  FrameKind.HEARTBEAT,
  FrameKind.ERROR,
  FrameKind.GOODBYE,
]);

export type Channel = 'control' | 'bulk' | 'heartbeat';

export function kindsForChannel(channel: Channel): ReadonlySet<FrameKind> {
  return channel === 'control' ? controlKinds : channel === 'bulk' ? bulkKinds : heartbeatKinds;
}
