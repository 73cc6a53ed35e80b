import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { GuestImageError } from '../errors.ts';
import { CAUSE_ECALL_M, INTERRUPT_BIT, STOP_IDLE, describeCause, type CpuEngine } from './cpu.ts';
import type { ElfImage } from './elf.ts';
import { Machine } from './machine.ts';

/**
 * riscv-tests' trap vector (env/p/riscv_test.h) answers a trap it did not expect by writing
 * `TESTNUM | 1337` to tohost, which reads as "test (TESTNUM | 1337) >> 1 failed" (668 before the
 * first test); a test that fails on purpose reaches tohost through ecall instead.
 */
const RISCV_TESTS_TRAP_MARK = 1337;
/** Largest signature region `signatureWords` reads (the framework's are a few KiB). */
export const SIGNATURE_BYTES_MAX = 64 * 1024 * 1024;

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
  /** The image's symbols (begin_signature, end_signature, tohost ...). */
  symbols: ElfImage['symbols'];
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
  const { symbols } = machine.loadElf(bytes, name);
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
  const base = { instructions, console: consoleText, machine, symbols };
  if (exit?.kind === 'exit') {
    if (exit.code === 0) return { ...base, outcome: 'pass', exitCode: 0, message: `${name}: passed after ${instructions} instructions` };
    const viaTohost = exit.via === 'tohost';
    return {
      ...base,
      outcome: 'fail',
      exitCode: exit.code,
      ...(viaTohost ? { failingTest: exit.code } : {}),
      message: viaTohost ? `${name}: ${describeTohostFailure(machine, exit.code)}` : `${name}: exited with code ${exit.code}`,
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
  return {
    ...base,
    outcome: 'limit',
    exitCode: -1,
    message: `${name}: stopped after ${instructions} instructions (its instruction limit)`,
  };
}

/**
 * What a failing tohost value means: "test N failed", or, when riscv-tests' trap vector wrote
 * `TESTNUM | 1337` for a trap it did not expect (the last trap was no ecall), that trap: its cause,
 * the pc and mtval it left in the CSRs.
 */
function describeTohostFailure(machine: Machine, code: number): string {
  const value = ((code << 1) | 1) >>> 0;
  const cpu = machine.cpu;
  if ((value & RISCV_TESTS_TRAP_MARK) !== RISCV_TESTS_TRAP_MARK || cpu.mcause === CAUSE_ECALL_M) return `test ${code} failed`;
  const cause = (cpu.mcause & INTERRUPT_BIT) !== 0 ? `interrupt ${cpu.mcause & ~INTERRUPT_BIT}` : describeCause(cpu.mcause);
  const testBits = value & ~RISCV_TESTS_TRAP_MARK;
  const during =
    testBits === 0
      ? 'before the first test or in a test whose number has only bits of 1337'
      : `in test ${testBits} or one whose number differs from it only in bits of 1337`;
  return (
    `unexpected trap: ${cause} at pc 0x${hex32(cpu.mepc)} (mtval 0x${hex32(cpu.mtval)}), ${during}; ` +
    `riscv-tests reported it as tohost 0x${value.toString(16)} = TESTNUM | ${RISCV_TESTS_TRAP_MARK}, which reads as "test ${code} failed"`
  );
}

function hex32(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/**
 * The signature region of the RISC-V architecture tests, begin_signature up to end_signature, as
 * Spike's `+signature=` writes it: one 32-bit little-endian word per line, 8 lowercase hex digits.
 * Throws a GuestImageError when the image has no such region or it does not lie in RAM.
 */
export function signatureText(machine: Machine, symbols: ElfImage['symbols'], name = 'image'): string {
  const begin = symbols.get('begin_signature');
  const end = symbols.get('end_signature');
  if (begin === undefined || end === undefined) {
    throw new GuestImageError(`${name}: the signature region needs the symbols begin_signature and end_signature, which the image lacks`);
  }
  const offset = machine.memory.ramOffset(begin);
  const length = (end - begin) >>> 0;
  if (end < begin || offset < 0 || length > SIGNATURE_BYTES_MAX || offset + length > machine.memory.ramBytes) {
    throw new GuestImageError(
      `${name}: the signature region 0x${hex32(begin)}..0x${hex32(end)} is not a range of RAM of at most ${SIGNATURE_BYTES_MAX} bytes`,
    );
  }
  const bytes = machine.memory.readBytes(offset, length);
  let text = '';
  // A region whose length is no multiple of 4 ends with a zero-padded word, as Spike pads it.
  for (let at = 0; at < length; at += 4) {
    const word = ((bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8) | ((bytes[at + 2] ?? 0) << 16) | ((bytes[at + 3] ?? 0) << 24)) >>> 0;
    text += `${hex32(word)}\n`;
  }
  return text;
}
