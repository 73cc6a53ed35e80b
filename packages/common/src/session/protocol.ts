/**
 * The session protocol spoken on a node's `--serve` port: a 33-byte client handshake, a 30-byte
 * server reply, then framed messages both ways. Shared by the session client and the daemon's server
 * side. Encoders build one buffer per message; the decoder is a byte-level state machine (after
 * ws's `lib/receiver.js`) that never throws on input and buffers at most one frame.
 *
 * Wire layout (all integers little-endian):
 *
 *   client handshake  00 'H' 'B' 'S' | u8 version | 16-byte session id | u64 outputReceived | u32 flags
 *   server reply      00 'H' 'B' 'S' | u8 version | u8 status | u32 generation | u64 inputAccepted
 *                     | u64 outputStart | u32 reserved
 *   frame             u8 type | u32 payload length | payload
 *
 * A connection whose first byte is not 0x00 is a plain RESP connection (`isSessionConnection`).
 * Stream offsets are byte counts from the session's start, one per direction. They travel as u64
 * but must stay within 2^53 − 1 so that they are exact JavaScript numbers; a larger value is
 * malformed input.
 */
import { assert } from '../errors.ts';

export const SESSION_MAGIC: readonly number[] = [0x00, 0x48, 0x42, 0x53]; // "\0HBS"
export const SESSION_PROTOCOL_VERSION = 1;
export const SESSION_ID_BYTES = 16;
export const CLIENT_HANDSHAKE_BYTES = 33;
export const SERVER_HANDSHAKE_BYTES = 30;
export const FRAME_HEADER_BYTES = 5;
/** The largest frame payload either side sends or accepts. */
export const FRAME_PAYLOAD_BYTES_MAX = 1024 * 1024;
/** The largest stream offset: offsets are kept as exact JavaScript numbers. */
export const STREAM_OFFSET_MAX = Number.MAX_SAFE_INTEGER;
const ACK_PAYLOAD_BYTES = 8;

export const FrameType = { data: 1, ack: 2, ping: 3, pong: 4 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** The server's answer to a handshake. */
export const HandshakeStatus = {
  /** The session is attached; frames follow. */
  ok: 0,
  /** The server no longer holds output from the client's `outputReceived`: the session cannot resume. */
  gap: 1,
  /** This node does not serve (a backup, or a deposed primary): try another address. */
  notServing: 2,
  /** No free connection slot. */
  busy: 3,
  /** The handshake was malformed or of an unsupported version. */
  badRequest: 4,
} as const;
export type HandshakeStatus = (typeof HandshakeStatus)[keyof typeof HandshakeStatus];
const HANDSHAKE_STATUS_MAX = HandshakeStatus.badRequest;

export function handshakeStatusName(status: number): string {
  const entry = Object.entries(HandshakeStatus).find(([, value]) => value === status);
  return entry ? entry[0] : `status ${status}`;
}

export interface ClientHandshake {
  kind: 'clientHandshake';
  version: number;
  sessionId: Uint8Array;
  /** Bytes of server output the client already has (0 for a new session). */
  outputReceived: number;
  flags: number;
}

export interface ServerHandshake {
  kind: 'serverHandshake';
  version: number;
  status: HandshakeStatus;
  /** The serving node's generation; it increases at every failover. */
  generation: number;
  /** Bytes of this session's input the server already has: the client resends everything after it. */
  inputAccepted: number;
  /** Offset of the first output byte the server will send. */
  outputStart: number;
}

export type SessionFrame = { kind: 'data'; payload: Uint8Array } | { kind: 'ack'; offset: number } | { kind: 'ping' } | { kind: 'pong' };

export type SessionMessage = ClientHandshake | ServerHandshake | SessionFrame;

/** Why a byte stream was rejected; `code` is stable, `reason` is for people. */
export interface SessionDecodeError {
  code: string;
  reason: string;
}

export interface DecodeResult {
  messages: SessionMessage[];
  /** Set once the stream is malformed; the decoder stays failed and the connection should close. */
  error?: SessionDecodeError;
}

/** Whether a connection's first byte opens a session (otherwise it is a plain RESP connection). */
export function isSessionConnection(firstByte: number): boolean {
  return firstByte === SESSION_MAGIC[0];
}

function checkOffset(offset: number, what: string): void {
  assert(Number.isSafeInteger(offset) && offset >= 0, `${what} must be a whole number in [0, 2^53), got ${offset}`);
}

export function encodeClientHandshake(
  handshake: Omit<ClientHandshake, 'kind' | 'version' | 'flags'> & { version?: number; flags?: number },
): Uint8Array {
  assert(handshake.sessionId.length === SESSION_ID_BYTES, `session id must be ${SESSION_ID_BYTES} bytes`);
  checkOffset(handshake.outputReceived, 'outputReceived');
  const bytes = Buffer.alloc(CLIENT_HANDSHAKE_BYTES);
  bytes.set(SESSION_MAGIC, 0);
  bytes[4] = handshake.version ?? SESSION_PROTOCOL_VERSION;
  bytes.set(handshake.sessionId, 5);
  bytes.writeBigUInt64LE(BigInt(handshake.outputReceived), 21);
  bytes.writeUInt32LE((handshake.flags ?? 0) >>> 0, 29);
  return bytes;
}

export function encodeServerHandshake(reply: Omit<ServerHandshake, 'kind' | 'version'> & { version?: number }): Uint8Array {
  assert(reply.status >= 0 && reply.status <= HANDSHAKE_STATUS_MAX, `unknown handshake status ${reply.status}`);
  assert(Number.isInteger(reply.generation) && reply.generation >= 0 && reply.generation <= 0xffffffff, 'generation must be a u32');
  checkOffset(reply.inputAccepted, 'inputAccepted');
  checkOffset(reply.outputStart, 'outputStart');
  const bytes = Buffer.alloc(SERVER_HANDSHAKE_BYTES);
  bytes.set(SESSION_MAGIC, 0);
  bytes[4] = reply.version ?? SESSION_PROTOCOL_VERSION;
  bytes[5] = reply.status;
  bytes.writeUInt32LE(reply.generation, 6);
  bytes.writeBigUInt64LE(BigInt(reply.inputAccepted), 10);
  bytes.writeBigUInt64LE(BigInt(reply.outputStart), 18);
  return bytes;
}

/** Just the 5-byte header of a frame, for writers that send the payload separately (writev). */
export function encodeFrameHeader(type: FrameType, payloadBytes: number): Uint8Array {
  assert(
    payloadBytes >= 0 && payloadBytes <= FRAME_PAYLOAD_BYTES_MAX,
    `frame payload of ${payloadBytes} bytes exceeds ${FRAME_PAYLOAD_BYTES_MAX}`,
  );
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header[0] = type;
  header.writeUInt32LE(payloadBytes, 1);
  return header;
}

/** One DATA frame (header and payload in one buffer); split larger streams with `dataFrames`. */
export function encodeDataFrame(payload: Uint8Array): Uint8Array {
  const bytes = Buffer.alloc(FRAME_HEADER_BYTES + payload.length);
  bytes.set(encodeFrameHeader(FrameType.data, payload.length), 0);
  bytes.set(payload, FRAME_HEADER_BYTES);
  return bytes;
}

/** DATA frames carrying `bytes`, each payload at most `payloadBytesMax`. */
export function encodeDataFrames(bytes: Uint8Array, payloadBytesMax = FRAME_PAYLOAD_BYTES_MAX): Uint8Array[] {
  assert(payloadBytesMax >= 1 && payloadBytesMax <= FRAME_PAYLOAD_BYTES_MAX, 'payloadBytesMax out of range');
  const frames: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += payloadBytesMax) frames.push(encodeDataFrame(bytes.subarray(at, at + payloadBytesMax)));
  return frames;
}

export function encodeAckFrame(offset: number): Uint8Array {
  checkOffset(offset, 'ACK offset');
  const bytes = Buffer.alloc(FRAME_HEADER_BYTES + ACK_PAYLOAD_BYTES);
  bytes[0] = FrameType.ack;
  bytes.writeUInt32LE(ACK_PAYLOAD_BYTES, 1);
  bytes.writeBigUInt64LE(BigInt(offset), FRAME_HEADER_BYTES);
  return bytes;
}

export function encodePingFrame(): Uint8Array {
  return encodeFrameHeader(FrameType.ping, 0);
}

export function encodePongFrame(): Uint8Array {
  return encodeFrameHeader(FrameType.pong, 0);
}

/** Encodes any decoded message again (for tests and tools). */
export function encodeMessage(message: SessionMessage): Uint8Array {
  switch (message.kind) {
    case 'clientHandshake':
      return encodeClientHandshake(message);
    case 'serverHandshake':
      return encodeServerHandshake(message);
    case 'data':
      return encodeDataFrame(message.payload);
    case 'ack':
      return encodeAckFrame(message.offset);
    case 'ping':
      return encodePingFrame();
    case 'pong':
      return encodePongFrame();
  }
}

function readOffset(bytes: Buffer, at: number): number | undefined {
  const value = bytes.readBigUInt64LE(at);
  return value <= BigInt(STREAM_OFFSET_MAX) ? Number(value) : undefined;
}

export interface SessionDecoderOptions {
  /** Largest accepted frame payload; at most FRAME_PAYLOAD_BYTES_MAX. */
  payloadBytesMax?: number;
}

type DecoderState = 'handshake' | 'frameHeader' | 'framePayload' | 'failed';

/**
 * Decodes what the peer sends. A decoder owned by the **server** expects the client's handshake
 * first; one owned by the **client** expects the server's reply. After that both read frames.
 *
 * `push` returns the complete messages found so far and, once the stream is malformed, an error;
 * from then on the decoder is terminal and every push returns the same error. Memory is bounded: a
 * handshake's bytes, a frame header, and one frame payload (the length is checked before any of the
 * payload is buffered). DATA payloads that arrive whole inside one chunk are views of that chunk,
 * not copies.
 */
export class SessionDecoder {
  readonly payloadBytesMax: number;
  private state: DecoderState = 'handshake';
  private readonly handshakeBytes: number;
  /** Holds a handshake or a frame header while it arrives. */
  private readonly fixed: Buffer;
  private fixedFilled = 0;
  private frameType = 0;
  private payloadBytes = 0;
  /** Allocated only when a payload arrives in pieces. */
  private payload: Uint8Array | null = null;
  private payloadFilled = 0;
  private failure: SessionDecodeError | undefined;

  constructor(
    readonly side: 'server' | 'client',
    options: SessionDecoderOptions = {},
  ) {
    this.payloadBytesMax = options.payloadBytesMax ?? FRAME_PAYLOAD_BYTES_MAX;
    assert(this.payloadBytesMax >= ACK_PAYLOAD_BYTES && this.payloadBytesMax <= FRAME_PAYLOAD_BYTES_MAX, 'payloadBytesMax out of range');
    this.handshakeBytes = side === 'server' ? CLIENT_HANDSHAKE_BYTES : SERVER_HANDSHAKE_BYTES;
    this.fixed = Buffer.alloc(Math.max(CLIENT_HANDSHAKE_BYTES, SERVER_HANDSHAKE_BYTES, FRAME_HEADER_BYTES));
  }

  /** The error that ended the stream, if any. */
  get error(): SessionDecodeError | undefined {
    return this.failure;
  }

  /** Bytes held for an incomplete message (bounded by the handshake size or header + payload maximum). */
  get bufferedBytes(): number {
    return this.state === 'framePayload' ? FRAME_HEADER_BYTES + this.payloadFilled : this.fixedFilled;
  }

  push(chunk: Uint8Array): DecodeResult {
    const messages: SessionMessage[] = [];
    let at = 0;
    while (at < chunk.length && this.state !== 'failed') {
      switch (this.state) {
        case 'handshake':
        case 'frameHeader': {
          const wanted = this.state === 'handshake' ? this.handshakeBytes : FRAME_HEADER_BYTES;
          // Check the magic byte by byte so that garbage is rejected at its first byte.
          const take = Math.min(wanted - this.fixedFilled, chunk.length - at);
          this.fixed.set(chunk.subarray(at, at + take), this.fixedFilled);
          const before = this.fixedFilled;
          this.fixedFilled += take;
          at += take;
          if (this.state === 'handshake') {
            for (const [i, expected] of SESSION_MAGIC.entries()) {
              if (i < before || i >= this.fixedFilled) continue;
              if (this.fixed.readUInt8(i) !== expected) {
                this.fail(
                  'E_SESSION_BAD_MAGIC',
                  `handshake byte ${i} is 0x${this.fixed.readUInt8(i).toString(16)}, expected 0x${expected.toString(16)} ("\\0HBS")`,
                );
                break;
              }
            }
            if (this.state === 'handshake' && this.fixedFilled === wanted) this.finishHandshake(messages);
          } else if (this.fixedFilled === wanted) {
            this.finishFrameHeader(messages);
          }
          break;
        }
        case 'framePayload': {
          const take = Math.min(this.payloadBytes - this.payloadFilled, chunk.length - at);
          if (this.payloadFilled === 0 && take === this.payloadBytes) {
            // The whole payload is in this chunk: hand out a view instead of copying.
            this.finishFrame(chunk.subarray(at, at + take), messages);
          } else {
            this.payload ??= new Uint8Array(this.payloadBytes);
            this.payload.set(chunk.subarray(at, at + take), this.payloadFilled);
            this.payloadFilled += take;
            if (this.payloadFilled === this.payloadBytes) this.finishFrame(this.payload, messages);
          }
          at += take;
          break;
        }
      }
    }
    return this.failure ? { messages, error: this.failure } : { messages };
  }

  private fail(code: string, reason: string): void {
    this.state = 'failed';
    this.failure = { code, reason };
    this.payload = null;
  }

  private finishHandshake(messages: SessionMessage[]): void {
    const bytes = this.fixed;
    const version = bytes.readUInt8(4);
    this.fixedFilled = 0;
    if (version !== SESSION_PROTOCOL_VERSION) {
      this.fail(
        'E_SESSION_VERSION',
        `${this.side === 'server' ? 'client' : 'server'} speaks session protocol version ${version}, this side speaks ${SESSION_PROTOCOL_VERSION}`,
      );
      return;
    }
    if (this.side === 'server') {
      const outputReceived = readOffset(bytes, 21);
      const flags = bytes.readUInt32LE(29);
      if (outputReceived === undefined) return this.fail('E_SESSION_OFFSET_RANGE', 'handshake outputReceived exceeds 2^53 − 1');
      if (flags !== 0) return this.fail('E_SESSION_BAD_FLAGS', `handshake flags 0x${flags.toString(16)} are not understood (expected 0)`);
      messages.push({ kind: 'clientHandshake', version, sessionId: new Uint8Array(bytes.subarray(5, 21)), outputReceived, flags });
    } else {
      const status = bytes.readUInt8(5);
      const generation = bytes.readUInt32LE(6);
      const inputAccepted = readOffset(bytes, 10);
      const outputStart = readOffset(bytes, 18);
      // Bytes 26..29 are reserved: ignored so that a later version may use them.
      if (status > HANDSHAKE_STATUS_MAX) return this.fail('E_SESSION_BAD_STATUS', `handshake reply has unknown status ${status}`);
      if (inputAccepted === undefined || outputStart === undefined)
        return this.fail('E_SESSION_OFFSET_RANGE', 'handshake reply offset exceeds 2^53 − 1');
      messages.push({ kind: 'serverHandshake', version, status: status as HandshakeStatus, generation, inputAccepted, outputStart });
    }
    this.state = 'frameHeader';
  }

  private finishFrameHeader(messages: SessionMessage[]): void {
    const type = this.fixed.readUInt8(0);
    const length = this.fixed.readUInt32LE(1);
    this.fixedFilled = 0;
    switch (type) {
      case FrameType.data:
        if (length > this.payloadBytesMax)
          return this.fail('E_SESSION_FRAME_TOO_LARGE', `DATA frame of ${length} bytes exceeds the ${this.payloadBytesMax}-byte limit`);
        break;
      case FrameType.ack:
        if (length !== ACK_PAYLOAD_BYTES)
          return this.fail('E_SESSION_FRAME_LENGTH', `ACK frame has a ${length}-byte payload, expected ${ACK_PAYLOAD_BYTES}`);
        break;
      case FrameType.ping:
      case FrameType.pong:
        if (length !== 0)
          return this.fail(
            'E_SESSION_FRAME_LENGTH',
            `${type === FrameType.ping ? 'PING' : 'PONG'} frame has a ${length}-byte payload, expected none`,
          );
        break;
      default:
        return this.fail('E_SESSION_FRAME_TYPE', `unknown frame type ${type}`);
    }
    this.frameType = type;
    if (length === 0) {
      this.finishFrame(new Uint8Array(0), messages);
      return;
    }
    this.payloadBytes = length;
    this.payloadFilled = 0;
    this.state = 'framePayload';
  }

  private finishFrame(payload: Uint8Array, messages: SessionMessage[]): void {
    this.payload = null;
    this.payloadFilled = 0;
    this.state = 'frameHeader';
    switch (this.frameType) {
      case FrameType.data:
        messages.push({ kind: 'data', payload });
        break;
      case FrameType.ack: {
        const offset = readOffset(Buffer.from(payload.buffer, payload.byteOffset, payload.length), 0);
        if (offset === undefined) return this.fail('E_SESSION_OFFSET_RANGE', 'ACK offset exceeds 2^53 − 1');
        messages.push({ kind: 'ack', offset });
        break;
      }
      case FrameType.ping:
        messages.push({ kind: 'ping' });
        break;
      case FrameType.pong:
        messages.push({ kind: 'pong' });
        break;
    }
  }
}
