/**
 * One valid message of every kind, with plausible header fields and payload: for round-trip
 * tests, as seeds for the fuzzer, and for simulators that need a frame of each sort.
 */
import { PAGE_BYTES } from '../guest/addressMap.ts';
import { ENCODING_RAW, ENCODING_ZERO, PAGE_RECORD_HEADER_BYTES } from '../checkpoint/pageCodec.ts';
import { FrameKind } from './kinds.ts';
import { authNonceBytes, authProofBytes, guestImageHashBytes, protocolVersion, sessionIdBytes } from './limits.ts';
import type { MetaOf } from './messages.ts';

export type SampleMessage = {
  [K in FrameKind]: { kind: K; meta: MetaOf<K>; generation: number; epoch: number; payload: Buffer };
}[FrameKind];

/** Page records: one raw page filled with `fill`, then one zero page. */
export function samplePageRecords(firstPage: number, fill: number): Buffer {
  const records = Buffer.alloc(2 * PAGE_RECORD_HEADER_BYTES + PAGE_BYTES);
  records.writeUInt32LE(firstPage, 0);
  records.writeUInt8(ENCODING_RAW, 4);
  records.writeUInt16LE(PAGE_BYTES, 6);
  records.fill(fill, PAGE_RECORD_HEADER_BYTES, PAGE_RECORD_HEADER_BYTES + PAGE_BYTES);
  const second = PAGE_RECORD_HEADER_BYTES + PAGE_BYTES;
  records.writeUInt32LE(firstPage + 1, second);
  records.writeUInt8(ENCODING_ZERO, second + 4);
  records.writeUInt16LE(0, second + 6);
  return records;
}

/** Every kind once, in kind order. `memoryBytes` must match the limits the frames are checked with. */
export function sampleMessages(memoryBytes: number): SampleMessage[] {
  const bytes = (length: number, fill: number): Buffer => Buffer.alloc(length, fill);
  const none = Buffer.alloc(0);
  const state = bytes(300, 0x5a);
  const epoch = 2 ** 40 + 7; // beyond 32 bits, to exercise the u64 field
  return [
    { kind: FrameKind.HELLO, meta: { authMode: 'hmac', nonce: bytes(authNonceBytes, 1) }, generation: 0, epoch: 0, payload: none },
    {
      kind: FrameKind.CHALLENGE,
      meta: { authMode: 'hmac', nonce: bytes(authNonceBytes, 2), proof: bytes(authProofBytes, 3) },
      generation: 0,
      epoch: 0,
      payload: none,
    },
    { kind: FrameKind.AUTH_PROOF, meta: { proof: bytes(authProofBytes, 4) }, generation: 0, epoch: 0, payload: none },
    { kind: FrameKind.AUTH_OK, meta: { authMode: 'insecure' }, generation: 0, epoch: 0, payload: none },
    {
      kind: FrameKind.HANDSHAKE,
      meta: {
        protocolVersion,
        memoryBytes,
        guestImageHash: bytes(guestImageHashBytes, 5),
        role: 'primary',
        channel: 'bulk',
        sessionId: bytes(sessionIdBytes, 6),
        instanceId: bytes(sessionIdBytes, 8),
      },
      generation: 3,
      epoch: 0,
      payload: none,
    },
    {
      kind: FrameKind.HANDSHAKE_OK,
      meta: { role: 'backup', channel: 'control', sessionId: bytes(sessionIdBytes, 6), appliedEpoch: null },
      generation: 3,
      epoch: 0,
      payload: none,
    },
    { kind: FrameKind.HEARTBEAT, meta: { sentAtMs: 12345.625 }, generation: 3, epoch: epoch, payload: none },
    { kind: FrameKind.FULL_SYNC_BEGIN, meta: { memoryBytes, pageCount: 2, partCount: 1 }, generation: 3, epoch, payload: state },
    { kind: FrameKind.FULL_SYNC_PAGES, meta: { part: 0, pageCount: 2 }, generation: 3, epoch, payload: samplePageRecords(0, 0x11) },
    { kind: FrameKind.FULL_SYNC_END, meta: { pageCount: 2, partCount: 1, checksum: 0xdeadbeef }, generation: 3, epoch, payload: none },
    {
      kind: FrameKind.CHECKPOINT_BEGIN,
      meta: { pageCount: 4, partCount: 2 },
      generation: 3,
      epoch: epoch + 1,
      payload: state,
    },
    {
      kind: FrameKind.CHECKPOINT_PAGES,
      meta: { part: 1, pageCount: 2 },
      generation: 3,
      epoch: epoch + 1,
      payload: samplePageRecords(10, 0x22),
    },
    {
      kind: FrameKind.CHECKPOINT_END,
      meta: { pageCount: 4, partCount: 2, checksum: 1 },
      generation: 3,
      epoch: epoch + 1,
      payload: none,
    },
    { kind: FrameKind.ACK, meta: { subject: 'checkpoint' }, generation: 3, epoch: epoch + 1, payload: none },
    { kind: FrameKind.ERROR, meta: { code: 'E_FRAME_CHECKSUM', message: 'frame 12 checksum' }, generation: 3, epoch: 0, payload: none },
    { kind: FrameKind.GOODBYE, meta: { reason: 'shutting down — ünïcode' }, generation: 3, epoch: 0, payload: none },
  ];
}
