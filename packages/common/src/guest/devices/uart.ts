import { UART_BASE, UART_LSR, UART_SIZE, UART_THR } from '../addressMap.ts';
import { expectDeviceState, type Device, type DeviceState } from './device.ts';

/** LSR: transmitter holding register empty and transmitter empty: output never waits. */
const LSR_READY = 0x60;

/**
 * The console: the write side of a 16550 UART. Bytes go to `onOutput` as they are written; the
 * console is the operator's log, not client output, so it is not held for output commit.
 */
export class Uart implements Device {
  readonly name = 'uart';
  readonly base = UART_BASE;
  readonly size = UART_SIZE;
  onOutput: (byte: number) => void = () => {};

  read(offset: number, sizeBytes: number): number {
    if (offset === UART_LSR && sizeBytes === 1) return LSR_READY;
    if (offset === (UART_LSR & ~3) && sizeBytes === 4) return LSR_READY << 8;
    return 0;
  }

  write(offset: number, _sizeBytes: number, value: number): void {
    if (offset === UART_THR) this.onOutput(value & 0xff);
  }

  getState(): DeviceState {
    return { v: 1 };
  }

  setState(state: unknown): void {
    expectDeviceState(this.name, state, 1);
  }
}
