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
export type ParseResult<T = RespValue> = { value: T; length: number } | 'incomplete' | { error: string };

/**
 * A reply as the server typed it, for tools that show replies the way redis-cli does (a status
 * `OK` and a bulk string "OK" look alike in `RespValue`). Null bulk strings and null arrays are `nil`.
 */
export type TypedReply =
  | { type: 'status'; text: string }
  | { type: 'error'; text: string }
  | { type: 'integer'; value: number }
  | { type: 'bulk'; text: string }
  | { type: 'nil' }
  | { type: 'array'; items: TypedReply[] };

/** How the parser builds values: one parser, two shapes of result. */
interface ReplyBuilder<T> {
  status(text: string): T;
  error(text: string): T;
  integer(value: number): T;
  bulk(text: string): T;
  nil(): T;
  array(items: T[]): T;
}

const valueBuilder: ReplyBuilder<RespValue> = {
  status: (text) => text,
  error: (text) => new RespError(text),
  integer: (value) => value,
  bulk: (text) => text,
  nil: () => null,
  array: (items) => items,
};

const typedBuilder: ReplyBuilder<TypedReply> = {
  status: (text) => ({ type: 'status', text }),
  error: (text) => ({ type: 'error', text }),
  integer: (value) => ({ type: 'integer', value }),
  bulk: (text) => ({ type: 'bulk', text }),
  nil: () => ({ type: 'nil' }),
  array: (items) => ({ type: 'array', items }),
};

/** A typed reply as a `RespValue` (what the load generator records, whichever client read it). */
export function respValueOf(reply: TypedReply): RespValue {
  switch (reply.type) {
    case 'status':
    case 'bulk':
      return reply.text;
    case 'error':
      return new RespError(reply.text);
    case 'integer':
      return reply.value;
    case 'nil':
      return null;
    case 'array':
      return reply.items.map(respValueOf);
  }
}

const CR = 13;
const LF = 10;

function findLineEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 1 < bytes.length; i++) if (bytes[i] === CR && bytes[i + 1] === LF) return i;
  return -1;
}

/** Parses one complete reply at `offset`; never throws on malformed input. */
export function parseReply(bytes: Uint8Array, offset = 0, depth = 0): ParseResult {
  return parseWith(valueBuilder, bytes, offset, depth);
}

/** Like `parseReply`, keeping the reply's RESP type. */
export function parseTypedReply(bytes: Uint8Array, offset = 0): ParseResult<TypedReply> {
  return parseWith(typedBuilder, bytes, offset, 0);
}

function parseWith<T>(build: ReplyBuilder<T>, bytes: Uint8Array, offset: number, depth: number): ParseResult<T> {
  const type = bytes[offset];
  if (type === undefined) return 'incomplete';
  if (depth > 32) return { error: 'reply nested too deeply' };
  const end = findLineEnd(bytes, offset);
  if (end < 0) return bytes.length - offset > 64 * 1024 ? { error: 'reply line too long' } : 'incomplete';
  const line = Buffer.from(bytes.buffer, bytes.byteOffset + offset + 1, end - offset - 1).toString('latin1');
  const afterLine = end + 2;
  switch (type) {
    case 0x2b: // +
      return { value: build.status(line), length: afterLine - offset };
    case 0x2d: // -
      return { value: build.error(line), length: afterLine - offset };
    case 0x3a: {
      // :
      const value = Number(line);
      return Number.isFinite(value) && /^-?\d+$/.test(line)
        ? { value: build.integer(value), length: afterLine - offset }
        : { error: `bad integer "${line}"` };
    }
    case 0x24: {
      // $
      const size = Number(line);
      if (size === -1) return { value: build.nil(), length: afterLine - offset };
      if (!Number.isInteger(size) || size < 0) return { error: `bad bulk length "${line}"` };
      if (afterLine + size + 2 > bytes.length) return 'incomplete';
      if (bytes[afterLine + size] !== CR || bytes[afterLine + size + 1] !== LF) return { error: 'bulk string not terminated by CRLF' };
      const value = Buffer.from(bytes.buffer, bytes.byteOffset + afterLine, size).toString('latin1');
      return { value: build.bulk(value), length: afterLine + size + 2 - offset };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      if (count === -1) return { value: build.nil(), length: afterLine - offset };
      if (!Number.isInteger(count) || count < 0) return { error: `bad array length "${line}"` };
      const items: T[] = [];
      let at = afterLine;
      for (let i = 0; i < count; i++) {
        const item = parseWith(build, bytes, at, depth + 1);
        if (item === 'incomplete' || 'error' in item) return item;
        items.push(item.value);
        at += item.length;
      }
      return { value: build.array(items), length: at - offset };
    }
    default:
      return { error: `unexpected reply type byte 0x${type.toString(16)}` };
  }
}

export type ReplyParser<T> = (bytes: Uint8Array, offset: number) => ParseResult<T>;

/** Accumulates bytes and yields complete replies in order (`parseTypedReply` for typed ones). */
export class ReplyReader<T = RespValue> {
  private buffer: Uint8Array = new Uint8Array(0);
  private offset = 0;

  /** `parse` defaults to `parseReply` (then T is RespValue); pass `parseTypedReply` for typed replies. */
  constructor(private readonly parse: ReplyParser<T> = parseReply as ReplyParser<never>) {}

  push(bytes: Uint8Array): void {
    const rest = this.buffer.subarray(this.offset);
    const merged = new Uint8Array(rest.length + bytes.length);
    merged.set(rest);
    merged.set(bytes, rest.length);
    this.buffer = merged;
    this.offset = 0;
  }

  /** The next complete reply, or undefined; throws on a malformed stream. */
  next(): T | undefined {
    const result = this.parse(this.buffer, this.offset);
    if (result === 'incomplete') return undefined;
    if ('error' in result) throw new Error(`malformed reply: ${result.error}`);
    this.offset += result.length;
    return result.value;
  }
}
