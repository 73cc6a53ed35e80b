// Proves that sizes and addresses given on the command line are read correctly or refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBytes, parseHostPort, formatBytes } from '@hbft/common/units.ts';
import { UsageError } from '@hbft/common/errors.ts';

test('sizes with binary and decimal units', () => {
  assert.equal(parseBytes('256MiB', '--memory'), 256 * 1024 * 1024);
  assert.equal(parseBytes('1g', '--memory'), 1024 ** 3);
  assert.equal(parseBytes('16777216', '--memory'), 16777216);
  assert.equal(parseBytes(4096, '--memory'), 4096);
  assert.equal(formatBytes(256 * 1024 * 1024), '256MiB');
});

test('malformed sizes name the flag', () => {
  assert.throws(
    () => parseBytes('lots', '--memory'),
    (e: unknown) => e instanceof UsageError && /--memory/.test(e.message),
  );
  assert.throws(() => parseBytes('12 parsecs', '--memory'), UsageError);
  assert.throws(() => parseBytes(-1, '--memory'), UsageError);
});

test('host:port', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:7000', '--listen'), { host: '127.0.0.1', port: 7000 });
  assert.deepEqual(parseHostPort(':7000', '--listen'), { host: '0.0.0.0', port: 7000 });
  assert.deepEqual(parseHostPort('[::1]:80', '--listen'), { host: '::1', port: 80 });
  assert.throws(() => parseHostPort('nohost', '--listen'), /--listen/);
  assert.throws(() => parseHostPort('h:99999', '--listen'), UsageError);
});
