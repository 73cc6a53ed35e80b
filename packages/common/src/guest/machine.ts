import { createHash } from 'node:crypto';
import msgpack from 'msgpack-lite';
import { StateFormatError, assert } from '../errors.ts';
import { MEMORY_BYTES_DEFAULT, PAGE_SHIFT, RAM_BASE } from './addressMap.ts';
import { Bus } from './bus.ts';
import { Cpu, type CpuEngine, type CpuOptions, type StopReason } from './cpu.ts';
import { Clint } from './devices/clint.ts';
import type { Device } from './devices/device.ts';
import { Finisher } from './devices/finisher.ts';
import { PacketNic } from './devices/packetNic.ts';
import { SysInfo } from './devices/sysinfo.ts';
import { Uart } from './devices/uart.ts';
import { parseElf, type ElfImage } from './elf.ts';
import { GuestMemory, type StoreObserver } from './memory.ts';
import type { WriteSource } from './shadowPageTable.ts';

export interface MachineOptions {
  memoryBytes?: number;
  /** Reuse this RAM (a worker thread over the primary's memory, or a backup's replica). */
  memoryBuffer?: SharedArrayBuffer;
  /** The guest's argument string (SYSINFO). */
  args?: string;
  /** CPU engine: compiled basic blocks (default) or the reference interpreter; same results. */
  engine?: CpuEngine;
  /** Tuning of the block engine (tests compile every block at once to exercise the compiler). */
  cpu?: Omit<CpuOptions, 'engine'>;
}

/** How a run ended. */
export type MachineExit = { kind: 'exit'; code: number; via: 'finisher' | 'tohost' } | { kind: 'fault'; message: string };

export interface RunResult {
  executed: number;
  stop: StopReason;
}

const STATE_FORMAT = 'hbft-machine';
/**
 * 2: the byte-stream NIC (`nic`) is gone; a version-1 state still carries it and is refused by
 * version, with a message that says so, rather than restored without it.
 */
const STATE_VERSION = 2;
const CPU_STATE_VERSION = 1;

/**
 * The guest machine: RV32IM hart, RAM with its shadow page table, and the devices on the bus.
 * Single-threaded and synchronous; GuestWorker runs one in a worker thread. Its whole state is
 * RAM plus getState(), and setState() on a machine with the same RAM continues exactly where the
 * other stopped.
 */
export class Machine {
  readonly memory: GuestMemory;
  readonly bus = new Bus();
  readonly cpu: Cpu;
  readonly uart = new Uart();
  readonly clint: Clint;
  readonly net: PacketNic;
  readonly sysinfo: SysInfo;
  readonly finisher = new Finisher();
  private exitState: MachineExit | null = null;
  /** RAM offset of the riscv-tests `tohost` word, or -1. */
  private tohostOffset = -1;
  private readonly observers: StoreObserver[] = [];

  constructor(options: MachineOptions = {}) {
    const memoryBytes = options.memoryBuffer?.byteLength ?? options.memoryBytes ?? MEMORY_BYTES_DEFAULT;
    this.memory = new GuestMemory(memoryBytes, options.memoryBuffer);
    this.clint = new Clint(() => this.cpu.currentCycle());
    this.net = new PacketNic(this.memory);
    this.sysinfo = new SysInfo(memoryBytes);
    this.cpu = new Cpu(
      this.memory,
      this.bus,
      {
        msip: () => this.clint.msip,
        mtimecmp: () => this.clint.mtimecmp,
        meip: () => this.net.interruptPending,
      },
      { ...options.cpu, engine: options.engine },
    );
    for (const device of this.devices()) this.bus.attach(device);
    this.clint.onChange = () => this.cpu.requestExit();
    this.net.onInterruptChange = () => this.cpu.requestExit();
    this.finisher.onExit = (code) => this.stop({ kind: 'exit', code, via: 'finisher' });
    this.memory.setStoreObserver((offset, size, source) => this.observeStore(offset, size, source));
    if (options.args !== undefined) this.sysinfo.setArgs(options.args);
  }

  devices(): Device[] {
    return [this.finisher, this.clint, this.uart, this.net, this.sysinfo];
  }

  get exit(): MachineExit | null {
    return this.exitState;
  }

  get halted(): boolean {
    return this.cpu.halted;
  }

  /** Loads a static RV32 ELF image into RAM and points the hart at its entry. */
  loadElf(bytes: Uint8Array, name = 'image'): ElfImage {
    const image = parseElf(bytes, this.memory.ramBytes, name);
    for (const segment of image.segments) {
      const offset = segment.address - RAM_BASE;
      this.memory.writeBytes(offset, segment.data);
      const zeroFrom = offset + segment.data.length;
      this.memory.u8.fill(0, zeroFrom, offset + segment.memoryBytes);
    }
    // The fill above bypassed the write path.
    this.memory.invalidateCode();
    this.cpu.pc = image.entry | 0;
    const tohost = image.symbols.get('tohost');
    this.setTohost(tohost !== undefined && this.memory.ramOffset(tohost) >= 0 ? this.memory.ramOffset(tohost) : -1);
    return image;
  }

  private setTohost(offset: number): void {
    if (this.tohostOffset >= 0) this.memory.table.setWatched(this.tohostOffset >>> PAGE_SHIFT, false);
    this.tohostOffset = offset;
    if (offset >= 0) this.memory.table.setWatched(offset >>> PAGE_SHIFT, true);
  }

  /**
   * Watches every store to `page` (ground-truth recorders in tests). The observer sees stores to
   * all watched pages; it runs after the store.
   */
  addStoreObserver(observer: StoreObserver): void {
    this.observers.push(observer);
  }

  private observeStore(offset: number, sizeBytes: number, source: WriteSource): void {
    for (const observer of this.observers) observer(offset, sizeBytes, source);
    const tohost = this.tohostOffset;
    if (tohost < 0 || offset + sizeBytes <= tohost || offset >= tohost + 8 || this.exitState !== null) return;
    // riscv-tests: 1 = pass, (n << 1) | 1 = test n failed; an even value would be a host call.
    const value = this.memory.readU32(tohost & ~3);
    if (value === 0) return;
    if (value === 1) this.stop({ kind: 'exit', code: 0, via: 'tohost' });
    else if ((value & 1) === 1) this.stop({ kind: 'exit', code: value >>> 1, via: 'tohost' });
    else this.stop({ kind: 'fault', message: `the guest asked tohost for a host call (0x${value.toString(16)}), which is not supported` });
  }

  private stop(exit: MachineExit): void {
    if (this.exitState !== null) return;
    this.exitState = exit;
    this.cpu.halt();
  }

  /**
   * Runs up to `budget` instructions. Queued frames enter the packet NIC's receive ring first:
   * input arrives between runs, which makes its arrival point an instruction count.
   */
  run(budget: number): RunResult {
    if (this.exitState === null && this.cpu.fatalError !== null) this.stop({ kind: 'fault', message: this.cpu.fatalError });
    this.net.pump();
    const executed = this.cpu.run(budget);
    if (this.exitState === null && this.cpu.fatalError !== null) this.stop({ kind: 'fault', message: this.cpu.fatalError });
    return { executed, stop: this.cpu.stopReason };
  }

  /** CPU and device state (RAM excluded), versioned. */
  getState(): Uint8Array {
    const cpu = this.cpu;
    return msgpack.encode({
      format: STATE_FORMAT,
      v: STATE_VERSION,
      ramBytes: this.memory.ramBytes,
      cpu: {
        v: CPU_STATE_VERSION,
        x: Buffer.from(cpu.x.buffer.slice(0)),
        pc: cpu.pc >>> 0,
        csr: [cpu.mstatus, cpu.mie, cpu.mtvec, cpu.mscratch, cpu.mepc, cpu.mcause, cpu.mtval].map((v) => v >>> 0),
        instret: cpu.instret,
        idleCycles: cpu.idleCycles,
        mcycleOffset: cpu.mcycleOffset.toString(),
        minstretOffset: cpu.minstretOffset.toString(),
        waiting: cpu.waiting,
        halted: cpu.halted,
        fatalError: cpu.fatalError,
      },
      devices: Object.fromEntries(this.devices().map((d) => [d.name, d.getState()])),
      exit: this.exitState,
      tohost: this.tohostOffset,
    });
  }

  /** Restores state from getState(), validating all of it before changing anything. */
  setState(bytes: Uint8Array): void {
    let decoded: unknown;
    try {
      decoded = msgpack.decode(bytes);
    } catch (error) {
      throw new StateFormatError(`machine state is not valid msgpack (${(error as Error).message})`);
    }
    const state = decoded as Record<string, unknown>;
    if (typeof state !== 'object' || state === null || state.format !== STATE_FORMAT) throw new StateFormatError('not a machine state');
    if (state.v === 1)
      throw new StateFormatError(
        `machine state version 1 is not supported (expected ${STATE_VERSION}): it was saved with the byte-stream NIC, which this version no longer has`,
      );
    if (state.v !== STATE_VERSION)
      throw new StateFormatError(`machine state version ${String(state.v)} is not supported (expected ${STATE_VERSION})`);
    if (state.ramBytes !== this.memory.ramBytes) {
      throw new StateFormatError(`machine state is for ${String(state.ramBytes)} bytes of RAM, this machine has ${this.memory.ramBytes}`);
    }
    const cpu = parseCpuState(state.cpu);
    const devices = state.devices as Record<string, unknown>;
    if (typeof devices !== 'object' || devices === null) throw new StateFormatError('machine state has no devices');
    const tohost = state.tohost;
    if (typeof tohost !== 'number' || !Number.isInteger(tohost) || tohost < -1 || tohost >= this.memory.ramBytes) {
      throw new StateFormatError('machine state: bad tohost offset');
    }
    const exit = parseExit(state.exit);
    // Devices validate their own parts; restore into scratch devices first so a bad state
    // changes nothing here.
    const scratch: Device[] = [
      new Finisher(),
      new Clint(() => 0),
      new Uart(),
      new PacketNic(this.memory),
      new SysInfo(this.memory.ramBytes),
    ];
    for (const device of scratch) device.setState(devices[device.name]);
    for (const device of this.devices()) device.setState(devices[device.name]);

    const target = this.cpu;
    target.x.set(cpu.x);
    target.pc = cpu.pc | 0;
    [target.mstatus, target.mie, target.mtvec, target.mscratch, target.mepc, target.mcause, target.mtval] = cpu.csr.map((v) => v | 0) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    target.instret = cpu.instret;
    target.idleCycles = cpu.idleCycles;
    target.mcycleOffset = cpu.mcycleOffset;
    target.minstretOffset = cpu.minstretOffset;
    target.waiting = cpu.waiting;
    target.halted = cpu.halted;
    target.fatalError = cpu.fatalError;
    // RAM usually changed wholesale before a restore (a checkpoint applied to the buffer).
    this.memory.invalidateCode();
    this.exitState = exit;
    this.setTohost(tohost);
  }

  /** SHA-256 over RAM and the CPU/device state: equal hashes mean equal machines. */
  stateHash(): string {
    const hash = createHash('sha256');
    const chunk = 16 * 1024 * 1024;
    for (let offset = 0; offset < this.memory.ramBytes; offset += chunk) {
      hash.update(this.memory.u8.subarray(offset, Math.min(this.memory.ramBytes, offset + chunk)));
    }
    hash.update(this.getState());
    return hash.digest('hex');
  }
}

interface CpuState {
  x: Int32Array;
  pc: number;
  csr: number[];
  instret: number;
  idleCycles: number;
  mcycleOffset: bigint;
  minstretOffset: bigint;
  waiting: boolean;
  halted: boolean;
  fatalError: string | null;
}

function parseCpuState(value: unknown): CpuState {
  const bad = (what: string): never => {
    throw new StateFormatError(`cpu state: ${what}`);
  };
  if (typeof value !== 'object' || value === null) bad('missing');
  const cpu = value as Record<string, unknown>;
  if (cpu.v !== CPU_STATE_VERSION) bad(`version ${String(cpu.v)} is not supported (expected ${CPU_STATE_VERSION})`);
  if (!(cpu.x instanceof Uint8Array) || cpu.x.length !== 128) bad('registers must be 128 bytes');
  const xBytes = cpu.x as Uint8Array;
  const x = new Int32Array(Uint8Array.from(xBytes).buffer);
  const uint32 = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!uint32(cpu.pc)) bad('pc');
  if (!Array.isArray(cpu.csr) || cpu.csr.length !== 7 || !cpu.csr.every(uint32)) bad('csr');
  if (!count(cpu.instret) || !count(cpu.idleCycles)) bad('counters');
  const offset = (v: unknown) => {
    if (typeof v !== 'string' || !/^\d{1,20}$/.test(v)) bad('counter offsets');
    const big = BigInt(v as string);
    if (big >= 1n << 64n) bad('counter offsets');
    return big;
  };
  if (typeof cpu.waiting !== 'boolean' || typeof cpu.halted !== 'boolean') bad('flags');
  if (cpu.fatalError !== null && typeof cpu.fatalError !== 'string') bad('fatalError');
  assert(x.length === 32, 'register file has 32 entries');
  return {
    x,
    pc: cpu.pc as number,
    csr: cpu.csr as number[],
    instret: cpu.instret as number,
    idleCycles: cpu.idleCycles as number,
    mcycleOffset: offset(cpu.mcycleOffset),
    minstretOffset: offset(cpu.minstretOffset),
    waiting: cpu.waiting as boolean,
    halted: cpu.halted as boolean,
    fatalError: cpu.fatalError as string | null,
  };
}

function parseExit(value: unknown): MachineExit | null {
  if (value === null) return null;
  const exit = value as Record<string, unknown>;
  if (typeof exit === 'object' && exit !== null) {
    if (exit.kind === 'exit' && typeof exit.code === 'number' && (exit.via === 'finisher' || exit.via === 'tohost')) {
      return { kind: 'exit', code: exit.code, via: exit.via };
    }
    if (exit.kind === 'fault' && typeof exit.message === 'string') return { kind: 'fault', message: exit.message };
  }
  throw new StateFormatError('machine state: malformed exit');
}
