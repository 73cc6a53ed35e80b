import { assert } from '../errors.ts';

/*
 * Session output carried by checkpoints (CHECKPOINT_OUTPUT frames), so that a backup that takes
 * over can send a resuming client the committed output it has not received. Records:
 *   u8 type, u8 tag length, u16 reserved (0), tag (ASCII), u32 offset low, u32 offset high,
 *   u32 data length, data
 * OUTPUT (1): `data` is the session's output stream at `offset`.
 * CLIENT_ACK (2): the client has received the stream up to `offset` (no data): older output may go.
 */
export const SESSION_RECORD_OUTPUT = 1;
export const SESSION_RECORD_CLIENT_ACK = 2;
export const SESSION_RECORD_HEADER_BYTES = 16;
export const SESSION_TAG_BYTES_MAX = 64;

export interface SessionRecord {
  type: typeof SESSION_RECORD_OUTPUT | typeof SESSION_RECORD_CLIENT_ACK;
  tag: string;
  offset: number;
  data: Uint8Array;
}

const empty = new Uint8Array(0);

export interface SessionRecordPart {
  payload: Uint8Array;
  recordCount: number;
}

/** Packs records into payloads of at most `payloadBytesMax` (a long output is split). */
export function encodeSessionRecords(records: SessionRecord[], payloadBytesMax: number): SessionRecordPart[] {
  const parts: SessionRecordPart[] = [];
  let current: Buffer[] = [];
  let currentBytes = 0;
  let currentRecords = 0;
  const flush = () => {
    if (currentBytes === 0) return;
    parts.push({ payload: Buffer.concat(current, currentBytes), recordCount: currentRecords });
    current = [];
    currentBytes = 0;
    currentRecords = 0;
  };
  const push = (type: number, tag: Buffer, offset: number, data: Uint8Array) => {
    const bytes = SESSION_RECORD_HEADER_BYTES + tag.length + data.length;
    if (currentBytes + bytes > payloadBytesMax) flush();
    const header = Buffer.alloc(SESSION_RECORD_HEADER_BYTES);
    header.writeUInt8(type, 0);
    header.writeUInt8(tag.length, 1);
    header.writeUInt32LE(offset % 2 ** 32, 4);
    header.writeUInt32LE(Math.floor(offset / 2 ** 32), 8);
    header.writeUInt32LE(data.length, 12);
    current.push(header, tag, Buffer.from(data.buffer, data.byteOffset, data.length));
    currentBytes += bytes;
    currentRecords++;
  };
  for (const record of records) {
    const tag = Buffer.from(record.tag, 'latin1');
    assert(tag.length <= SESSION_TAG_BYTES_MAX, 'session tags are short');
    if (record.type === SESSION_RECORD_CLIENT_ACK) {
      push(record.type, tag, record.offset, empty);
      continue;
    }
    const room = payloadBytesMax - SESSION_RECORD_HEADER_BYTES - tag.length;
    for (let at = 0; at < record.data.length; at += room) {
      push(record.type, tag, record.offset + at, record.data.subarray(at, Math.min(record.data.length, at + room)));
    }
  }
  flush();
  return parts;
}

/** Parses one payload of records; never throws on malformed input. */
export function decodeSessionRecords(payload: Uint8Array): { records: SessionRecord[] } | { reason: string } {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const records: SessionRecord[] = [];
  let at = 0;
  while (at < payload.length) {
    if (at + SESSION_RECORD_HEADER_BYTES > payload.length) return { reason: 'truncated session record header' };
    const type = view.getUint8(at);
    const tagBytes = view.getUint8(at + 1);
    if (view.getUint16(at + 2, true) !== 0) return { reason: 'reserved bytes of a session record are not zero' };
    const offset = view.getUint32(at + 4, true) + view.getUint32(at + 8, true) * 2 ** 32;
    const dataBytes = view.getUint32(at + 12, true);
    if (type !== SESSION_RECORD_OUTPUT && type !== SESSION_RECORD_CLIENT_ACK) return { reason: `unknown session record type ${type}` };
    if (tagBytes === 0 || tagBytes > SESSION_TAG_BYTES_MAX) return { reason: `session tag of ${tagBytes} bytes` };
    if (!Number.isSafeInteger(offset)) return { reason: 'session stream offset out of range' };
    if (type === SESSION_RECORD_CLIENT_ACK && dataBytes !== 0) return { reason: 'a client ack record carries data' };
    const end = at + SESSION_RECORD_HEADER_BYTES + tagBytes + dataBytes;
    if (end > payload.length) return { reason: 'session record runs past the end of the payload' };
    const tag = Buffer.from(payload.buffer, payload.byteOffset + at + SESSION_RECORD_HEADER_BYTES, tagBytes).toString('latin1');
    records.push({
      type,
      tag,
      offset,
      data: payload.subarray(at + SESSION_RECORD_HEADER_BYTES + tagBytes, end),
    });
    at = end;
  }
  return { records };
}

/**
 * The tail of each session's output stream: what a client may still ask for again. The primary
 * keeps what it released and the client has not acknowledged; the backup keeps what committed
 * checkpoints carried. Bounded per session: beyond `bytesMaxPerSession` the oldest output goes, and a
 * client that far behind gets a "gap" answer instead of a resumption.
 */
export class SessionOutputWindows {
  private readonly windows = new Map<string, { start: number; chunks: Uint8Array[]; bytes: number }>();

  constructor(private readonly bytesMaxPerSession: number) {}

  private window(tag: string) {
    let window = this.windows.get(tag);
    if (!window) {
      window = { start: 0, chunks: [], bytes: 0 };
      this.windows.set(tag, window);
    }
    return window;
  }

  /** First offset still held, and the end of the stream as known here. */
  range(tag: string): { start: number; end: number } | null {
    const window = this.windows.get(tag);
    return window ? { start: window.start, end: window.start + window.bytes } : null;
  }

  /** Appends output at `offset` (normally the current end; overlap is skipped, a hole restarts it). */
  append(tag: string, offset: number, data: Uint8Array): void {
    const window = this.window(tag);
    const end = window.start + window.bytes;
    if (offset > end) {
      window.start = offset;
      window.chunks = [];
      window.bytes = 0;
    } else if (offset < end) {
      const skip = end - offset;
      if (skip >= data.length) return;
      data = data.subarray(skip);
    }
    if (data.length === 0) return;
    window.chunks.push(Uint8Array.from(data));
    window.bytes += data.length;
    if (window.bytes > this.bytesMaxPerSession) this.trim(tag, window.start + window.bytes - this.bytesMaxPerSession);
  }

  /** Drops output below `offset`. */
  trim(tag: string, offset: number): void {
    const window = this.windows.get(tag);
    if (!window || offset <= window.start) return;
    let drop = Math.min(offset, window.start + window.bytes) - window.start;
    for (let first = window.chunks[0]; drop > 0 && first !== undefined; first = window.chunks[0]) {
      if (first.length <= drop) {
        window.chunks.shift();
        window.bytes -= first.length;
        window.start += first.length;
        drop -= first.length;
      } else {
        window.chunks[0] = first.subarray(drop);
        window.bytes -= drop;
        window.start += drop;
        drop = 0;
      }
    }
    // An empty window says nothing the device state does not (its end is the NIC's txProduced).
    if (window.bytes === 0) this.windows.delete(tag);
  }

  /** The bytes from `offset` to the end, or null when `offset` is outside the window. */
  from(tag: string, offset: number): Uint8Array | null {
    const window = this.windows.get(tag);
    const start = window?.start ?? 0;
    const end = start + (window?.bytes ?? 0);
    if (offset < start || offset > end) return null;
    const all = window ? Buffer.concat(window.chunks) : Buffer.alloc(0);
    return all.subarray(offset - start);
  }

  delete(tag: string): void {
    this.windows.delete(tag);
  }

  tags(): string[] {
    return [...this.windows.keys()];
  }

  /** A copy (a backup hands its windows to the primary it becomes). */
  clone(): SessionOutputWindows {
    const copy = new SessionOutputWindows(this.bytesMaxPerSession);
    for (const [tag, window] of this.windows)
      copy.windows.set(tag, { start: window.start, chunks: [...window.chunks], bytes: window.bytes });
    return copy;
  }
}

/** Per-session output kept for resumption: enough for a few epochs of a busy session. */
export const SESSION_OUTPUT_BYTES_MAX = 4 * 1024 * 1024;
