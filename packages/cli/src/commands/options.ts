import type { Argv } from 'yargs';
import { UsageError } from '@hbft/common/errors.ts';
import { MEMORY_BYTES_DEFAULT } from '@hbft/common/guest/addressMap.ts';
import { validateMemoryBytes } from '@hbft/common/guest/memory.ts';
import { formatBytes, parseBytes } from '@hbft/common/units.ts';

/** Shared flag definitions, so every command reads and checks them the same way. */
export function withMemory<T>(yargs: Argv<T>) {
  return yargs.option('memory', {
    type: 'string',
    default: formatBytes(MEMORY_BYTES_DEFAULT),
    describe: 'guest RAM (16MiB to 2GiB, a multiple of 2MiB)',
  });
}

export function memoryBytesFrom(value: string): number {
  return validateMemoryBytes(parseBytes(value, '--memory'));
}

/** A whole number ≥ `min` from a flag, or a UsageError naming the flag. */
export function integerFlag(value: unknown, flag: string, min = 0): number {
  const number = typeof value === 'string' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < min) {
    throw new UsageError(`${flag}: expected a whole number ≥ ${min}, got "${String(value)}"`);
  }
  return number;
}
