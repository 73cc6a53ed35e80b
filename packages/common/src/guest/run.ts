import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { GuestImageError } from '../errors.ts';
import { STOP_IDLE, type CpuEngine } from './cpu.ts';
import { Machine } from './machine.ts';

export interface RunElfOptions {
  memoryBytes?: number;
  /** Stop after this many instructions (default: no limit). */
  maxInstructions?: number;
  args?: string;
  /** Console bytes as they are written (default: collected into the result only). */
  onConsole?: (text: string) => void;
  /** Instructions per run() call. */
  sliceInstructions?: number;
  /** CPU engine (default: compiled blocks). */
  engine?: CpuEngine;
}

export type RunOutcome = 'pass' | 'fail' | 'limit' | 'fault' | 'idle';

export interface RunElfResult {
  outcome: RunOutcome;
  /** The guest's exit code (finisher code, or the failing test number for tohost). */
  exitCode: number;
  /** riscv-tests convention: the number of the failing test case. */
  failingTest?: number;
  instructions: number;
  console: string;
  message: string;
  machine: Machine;
}

/** Reads an image from a path, with a clear error when the file cannot be read. */
export function readImage(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new GuestImageError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/**
 * Runs one image to completion on a fresh machine: until it exits (finisher or tohost), faults,
 * waits for input that cannot come, or reaches the instruction limit.
 */
export function runElf(image: Uint8Array | string, options: RunElfOptions = {}): RunElfResult {
  const name = typeof image === 'string' ? basename(image) : 'image';
  const bytes = typeof image === 'string' ? readImage(image) : image;
  const machine = new Machine({ memoryBytes: options.memoryBytes, args: options.args, engine: options.engine });
  let consoleText = '';
  const decoder = new TextDecoder();
  machine.uart.onOutput = (byte) => {
    const text = decoder.decode(Uint8Array.of(byte), { stream: true });
    consoleText += text;
    options.onConsole?.(text);
  };
  machine.loadElf(bytes, name);
  const limit = options.maxInstructions ?? Infinity;
  const slice = options.sliceInstructions ?? 1_000_000;
  let instructions = 0;
  let idle = false;
  while (!machine.halted && instructions < limit) {
    const result = machine.run(Math.min(slice, limit - instructions));
    instructions += result.executed;
    if (result.stop === STOP_IDLE) {
      idle = true;
      break;
    }
  }
  const exit = machine.exit;
  const base = { instructions, console: consoleText, machine };
  if (exit?.kind === 'exit') {
    if (exit.code === 0) return { ...base, outcome: 'pass', exitCode: 0, message: `${name}: passed after ${instructions} instructions` };
    const viaTohost = exit.via === 'tohost';
    return {
      ...base,
      outcome: 'fail',
      exitCode: exit.code,
      ...(viaTohost ? { failingTest: exit.code } : {}),
      message: viaTohost ? `${name}: test ${exit.code} failed` : `${name}: exited with code ${exit.code}`,
    };
  }
  if (exit?.kind === 'fault') return { ...base, outcome: 'fault', exitCode: -1, message: `${name}: ${exit.message}` };
  if (idle) {
    return {
      ...base,
      outcome: 'idle',
      exitCode: -1,
      message: `${name}: the guest is waiting for input (wfi) and nothing can wake it; serve it with a NIC to give it clients`,
    };
  }
  return { ...base, outcome: 'limit', exitCode: -1, message: `${name}: stopped after ${instructions} instructions (--max-instructions)` };
}
