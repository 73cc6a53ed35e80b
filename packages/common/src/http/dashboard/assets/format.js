// Number and time formatting for the dashboard: short, unit-bearing labels that fit chart axes.

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB'];

/** 1536 → "1.5 KiB". */
export function formatBytes(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  let unit = 0;
  let scaled = Math.abs(value);
  while (scaled >= 1024 && unit < BYTE_UNITS.length - 1) {
    scaled /= 1024;
    unit++;
  }
  const sign = value < 0 ? '-' : '';
  return `${sign}${trim(scaled)} ${BYTE_UNITS[unit]}`;
}

/** A plain quantity with k/M suffixes: 12345 → "12.3k". */
export function formatCount(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6) return `${trim(value / 1e6)}M`;
  if (magnitude >= 1e4) return `${trim(value / 1e3)}k`;
  return trim(value);
}

export function formatMs(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 1000) return `${trim(value / 1000)} s`;
  return `${trim(value)} ms`;
}

export function formatUs(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 1000) return `${trim(value / 1000)} ms`;
  return `${trim(value)} µs`;
}

export function formatPercent(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  return `${trim(value * 100)} %`;
}

/** Wall-clock time of day, HH:MM:SS, in the viewer's time zone. */
export function formatClock(ms) {
  const date = new Date(ms);
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((part) => String(part).padStart(2, '0')).join(':');
}

/** Three significant figures at most, no trailing zeros. */
function trim(value) {
  const magnitude = Math.abs(value);
  if (magnitude === 0) return '0';
  const digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : 2;
  return String(Number(value.toFixed(digits)));
}

/** The smallest "nice" number (1, 2, 2.5, 5 × 10^k) at or above `value`, for axis tops. */
export function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** As niceCeiling, in whole KiB, MiB, … so that byte axes read 2 KiB, 500 KiB, 1 MiB. */
export function niceBytesCeiling(value) {
  if (!(value > 0)) return 1;
  let unit = 1;
  while (value >= unit * 1024 && unit < 1024 ** 3) unit *= 1024;
  return niceCeiling(value / unit) * unit;
}
