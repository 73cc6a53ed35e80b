/**
 * What `hbft client` borrows from redis-cli: splitting a typed line into arguments (quotes and
 * escapes as in redis's `sdssplitargs`) and showing replies the way redis-cli does, in its terminal
 * form (`(integer) 1`, `"value"`, numbered arrays) or its raw form for pipes.
 */
import type { TypedReply } from './resp.ts';

const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' };

/** Splits a command line into arguments; returns an error for unbalanced quotes. */
export function splitCommandLine(line: string): { args: string[] } | { error: string } {
  const args: string[] = [];
  let at = 0;
  for (;;) {
    while (at < line.length && /\s/.test(line.charAt(at))) at++;
    if (at >= line.length) return { args };
    let current = '';
    let quote: '"' | "'" | null = null;
    let done = false;
    while (!done) {
      const char = line[at];
      if (quote === '"') {
        if (char === undefined) return { error: 'unbalanced double quotes' };
        if (char === '\\' && line[at + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(at + 2, at + 4))) {
          current += String.fromCharCode(parseInt(line.slice(at + 2, at + 4), 16));
          at += 3;
        } else if (char === '\\' && at + 1 < line.length) {
          at++;
          current += SIMPLE_ESCAPES[line.charAt(at)] ?? line.charAt(at);
        } else if (char === '"') {
          // A closing quote must be followed by a space or the end.
          if (at + 1 < line.length && !/\s/.test(line.charAt(at + 1))) return { error: 'closing quote must be followed by a space' };
          done = true;
        } else current += char;
      } else if (quote === "'") {
        if (char === undefined) return { error: 'unbalanced single quotes' };
        if (char === '\\' && line[at + 1] === "'") {
          at++;
          current += "'";
        } else if (char === "'") {
          if (at + 1 < line.length && !/\s/.test(line.charAt(at + 1))) return { error: 'closing quote must be followed by a space' };
          done = true;
        } else current += char;
      } else if (char === undefined || /\s/.test(char)) {
        done = true;
      } else if (char === '"' || char === "'") {
        quote = char;
      } else current += char;
      if (!done || quote !== null) at++;
      if (done) break;
    }
    args.push(current);
  }
}

/** A bulk string as redis-cli prints it: in double quotes with non-printable bytes escaped. */
export function quoteBulk(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.charCodeAt(0);
    if (char === '\\' || char === '"') out += `\\${char}`;
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (char === '\x07') out += '\\a';
    else if (char === '\b') out += '\\b';
    else if (code < 0x20 || code >= 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += char;
  }
  return `${out}"`;
}

/** A reply in redis-cli's terminal form (no trailing newline). */
export function formatReply(reply: TypedReply, indent = 0): string {
  switch (reply.type) {
    case 'status':
      return reply.text;
    case 'error':
      return `(error) ${reply.text}`;
    case 'integer':
      return `(integer) ${reply.value}`;
    case 'bulk':
      return quoteBulk(reply.text);
    case 'nil':
      return '(nil)';
    case 'array': {
      if (reply.items.length === 0) return '(empty array)';
      const width = String(reply.items.length).length;
      return reply.items
        .map((item, i) => {
          const label = `${String(i + 1).padStart(width)}) `;
          const body = formatReply(item, indent + label.length);
          return `${i === 0 ? '' : ' '.repeat(indent)}${label}${body}`;
        })
        .join('\n');
    }
  }
}

/** A reply in redis-cli's raw form (`--raw`, or output to a pipe). */
export function formatReplyRaw(reply: TypedReply): string {
  switch (reply.type) {
    case 'status':
    case 'error':
    case 'bulk':
      return reply.text;
    case 'integer':
      return String(reply.value);
    case 'nil':
      return '';
    case 'array':
      return reply.items.map(formatReplyRaw).join('\n');
  }
}
