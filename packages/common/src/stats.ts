/** Summary statistics used by benchmarks, reports and the live feed. */
import { assert } from './errors.ts';

/** Nearest-rank percentile (`fraction` in [0, 1]) of values in any order; NaN when there are none. */
export function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const value = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
  assert(value !== undefined, 'the nearest rank of a non-empty list is one of its indexes');
  return value;
}

/** The median of values in any order (the mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const upper = sorted[middle];
  const lower = sorted.length % 2 === 1 ? upper : sorted[middle - 1];
  assert(upper !== undefined && lower !== undefined, 'a non-empty list has a middle value (two for an even count)');
  return sorted.length % 2 === 1 ? upper : (lower + upper) / 2;
}
