/**
 * RESP2 (the Redis protocol): encoding commands and parsing replies, for hbft's own clients
 * (load generator, session client, benchmarks). The server side is the `kv` guest.
 */
export type RespValue = string | number | null | RespError | RespValue[];

export class RespError {
  constructor(readonly message: string) {}
}

/** Encodes one command as an array of bulk strings. */
export function encodeCommand(args: (string | number | Uint8Array)[]): Uint8Array {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' || typeof arg === 'number' ? Buffer.from(String(arg)) : Buffer.from(arg);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Result of trying to parse one reply: the value and bytes used, or `incomplete`. */
export type ParseResult = { value: RespValue; length: number } | 'incomplete' | { error: string };

const CR = 13;
const LF = 10;

function findLineEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 1 < bytes.length; i++) if (bytes[i] === CR && bytes[i + 1] === LF) return i;
  return -1;
}

/** Parses one complete reply at `offset`; never throws on malformed input. */
export function parseReply(bytes: Uint8Array, offset = 0, depth = 0): ParseResult {
  if (offset >= bytes.length) return 'incomplete';
  if (depth > 32) return { error: 'reply nested too deeply' };
  const end = findLineEnd(bytes, offset);
  if (end < 0) return bytes.length - offset > 64 * 1024 ? { error: 'reply line too long' } : 'incomplete';
  const line = Buffer.from(bytes.buffer, bytes.byteOffset + offset + 1, end - offset - 1).toString('latin1');
  const afterLine = end + 2;
  switch (bytes[offset]) {
    case 0x2b: // +
      return { value: line, length: afterLine - offset };
    case 0x2d: // -
      return { value: new RespError(line), length: afterLine - offset };
    case 0x3a: {
      // :
      const value = Number(line);
      return Number.isFinite(value) && /^-?\d+$/.test(line) ? { value, length: afterLine - offset } : { error: `bad integer "${line}"` };
    }
    case 0x24: {
      // $
      const size = Number(line);
      if (size === -1) return { value: null, length: afterLine - offset };
      if (!Number.isInteger(size) || size < 0) return { error: `bad bulk length "${line}"` };
      if (afterLine + size + 2 > bytes.length) return 'incomplete';
      if (bytes[afterLine + size] !== CR || bytes[afterLine + size + 1] !== LF) return { error: 'bulk string not terminated by CRLF' };
      const value = Buffer.from(bytes.buffer, bytes.byteOffset + afterLine, size).toString('latin1');
      return { value, length: afterLine + size + 2 - offset };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      if (count === -1) return { value: null, length: afterLine - offset };
      if (!Number.isInteger(count) || count < 0) return { error: `bad array length "${line}"` };
      const items: RespValue[] = [];
      let at = afterLine;
      for (let i = 0; i < count; i++) {
        const item = parseReply(bytes, at, depth + 1);
        if (item === 'incomplete' || 'error' in item) return item;
        items.push(item.value);
        at += item.length;
      }
      return { value: items, length: at - offset };
    }
    default:
      return { error: `unexpected reply type byte 0x${bytes[offset]!.toString(16)}` };
  }
}

/** Accumulates bytes and yields complete replies in order. */
export class ReplyReader {
  private buffer: Uint8Array = new Uint8Array(0);
  private offset = 0;

  push(bytes: Uint8Array): void {
    const rest = this.buffer.subarray(this.offset);
    const merged = new Uint8Array(rest.length + bytes.length);
    merged.set(rest);
    merged.set(bytes, rest.length);
    this.buffer = merged;
    this.offset = 0;
  }

  /** The next complete reply, or undefined; throws on a malformed stream. */
  next(): RespValue | undefined {
    const result = parseReply(this.buffer, this.offset);
    if (result === 'incomplete') return undefined;
    if ('error' in result) throw new Error(`malformed reply: ${result.error}`);
    this.offset += result.length;
    return result.value;
  }
}
