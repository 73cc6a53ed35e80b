// Exempt from Biome's noNonNullAssertion (biome.json): the interpreter: a register index is a 5-bit field, a
// RAM offset passed the frame-table check just above, an RVC parcel indexes a 64 Ki-entry table and `blocks`
// exists whenever the block engine runs, so each `!` holds by construction, and a checked access per
// instruction would cost the loop.
import { assert } from '../errors.ts';
import { RAM_BASE } from './addressMap.ts';
import {
  BlockCache,
  STORE_CODE_CHANGED,
  STORE_CONTINUE,
  STORE_EXIT,
  STORE_TRAPPED,
  blockLength,
  type BlockRuntime,
} from './blockCompiler.ts';
import type { Bus } from './bus.ts';
import type { GuestMemory } from './memory.ts';
import { mulDiv } from './mext.ts';
import { RVC_EXPANSION } from './rvc.ts';
import { PTE_GUEST_WRITABLE, PTE_PRESENT, PTE_STORE_FAST_MASK, PTE_STORE_FAST_VALUE } from './shadowPageTable.ts';

/*
 * An RV32IMAC hart with the machine-mode subset of the privileged architecture that bare-metal
 * programs and ISA tests use (RISC-V Unprivileged ISA v20191213 ch. 2, 7, 8 and 16; Privileged ISA
 * v20211203 ch. 3). Guest traps are values: they redirect the pc to mtvec, never throw.
 *
 * Two engines run the same semantics. The interpreter, the reference, is one `interpret` loop
 * with registers in an Int32Array and every operand decoded in place (a pre-decoded cache measured
 * slower in V8: design.md §5). The default engine runs basic blocks compiled to JS functions
 * (blockCompiler.ts; `hbft bench cpu` measures it several times as fast) and falls back to the
 * interpreter for what blocks leave out. Both consult the shadow page table inline: fetches and
 * loads need its PRESENT bit, stores need WRITABLE|DIRTY without WATCHED, CODE or RESERVED;
 * anything else, including every device access and every AMO, takes the same slow paths, so
 * faults and traps happen at the same instructions. Compressed instructions (rvc.ts) run as their
 * 32-bit expansions in both.
 */

/** The execution engines: `blocks` (the default) and `interpreter` (the reference). */
export const CPU_ENGINES = ['blocks', 'interpreter'] as const;
export type CpuEngine = (typeof CPU_ENGINES)[number];

export interface CpuOptions {
  engine?: CpuEngine;
  /** Entries into a block before it is compiled (blockCompiler.ts; tests use 0 to compile all). */
  blockEntriesBeforeCompile?: number;
  /** Compiled blocks kept before the cache starts again from empty (blockCompiler.ts). */
  cachedBlocksMax?: number;
}

/** mcause values (Privileged ISA §3.1.15, table 3.6). */
const CAUSE_FETCH_MISALIGNED = 0;
export const CAUSE_FETCH_ACCESS = 1;
export const CAUSE_ILLEGAL_INSTRUCTION = 2;
export const CAUSE_BREAKPOINT = 3;
export const CAUSE_LOAD_MISALIGNED = 4;
export const CAUSE_LOAD_ACCESS = 5;
export const CAUSE_STORE_MISALIGNED = 6;
export const CAUSE_STORE_ACCESS = 7;
export const CAUSE_ECALL_M = 11;
export const INTERRUPT_BIT = 0x8000_0000;
export const IRQ_MSI = 3;
export const IRQ_MTI = 7;
export const IRQ_MEI = 11;

export const MSTATUS_MIE = 1 << 3;
export const MSTATUS_MPIE = 1 << 7;
/** mstatus.MPP reads as M (3): only machine mode exists. */
const MSTATUS_MPP_M = 3 << 11;
export const MIP_MSIP = 1 << IRQ_MSI;
export const MIP_MTIP = 1 << IRQ_MTI;
export const MIP_MEIP = 1 << IRQ_MEI;
const MIE_WRITABLE = MIP_MSIP | MIP_MTIP | MIP_MEIP;
/**
 * misa (Privileged ISA §3.1.1): MXL = 1 (32-bit), extensions A, C, I and M. Read-only (WARL
 * allows it), so C is always on: IALIGN is 16 and no jump or branch can raise an
 * instruction-address-misaligned exception (Unprivileged ISA §2.2, §2.5: targets are even).
 */
export const MISA_RV32IMAC = 0x4000_1105;

/** Why `run` returned. */
export const STOP_BUDGET = 0;
export const STOP_HALT = 1;
export const STOP_IDLE = 2;
export type StopReason = typeof STOP_BUDGET | typeof STOP_HALT | typeof STOP_IDLE;

/** The interrupt sources wired to this hart (CLINT and the NIC). */
export interface InterruptLines {
  msip(): boolean;
  /** Cycle count at which the timer fires; Infinity when disarmed. */
  mtimecmp(): number;
  meip(): boolean;
}

const MASK_64 = (1n << 64n) - 1n;
/** XOR with this turns a RAM address into its offset (RAM_BASE is 0x8000_0000). */
const RAM_XOR = RAM_BASE | 0;
/**
 * Zero-budget calls of `interpret` made by the constructor (see there). V8 allocates a function's
 * feedback vector only once the function has used up a budget proportional to its bytecode size
 * (--interrupt-budget-factor-for-feedback-allocation); with 20 calls the entry still had no
 * feedback in 3 of 4 runs, with 200 in none of 6 (node 20, `--trace-deopt`, web).
 */
const INTERPRET_PRIMING_CALLS = 200;

// The interpreter inlines these as literals (0xe6, 0x06) for speed.
assert(PTE_STORE_FAST_MASK === 0xe6 && PTE_STORE_FAST_VALUE === 0x06 && PTE_PRESENT === 1, 'interpreter page-entry literals');

export class Cpu implements BlockRuntime {
  readonly x = new Int32Array(32);
  /** The pc as a signed 32-bit value (compare `>>> 0` when printing). */
  pc = RAM_BASE | 0;
  mstatus = 0;
  mie = 0;
  mtvec = 0;
  mscratch = 0;
  mepc = 0;
  mcause = 0;
  mtval = 0;
  /** Retired instructions (exact at slice boundaries). */
  instret = 0;
  /** Cycles skipped while waiting in `wfi` for the timer: cycle = instret + idleCycles. */
  idleCycles = 0;
  /** Offsets written through mcycle/minstret (64-bit, modulo 2^64). */
  mcycleOffset = 0n;
  minstretOffset = 0n;
  /** Stopped in `wfi` until an enabled interrupt is pending. */
  waiting = false;
  halted = false;
  /** Set by a fatal guest error (a trap whose handler itself traps at once). */
  fatalError: string | null = null;
  stopReason: StopReason = STOP_BUDGET;
  readonly engine: CpuEngine;

  private readonly memory: GuestMemory;
  private readonly bus: Bus;
  private readonly lines: InterruptLines;
  private readonly frames: Uint8Array;
  private readonly m32: Int32Array;
  private readonly m16: Int16Array;
  private readonly mu16: Uint16Array;
  private readonly m8: Int8Array;
  private readonly mu8: Uint8Array;
  /*
   * Slice bookkeeping, so slow paths can read exact counters mid-slice: before each slow call the
   * loop stores how many instructions of the slice remain including the current one, so
   * currentInstret() counts the instructions retired before it.
   */
  private sliceBudget = 0;
  private sliceRemaining = 0;
  private sliceExceptions = 0;
  /**
   * A slow path redirected the pc (trap taken): the loop reloads it. Public for compiled blocks,
   * which read and clear it after a slow load.
   */
  trapped = false;
  /** The length in bytes of what fetchParcels returned (2 or 4). */
  private fetchedBytes = 4;
  /** What an AMO, LR.W or SC.W that did not trap writes to rd (read by the callers of `atomic`). */
  atomicValue = 0;
  /** Leave the loop after this instruction: interrupts, halting or waiting need a look. */
  private exitLoop = false;
  /** The compiled blocks (null on the interpreter). */
  private readonly blocks: BlockCache | null;
  /** The block engine interprets until instret reaches this (see holdCompiles). */
  private compileHoldUntilInstret = 0;

  constructor(memory: GuestMemory, bus: Bus, lines: InterruptLines, options: CpuOptions = {}) {
    const engine = options.engine ?? 'blocks';
    this.memory = memory;
    this.bus = bus;
    this.lines = lines;
    this.engine = engine;
    this.frames = memory.table.entriesByFrame;
    this.m32 = memory.i32;
    this.m16 = memory.i16;
    this.mu16 = memory.u16;
    this.m8 = memory.i8;
    this.mu8 = memory.u8;
    this.blocks =
      engine === 'blocks' ? new BlockCache(memory, this.x, this, options.blockEntriesBeforeCompile, options.cachedBlocksMax) : null;
    // Calls that run nothing and change nothing, so that interpret's entry and exit code has type
    // feedback before its first real call. Without them the first call's entry ran before V8 gave
    // the function a feedback vector, V8 compiled the whole function while that call was still in
    // its loop, found no feedback for `this.x` and compiled a deoptimisation at its entry, and
    // from then on every call ran its loop in the code compiled on-stack (OSR) for that first
    // call, leaving it through a deoptimisation at the exit: 100 deoptimisations per 100 M
    // instructions, and a loop compiled from what one call had seen. 85c091b's interpreter did
    // the same. With them, calls after the first run a regular optimised compile.
    for (let i = 0; i < INTERPRET_PRIMING_CALLS; i++) this.interpret(0);
    // The counters pass 2^31 after a few seconds of guest time. Held as small integers until then,
    // V8 would change this object's layout at that moment, and every compiled region that reads
    // the CPU would deoptimise (web: 234 deoptimisations in one second, the same region again and
    // again, and half the MIPS for seconds). So they are held as doubles from the start.
    this.instret = 2 ** 53;
    this.idleCycles = 2 ** 53;
    this.instret = 0;
    this.idleCycles = 0;
  }

  /**
   * Runs the next `instructions` on the interpreter, compiling nothing. A machine resumed from a
   * checkpoint has no compiled blocks, and V8 runs a freshly compiled region slower than the
   * interpreter (already optimised) until it has optimised that region in turn: a resumed kvnet
   * answered 20 INCRs in 69 ms on new blocks, 11 ms on the interpreter, and its next rounds in
   * 17–31 ms against 1.5–12 ms (scripts/kvnet-resume-cost.ts). Both engines give the same results.
   */
  holdCompiles(instructions: number): void {
    this.compileHoldUntilInstret = this.instret + instructions;
  }

  /** The block cache's counters (undefined on the interpreter). */
  get blockStats(): BlockCache['stats'] | undefined {
    return this.blocks?.stats;
  }

  /** The retired-instruction count, exact even inside a slow path. */
  currentInstret(): number {
    return this.instret + (this.sliceBudget - this.sliceRemaining) - this.sliceExceptions;
  }

  /** mtime and the cycle counter. */
  currentCycle(): number {
    return this.currentInstret() + this.idleCycles;
  }

  /** Makes the execute loop return after the current instruction (device changed a line, halt). */
  requestExit(): void {
    this.exitLoop = true;
  }

  halt(): void {
    this.halted = true;
    this.exitLoop = true;
  }

  mip(): number {
    return (
      (this.lines.msip() ? MIP_MSIP : 0) |
      (this.currentCycle() >= this.lines.mtimecmp() ? MIP_MTIP : 0) |
      (this.lines.meip() ? MIP_MEIP : 0)
    );
  }

  /**
   * Runs up to `budget` instructions; returns how many were executed (retired or trapped).
   * `stopReason` says why it returned early: halted, or idle in `wfi` with nothing to wake it.
   */
  run(budget: number): number {
    this.stopReason = STOP_BUDGET;
    let executed = 0;
    while (executed < budget) {
      if (this.halted) {
        this.stopReason = STOP_HALT;
        break;
      }
      if (this.waiting && !this.tryWake()) {
        this.stopReason = STOP_IDLE;
        break;
      }
      this.takePendingInterrupt();
      let slice = budget - executed;
      // Stop exactly where the timer fires, so the interrupt lands on a deterministic instruction.
      if ((this.mstatus & MSTATUS_MIE) !== 0 && (this.mie & MIP_MTIP) !== 0) {
        const untilTimer = this.lines.mtimecmp() - this.currentCycle();
        if (untilTimer > 0 && untilTimer < slice) slice = untilTimer;
      }
      this.exitLoop = false;
      executed += this.blocks !== null && this.instret >= this.compileHoldUntilInstret ? this.executeBlocks(slice) : this.interpret(slice);
    }
    return executed;
  }

  /** Leaves `wfi` when an enabled interrupt is pending, or skips time to the timer (see addressMap.ts). */
  private tryWake(): boolean {
    if ((this.mip() & this.mie) !== 0) {
      this.waiting = false;
      return true;
    }
    // Only the timer can wake the hart: skip the idle cycles. With the NIC interrupt enabled the
    // hart stays idle instead (input may arrive first); the driver may call skipToTimer().
    if ((this.mie & MIP_MEIP) === 0) return this.skipToTimer();
    return false;
  }

  /** While waiting with the timer armed, jumps the clock to mtimecmp. Returns whether it woke. */
  skipToTimer(): boolean {
    const mtimecmp = this.lines.mtimecmp();
    if (!this.waiting || (this.mie & MIP_MTIP) === 0 || mtimecmp === Infinity) return false;
    const cycle = this.currentCycle();
    if (mtimecmp > cycle) this.idleCycles += mtimecmp - cycle;
    this.waiting = false;
    return true;
  }

  private takePendingInterrupt(): void {
    if ((this.mstatus & MSTATUS_MIE) === 0) return;
    const pending = this.mip() & this.mie;
    if (pending === 0) return;
    // Priority MEI > MSI > MTI (Privileged ISA §3.1.9).
    const irq = (pending & MIP_MEIP) !== 0 ? IRQ_MEI : (pending & MIP_MSIP) !== 0 ? IRQ_MSI : IRQ_MTI;
    this.mepc = this.pc;
    this.mcause = INTERRUPT_BIT | irq | 0;
    this.mtval = 0;
    this.mstatus = (this.mstatus & MSTATUS_MIE) !== 0 ? (this.mstatus & ~MSTATUS_MIE) | MSTATUS_MPIE : this.mstatus & ~MSTATUS_MPIE;
    const base = this.mtvec & ~3;
    this.pc = (this.mtvec & 1) !== 0 ? (base + 4 * irq) | 0 : base;
  }

  /**
   * Raises a synchronous exception for the instruction at `this.pc`. A trap whose handler faults
   * on its very first instruction would loop forever: that is a fatal guest error instead.
   */
  private exception(cause: number, tval: number): void {
    const epc = this.pc;
    const vector = this.mtvec & ~3;
    this.sliceExceptions++;
    this.trapped = true;
    if (epc === vector) {
      this.fatalError =
        `the trap handler at 0x${(vector >>> 0).toString(16).padStart(8, '0')} itself raised ${describeCause(cause)}` +
        ` (mtval 0x${(tval >>> 0).toString(16)}); the guest cannot continue`;
      this.halt();
      return;
    }
    this.mepc = epc;
    this.mcause = cause;
    this.mtval = tval | 0;
    this.mstatus = (this.mstatus & MSTATUS_MIE) !== 0 ? (this.mstatus & ~MSTATUS_MIE) | MSTATUS_MPIE : this.mstatus & ~MSTATUS_MPIE;
    this.pc = vector;
  }

  /**
   * Runs up to `budget` instructions on the compiled blocks, with the interpreter for what they
   * leave out: a fetch from a page that is not present (the read fault), blocks not yet compiled,
   * instructions no block can hold, and the tail of the slice shorter than the next block. Block
   * functions return ~executed where the interpreter would look at exitLoop (blockCompiler.ts).
   * Retires into instret.
   */
  private executeBlocks(budget: number): number {
    const frames = this.frames;
    const blocks = this.blocks!;
    const pages = blocks.pages;
    let n = budget;
    this.sliceBudget = budget;
    this.sliceRemaining = budget;
    this.sliceExceptions = 0;
    while (n > 0) {
      const pc = this.pc;
      let executed: number;
      // A region lies within one page: one PRESENT check on entry is the fetch check of all the
      // instructions it runs (during an epoch, faults only ever add PRESENT).
      if ((frames[pc >>> 12]! & 1) !== 0) {
        const blocksOfPage = pages[(pc ^ RAM_XOR) >>> 12];
        const block = blocksOfPage !== undefined ? blocksOfPage[(pc >>> 1) & 2047] : undefined;
        if (block !== undefined) {
          executed = block(n);
        } else {
          const compiled = blocks.enterUncompiled(pc);
          executed = compiled !== undefined ? compiled(n) : this.interpretBlock(n, blockLength(this.mu16, pc));
        }
      } else {
        executed = this.interpretBlock(n, 1);
      }
      if (executed > 0) {
        n -= executed;
      } else if (executed === 0) {
        n -= this.interpretInside(n, n);
        break;
      } else {
        n -= ~executed;
        if (this.exitLoop) break;
      }
    }
    this.instret += this.sliceBudget - n - this.sliceExceptions;
    this.sliceBudget = this.sliceRemaining = this.sliceExceptions = 0;
    return budget - n;
  }

  /**
   * Runs `count` instructions on the interpreter from inside executeBlocks, which has `remaining`
   * left: retires what the blocks ran so far, lets the interpreter retire its own, and restarts
   * the slice bookkeeping at what is left. Returns how many the interpreter executed.
   */
  private interpretInside(remaining: number, count: number): number {
    this.instret += this.sliceBudget - remaining - this.sliceExceptions;
    const executed = this.interpret(count);
    this.sliceBudget = this.sliceRemaining = remaining - executed;
    this.sliceExceptions = 0;
    return executed;
  }

  /**
   * Interprets what a block of `length` instructions would have run (1 when none can start here),
   * with a block's return protocol. exitLoop is only ever set where the interpreter looks at it at
   * once (a slow store, a SYSTEM instruction, a trap), so when it is set after the run, the
   * interpreter stopped there too.
   */
  private interpretBlock(remaining: number, length: number): number {
    const executed = this.interpretInside(remaining, Math.min(remaining, length > 0 ? length : 1));
    return this.exitLoop ? ~executed : executed;
  }

  /** A load that missed the fast path, from a compiled block (see BlockRuntime). */
  loadInBlock(pc: number, remaining: number, address: number, f3: number, inst: number): number {
    this.pc = pc;
    this.sliceRemaining = remaining;
    return this.loadSlow(address, f3, inst);
  }

  /** A store that missed the fast path, from a compiled block: says how the block goes on. */
  storeInBlock(pc: number, remaining: number, address: number, f3: number, value: number, inst: number): number {
    this.pc = pc;
    this.sliceRemaining = remaining;
    this.storeSlow(address, f3, value, inst);
    if (this.trapped) {
      this.trapped = false;
      return STORE_TRAPPED;
    }
    if (this.exitLoop) return STORE_EXIT;
    return this.blocks!.hasPage(pc) ? STORE_CONTINUE : STORE_CODE_CHANGED;
  }

  /** An AMO from a compiled block (always a slow path): says how the block goes on; rd's value is in atomicValue. */
  atomicInBlock(pc: number, remaining: number, inst: number, address: number, operand: number): number {
    this.pc = pc;
    this.sliceRemaining = remaining;
    this.atomic(inst, address, operand);
    if (this.trapped) {
      this.trapped = false;
      return STORE_TRAPPED;
    }
    if (this.exitLoop) return STORE_EXIT;
    return this.blocks!.hasPage(pc) ? STORE_CONTINUE : STORE_CODE_CHANGED;
  }

  /** The reference engine: runs up to `budget` instructions and retires them into instret. */
  private interpret(budget: number): number {
    const x = this.x;
    const frames = this.frames;
    const m32 = this.m32;
    const m16 = this.m16;
    const mu16 = this.mu16;
    const m8 = this.m8;
    const mu8 = this.mu8;
    let pc = this.pc;
    let n = budget;
    this.sliceBudget = budget;
    this.sliceRemaining = budget;
    this.sliceExceptions = 0;

    loop: while (n > 0) {
      n--;
      if ((frames[pc >>> 12]! & 1) === 0) {
        this.pc = pc;
        this.sliceRemaining = n + 1;
        this.fetchSlow(pc);
        if (this.trapped) {
          this.trapped = false;
          pc = this.pc;
          if (this.exitLoop) break;
          continue;
        }
      }
      // Fetch at 2-byte alignment (IALIGN = 16 with the C extension, Unprivileged ISA §1.5 and
      // ch. 16). A 32-bit instruction at a word boundary, all that RV32IM code holds, is read as
      // one word and advances the pc by 4; everything else (a compressed parcel, which has its low
      // bits not 11, or a 32-bit instruction at pc % 4 = 2) goes through fetchParcels, which
      // returns the 32-bit expansion and its length. So RV32IM code pays one well-predicted test
      // for C, and the dispatch below sees 32-bit encodings only.
      let inst = m32[(pc ^ RAM_XOR) >> 2]!;
      let next: number;
      if ((pc & 2) === 0 && (inst & 3) === 3) {
        next = (pc + 4) | 0;
      } else {
        inst = this.fetchParcels(pc, n);
        if (inst === 0) {
          pc = this.pc;
          if (this.exitLoop) break;
          continue;
        }
        next = (pc + this.fetchedBytes) | 0;
      }
      const rd = (inst >> 7) & 31;
      // On opcode[6:2] (opcode[1:0] is 11 here): dense small cases, which V8 compiles to a jump
      // table (--switch-table-spread-threshold); `inst & 0x7f` spans 0x03..0x73 with 12 cases and
      // compiles to a chain of compares.
      const op = (inst >> 2) & 31;
      // OP-IMM (addi, li, mv, the immediate shifts and logic) before the jump table: one compare.
      if (op === 4) {
        // OP-IMM
        const a = x[(inst >> 15) & 31]!;
        const imm = inst >> 20;
        let v: number;
        switch ((inst >> 12) & 7) {
          case 0:
            v = (a + imm) | 0;
            break;
          case 1:
            if (inst >>> 25 !== 0) {
              this.illegal(pc, n, inst);
              pc = this.pc;
              if (this.exitLoop) break loop;
              continue loop;
            }
            v = a << (imm & 31);
            break;
          case 2:
            v = a < imm ? 1 : 0;
            break;
          case 3:
            v = a >>> 0 < imm >>> 0 ? 1 : 0;
            break;
          case 4:
            v = a ^ imm;
            break;
          case 5: {
            const f7 = inst >>> 25;
            if (f7 === 0) v = a >>> (imm & 31);
            else if (f7 === 0x20) v = a >> (imm & 31);
            else {
              this.illegal(pc, n, inst);
              pc = this.pc;
              if (this.exitLoop) break loop;
              continue loop;
            }
            break;
          }
          case 6:
            v = a | imm;
            break;
          default:
            v = a & imm;
            break;
        }
        if (rd !== 0) x[rd] = v;
        pc = next;
        continue;
      }
      switch (op) {
        case 12: {
          // OP and M extension
          const a = x[(inst >> 15) & 31]!;
          const b = x[(inst >> 20) & 31]!;
          const f7 = inst >>> 25;
          let v: number;
          if (f7 === 0) {
            switch ((inst >> 12) & 7) {
              case 0:
                v = (a + b) | 0;
                break;
              case 1:
                v = a << (b & 31);
                break;
              case 2:
                v = a < b ? 1 : 0;
                break;
              case 3:
                v = a >>> 0 < b >>> 0 ? 1 : 0;
                break;
              case 4:
                v = a ^ b;
                break;
              case 5:
                v = a >>> (b & 31);
                break;
              case 6:
                v = a | b;
                break;
              default:
                v = a & b;
                break;
            }
          } else if (f7 === 1) {
            v = mulDiv((inst >> 12) & 7, a, b);
          } else if (f7 === 0x20 && ((inst >> 12) & 7) === 0) {
            v = (a - b) | 0;
          } else if (f7 === 0x20 && ((inst >> 12) & 7) === 5) {
            v = a >> (b & 31);
          } else {
            this.illegal(pc, n, inst);
            pc = this.pc;
            if (this.exitLoop) break loop;
            continue loop;
          }
          if (rd !== 0) x[rd] = v;
          pc = next;
          break;
        }
        case 0: {
          // LOAD
          const address = (x[(inst >> 15) & 31]! + (inst >> 20)) | 0;
          const f3 = (inst >> 12) & 7;
          let v = 0;
          let slow = true;
          if ((frames[address >>> 12]! & 1) !== 0) {
            const offset = address ^ RAM_XOR;
            if (f3 === 2) {
              if ((offset & 3) === 0) {
                v = m32[offset >> 2]!;
                slow = false;
              }
            } else if (f3 === 4) {
              v = mu8[offset]!;
              slow = false;
            } else if (f3 === 0) {
              v = m8[offset]!;
              slow = false;
            } else if ((offset & 1) === 0) {
              if (f3 === 5) {
                v = mu16[offset >> 1]!;
                slow = false;
              } else if (f3 === 1) {
                v = m16[offset >> 1]!;
                slow = false;
              }
            }
          }
          if (slow) {
            this.pc = pc;
            this.sliceRemaining = n + 1;
            v = this.loadSlow(address, f3, inst);
            if (this.trapped) {
              this.trapped = false;
              pc = this.pc;
              if (this.exitLoop) break loop;
              continue loop;
            }
          }
          if (rd !== 0) x[rd] = v;
          pc = next;
          break;
        }
        case 8: {
          // STORE
          const address = (x[(inst >> 15) & 31]! + (((inst >> 25) << 5) | ((inst >> 7) & 31))) | 0;
          const value = x[(inst >> 20) & 31]!;
          const f3 = (inst >> 12) & 7;
          let slow = true;
          // WRITABLE | DIRTY set, WATCHED, CODE and RESERVED clear (PTE_STORE_FAST_MASK / _VALUE).
          if ((frames[address >>> 12]! & 0xe6) === 0x06) {
            const offset = address ^ RAM_XOR;
            if (f3 === 2) {
              if ((offset & 3) === 0) {
                m32[offset >> 2] = value;
                slow = false;
              }
            } else if (f3 === 0) {
              m8[offset] = value;
              slow = false;
            } else if (f3 === 1 && (offset & 1) === 0) {
              m16[offset >> 1] = value;
              slow = false;
            }
          }
          if (slow) {
            this.pc = pc;
            this.sliceRemaining = n + 1;
            this.storeSlow(address, f3, value, inst);
            if (this.trapped) {
              this.trapped = false;
              pc = this.pc;
              if (this.exitLoop) break loop;
              continue loop;
            }
            pc = next;
            if (this.exitLoop) break loop;
            continue loop;
          }
          pc = next;
          break;
        }
        case 24: {
          // BRANCH
          const a = x[(inst >> 15) & 31]!;
          const b = x[(inst >> 20) & 31]!;
          let taken: boolean;
          switch ((inst >> 12) & 7) {
            case 0:
              taken = a === b;
              break;
            case 1:
              taken = a !== b;
              break;
            case 4:
              taken = a < b;
              break;
            case 5:
              taken = a >= b;
              break;
            case 6:
              taken = a >>> 0 < b >>> 0;
              break;
            case 7:
              taken = a >>> 0 >= b >>> 0;
              break;
            default:
              this.illegal(pc, n, inst);
              pc = this.pc;
              if (this.exitLoop) break loop;
              continue loop;
          }
          if (taken) {
            const target =
              (pc + (((inst >> 31) << 12) | (((inst >> 7) & 1) << 11) | (((inst >> 25) & 0x3f) << 5) | (((inst >> 8) & 0xf) << 1))) | 0;
            pc = target;
          } else {
            pc = next;
          }
          break;
        }
        case 27: {
          // JAL
          const target = (pc + (((inst >> 31) << 20) | (inst & 0xff000) | (((inst >> 20) & 1) << 11) | (((inst >> 21) & 0x3ff) << 1))) | 0;
          if (rd !== 0) x[rd] = next;
          pc = target;
          break;
        }
        case 25: {
          // JALR
          if (((inst >> 12) & 7) !== 0) {
            this.illegal(pc, n, inst);
            pc = this.pc;
            if (this.exitLoop) break loop;
            continue loop;
          }
          const target = ((x[(inst >> 15) & 31]! + (inst >> 20)) & ~1) | 0;
          if (rd !== 0) x[rd] = next;
          pc = target;
          break;
        }
        case 13:
          // LUI
          if (rd !== 0) x[rd] = inst & 0xfffff000;
          pc = next;
          break;
        case 5:
          // AUIPC
          if (rd !== 0) x[rd] = (pc + (inst & 0xfffff000)) | 0;
          pc = next;
          break;
        case 3: {
          // MISC-MEM: fence and fence.i. Stores to code are seen at once by both engines (a write
          // to a page drops its compiled blocks), so fence.i has nothing left to do.
          const f3 = (inst >> 12) & 7;
          if (f3 !== 0 && f3 !== 1) {
            this.illegal(pc, n, inst);
            pc = this.pc;
            if (this.exitLoop) break loop;
            continue loop;
          }
          pc = next;
          break;
        }
        case 11: {
          // AMO (the A extension, Unprivileged ISA ch. 8): always the slow path.
          this.pc = pc;
          this.sliceRemaining = n + 1;
          this.atomic(inst, x[(inst >> 15) & 31]!, x[(inst >> 20) & 31]!);
          if (this.trapped) {
            this.trapped = false;
            pc = this.pc;
            if (this.exitLoop) break loop;
            continue loop;
          }
          if (rd !== 0) x[rd] = this.atomicValue;
          pc = next;
          if (this.exitLoop) break loop;
          break;
        }
        case 28: {
          // SYSTEM
          this.pc = pc;
          this.sliceRemaining = n + 1;
          this.system(inst);
          this.trapped = false;
          pc = this.pc;
          if (this.exitLoop) break loop;
          break;
        }
        default:
          this.illegal(pc, n, inst);
          pc = this.pc;
          if (this.exitLoop) break loop;
          continue loop;
      }
    }
    this.pc = pc;
    this.instret += budget - n - this.sliceExceptions;
    this.sliceBudget = this.sliceRemaining = this.sliceExceptions = 0;
    return budget - n;
  }

  private illegal(pc: number, remaining: number, inst: number): void {
    this.pc = pc;
    this.sliceRemaining = remaining;
    this.exception(CAUSE_ILLEGAL_INSTRUCTION, inst);
    this.trapped = false;
  }

  /**
   * Fetches the instruction at `pc` (in a present RAM page) that is not a 32-bit one at a word
   * boundary: a compressed parcel, returned as its 32-bit expansion (rvc.ts), or a 32-bit
   * instruction at pc % 4 = 2, whose upper half may lie in the next page and then needs that
   * page's own fetch check. Leaves the length in fetchedBytes; returns 0 when it trapped (a
   * reserved parcel, mtval holding it; or a fault on the next page), with the pc at the handler.
   */
  private fetchParcels(pc: number, remaining: number): number {
    const offset = pc ^ RAM_XOR;
    const low = this.mu16[offset >> 1]!;
    if ((low & 3) !== 3) {
      const inst = RVC_EXPANSION[low]!;
      this.fetchedBytes = 2;
      if (inst === 0) this.illegal(pc, remaining, low);
      return inst;
    }
    if ((pc & 0xfff) === 0xffe && (this.frames[(pc + 2) >>> 12]! & 1) === 0) {
      this.pc = pc;
      this.sliceRemaining = remaining + 1;
      this.fetchSlow((pc + 2) | 0);
      if (this.trapped) {
        this.trapped = false;
        return 0;
      }
    }
    this.fetchedBytes = 4;
    return low | (this.mu16[(offset + 2) >> 1]! << 16);
  }

  /** A fetch from a page without PRESENT: a read fault on RAM, an access fault elsewhere. */
  private fetchSlow(pc: number): void {
    const offset = this.memory.ramOffset(pc);
    if (offset < 0) {
      this.exception(CAUSE_FETCH_ACCESS, pc);
      return;
    }
    this.memory.prepareLoad(offset >>> 12);
  }

  private loadSlow(address: number, f3: number, inst: number): number {
    const sizeBytes = f3 === 2 ? 4 : f3 === 1 || f3 === 5 ? 2 : f3 === 0 || f3 === 4 ? 1 : 0;
    if (sizeBytes === 0) {
      this.exception(CAUSE_ILLEGAL_INSTRUCTION, inst);
      return 0;
    }
    if ((address & (sizeBytes - 1)) !== 0) {
      this.exception(CAUSE_LOAD_MISALIGNED, address);
      return 0;
    }
    let raw: number;
    const offset = this.memory.ramOffset(address);
    if (offset >= 0) {
      this.memory.prepareLoad(offset >>> 12);
      raw = sizeBytes === 4 ? this.m32[offset >> 2]! : sizeBytes === 2 ? this.mu16[offset >> 1]! : this.mu8[offset]!;
    } else {
      const value = this.bus.load(address, sizeBytes);
      if (value === undefined) {
        this.exception(CAUSE_LOAD_ACCESS, address);
        return 0;
      }
      raw = value;
    }
    switch (f3) {
      case 0:
        return (raw << 24) >> 24;
      case 1:
        return (raw << 16) >> 16;
      case 4:
        return raw & 0xff;
      case 5:
        return raw & 0xffff;
      default:
        return raw | 0;
    }
  }

  private storeSlow(address: number, f3: number, value: number, inst: number): void {
    const sizeBytes = f3 === 2 ? 4 : f3 === 1 ? 2 : f3 === 0 ? 1 : 0;
    if (sizeBytes === 0) {
      this.exception(CAUSE_ILLEGAL_INSTRUCTION, inst);
      return;
    }
    if ((address & (sizeBytes - 1)) !== 0) {
      this.exception(CAUSE_STORE_MISALIGNED, address);
      return;
    }
    const offset = this.memory.ramOffset(address);
    if (offset >= 0) {
      const page = offset >>> 12;
      if ((this.memory.table.entries[page]! & PTE_GUEST_WRITABLE) === 0) {
        this.exception(CAUSE_STORE_ACCESS, address);
        return;
      }
      this.memory.prepareStore(page, 'cpu');
      if (sizeBytes === 4) this.m32[offset >> 2] = value;
      else if (sizeBytes === 2) this.m16[offset >> 1] = value;
      else this.m8[offset] = value;
      this.memory.finishStore(page, offset, sizeBytes, 'cpu');
      return;
    }
    const mask = sizeBytes === 4 ? 0xffff_ffff : (1 << (sizeBytes * 8)) - 1;
    if (!this.bus.store(address, sizeBytes, (value & mask) >>> 0)) {
      this.exception(CAUSE_STORE_ACCESS, address);
      return;
    }
    // A device may have raised or lowered an interrupt line, or halted the machine.
    this.exitLoop = true;
  }

  /**
   * The A extension's word instructions (Unprivileged ISA ch. 8) at `this.pc`, with rs1's value
   * `address` and rs2's `operand`: leaves what rd receives in atomicValue, or traps. One hart
   * executes them in order, so aq/rl (§8.1) need nothing. They work on RAM only: an AMO or SC.W
   * elsewhere is a store/AMO access fault and an LR.W a load access fault (devices have no AMO
   * support, Privileged ISA §3.6.3.1); a misaligned address raises the address-misaligned
   * exception (§8.4). The write goes through GuestMemory's store path, so dirty tracking, the
   * compiled-code cache and the reservation see it as they see any store.
   */
  private atomic(inst: number, address: number, operand: number): void {
    const f5 = inst >>> 27;
    const isLoadReserved = f5 === 0x02;
    if (((inst >> 12) & 7) !== 2 || !isAmoFunction(f5) || (isLoadReserved && ((inst >> 20) & 31) !== 0)) {
      this.exception(CAUSE_ILLEGAL_INSTRUCTION, inst);
      return;
    }
    if ((address & 3) !== 0) {
      this.exception(isLoadReserved ? CAUSE_LOAD_MISALIGNED : CAUSE_STORE_MISALIGNED, address);
      return;
    }
    const offset = this.memory.ramOffset(address);
    if (offset < 0) {
      this.exception(isLoadReserved ? CAUSE_LOAD_ACCESS : CAUSE_STORE_ACCESS, address);
      return;
    }
    const page = offset >>> 12;
    if (isLoadReserved) {
      // LR.W (§8.2): a load that registers the reservation set (its page, see GuestMemory).
      this.memory.prepareLoad(page);
      this.atomicValue = this.m32[offset >> 2]!;
      this.memory.reserve(page);
      return;
    }
    if ((this.memory.table.entries[page]! & PTE_GUEST_WRITABLE) === 0) {
      this.exception(CAUSE_STORE_ACCESS, address);
      return;
    }
    if (f5 === 0x03) {
      // SC.W (§8.2): writes only while the reservation holds, rd = 0 on success and 1 on
      // failure; the reservation ends either way.
      if (!this.memory.takeReservation(page)) {
        this.atomicValue = 1;
        return;
      }
      this.memory.prepareStore(page, 'cpu');
      this.m32[offset >> 2] = operand;
      this.memory.finishStore(page, offset, 4, 'cpu');
      this.atomicValue = 0;
      return;
    }
    // AMO*.W (§8.4): rd gets the old word, memory the operation's result.
    this.memory.prepareStore(page, 'cpu');
    const old = this.m32[offset >> 2]!;
    let next: number;
    switch (f5) {
      case 0x01: // AMOSWAP.W
        next = operand;
        break;
      case 0x00: // AMOADD.W
        next = (old + operand) | 0;
        break;
      case 0x04: // AMOXOR.W
        next = old ^ operand;
        break;
      case 0x0c: // AMOAND.W
        next = old & operand;
        break;
      case 0x08: // AMOOR.W
        next = old | operand;
        break;
      case 0x10: // AMOMIN.W
        next = Math.min(old, operand);
        break;
      case 0x14: // AMOMAX.W
        next = Math.max(old, operand);
        break;
      case 0x18: // AMOMINU.W
        next = old >>> 0 < operand >>> 0 ? old : operand;
        break;
      default: // AMOMAXU.W
        next = old >>> 0 > operand >>> 0 ? old : operand;
        break;
    }
    this.m32[offset >> 2] = next;
    this.memory.finishStore(page, offset, 4, 'cpu');
    this.atomicValue = old;
  }

  /** SYSTEM instructions; leaves the next pc in this.pc. */
  private system(inst: number): void {
    const f3 = (inst >> 12) & 7;
    if (f3 === 0) {
      switch (inst >>> 0) {
        case 0x0000_0073: // ecall
          this.exception(CAUSE_ECALL_M, 0);
          return;
        case 0x0010_0073: // ebreak
          this.exception(CAUSE_BREAKPOINT, this.pc);
          return;
        case 0x3020_0073: // mret
          this.mstatus = ((this.mstatus & MSTATUS_MPIE) !== 0 ? this.mstatus | MSTATUS_MIE : this.mstatus & ~MSTATUS_MIE) | MSTATUS_MPIE;
          this.pc = this.mepc;
          this.exitLoop = true;
          return;
        case 0x1050_0073: // wfi
          this.pc = (this.pc + 4) | 0;
          if ((this.mip() & this.mie) === 0) {
            this.waiting = true;
            this.exitLoop = true;
          }
          return;
        default:
          this.exception(CAUSE_ILLEGAL_INSTRUCTION, inst);
          return;
      }
    }
    if (f3 === 4) {
      this.exception(CAUSE_ILLEGAL_INSTRUCTION, inst);
      return;
    }
    // Zicsr (Unprivileged ISA ch. 9): csrrw/s/c and their immediate forms.
    const csr = inst >>> 20;
    const rd = (inst >> 7) & 31;
    const rs1 = (inst >> 15) & 31;
    const operand = f3 >= 5 ? rs1 : this.x[rs1]!;
    const op = f3 & 3;
    const writes = op === 1 || rs1 !== 0;
    if (writes && csr >>> 10 === 3) {
      this.exception(CAUSE_ILLEGAL_INSTRUCTION, inst);
      return;
    }
    const old = this.readCsr(csr);
    if (old === undefined) {
      this.exception(CAUSE_ILLEGAL_INSTRUCTION, inst);
      return;
    }
    if (writes) {
      const value = op === 1 ? operand : op === 2 ? old | operand : old & ~operand;
      this.writeCsr(csr, value | 0);
      this.exitLoop = true;
    }
    if (rd !== 0) this.x[rd] = old;
    this.pc = (this.pc + 4) | 0;
  }

  /** Reads a CSR; undefined when it does not exist here (an illegal instruction). */
  readCsr(csr: number): number | undefined {
    switch (csr) {
      case 0x300:
        return (this.mstatus & (MSTATUS_MIE | MSTATUS_MPIE)) | MSTATUS_MPP_M;
      case 0x301:
        return MISA_RV32IMAC;
      case 0x304:
        return this.mie;
      case 0x305:
        return this.mtvec;
      case 0x340:
        return this.mscratch;
      case 0x341:
        return this.mepc;
      case 0x342:
        return this.mcause;
      case 0x343:
        return this.mtval;
      case 0x344:
        return this.mip();
      case 0xf11: // mvendorid
      case 0xf12: // marchid
      case 0xf13: // mimpid
      case 0xf14: // mhartid
        return 0;
      case 0xb00:
      case 0xc00:
      case 0xc01: // time: mtime is the cycle count
        return low32(this.counter64(csr === 0xc01 ? 0n : this.mcycleOffset, this.currentCycle()));
      case 0xb80:
      case 0xc80:
      case 0xc81:
        return high32(this.counter64(csr === 0xc81 ? 0n : this.mcycleOffset, this.currentCycle()));
      case 0xb02:
      case 0xc02:
        return low32(this.counter64(this.minstretOffset, this.currentInstret()));
      case 0xb82:
      case 0xc82:
        return high32(this.counter64(this.minstretOffset, this.currentInstret()));
      default:
        return undefined;
    }
  }

  private counter64(offset: bigint, count: number): bigint {
    return (BigInt(count) + offset) & MASK_64;
  }

  private writeCsr(csr: number, value: number): void {
    switch (csr) {
      case 0x300:
        this.mstatus = value & (MSTATUS_MIE | MSTATUS_MPIE);
        return;
      case 0x304:
        this.mie = value & MIE_WRITABLE;
        return;
      case 0x305:
        // Modes 2 and 3 are reserved: WARL keeps direct mode.
        this.mtvec = (value & 3) === 1 ? value : value & ~3;
        return;
      case 0x340:
        this.mscratch = value;
        return;
      case 0x341:
        // mepc[0] is always zero; with IALIGN = 16, bit 1 is kept (Privileged ISA §3.1.14).
        this.mepc = value & ~1;
        return;
      case 0x342:
        this.mcause = value;
        return;
      case 0x343:
        this.mtval = value;
        return;
      case 0xb00:
      case 0xb80:
        this.mcycleOffset = this.rewriteCounter(this.mcycleOffset, this.currentCycle(), csr === 0xb80, value);
        return;
      case 0xb02:
      case 0xb82:
        this.minstretOffset = this.rewriteCounter(this.minstretOffset, this.currentInstret(), csr === 0xb82, value);
        return;
      default:
        // misa, mip and the read-only IDs ignore writes (WARL).
        return;
    }
  }

  /**
   * The offset that makes a 64-bit counter, now at `count` (the writing instruction not yet
   * counted), hold `value` in the half written and keep the other half. The write takes effect
   * after the writing instruction: it replaces that instruction's own increment, so the next
   * instruction reads exactly the value written (Privileged ISA §3.1.11; Unprivileged ISA §10.1).
   * The unwritten half is the one before the increment: at its carry point, 0xffffffff, the
   * increment would otherwise change it.
   */
  private rewriteCounter(offset: bigint, count: number, high: boolean, value: number): bigint {
    const current = this.counter64(offset, count);
    const word = BigInt(value >>> 0);
    const next = high ? (word << 32n) | (current & 0xffff_ffffn) : (current & ~0xffff_ffffn & MASK_64) | word;
    return (next - BigInt(count + 1)) & MASK_64;
  }
}

/** funct5 values of the A extension's word instructions (Unprivileged ISA ch. 24, the RV32A listing). */
function isAmoFunction(f5: number): boolean {
  switch (f5) {
    case 0x00:
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x08:
    case 0x0c:
    case 0x10:
    case 0x14:
    case 0x18:
    case 0x1c:
      return true;
    default:
      return false;
  }
}

function low32(value: bigint): number {
  return Number(value & 0xffff_ffffn) | 0;
}

function high32(value: bigint): number {
  return Number(value >> 32n) | 0;
}

export function describeCause(cause: number): string {
  const names: Record<number, string> = {
    [CAUSE_FETCH_MISALIGNED]: 'instruction address misaligned',
    [CAUSE_FETCH_ACCESS]: 'instruction access fault',
    [CAUSE_ILLEGAL_INSTRUCTION]: 'illegal instruction',
    [CAUSE_BREAKPOINT]: 'breakpoint',
    [CAUSE_LOAD_MISALIGNED]: 'load address misaligned',
    [CAUSE_LOAD_ACCESS]: 'load access fault',
    [CAUSE_STORE_MISALIGNED]: 'store address misaligned',
    [CAUSE_STORE_ACCESS]: 'store access fault',
    [CAUSE_ECALL_M]: 'environment call',
  };
  return names[cause] ?? `exception ${cause}`;
}
