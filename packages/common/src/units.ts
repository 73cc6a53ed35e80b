import { UsageError } from './errors.ts';

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** Parses a size such as `256MiB`, `1g` or `65536` into bytes; `flag` names the source in errors. */
export function parseBytes(text: string | number, flag: string): number {
  if (typeof text === 'number') {
    if (!Number.isSafeInteger(text) || text < 0) throw new UsageError(`${flag}: expected a size in bytes, got ${text}`);
    return text;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unitName = match?.[2];
  const unit = unitName === undefined ? undefined : BYTE_UNITS[unitName.toLowerCase()];
  if (!match || unit === undefined) {
    throw new UsageError(`${flag}: cannot read "${text}" as a size (examples: 256MiB, 1GiB, 16777216)`);
  }
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${flag}: "${text}" is not a whole number of bytes`);
  return bytes;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3 && bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3}GiB`;
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2}MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return `${bytes}B`;
}

/** `HOST:PORT`, with an IPv6 host in brackets: the inverse of parseHostPort. */
export function formatEndpoint(endpoint: { host: string; port: number }): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/** Parses `HOST:PORT` (IPv4, name, or `[v6]:port`). */
export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new UsageError(`${flag}: expected HOST:PORT (for example 127.0.0.1:7000), got "${text}"`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}
