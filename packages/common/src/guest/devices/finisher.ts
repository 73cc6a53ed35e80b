import { FINISHER_BASE, FINISHER_FAIL, FINISHER_PASS, FINISHER_SIZE } from '../addressMap.ts';
import { expectDeviceState, type Device, type DeviceState } from './device.ts';

/**
 * The test finisher (QEMU's sifive_test): a write of PASS, or of (code << 16) | FAIL, ends the
 * run with that exit code. Other values are ignored, as QEMU ignores them.
 */
export class Finisher implements Device {
  readonly name = 'finisher';
  readonly base = FINISHER_BASE;
  readonly size = FINISHER_SIZE;
  onExit: (exitCode: number) => void = () => {};

  read(): number {
    return 0;
  }

  write(offset: number, sizeBytes: number, value: number): void {
    if (offset !== 0 || sizeBytes !== 4) return;
    const status = value & 0xffff;
    if (status === FINISHER_PASS) this.onExit(0);
    else if (status === FINISHER_FAIL) this.onExit(value >>> 16);
  }

  getState(): DeviceState {
    return { v: 1 };
  }

  setState(state: unknown): void {
    expectDeviceState(this.name, state, 1);
  }
}
