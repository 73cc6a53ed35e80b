import { StateFormatError } from '../../errors.ts';

/**
 * A memory-mapped device. The bus hands it accesses at `offset` from its base, already checked for
 * alignment; reads return the value zero-extended to 32 bits. Every device can save and restore
 * its state behind a version number (compare v86's `get_state`/`set_state`, rvemu's devices/).
 */
export interface Device {
  readonly name: string;
  readonly base: number;
  readonly size: number;
  read(offset: number, sizeBytes: number): number;
  write(offset: number, sizeBytes: number, value: number): void;
  /** A plain, msgpack-encodable object that starts with `{ v: version }`. */
  getState(): DeviceState;
  /** Restores from untrusted input: throws StateFormatError naming the problem. */
  setState(state: unknown): void;
}

export interface DeviceState {
  v: number;
  [field: string]: unknown;
}

/** Checks the envelope of a device state and returns it as a record of fields. */
export function expectDeviceState(device: string, state: unknown, version: number): Record<string, unknown> {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new StateFormatError(`${device} state: expected an object`);
  }
  const record = state as Record<string, unknown>;
  if (record.v !== version) {
    throw new StateFormatError(`${device} state: version ${String(record.v)} is not supported (expected ${version})`);
  }
  return record;
}

export function expectUint32(device: string, record: Record<string, unknown>, field: string): number {
  const value = record[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new StateFormatError(`${device} state: field "${field}" must be an unsigned 32-bit integer`);
  }
  return value;
}

export function expectBytes(device: string, record: Record<string, unknown>, field: string): Uint8Array {
  const value = record[field];
  if (!(value instanceof Uint8Array)) throw new StateFormatError(`${device} state: field "${field}" must be bytes`);
  return value;
}
