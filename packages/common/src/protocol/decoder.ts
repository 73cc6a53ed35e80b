// Exempt from Biome's noNonNullAssertion (biome.json): the frame decoder: each `this.info!`/`this.opener!` is
// set by the state that leads to it (a body follows a checked header; a sealed header is refused without an
// opener), on the per-chunk decode path.
/**
 * The frame decoder: an explicit byte-level state machine (as ws's `lib/receiver.js`) that tests
 * feed with raw buffers. `push(chunk)` takes bytes split anywhere and returns the frames they
 * complete, or a terminal failure `{code, reason}`; it never throws on input.
 *
 * Memory is bounded by the limits: a header is checked as soon as its 36 bytes are in, so an
 * oversize, unknown or unexpected frame is refused before any of its body is kept, and at most one
 * frame body (meta + the largest payload its kind allows) is ever held.
 *
 * Payloads are views into the received chunks when a frame's body arrived in one chunk; a body
 * split across chunks is copied part by part, as it arrives, into one buffer of its declared
 * (already checked) size, and the checksum is computed over each part while it is still in cache.
 *
 * Checks, in order: magic (from the first byte), version, kind known, kind accepted here, flags,
 * epoch range, meta length, payload length, sealed exactly when the connection is — then, with
 * the body: checksum (or, for a sealed frame, its AEAD tag), sequence, meta decoding, meta schema.
 *
 * Sealed frames (seal.ts, after `open(key)`): the body on the wire is the tag, then the ciphertext
 * of meta and payload. The ciphertext is decrypted part by part as it arrives (into the body
 * buffer, as above), and nothing of the frame is interpreted or returned until its tag verifies:
 * a frame that does not authenticate is the terminal failure E_FRAME_SEAL.
 */
import { crc32 } from 'node:zlib';
import msgpack from 'msgpack-lite';
import { assert } from '../errors.ts';
import { ProtocolErrorCode, protocolFailure, type ProtocolFailure } from './codes.ts';
import { FrameFlag, FrameOffset, frameFlagsKnown, frameMagic, frameMagicBytes, metaCodec, type Frame } from './frame.ts';
import { FrameKind as Kind, frameKindName, isFrameKind, type FrameKind } from './kinds.ts';
import { frameHeaderBytes, protocolVersion, type ProtocolLimits } from './limits.ts';
import { payloadBytesMaxFor, validateMeta } from './messages.ts';
import { FrameOpener, sealTagBytes } from './seal.ts';

export interface FrameDecoderOptions {
  limits: ProtocolLimits;
  /** Kinds accepted; any other known kind is refused from its header. */
  kindsAccepted: ReadonlySet<FrameKind>;
  /** Where the decoder sits, for reasons: "before authentication", "on the control channel". */
  kindsAcceptedWhere: string;
  /**
   * Gives the buffer in which a body split across chunks is assembled (`bytes` is at most one
   * frame, already checked; the payload is a view into it). Defaults to Buffer.allocUnsafe; a
   * receiver that wants to stage payloads in memory it manages (recycled after applying a
   * checkpoint, or shared with a worker) supplies its own.
   */
  allocateBody?: (bytes: number) => Buffer;
  /**
   * Stop after a frame that ends authentication (AUTH_OK, AUTH_PROOF) and hold the bytes behind it
   * until `resume()`: the peer may send sealed frames right behind it, which must be decoded with
   * the keys the connection agrees only once it has handled that frame.
   */
  pausesAtAuthentication?: boolean;
}

/** What one `push` produced: frames completed by the chunk, then possibly the terminal failure. */
export interface DecodeStep {
  readonly frames: Frame[];
  readonly failure: ProtocolFailure | null;
}

export type DecodeResult = { readonly frame: Frame; readonly failure: null } | { readonly frame: null; readonly failure: ProtocolFailure };

/** A header that passed the checks that need no body. */
interface HeaderInfo {
  kind: FrameKind;
  flags: number;
  generation: number;
  epoch: number;
  sequence: number;
  metaBytes: number;
  payloadBytes: number;
  checksum: number;
  /** Set for a sealed frame: its body on the wire starts with the tag. */
  sealed: boolean;
}

const twoTo32 = 2 ** 32;
const epochHighMax = Math.floor(Number.MAX_SAFE_INTEGER / twoTo32);

const State = { header: 0, body: 1, failed: 2 } as const;
type State = (typeof State)[keyof typeof State];

interface Acceptance {
  kindsAccepted: ReadonlySet<FrameKind>;
  kindsAcceptedWhere: string;
  /** Frames must be sealed (after `open`) or must not be (before, or in insecure mode). */
  sealed?: boolean;
}

/**
 * The kinds that end authentication for the side that receives them: the peer may send sealed
 * frames right behind one, so the streaming decoder stops after it until told how to go on.
 */
const authEndingKinds: ReadonlySet<FrameKind> = new Set([Kind.AUTH_OK, Kind.AUTH_PROOF]);

/** Checks the header in `header[0..36)`. Needs no body, so it runs before any body is buffered. */
function checkHeader(header: Buffer, limits: ProtocolLimits, acceptance: Acceptance): HeaderInfo | ProtocolFailure {
  const magic = header.readUInt32LE(FrameOffset.magic);
  if (magic !== frameMagic) {
    return protocolFailure(ProtocolErrorCode.FRAME_MAGIC, `expected magic "HBFT", got 0x${header.subarray(0, 4).toString('hex')}`);
  }
  const version = header.readUInt8(FrameOffset.version);
  if (version !== protocolVersion) {
    return protocolFailure(ProtocolErrorCode.FRAME_VERSION, `peer speaks protocol version ${version}, this node speaks ${protocolVersion}`);
  }
  const kind = header.readUInt8(FrameOffset.kind);
  if (!isFrameKind(kind)) return protocolFailure(ProtocolErrorCode.FRAME_KIND, `unknown frame kind ${kind}`);
  if (!acceptance.kindsAccepted.has(kind)) {
    return protocolFailure(
      ProtocolErrorCode.FRAME_KIND_UNEXPECTED,
      `${frameKindName(kind)} is not accepted ${acceptance.kindsAcceptedWhere}`,
    );
  }
  const flags = header.readUInt16LE(FrameOffset.flags);
  if ((flags & ~frameFlagsKnown) !== 0) {
    return protocolFailure(ProtocolErrorCode.FRAME_FLAGS, `${frameKindName(kind)} has undefined flag bits 0x${flags.toString(16)}`);
  }
  const epochHigh = header.readUInt32LE(FrameOffset.epoch + 4);
  if (epochHigh > epochHighMax) {
    return protocolFailure(
      ProtocolErrorCode.FRAME_EPOCH_RANGE,
      `${frameKindName(kind)} epoch is 2^53 or more (high word 0x${epochHigh.toString(16)})`,
    );
  }
  const metaBytes = header.readUInt32LE(FrameOffset.metaBytes);
  if (metaBytes > limits.frameMetaBytesMax) {
    return protocolFailure(
      ProtocolErrorCode.FRAME_META_TOO_LARGE,
      `${frameKindName(kind)} meta of ${metaBytes} bytes exceeds ${limits.frameMetaBytesMax}`,
    );
  }
  const payloadBytes = header.readUInt32LE(FrameOffset.payloadBytes);
  const payloadBytesMax = payloadBytesMaxFor(kind, limits);
  if (payloadBytes > payloadBytesMax) {
    return protocolFailure(
      ProtocolErrorCode.FRAME_PAYLOAD_TOO_LARGE,
      payloadBytesMax === 0
        ? `${frameKindName(kind)} carries no payload but declares ${payloadBytes} bytes`
        : `${frameKindName(kind)} payload of ${payloadBytes} bytes exceeds ${payloadBytesMax}`,
    );
  }
  const sealed = (flags & FrameFlag.sealed) !== 0;
  const sequence = header.readUInt32LE(FrameOffset.sequence);
  if (acceptance.sealed === true && !sealed) {
    return protocolFailure(
      ProtocolErrorCode.FRAME_SEAL,
      `${frameKindName(kind)} #${sequence} is not sealed, and every frame after a keyed authentication must be (an injected frame?)`,
    );
  }
  if (acceptance.sealed !== true && sealed) {
    return protocolFailure(
      ProtocolErrorCode.FRAME_FLAGS,
      `${frameKindName(kind)} #${sequence} is sealed, but no keys are agreed ${acceptance.kindsAcceptedWhere}`,
    );
  }
  return {
    kind,
    flags,
    generation: header.readUInt32LE(FrameOffset.generation),
    epoch: epochHigh * twoTo32 + header.readUInt32LE(FrameOffset.epoch),
    sequence,
    metaBytes,
    payloadBytes,
    checksum: header.readUInt32LE(FrameOffset.checksum),
    sealed,
  };
}

/** Bytes of a frame's body on the wire: meta and payload, and a sealed frame's tag. */
function wireBodyBytes(info: HeaderInfo): number {
  return info.metaBytes + info.payloadBytes + (info.sealed ? sealTagBytes : 0);
}

/** Why a sealed frame did not open: the header is not trusted, but what it claims helps the operator. */
function sealFailure(info: HeaderInfo, sequenceExpected: number | null, opened: number): ProtocolFailure {
  const claimed =
    sequenceExpected !== null && info.sequence !== sequenceExpected
      ? `; its header claims sequence ${info.sequence} where ${sequenceExpected} is next (replayed, reordered or after a dropped frame)`
      : '';
  return protocolFailure(
    ProtocolErrorCode.FRAME_SEAL,
    `${frameKindName(info.kind)} (sealed frame ${opened - 1} of this connection) does not authenticate: altered, injected, replayed, reordered or sealed with another key${claimed}`,
  );
}

function isFailure(value: HeaderInfo | ProtocolFailure): value is ProtocolFailure {
  return 'code' in value;
}

interface MetaDecoder {
  write(chunk: Buffer): void;
  fetch(): unknown;
  offset: number;
  buffer: Buffer;
}

/** Decodes exactly one MessagePack value filling `bytes`; a reason otherwise. */
function decodeMeta(bytes: Buffer): { value: unknown } | { reason: string } {
  if (bytes.length === 0) return { reason: 'meta is empty' };
  const decoder = msgpack.Decoder({ codec: metaCodec }) as unknown as MetaDecoder;
  let value: unknown;
  try {
    decoder.write(bytes);
    value = decoder.fetch();
  } catch (error) {
    // msgpack-lite throws plain Errors (BUFFER_SHORTAGE, "Invalid type"), or RangeError on deep nesting.
    const message = error instanceof Error ? error.message : String(error);
    return { reason: message === 'BUFFER_SHORTAGE' ? 'meta ends inside a value' : `meta is not MessagePack: ${message.slice(0, 80)}` };
  }
  if (decoder.offset !== bytes.length) return { reason: `${bytes.length - decoder.offset} bytes after the meta value` };
  return { value };
}

/**
 * Verifies a complete frame (header in `header`, body = meta + payload) and builds it. The
 * checksum is verified before anything in the body is interpreted; `computed` is null for a sealed
 * frame, whose tag the caller has verified instead.
 */
function finishFrame(
  info: HeaderInfo,
  body: Buffer,
  computed: number | null,
  sequenceExpected: number | null,
  limits: ProtocolLimits,
): DecodeResult {
  const name = frameKindName(info.kind);
  if (computed !== null && computed !== info.checksum) {
    return failed(
      ProtocolErrorCode.FRAME_CHECKSUM,
      `${name} #${info.sequence} checksum 0x${hex32(info.checksum)}, computed 0x${hex32(computed)}`,
    );
  }
  if (sequenceExpected !== null && info.sequence !== sequenceExpected) {
    return failed(ProtocolErrorCode.FRAME_SEQUENCE, `${name} has sequence ${info.sequence}, expected ${sequenceExpected}`);
  }
  const decoded = decodeMeta(body.subarray(0, info.metaBytes));
  if ('reason' in decoded) return failed(ProtocolErrorCode.META_DECODE, `${name}: ${decoded.reason}`);
  const invalid = validateMeta(info.kind, decoded.value, info.payloadBytes, limits);
  if (invalid !== null) return failed(ProtocolErrorCode.META_INVALID, `${name}: ${invalid}`);
  const frame = {
    kind: info.kind,
    flags: info.flags,
    generation: info.generation,
    epoch: info.epoch,
    sequence: info.sequence,
    checksum: info.checksum,
    meta: decoded.value,
    payload: body.subarray(info.metaBytes, info.metaBytes + info.payloadBytes),
  } as Frame;
  return { frame, failure: null };
}

/** CRC-32 of a header with its checksum field taken as zero (the header itself is left as it was). */
function headerCrc(header: Buffer): number {
  const checksum = header.readUInt32LE(FrameOffset.checksum);
  header.writeUInt32LE(0, FrameOffset.checksum);
  const crc = crc32(header.subarray(0, frameHeaderBytes));
  header.writeUInt32LE(checksum, FrameOffset.checksum);
  return crc;
}

function failed(code: ProtocolFailure['code'], reason: string): DecodeResult {
  return { frame: null, failure: protocolFailure(code, reason) };
}

function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}

/**
 * Decodes one whole frame from `bytes` (a ws message), with the same checks as the streaming
 * decoder. `sequenceExpected` null skips the sequence check.
 */
export function decodeFrame(
  bytes: Buffer,
  options: FrameDecoderOptions & { sequenceExpected: number | null; opener?: FrameOpener | null },
): DecodeResult {
  const opener = options.opener ?? null;
  if (bytes.length < frameHeaderBytes) {
    const magicSeen = bytes.subarray(0, 4);
    if (!magicSeen.equals(frameMagicBytes.subarray(0, magicSeen.length))) {
      return failed(ProtocolErrorCode.FRAME_MAGIC, `expected magic "HBFT", got 0x${magicSeen.toString('hex')}`);
    }
    return failed(ProtocolErrorCode.FRAME_TRUNCATED, `message of ${bytes.length} bytes is shorter than a frame header`);
  }
  // A private copy of the header: the checksum check zeroes its field temporarily.
  const header = Buffer.from(bytes.subarray(0, frameHeaderBytes));
  const info = checkHeader(header, options.limits, { ...options, sealed: opener !== null });
  if (isFailure(info)) return { frame: null, failure: info };
  const frameBytes = frameHeaderBytes + wireBodyBytes(info);
  if (bytes.length < frameBytes) {
    return failed(ProtocolErrorCode.FRAME_TRUNCATED, `${frameKindName(info.kind)} needs ${frameBytes} bytes, message has ${bytes.length}`);
  }
  if (bytes.length > frameBytes) {
    return failed(ProtocolErrorCode.FRAME_TRAILING, `${bytes.length - frameBytes} bytes after the ${frameKindName(info.kind)} frame`);
  }
  if (opener !== null) {
    opener.begin(header, bytes.subarray(frameHeaderBytes, frameHeaderBytes + sealTagBytes), info.metaBytes + info.payloadBytes);
    const body = opener.update(bytes.subarray(frameHeaderBytes + sealTagBytes));
    if (!opener.finish()) return { frame: null, failure: sealFailure(info, options.sequenceExpected, opener.framesOpened) };
    return finishFrame(info, body, null, options.sequenceExpected, options.limits);
  }
  const body = bytes.subarray(frameHeaderBytes);
  return finishFrame(info, body, crc32(body, headerCrc(header)), options.sequenceExpected, options.limits);
}

/** The streaming decoder for one connection's receive direction. */
export class FrameDecoder {
  private readonly limits: ProtocolLimits;
  private readonly allocateBody: (bytes: number) => Buffer;
  private readonly pausesAtAuthentication: boolean;
  private acceptance: Acceptance;
  private state: State = State.header;
  private readonly header = Buffer.alloc(frameHeaderBytes);
  private headerFilled = 0;
  private info: HeaderInfo | null = null;
  /** The body being assembled when it spans chunks (allocated at its declared, checked size). */
  private body: Buffer | null = null;
  /** Bytes of the body (meta and payload, in plaintext) received so far. */
  private bodyFilled = 0;
  /** CRC-32 of the header (checksum zeroed) and the body bytes seen so far. */
  private crc = 0;
  /** After `open`: opens sealed frames; `tag` collects the tag of the frame in progress. */
  private opener: FrameOpener | null = null;
  private readonly tag = Buffer.alloc(sealTagBytes);
  private tagFilled = 0;
  /** Bytes received behind the frame that ended authentication, decoded once `resume` is called. */
  private held: Buffer | null = null;
  private sequenceExpected = 0;
  private failureTerminal: ProtocolFailure | null = null;

  constructor(options: FrameDecoderOptions) {
    this.limits = options.limits;
    this.allocateBody = options.allocateBody ?? Buffer.allocUnsafe;
    this.pausesAtAuthentication = options.pausesAtAuthentication ?? false;
    this.acceptance = { kindsAccepted: options.kindsAccepted, kindsAcceptedWhere: options.kindsAcceptedWhere };
  }

  /** Changes which kinds are accepted from the next header on (after authentication). */
  accept(kindsAccepted: ReadonlySet<FrameKind>, kindsAcceptedWhere: string): void {
    this.acceptance = { kindsAccepted, kindsAcceptedWhere, sealed: this.opener !== null };
  }

  /** Every frame from the next one on must be sealed with `key` (after a keyed authentication; once). */
  open(key: Buffer): void {
    assert(this.opener === null, 'a connection starts sealing once');
    assert(this.state === State.header && this.headerFilled === 0, 'sealing starts between frames');
    this.opener = new FrameOpener(key);
    this.acceptance = { ...this.acceptance, sealed: true };
  }

  get sealed(): boolean {
    return this.opener !== null;
  }

  get failure(): ProtocolFailure | null {
    return this.failureTerminal;
  }

  /** The sequence number the next frame must carry. */
  get nextSequence(): number {
    return this.sequenceExpected;
  }

  /** Bytes received for the frame in progress (header and body so far); the buffer reserved for a split body is its declared size, at most one frame. */
  get bufferedBytes(): number {
    return this.headerFilled + this.tagFilled + this.bodyFilled + (this.held?.length ?? 0);
  }

  private get betweenFrames(): boolean {
    return this.state === State.header && this.headerFilled === 0;
  }

  /** True when bytes wait behind the frame that ended authentication (see `pausesAtAuthentication`). */
  get holding(): boolean {
    return this.held !== null;
  }

  /** Decodes the bytes held behind the frame that ended authentication, under the new `accept`/`open`. */
  resume(): DecodeStep {
    const held = this.held;
    this.held = null;
    return this.push(held ?? Buffer.alloc(0));
  }

  /** Consumes `chunk`, split anywhere; returns the frames it completes and any terminal failure. */
  push(chunk: Buffer): DecodeStep {
    const frames: Frame[] = [];
    if (this.failureTerminal !== null) return { frames, failure: this.failureTerminal };
    if (this.held !== null) {
      // Still paused at the end of authentication: keep everything, in order, for `resume`.
      this.held = Buffer.concat([this.held, chunk]);
      return { frames, failure: null };
    }
    let offset = 0;
    while (offset < chunk.length) {
      if (this.state === State.header) {
        const take = Math.min(frameHeaderBytes - this.headerFilled, chunk.length - offset);
        chunk.copy(this.header, this.headerFilled, offset, offset + take);
        const magicFilledBefore = Math.min(this.headerFilled, 4);
        this.headerFilled += take;
        offset += take;
        // Refuse a wrong magic from its first byte, so that a peer speaking something else is
        // told at once rather than after 36 bytes.
        const magicFilled = Math.min(this.headerFilled, 4);
        if (magicFilled > magicFilledBefore && this.headerFilled < frameHeaderBytes) {
          const seen = this.header.subarray(0, magicFilled);
          if (!seen.equals(frameMagicBytes.subarray(0, magicFilled))) {
            return this.fail(
              frames,
              protocolFailure(ProtocolErrorCode.FRAME_MAGIC, `expected magic "HBFT", got 0x${seen.toString('hex')}`),
            );
          }
        }
        if (this.headerFilled < frameHeaderBytes) break;
        const info = checkHeader(this.header, this.limits, this.acceptance);
        if (isFailure(info)) return this.fail(frames, info);
        this.info = info;
        this.state = State.body;
        if (!info.sealed) {
          this.crc = headerCrc(this.header);
          if (info.metaBytes + info.payloadBytes === 0) {
            const failure = this.complete(Buffer.alloc(0), frames);
            if (failure !== null) return this.fail(frames, failure);
          }
        }
      } else if (this.info!.sealed && this.tagFilled < sealTagBytes) {
        const take = Math.min(sealTagBytes - this.tagFilled, chunk.length - offset);
        chunk.copy(this.tag, this.tagFilled, offset, offset + take);
        this.tagFilled += take;
        offset += take;
        if (this.tagFilled < sealTagBytes) break;
        this.opener!.begin(this.header, this.tag, this.info!.metaBytes + this.info!.payloadBytes);
        if (this.info!.metaBytes + this.info!.payloadBytes === 0) {
          const failure = this.complete(Buffer.alloc(0), frames);
          if (failure !== null) return this.fail(frames, failure);
        }
      } else {
        const info = this.info!;
        const bodyBytes = info.metaBytes + info.payloadBytes;
        const take = Math.min(bodyBytes - this.bodyFilled, chunk.length - offset);
        let part = chunk.subarray(offset, offset + take);
        offset += take;
        // The checksum runs over each part as it arrives, while it is still in cache; a sealed
        // frame's ciphertext is decrypted the same way (its plaintext is not trusted before the tag).
        if (info.sealed) part = this.opener!.update(part);
        else this.crc = crc32(part, this.crc);
        if (this.bodyFilled === 0 && take === bodyBytes) {
          this.bodyFilled = take;
          const failure = this.complete(part, frames); // the whole body in this chunk: a view, no copy
          if (failure !== null) return this.fail(frames, failure);
        } else {
          if (this.body === null) {
            this.body = this.allocateBody(bodyBytes);
            assert(this.body.length >= bodyBytes, 'allocateBody gives at least the bytes asked for');
            this.body = this.body.subarray(0, bodyBytes);
          }
          part.copy(this.body, this.bodyFilled);
          this.bodyFilled += take;
          if (this.bodyFilled < bodyBytes) break;
          const body = this.body;
          this.body = null;
          const failure = this.complete(body, frames);
          if (failure !== null) return this.fail(frames, failure);
        }
      }
      if (this.pausesAtAuthentication && this.betweenFrames) {
        const last = frames.at(-1);
        if (last !== undefined && authEndingKinds.has(last.kind)) {
          if (offset < chunk.length) this.held = chunk.subarray(offset);
          break;
        }
      }
    }
    return { frames, failure: null };
  }

  /**
   * The stream has ended. Returns a failure if it ended inside a frame (or had already failed),
   * null when it ended cleanly between frames.
   */
  end(): ProtocolFailure | null {
    if (this.failureTerminal !== null) return this.failureTerminal;
    if (this.state === State.header && this.headerFilled === 0 && this.held === null) return null;
    const need = this.info === null ? frameHeaderBytes : frameHeaderBytes + wireBodyBytes(this.info);
    const what = this.info === null ? 'a frame header' : `a ${frameKindName(this.info.kind)} frame`;
    const failure = protocolFailure(
      ProtocolErrorCode.FRAME_TRUNCATED,
      `stream ended after ${this.bufferedBytes} of the ${need} bytes of ${what}`,
    );
    this.fail([], failure);
    return failure;
  }

  /**
   * Decodes one whole frame from a message-oriented transport (a ws message), continuing this
   * decoder's sequence (and, once open, its sealing). A failure is terminal, as for `push`.
   */
  decodeMessage(message: Buffer): DecodeResult {
    if (this.failureTerminal !== null) return { frame: null, failure: this.failureTerminal };
    const result = decodeFrame(message, {
      limits: this.limits,
      ...this.acceptance,
      sequenceExpected: this.sequenceExpected,
      opener: this.opener,
    });
    if (result.failure !== null) {
      this.fail([], result.failure);
      return result;
    }
    this.sequenceExpected = (this.sequenceExpected + 1) >>> 0;
    return result;
  }

  private complete(body: Buffer, frames: Frame[]): ProtocolFailure | null {
    const info = this.info!;
    this.state = State.header;
    this.headerFilled = 0;
    this.tagFilled = 0;
    this.bodyFilled = 0;
    this.info = null;
    if (info.sealed && !this.opener!.finish()) return sealFailure(info, this.sequenceExpected, this.opener!.framesOpened);
    const result = finishFrame(info, body, info.sealed ? null : this.crc, this.sequenceExpected, this.limits);
    if (result.failure !== null) return result.failure;
    this.sequenceExpected = (this.sequenceExpected + 1) >>> 0;
    frames.push(result.frame);
    return null;
  }

  private fail(frames: Frame[], failure: ProtocolFailure): DecodeStep {
    this.failureTerminal = failure;
    this.state = State.failed;
    this.body = null;
    this.held = null;
    this.headerFilled = 0;
    this.tagFilled = 0;
    this.bodyFilled = 0;
    this.info = null;
    return { frames, failure };
  }
}
