/**
 * Bandwidth as people write it (`1mbit`, `128kbit`, `100KB/s`, `2MiB/s`), converted to the
 * bandwidth toxic's unit: KB/s with KB = 1000 bytes (Toxiproxy's). A bare number is KB/s, so a
 * value copied from a Toxiproxy config means the same here.
 */
import { InvalidFieldError } from './errors.ts';

/** Bytes per second of one unit; bit units follow `tc` (k = 1000, bits). */
const BYTES_PER_SECOND: Record<string, number> = {
  bit: 1 / 8,
  kbit: 1000 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
  bps: 1 / 8,
  kbps: 1000 / 8,
  mbps: 1e6 / 8,
  gbps: 1e9 / 8,
  'b/s': 1,
  'kb/s': 1000,
  'mb/s': 1e6,
  'gb/s': 1e9,
  'kib/s': 1024,
  'mib/s': 1024 ** 2,
  'gib/s': 1024 ** 3,
};

export function parseRateKBps(text: string, field: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z/]*)\s*$/.exec(text);
  const unit = match?.[2]?.toLowerCase() ?? '';
  const number = match ? Number(match[1]) : NaN;
  const kilobytesPerSecond = unit === '' ? number : (number * (BYTES_PER_SECOND[unit] ?? NaN)) / 1000;
  if (!match || !Number.isFinite(kilobytesPerSecond)) {
    throw new InvalidFieldError(
      field,
      `cannot read "${text}" as a rate (examples: 1mbit, 128kbit, 100KB/s, 2MiB/s; a bare number is KB/s)`,
    );
  }
  if (kilobytesPerSecond <= 0) throw new InvalidFieldError(field, `a rate must be above zero, got "${text}"`);
  return kilobytesPerSecond;
}
