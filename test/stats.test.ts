// Proves the summary statistics every report uses: nearest-rank percentiles and the median, on
// values in any order, with NaN (not a made-up 0) when there is nothing to summarise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, percentile } from '@hbft/common/stats.ts';

test('percentile is nearest-rank over unsorted values and leaves its input alone', () => {
  const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.equal(percentile(values, 0.5), 5);
  assert.equal(percentile(values, 0.99), 10);
  assert.equal(percentile(values, 0.1), 1);
  assert.equal(percentile(values, 0), 1);
  assert.equal(percentile(values, 1), 10);
  assert.deepEqual(values, [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
  assert.ok(Number.isNaN(percentile([], 0.5)));
});

test('median takes the middle value, or the mean of the middle two', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
});
