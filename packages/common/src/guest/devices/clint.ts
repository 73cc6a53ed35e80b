import { CLINT_BASE, CLINT_MSIP, CLINT_MTIME, CLINT_MTIMECMP, CLINT_SIZE } from '../addressMap.ts';
import { expectDeviceState, expectUint32, type Device, type DeviceState } from './device.ts';

const TWO_POW_32 = 2 ** 32;

/**
 * The core-local interruptor (SiFive CLINT layout): a software interrupt bit, the timer compare
 * register and mtime, which reads the CPU's cycle count (see TIMEBASE_HZ in addressMap.ts).
 * mtimecmp resets to all ones: no timer interrupt until the guest arms it.
 */
export class Clint implements Device {
  readonly name = 'clint';
  readonly base = CLINT_BASE;
  readonly size = CLINT_SIZE;
  msip = false;
  mtimecmpLow = 0xffff_ffff;
  mtimecmpHigh = 0xffff_ffff;
  /** Called when msip or mtimecmp change, so the CPU re-evaluates pending interrupts. */
  onChange: () => void = () => {};
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  /** mtimecmp as a number of cycles (Infinity when it is all ones: never). */
  get mtimecmp(): number {
    if (this.mtimecmpLow === 0xffff_ffff && this.mtimecmpHigh === 0xffff_ffff) return Infinity;
    return this.mtimecmpHigh * TWO_POW_32 + this.mtimecmpLow;
  }

  read(offset: number, sizeBytes: number): number {
    if (sizeBytes !== 4) return 0;
    switch (offset) {
      case CLINT_MSIP:
        return this.msip ? 1 : 0;
      case CLINT_MTIMECMP:
        return this.mtimecmpLow;
      case CLINT_MTIMECMP + 4:
        return this.mtimecmpHigh;
      case CLINT_MTIME:
        return this.now() % TWO_POW_32;
      case CLINT_MTIME + 4:
        return Math.floor(this.now() / TWO_POW_32) >>> 0;
      default:
        return 0;
    }
  }

  write(offset: number, sizeBytes: number, value: number): void {
    if (sizeBytes !== 4) return;
    if (offset === CLINT_MSIP) this.msip = (value & 1) !== 0;
    else if (offset === CLINT_MTIMECMP) this.mtimecmpLow = value >>> 0;
    else if (offset === CLINT_MTIMECMP + 4) this.mtimecmpHigh = value >>> 0;
    else return; // mtime is read-only here: it is the CPU's cycle count.
    this.onChange();
  }

  getState(): DeviceState {
    return { v: 1, msip: this.msip ? 1 : 0, mtimecmpLow: this.mtimecmpLow, mtimecmpHigh: this.mtimecmpHigh };
  }

  setState(state: unknown): void {
    const record = expectDeviceState(this.name, state, 1);
    this.msip = expectUint32(this.name, record, 'msip') !== 0;
    this.mtimecmpLow = expectUint32(this.name, record, 'mtimecmpLow');
    this.mtimecmpHigh = expectUint32(this.name, record, 'mtimecmpHigh');
  }
}
