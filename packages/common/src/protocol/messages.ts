/**
 * The meta schema of every frame kind: TypeScript types for our own code, and a validator for
 * meta that came off the wire. The validator checks every field's type and range and returns a
 * reason naming the field, never throwing (style.md: untrusted input is answered, not asserted).
 *
 * Header fields (generation, epoch, sequence) are not repeated in meta: the header's `generation`
 * is the sender's generation for every kind, and its `epoch` is the checkpoint's epoch for the
 * checkpoint, full-sync and ACK kinds (0 where it has no meaning).
 *
 * Maps are strict: a field missing, a field not in the schema, or a map with a prototype (a
 * `__proto__` key decoded by msgpack-lite) is refused. Adding a field is a protocol version bump.
 */
import { MEMORY_BYTES_MAX, MEMORY_BYTES_MIN, PAGE_BYTES } from '../guest/addressMap.ts';
import { PAGE_RECORD_BYTES_MAX, PAGE_RECORD_HEADER_BYTES } from '../checkpoint/pageCodec.ts';
import { FrameKind, type Channel } from './kinds.ts';
import {
  authNonceBytes,
  authProofBytes,
  errorCodeBytesMax,
  errorMessageBytesMax,
  guestImageHashBytes,
  sessionIdBytes,
  type ProtocolLimits,
} from './limits.ts';

export type AuthMode = 'hmac' | 'insecure';
export type NodeRole = 'primary' | 'backup';
/** What an ACK answers. */
export type AckSubject = 'checkpoint' | 'full-sync';

export interface HelloMeta {
  authMode: AuthMode;
  /** The initiator's fresh nonce (authNonceBytes). */
  nonce: Buffer;
}

export interface ChallengeMeta {
  authMode: AuthMode;
  /** The acceptor's fresh nonce (authNonceBytes). */
  nonce: Buffer;
  /** The acceptor's proof (authProofBytes), or empty in insecure mode. */
  proof: Buffer;
}

export interface AuthProofMeta {
  /** The initiator's proof (authProofBytes), or empty in insecure mode. */
  proof: Buffer;
}

export interface AuthOkMeta {
  authMode: AuthMode;
}

/** Sent by the primary on each channel after authentication; the backup pairs channels by `sessionId`. */
export interface HandshakeMeta {
  protocolVersion: number;
  memoryBytes: number;
  /** SHA-256 of the guest image (guestImageHashBytes). */
  guestImageHash: Buffer;
  role: NodeRole;
  channel: Channel;
  /** Random, chosen by the primary per session, equal on both channels (sessionIdBytes). */
  sessionId: Buffer;
  /**
   * Random, chosen once per primary process (sessionIdBytes): a backup that holds the state of one
   * primary instance tells a restarted primary apart from the same one reconnecting.
   */
  instanceId: Buffer;
}

export interface HandshakeOkMeta {
  role: NodeRole;
  channel: Channel;
  sessionId: Buffer;
  /** The last epoch the backup applied in this generation, or null when it holds no state. */
  appliedEpoch: number | null;
}

export interface HeartbeatMeta {
  /** The sender's clock when sent (for round-trip estimates; not compared across hosts). */
  sentAtMs: number;
}

/**
 * CHECKPOINT_BEGIN: the payload is the machine's CPU and device state (Machine.getState);
 * `pageCount` page records follow in `partCount` PAGES frames, then END.
 */
export interface CheckpointBeginMeta {
  pageCount: number;
  partCount: number;
}

/** FULL_SYNC_BEGIN: as CHECKPOINT_BEGIN; pages not sent are zero on the backup. */
export interface FullSyncBeginMeta {
  memoryBytes: number;
  pageCount: number;
  partCount: number;
}

/** PAGES: the payload is `pageCount` page records (checkpoint/pageCodec.ts). */
export interface PagesMeta {
  /** Index of this frame within its checkpoint, from 0. */
  part: number;
  pageCount: number;
}

/** END: totals, so the backup applies only a complete and verified checkpoint. */
export interface EndMeta {
  pageCount: number;
  partCount: number;
  /** `checkpointChecksum` over the BEGIN and PAGES frames, in order (checkpointStream.ts). */
  checksum: number;
}

export interface AckMeta {
  subject: AckSubject;
}

export interface ErrorMeta {
  code: string;
  message: string;
}

export interface GoodbyeMeta {
  reason: string;
}

export interface MetaByKind {
  [FrameKind.HELLO]: HelloMeta;
  [FrameKind.CHALLENGE]: ChallengeMeta;
  [FrameKind.AUTH_PROOF]: AuthProofMeta;
  [FrameKind.AUTH_OK]: AuthOkMeta;
  [FrameKind.HANDSHAKE]: HandshakeMeta;
  [FrameKind.HANDSHAKE_OK]: HandshakeOkMeta;
  [FrameKind.HEARTBEAT]: HeartbeatMeta;
  [FrameKind.FULL_SYNC_BEGIN]: FullSyncBeginMeta;
  [FrameKind.FULL_SYNC_PAGES]: PagesMeta;
  [FrameKind.FULL_SYNC_END]: EndMeta;
  [FrameKind.CHECKPOINT_BEGIN]: CheckpointBeginMeta;
  [FrameKind.CHECKPOINT_PAGES]: PagesMeta;
  [FrameKind.CHECKPOINT_END]: EndMeta;
  [FrameKind.ACK]: AckMeta;
  [FrameKind.ERROR]: ErrorMeta;
  [FrameKind.GOODBYE]: GoodbyeMeta;
}

export type MetaOf<K extends FrameKind> = MetaByKind[K];

/** The longest payload a kind may carry; 0 for kinds that carry meta only. */
export function payloadBytesMaxFor(kind: FrameKind, limits: ProtocolLimits): number {
  switch (kind) {
    case FrameKind.FULL_SYNC_BEGIN:
    case FrameKind.CHECKPOINT_BEGIN:
      return limits.machineStateBytesMax;
    case FrameKind.FULL_SYNC_PAGES:
    case FrameKind.CHECKPOINT_PAGES:
      return limits.framePayloadBytesMax;
    default:
      return 0;
  }
}

// ---- field checks: each returns null when the value is acceptable, or what is wrong with it ----

type FieldCheck = (value: unknown, limits: ProtocolLimits) => string | null;

/**
 * A real Buffer. `Buffer.isBuffer` alone is `instanceof`, which a decoded map whose `__proto__`
 * key held binary also passes; reading `.length` of that throws. `ArrayBuffer.isView` checks the
 * object itself.
 */
function isBinary(value: unknown): value is Buffer {
  return ArrayBuffer.isView(value) && Buffer.isBuffer(value);
}

function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (isBinary(value)) return `${value.length} bytes of binary`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'number') return String(value);
  return typeof value;
}

function uint(max: (limits: ProtocolLimits) => number, min = 0): FieldCheck {
  return (value, limits) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) return `expected an integer, got ${describe(value)}`;
    const upper = max(limits);
    if (value < min || value > upper) return `${value} is outside [${min}, ${upper}]`;
    return null;
  };
}

const u8 = uint(() => 0xff);
const u32 = uint(() => 0xffff_ffff);
const epochNumber = uint(() => Number.MAX_SAFE_INTEGER);

function bytes(lengths: readonly number[]): FieldCheck {
  return (value) => {
    if (!isBinary(value)) return `expected binary, got ${describe(value)}`;
    if (!lengths.includes(value.length)) return `expected ${lengths.join(' or ')} bytes, got ${value.length}`;
    return null;
  };
}

function oneOf(values: readonly string[]): FieldCheck {
  return (value) =>
    typeof value === 'string' && values.includes(value)
      ? null
      : `expected one of ${values.join(', ')}, got ${typeof value === 'string' ? JSON.stringify(value.slice(0, 32)) : describe(value)}`;
}

function text(bytesMax: number, pattern?: RegExp): FieldCheck {
  return (value) => {
    if (typeof value !== 'string') return `expected a string, got ${describe(value)}`;
    if (Buffer.byteLength(value) > bytesMax) return `longer than ${bytesMax} bytes`;
    if (pattern !== undefined && !pattern.test(value)) return `${JSON.stringify(value.slice(0, 32))} does not match ${pattern}`;
    return null;
  };
}

function nullable(check: FieldCheck): FieldCheck {
  return (value, limits) => (value === null ? null : check(value, limits));
}

const finiteNonNegative: FieldCheck = (value) =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= Number.MAX_SAFE_INTEGER
    ? null
    : `expected a non-negative finite number, got ${describe(value)}`;

const memoryBytes: FieldCheck = (value, limits) =>
  uint(() => MEMORY_BYTES_MAX, MEMORY_BYTES_MIN)(value, limits) ??
  ((value as number) % PAGE_BYTES === 0 ? null : `${value as number} is not a whole number of ${PAGE_BYTES}-byte pages`);

const errorCode = text(errorCodeBytesMax, /^[A-Z][A-Z0-9_]*$/);
const message = text(errorMessageBytesMax);
const authMode = oneOf(['hmac', 'insecure']);
const role = oneOf(['primary', 'backup']);
const channel = oneOf(['control', 'bulk', 'heartbeat']);
const ackSubject = oneOf(['checkpoint', 'full-sync']);
const checkpointPages = uint((limits) => limits.checkpointPagesMax);
const checkpointParts = uint((limits) => limits.checkpointPartsMax);

/** Cross-field and payload checks, run after every field has passed its own check. */
type Refine = (meta: Record<string, unknown>, payloadBytes: number, limits: ProtocolLimits) => string | null;

interface Schema {
  readonly fields: Readonly<Record<string, FieldCheck>>;
  readonly refine?: Refine;
}

/** A checkpoint's announced page and part counts must be consistent with each other. */
const countsAgree: Refine = (meta, _payloadBytes, limits) => {
  const pageCount = meta.pageCount as number;
  const partCount = meta.partCount as number;
  if (partCount > pageCount) return `partCount ${partCount} exceeds pageCount ${pageCount} (every part carries a page)`;
  if (pageCount > partCount * limits.framePagesMax) {
    return `pageCount ${pageCount} does not fit in ${partCount} parts of at most ${limits.framePagesMax} pages`;
  }
  return null;
};

/** A PAGES payload holds exactly `pageCount` records, each a header and at most a raw page. */
const pagesFitPayload: Refine = (meta, payloadBytes) => {
  const pageCount = meta.pageCount as number;
  const bytesMin = pageCount * PAGE_RECORD_HEADER_BYTES;
  const bytesMax = pageCount * PAGE_RECORD_BYTES_MAX;
  if (payloadBytes < bytesMin || payloadBytes > bytesMax) {
    return `${pageCount} page records cannot take ${payloadBytes} payload bytes (expected ${bytesMin}..${bytesMax})`;
  }
  return null;
};

const beginFields = { pageCount: checkpointPages, partCount: checkpointParts };
const pagesSchema: Schema = {
  fields: { part: uint((limits) => limits.checkpointPartsMax - 1), pageCount: uint((limits) => limits.framePagesMax, 1) },
  refine: pagesFitPayload,
};
const endSchema: Schema = { fields: { ...beginFields, checksum: u32 }, refine: countsAgree };

const schemas: Readonly<Record<FrameKind, Schema>> = {
  [FrameKind.HELLO]: { fields: { authMode, nonce: bytes([authNonceBytes]) } },
  [FrameKind.CHALLENGE]: {
    fields: { authMode, nonce: bytes([authNonceBytes]), proof: bytes([0, authProofBytes]) },
    refine: (meta) =>
      (meta.proof as Buffer).length === (meta.authMode === 'hmac' ? authProofBytes : 0) ? null : 'proof length does not match authMode',
  },
  [FrameKind.AUTH_PROOF]: { fields: { proof: bytes([0, authProofBytes]) } },
  [FrameKind.AUTH_OK]: { fields: { authMode } },
  [FrameKind.HANDSHAKE]: {
    fields: {
      protocolVersion: u8,
      memoryBytes,
      guestImageHash: bytes([guestImageHashBytes]),
      role,
      channel,
      sessionId: bytes([sessionIdBytes]),
      instanceId: bytes([sessionIdBytes]),
    },
  },
  [FrameKind.HANDSHAKE_OK]: { fields: { role, channel, sessionId: bytes([sessionIdBytes]), appliedEpoch: nullable(epochNumber) } },
  [FrameKind.HEARTBEAT]: { fields: { sentAtMs: finiteNonNegative } },
  [FrameKind.FULL_SYNC_BEGIN]: { fields: { memoryBytes, ...beginFields }, refine: countsAgree },
  [FrameKind.FULL_SYNC_PAGES]: pagesSchema,
  [FrameKind.FULL_SYNC_END]: endSchema,
  [FrameKind.CHECKPOINT_BEGIN]: { fields: beginFields, refine: countsAgree },
  [FrameKind.CHECKPOINT_PAGES]: pagesSchema,
  [FrameKind.CHECKPOINT_END]: endSchema,
  [FrameKind.ACK]: { fields: { subject: ackSubject } },
  [FrameKind.ERROR]: { fields: { code: errorCode, message } },
  [FrameKind.GOODBYE]: { fields: { reason: message } },
};

/**
 * Checks untrusted `meta` (as decoded from MessagePack) against `kind`'s schema, together with
 * the frame's payload length. Returns null when valid, or a reason that names the field.
 * Never throws, whatever `meta` is.
 */
export function validateMeta(kind: FrameKind, meta: unknown, payloadBytes: number, limits: ProtocolLimits): string | null {
  const schema = schemas[kind];
  if (schema === undefined) return `no schema for kind ${kind}`;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta) || ArrayBuffer.isView(meta)) {
    return `meta must be a map, got ${describe(meta)}`;
  }
  if (Object.getPrototypeOf(meta) !== Object.prototype) return 'meta must be a plain map (a "__proto__" key is refused)';
  const record = meta as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!Object.hasOwn(schema.fields, key)) return `unknown field ${JSON.stringify(key.slice(0, 64))}`;
  }
  for (const [name, check] of Object.entries(schema.fields)) {
    if (!Object.hasOwn(record, name)) return `missing field "${name}"`;
    const reason = check(record[name], limits);
    if (reason !== null) return `field "${name}": ${reason}`;
  }
  if (payloadBytes > 0 && payloadBytesMaxFor(kind, limits) === 0) return 'this kind carries no payload';
  return schema.refine?.(record, payloadBytes, limits) ?? null;
}
