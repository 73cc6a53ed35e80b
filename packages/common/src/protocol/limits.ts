/**
 * Every bound of the wire protocol, in one place, units last (style.md, TigerBeetle). The fixed
 * bounds are constants; the ones that follow from the configured guest memory come from
 * `protocolLimitsFor(memoryBytes)`. Relations between them are asserted when this module loads,
 * so a careless edit fails at start-up rather than on the wire.
 */
import { assert } from '../errors.ts';
import { machineStateBytesMax } from '../limits.ts';
import { MEMORY_BYTES_MAX, MEMORY_BYTES_MIN, PAGE_BYTES } from '../guest/addressMap.ts';
import { PAGE_RECORD_BYTES_MAX, PAGE_RECORD_HEADER_BYTES } from '../checkpoint/pageCodec.ts';

/**
 * Bumped on any incompatible change to the frame layout or to a kind's meta schema. 2: checkpoints
 * carry no session output (CHECKPOINT_OUTPUT and `outputPartCount` are gone).
 */
export const protocolVersion = 2;

/** The fixed frame header (see frame.ts for the layout). */
export const frameHeaderBytes = 36;

/** Meta is a few small fields; 64 KiB leaves room for error messages and future fields. */
export const frameMetaBytesMax = 64 * 1024;

/**
 * Page data travels in frames of at most this much payload, so a checkpoint is several frames and
 * the receiver's memory per frame is bounded. 4 MiB frames cost one header per thousand pages.
 */
export const framePayloadBytesMax = 4 * 1024 * 1024;

/** The largest whole frame on the wire. */
export const frameBytesMax = frameHeaderBytes + frameMetaBytesMax + framePayloadBytesMax;

/**
 * The control channel carries only meta, never payload: its ws `maxPayload` is one such frame.
 * This bound does not grow with guest memory, because page data never goes over ws.
 */
export const controlMessageBytesMax = frameHeaderBytes + frameMetaBytesMax;

export const authNonceBytes = 32;
/** HMAC-SHA256 output. */
export const authProofBytes = 32;
/** A pre-shared key shorter than this is refused by the caller's configuration check. */
export const authKeyBytesMin = 16;
export const sessionIdBytes = 16;
/** SHA-256 of the guest image. */
export const guestImageHashBytes = 32;

/** Error codes are short identifiers such as `E_FRAME_CHECKSUM`. */
export const errorCodeBytesMax = 64;
/** Error messages and goodbye reasons, in UTF-8 bytes. */
export const errorMessageBytesMax = 1024;

/** How long an accepted socket may stay silent before its first bytes say what it speaks. */
export const listenerPeekTimeoutMs = 5_000;
/** How long the challenge–response may take, from connect to authenticated. */
export const authTimeoutMs = 5_000;
/** Above this many bytes queued in a bulk socket, `send` reports backpressure. */
export const bulkWriteBufferBytesHigh = 16 * 1024 * 1024;

assert(frameHeaderBytes % 4 === 0, 'the header is whole words');
assert(framePayloadBytesMax >= PAGE_RECORD_BYTES_MAX, 'a frame holds at least one raw page record');
assert(machineStateBytesMax <= framePayloadBytesMax, 'machine state fits in one frame');
assert(frameBytesMax < 2 ** 32, 'frame lengths fit in u32 fields');
assert(controlMessageBytesMax <= frameBytesMax, 'control frames are frames');
assert(errorCodeBytesMax + errorMessageBytesMax + 64 <= frameMetaBytesMax, 'an ERROR frame fits in meta');
assert(bulkWriteBufferBytesHigh >= 2 * frameBytesMax, 'two whole frames can be queued before backpressure');
assert(authKeyBytesMin >= 16, 'keys have at least 128 bits');

/** The bounds that follow from the configured guest memory size. */
export interface ProtocolLimits {
  readonly memoryBytes: number;
  /** Guest pages; a page number on the wire is below this. */
  readonly memoryPages: number;
  readonly frameMetaBytesMax: number;
  /** Payload of a PAGES frame. */
  readonly framePayloadBytesMax: number;
  /** Payload of a BEGIN frame. */
  readonly machineStateBytesMax: number;
  /** Page records in one PAGES frame: every record is at least a header. */
  readonly framePagesMax: number;
  /** Pages in one checkpoint or full sync: each page at most once. */
  readonly checkpointPagesMax: number;
  /** PAGES frames in one checkpoint: each carries at least one page. */
  readonly checkpointPartsMax: number;
}

/**
 * The limits for a guest of `memoryBytes`. The caller has validated the size (a flag or a config
 * value); a bad size here is a programmer error.
 */
export function protocolLimitsFor(memoryBytes: number): ProtocolLimits {
  assert(Number.isSafeInteger(memoryBytes), 'memory size is an integer');
  assert(memoryBytes >= MEMORY_BYTES_MIN && memoryBytes <= MEMORY_BYTES_MAX, 'memory size is in range');
  assert(memoryBytes % PAGE_BYTES === 0, 'memory is whole pages');
  const memoryPages = memoryBytes / PAGE_BYTES;
  const limits: ProtocolLimits = {
    memoryBytes,
    memoryPages,
    frameMetaBytesMax,
    framePayloadBytesMax,
    machineStateBytesMax,
    framePagesMax: Math.min(memoryPages, Math.floor(framePayloadBytesMax / PAGE_RECORD_HEADER_BYTES)),
    checkpointPagesMax: memoryPages,
    checkpointPartsMax: memoryPages,
  };
  assert(limits.framePagesMax >= 1, 'a frame holds a page');
  assert(limits.checkpointPartsMax * limits.framePagesMax >= limits.checkpointPagesMax, 'parts can carry all pages');
  return limits;
}
