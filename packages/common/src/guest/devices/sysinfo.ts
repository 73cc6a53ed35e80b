import { UsageError, StateFormatError } from '../../errors.ts';
import {
  RAM_BASE,
  SYSINFO_ARGS,
  SYSINFO_ARGS_BYTES_MAX,
  SYSINFO_ARGS_LEN,
  SYSINFO_BASE,
  SYSINFO_RAM_BASE,
  SYSINFO_RAM_SIZE,
  SYSINFO_SIZE,
  SYSINFO_TIMEBASE_HZ,
  TIMEBASE_HZ,
} from '../addressMap.ts';
import { expectBytes, expectDeviceState, type Device, type DeviceState } from './device.ts';

/** Read-only facts for the guest: where RAM is, how big, the timebase, and its argument string. */
export class SysInfo implements Device {
  readonly name = 'sysinfo';
  readonly base = SYSINFO_BASE;
  readonly size = SYSINFO_SIZE;
  private readonly ramBytes: number;
  private args = new Uint8Array(0);

  constructor(ramBytes: number) {
    this.ramBytes = ramBytes;
  }

  /** Sets the argument string the guest reads at boot (`key=value` words, by convention). */
  setArgs(text: string): void {
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > SYSINFO_ARGS_BYTES_MAX) {
      throw new UsageError(`guest arguments are ${bytes.length} bytes; at most ${SYSINFO_ARGS_BYTES_MAX} fit`);
    }
    this.args = bytes;
  }

  get argsText(): string {
    return new TextDecoder().decode(this.args);
  }

  read(offset: number, sizeBytes: number): number {
    const word = this.readWord(offset & ~3);
    const shift = (offset & 3) * 8;
    const mask = sizeBytes === 4 ? 0xffff_ffff : (1 << (sizeBytes * 8)) - 1;
    return ((word >>> shift) & mask) >>> 0;
  }

  private readWord(offset: number): number {
    switch (offset) {
      case SYSINFO_RAM_BASE:
        return RAM_BASE;
      case SYSINFO_RAM_SIZE:
        // 2 GiB does not fit in 32 bits minus one: report it as 0x8000_0000 (unsigned).
        return this.ramBytes >>> 0;
      case SYSINFO_TIMEBASE_HZ:
        return TIMEBASE_HZ;
      case SYSINFO_ARGS_LEN:
        return this.args.length;
    }
    if (offset >= SYSINFO_ARGS && offset < SYSINFO_ARGS + SYSINFO_ARGS_BYTES_MAX) {
      let word = 0;
      for (let i = 3; i >= 0; i--) word = (word << 8) | (this.args[offset - SYSINFO_ARGS + i] ?? 0);
      return word >>> 0;
    }
    return 0;
  }

  write(): void {}

  getState(): DeviceState {
    return { v: 1, args: this.args };
  }

  setState(state: unknown): void {
    const record = expectDeviceState(this.name, state, 1);
    const args = expectBytes(this.name, record, 'args');
    if (args.length > SYSINFO_ARGS_BYTES_MAX) throw new StateFormatError('sysinfo state: arguments too long');
    this.args = Uint8Array.from(args);
  }
}
