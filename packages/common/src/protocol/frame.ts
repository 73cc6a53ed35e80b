/**
 * The frame: one format for both channels (on ws, one frame per binary message; on raw TCP,
 * frames back to back). A fixed little-endian header, then `meta` (MessagePack, small fields),
 * then `payload` (raw bytes: machine state or page records, never MessagePack).
 *
 *   offset  size  field
 *        0     4  magic        the bytes "HBFT" (u32 LE 0x54464248)
 *        4     1  version      protocolVersion
 *        5     1  kind         FrameKind
 *        6     2  flags        bit 0 `sealed` (seal.ts); any other set bit is refused
 *        8     4  generation   the sender's generation
 *       12     8  epoch        u64, at most 2^53 - 1 so that it is a JavaScript number
 *       20     4  sequence     per connection and direction, from 0, +1 per frame, wraps at 2^32
 *       24     4  metaBytes
 *       28     4  payloadBytes
 *       32     4  checksum     CRC-32 of the header with this field zeroed, then meta, then payload;
 *                              0 in a sealed frame, whose AEAD tag authenticates the same bytes
 *       36        meta, payload (a sealed frame: tag, then meta and payload encrypted)
 *
 * Encoding never copies the payload: the caller gets the header+meta bytes and the payload as
 * two buffers and writes both (cork/uncork, writev).
 */
import { crc32 } from 'node:zlib';
import msgpack from 'msgpack-lite';
import { assert } from '../errors.ts';
import { frameKindName, type FrameKind } from './kinds.ts';
import { frameHeaderBytes, frameMetaBytesMax, protocolVersion, type ProtocolLimits } from './limits.ts';
import { payloadBytesMaxFor, validateMeta, type MetaOf } from './messages.ts';
import { FrameSealer, sealTagBytes } from './seal.ts';

/** "HBFT" read as a little-endian u32. */
export const frameMagic = 0x5446_4248;
export const frameMagicBytes: Buffer = Buffer.from('HBFT', 'latin1');

export const FrameOffset = {
  magic: 0,
  version: 4,
  kind: 5,
  flags: 6,
  generation: 8,
  epoch: 12,
  sequence: 20,
  metaBytes: 24,
  payloadBytes: 28,
  checksum: 32,
} as const;

export const FrameFlag = {
  /** The frame is sealed (seal.ts): set on every frame after a keyed authentication, on no other. */
  sealed: 1,
} as const;

/** Flag bits this version defines: a frame with any other bit set is refused. */
export const frameFlagsKnown = FrameFlag.sealed;

const twoTo32 = 2 ** 32;

/** A decoded, verified frame. `Frame` alone is the union over kinds, so `switch (frame.kind)` narrows `meta`. */
export type Frame<K extends FrameKind = FrameKind> = K extends FrameKind
  ? {
      readonly kind: K;
      readonly flags: number;
      readonly generation: number;
      readonly epoch: number;
      readonly sequence: number;
      /** The frame's CRC-32, as verified (checkpoint checksums chain these); 0 for a sealed frame, whose tag was verified instead. */
      readonly checksum: number;
      readonly meta: MetaOf<K>;
      /** A view into the received bytes when the frame arrived in one chunk; empty for meta-only kinds. */
      readonly payload: Buffer;
    }
  : never;

/** A frame ready to write: `head` is header + meta; `payload` is the caller's buffer, not copied. */
export interface EncodedFrame {
  readonly head: Buffer;
  readonly payload: Uint8Array;
  /** head.length + payload.length */
  readonly bytes: number;
  readonly sequence: number;
  /** The frame's CRC-32 (checkpoint checksums chain these); 0 for a sealed frame. */
  readonly checksum: number;
}

/** Header fields other than kind and sequence; all default to 0 / empty. */
export interface FrameFields {
  generation?: number;
  epoch?: number;
  payload?: Uint8Array;
}

/** Everything a header can hold, unchecked: for tests that build invalid frames. */
export interface RawFrameFields {
  magic?: number;
  version?: number;
  kind: number;
  flags?: number;
  generation?: number;
  epoch?: number;
  sequence: number;
  /** Already-encoded meta bytes. */
  metaBytes: Uint8Array;
  payload?: Uint8Array;
  /** Overrides the computed checksum. */
  checksum?: number;
}

const emptyPayload = new Uint8Array(0);

/** MessagePack without the preset extension types: meta is maps, strings, numbers and binary only. */
export const metaCodec = msgpack.createCodec({ preset: false });

export function encodeMeta(meta: unknown): Buffer {
  return msgpack.encode(meta, { codec: metaCodec });
}

/**
 * Lays out a header around already-encoded meta, with no checks at all (tests and the fuzzer
 * use it to build invalid frames; `FrameEncoder` is the checked path).
 */
export function encodeFrameUnchecked(fields: RawFrameFields): EncodedFrame {
  const metaBytes = fields.metaBytes;
  const payload = fields.payload ?? emptyPayload;
  const head = Buffer.allocUnsafe(frameHeaderBytes + metaBytes.length);
  writeHeader(head, fields, metaBytes.length, payload.length);
  head.set(metaBytes, frameHeaderBytes);
  const checksum = fields.checksum ?? crc32(payload, crc32(head));
  head.writeUInt32LE(checksum, FrameOffset.checksum);
  return { head, payload, bytes: head.length + payload.length, sequence: fields.sequence, checksum };
}

/**
 * Lays out a sealed frame (seal.ts): header with the `sealed` flag and checksum 0, tag, meta and
 * payload encrypted by `sealer`. As unchecked as `encodeFrameUnchecked`, for the same callers.
 */
export function encodeSealedFrameUnchecked(fields: RawFrameFields, sealer: FrameSealer): EncodedFrame {
  const metaBytes = fields.metaBytes;
  const head = Buffer.allocUnsafe(frameHeaderBytes + sealTagBytes + metaBytes.length);
  writeHeader(head, { ...fields, flags: (fields.flags ?? 0) | FrameFlag.sealed }, metaBytes.length, fields.payload?.length ?? 0);
  head.writeUInt32LE(fields.checksum ?? 0, FrameOffset.checksum);
  head.set(metaBytes, frameHeaderBytes + sealTagBytes);
  const payload = sealer.seal(head, fields.payload ?? emptyPayload);
  return { head, payload, bytes: head.length + payload.length, sequence: fields.sequence, checksum: 0 };
}

/** Writes the header's fields, with the checksum field zeroed. */
function writeHeader(head: Buffer, fields: RawFrameFields, metaBytes: number, payloadBytes: number): void {
  const epoch = fields.epoch ?? 0;
  head.writeUInt32LE(fields.magic ?? frameMagic, FrameOffset.magic);
  head.writeUInt8(fields.version ?? protocolVersion, FrameOffset.version);
  head.writeUInt8(fields.kind, FrameOffset.kind);
  head.writeUInt16LE(fields.flags ?? 0, FrameOffset.flags);
  head.writeUInt32LE(fields.generation ?? 0, FrameOffset.generation);
  head.writeUInt32LE(epoch % twoTo32, FrameOffset.epoch);
  head.writeUInt32LE(Math.floor(epoch / twoTo32), FrameOffset.epoch + 4);
  head.writeUInt32LE(fields.sequence, FrameOffset.sequence);
  head.writeUInt32LE(metaBytes, FrameOffset.metaBytes);
  head.writeUInt32LE(payloadBytes, FrameOffset.payloadBytes);
  head.writeUInt32LE(0, FrameOffset.checksum);
}

/** The whole frame as one buffer (copies the payload): for ws messages and tests. */
export function concatFrame(frame: EncodedFrame): Buffer {
  return frame.payload.length === 0 ? frame.head : Buffer.concat([frame.head, frame.payload], frame.bytes);
}

/**
 * Encodes outgoing frames for one connection: owns the send-direction sequence number and checks
 * that what we send obeys the schema (our own output breaking it is a programmer error). After
 * `seal(key)` every frame is sealed (seal.ts).
 */
export class FrameEncoder {
  private readonly limits: ProtocolLimits;
  private sequenceNext = 0;
  private sealer: FrameSealer | null = null;

  constructor(limits: ProtocolLimits) {
    this.limits = limits;
  }

  /** The sequence number the next frame will carry. */
  get nextSequence(): number {
    return this.sequenceNext;
  }

  get sealed(): boolean {
    return this.sealer !== null;
  }

  /** Seals every frame from the next one on with `key` (after a keyed authentication; once). */
  seal(key: Buffer): void {
    assert(this.sealer === null, 'a connection starts sealing once');
    this.sealer = new FrameSealer(key);
  }

  encode<K extends FrameKind>(kind: K, meta: MetaOf<K>, fields: FrameFields = {}): EncodedFrame {
    const payload = fields.payload ?? emptyPayload;
    const generation = fields.generation ?? 0;
    const epoch = fields.epoch ?? 0;
    assert(Number.isInteger(generation) && generation >= 0 && generation < twoTo32, 'generation is a u32');
    assert(Number.isSafeInteger(epoch) && epoch >= 0, 'epoch is a safe non-negative integer');
    assert(payload.length <= payloadBytesMaxFor(kind, this.limits), `${frameKindName(kind)} payload within its limit`);
    const invalid = validateMeta(kind, meta, payload.length, this.limits);
    assert(invalid === null, `outgoing ${frameKindName(kind)} meta is valid: ${invalid}`);
    const metaBytes = encodeMeta(meta);
    assert(metaBytes.length <= frameMetaBytesMax, `${frameKindName(kind)} meta within frameMetaBytesMax`);
    const fieldsChecked = { kind, generation, epoch, sequence: this.sequenceNext, metaBytes, payload };
    const frame = this.sealer === null ? encodeFrameUnchecked(fieldsChecked) : encodeSealedFrameUnchecked(fieldsChecked, this.sealer);
    this.sequenceNext = (this.sequenceNext + 1) >>> 0;
    return frame;
  }
}
