/**
 * A queue of bytes addressed by absolute stream offsets: the client's resend buffer. Bytes are
 * appended at the end and dropped from the front once the server has acknowledged them.
 */
import { assert } from '../errors.ts';

export class ByteQueue {
  private readonly chunks: Uint8Array[] = [];
  /** Index of the first live chunk in `chunks` (dropped chunks are compacted lazily). */
  private head = 0;
  /** Stream offset of the first byte of `chunks[head]`. */
  private headOffset: number;
  private endOffsetValue: number;

  constructor(startOffset = 0) {
    this.headOffset = startOffset;
    this.endOffsetValue = startOffset;
  }

  /** Offset of the first byte still held. */
  get startOffset(): number {
    return this.headOffset;
  }

  /** Offset one past the last byte appended. */
  get endOffset(): number {
    return this.endOffsetValue;
  }

  get byteLength(): number {
    return this.endOffsetValue - this.headOffset;
  }

  /** Appends `bytes` (kept by reference: the caller must not reuse the buffer). */
  append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.chunks.push(bytes);
    this.endOffsetValue += bytes.length;
  }

  /** Forgets every byte before `offset`. */
  dropBefore(offset: number): void {
    assert(offset <= this.endOffsetValue, `cannot drop to ${offset}: the queue ends at ${this.endOffsetValue}`);
    for (let chunk = this.chunks[this.head]; chunk !== undefined && offset > this.headOffset; chunk = this.chunks[this.head]) {
      if (offset >= this.headOffset + chunk.length) {
        this.headOffset += chunk.length;
        this.chunks[this.head] = undefined as unknown as Uint8Array;
        this.head++;
      } else {
        this.chunks[this.head] = chunk.subarray(offset - this.headOffset);
        this.headOffset = offset;
      }
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Views of the bytes in [from, endOffset), each at most `pieceBytesMax` long. */
  slicesFrom(from: number, pieceBytesMax: number): Uint8Array[] {
    assert(
      from >= this.headOffset && from <= this.endOffsetValue,
      `offset ${from} is outside [${this.headOffset}, ${this.endOffsetValue}]`,
    );
    const pieces: Uint8Array[] = [];
    let offset = this.headOffset;
    for (const chunk of this.chunks.slice(this.head)) {
      const skip = Math.max(0, from - offset);
      offset += chunk.length;
      for (let at = skip; at < chunk.length; at += pieceBytesMax)
        pieces.push(chunk.subarray(at, Math.min(chunk.length, at + pieceBytesMax)));
    }
    return pieces;
  }
}
