/**
 * Stable codes for everything that can go wrong on the wire (as ws's `WS_ERR_*`). Logs, ERROR
 * frames, close reasons and tests all use these strings; a code never changes meaning.
 */
import { ProtocolError } from '../errors.ts';

export const ProtocolErrorCode = {
  /** The first four bytes of a frame are not `HBFT`. */
  FRAME_MAGIC: 'E_FRAME_MAGIC',
  /** The frame's protocol version is not ours. */
  FRAME_VERSION: 'E_FRAME_VERSION',
  /** The kind byte names no kind. */
  FRAME_KIND: 'E_FRAME_KIND',
  /** A known kind that is not accepted here (before authentication, or on the other channel). */
  FRAME_KIND_UNEXPECTED: 'E_FRAME_KIND_UNEXPECTED',
  /** A flag bit this version does not define is set. */
  FRAME_FLAGS: 'E_FRAME_FLAGS',
  FRAME_META_TOO_LARGE: 'E_FRAME_META_TOO_LARGE',
  /** Payload longer than the kind allows (kinds without payload allow 0 bytes). */
  FRAME_PAYLOAD_TOO_LARGE: 'E_FRAME_PAYLOAD_TOO_LARGE',
  /** The epoch does not fit in a JavaScript number (≥ 2^53). */
  FRAME_EPOCH_RANGE: 'E_FRAME_EPOCH_RANGE',
  FRAME_CHECKSUM: 'E_FRAME_CHECKSUM',
  /**
   * After a keyed authentication: a frame whose AEAD tag does not verify (altered, injected,
   * replayed, reordered, after a dropped frame, or sealed with another key), or one not sealed.
   */
  FRAME_SEAL: 'E_FRAME_SEAL',
  /** The sequence number is not the next one (a frame was lost, duplicated or reordered). */
  FRAME_SEQUENCE: 'E_FRAME_SEQUENCE',
  /** The stream or message ended inside a frame. */
  FRAME_TRUNCATED: 'E_FRAME_TRUNCATED',
  /** A message-oriented transport (ws) delivered bytes after the end of the frame. */
  FRAME_TRAILING: 'E_FRAME_TRAILING',
  /** The meta bytes are not one MessagePack value. */
  META_DECODE: 'E_META_DECODE',
  /** The meta decoded but breaks its kind's schema; the reason names the field. */
  META_INVALID: 'E_META_INVALID',
  /** The peer's HANDSHAKE does not match this node (protocol version, memory size, guest image, role, channel). */
  HANDSHAKE_MISMATCH: 'E_HANDSHAKE_MISMATCH',
  /** A checkpoint's BEGIN / PAGES / END frames do not add up (order, epoch, counts, checksum). */
  CHECKPOINT_STREAM: 'E_CHECKPOINT_STREAM',

  /** A proof did not verify (wrong key, replayed or reflected proof). */
  AUTH_FAILED: 'E_AUTH_FAILED',
  /** A frame other than the next step of the challenge–response arrived before authentication. */
  AUTH_UNEXPECTED: 'E_AUTH_UNEXPECTED',
  /** One side has a key and the other runs in explicit insecure mode. */
  AUTH_MODE_MISMATCH: 'E_AUTH_MODE_MISMATCH',
  AUTH_TIMEOUT: 'E_AUTH_TIMEOUT',
  /** The peer refused us during authentication (it sent ERROR). */
  AUTH_REFUSED: 'E_AUTH_REFUSED',

  /** An accepted socket's first bytes are neither an HTTP upgrade nor a frame. */
  LISTENER_PROTOCOL: 'E_LISTENER_PROTOCOL',
  /** An accepted socket sent nothing within the peek timeout. */
  LISTENER_TIMEOUT: 'E_LISTENER_TIMEOUT',
  /** The control channel received a text message, or ws itself reported a protocol error. */
  WS_MESSAGE: 'E_WS_MESSAGE',
  /** The peer sent ERROR: the reason carries its code and message. */
  PEER_ERROR: 'E_PEER_ERROR',
  /** The connection ended without GOODBYE or ERROR (peer crash, reset, network). */
  CONNECTION_LOST: 'E_CONNECTION_LOST',

  /* Replication refusals (the backup's answers to a primary). */
  /** The first frame after authentication was not a valid HANDSHAKE. */
  HANDSHAKE: 'E_HANDSHAKE',
  /** The backup took over: the primary that connects is deposed and must stop. */
  DEPOSED: 'E_DEPOSED',
  /**
   * Another primary process than the one whose state the backup holds, at the same generation: a
   * restarted primary must rejoin as a backup rather than overwrite the replica.
   */
  STALE_INSTANCE: 'E_STALE_INSTANCE',
  /**
   * The answering node is a promoted primary of an older generation than the caller: it is the
   * deposed one and stops. The caller carries on (and finds a backup there later).
   */
  RESPONDER_STALE: 'E_RESPONDER_STALE',
  /** The primary's generation is older than the state the backup holds. */
  STALE_GENERATION: 'E_STALE_GENERATION',
  /** Frames of a generation other than the handshake's. */
  GENERATION: 'E_GENERATION',
  /** The guests' memory sizes differ (both nodes must give the guest the same). */
  MEMORY_MISMATCH: 'E_MEMORY_MISMATCH',
  /** The primary runs another guest image than the one the backup holds. */
  IMAGE_MISMATCH: 'E_IMAGE_MISMATCH',
  /** A checkpoint that does not follow the last one applied. */
  EPOCH_ORDER: 'E_EPOCH_ORDER',
  /** Checkpoint pages, full sync and checkpoints out of order. */
  SYNC_ORDER: 'E_SYNC_ORDER',
  /** Page records that fail their check (checkpoint/pageCodec.ts). */
  PAGE_RECORDS: 'E_PAGE_RECORDS',
  /** A machine state that does not restore (Machine.setState refused it). */
  STATE: 'E_STATE',
} as const;

export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

/** Why input was refused: returned as a value by decoders and state machines, never thrown. */
export interface ProtocolFailure {
  readonly code: ProtocolErrorCode;
  readonly reason: string;
}

export function protocolFailure(code: ProtocolErrorCode, reason: string): ProtocolFailure {
  return { code, reason };
}

/** For callers that do want an exception (promises, CLI): the failure as a ProtocolError. */
export function toProtocolError(failure: ProtocolFailure): ProtocolError {
  return new ProtocolError(failure.code, `${failure.code}: ${failure.reason}`);
}
