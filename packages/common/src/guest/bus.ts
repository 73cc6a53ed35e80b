import type { Device } from './devices/device.ts';
import { assert } from '../errors.ts';

/** Dispatches guest-physical accesses outside RAM to the device mapped there. */
export class Bus {
  private readonly devices: Device[] = [];

  attach(device: Device): void {
    for (const other of this.devices) {
      assert(device.base + device.size <= other.base || other.base + other.size <= device.base, `${device.name} overlaps ${other.name}`);
    }
    this.devices.push(device);
  }

  find(address: number): Device | undefined {
    const unsigned = address >>> 0;
    for (const device of this.devices) {
      if (unsigned >= device.base && unsigned - device.base < device.size) return device;
    }
    return undefined;
  }

  /** Reads `sizeBytes` at `address`, zero-extended; undefined when nothing is mapped there. */
  load(address: number, sizeBytes: number): number | undefined {
    const device = this.find(address);
    return device?.read((address >>> 0) - device.base, sizeBytes);
  }

  /** Writes; false when nothing is mapped there. */
  store(address: number, sizeBytes: number, value: number): boolean {
    const device = this.find(address);
    if (device === undefined) return false;
    device.write((address >>> 0) - device.base, sizeBytes, value);
    return true;
  }
}
