// Proves on seeded random RV32IMAC programs (loads and stores to RAM, devices and unmapped space, branches, jumps, traps, timer interrupts, CSR reads, self-modification; compressed instructions, 32-bit ones at 2-byte alignment and across pages, AMOs and LR/SC) that the compiled-block engine matches the interpreter instruction for instruction, including every tracking fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLINT_BASE, CLINT_MTIME, CLINT_MTIMECMP, RAM_BASE, SYSINFO_BASE, UART_BASE } from '@hbft/common/guest/addressMap.ts';
import type { Machine } from '@hbft/common/guest/machine.ts';
import { TRACKING_STRATEGIES } from '@hbft/common/tracking/tracker.ts';
import { SeededRandom, testSeed } from '../helpers/seed.ts';
import { expandCompressed } from '@hbft/common/guest/rvc.ts';
import { createEnginePair, runLockstep } from './engineLockstep.ts';
import {
  AUIPC,
  EBREAK,
  ECALL,
  FENCE,
  FENCE_I,
  JALR,
  LOAD,
  MRET,
  WFI,
  AMO_FUNCTIONS,
  C_EBREAK,
  C_NOP,
  addi,
  amo,
  bType,
  cAdd,
  cAddi,
  cAddi16sp,
  cAddi4spn,
  cAndi,
  cArith,
  cBeqz,
  cBnez,
  cJ,
  cJal,
  cLi,
  cLui,
  cLw,
  cLwsp,
  cMv,
  cSlli,
  cSrai,
  cSrli,
  cSw,
  cSwsp,
  pack,
  blt,
  beq,
  bne,
  csrrs,
  csrrw,
  iType,
  jal,
  li,
  lw,
  xor,
  rType,
  sType,
  sw,
  uType,
} from './rv32Assembler.ts';

const MEMORY_BYTES = 16 * 1024 * 1024;
const PROGRAMS = 24;
const INSTRUCTIONS_PER_PROGRAM = 150_000;

/* Layout: prologue, trap handler, random code over several pages, then data. */
const HANDLER = RAM_BASE + 0x1000;
const CODE = RAM_BASE + 0x2000;
const CODE_WORDS_MAX = 3 * 1024 + 300;
const DATA_A = RAM_BASE + 0x10800;
/** In another L1 table (2 MiB), so the strategies' per-L1 work differs between the two. */
const DATA_B = RAM_BASE + 0x40_0800;

/* Registers with fixed roles; random code only writes x1..x23. */
const X_DATA_A = 30;
const X_UART = 29;
const X_CODE = 28;
/** mtime: loads read the cycle count, exact only if the instruction count is (stores are ignored). */
const X_MTIME = 27;
const X_DATA_B = 26;
const X_MTIMECMP = 25;
const X_SYSINFO = 24;
/** Backward branches loop while this counter (reset at the top of the code) stays positive. */
const X_LOOP_BUDGET = 23;
const X_HANDLER_SCRATCH = 31;
const RANDOM_REGISTERS = 22;

const CSR_MSTATUS = 0x300;
const CSR_MIE = 0x304;
const CSR_MTVEC = 0x305;
const CSR_MSCRATCH = 0x340;
const CSR_MEPC = 0x341;
const CSR_MCAUSE = 0x342;
const CSR_CYCLE = 0xc00;
const CSR_INSTRET = 0xc02;
const MIE_MTIE = 1 << 7;
const MSTATUS_MIE = 1 << 3;

/**
 * The trap handler: skip the faulting instruction (2 or 4 bytes, by the low bits of its first
 * parcel); after a fetch fault (a jump out of the code) start the code again; on a timer
 * interrupt, re-arm the timer.
 */
function handler(period: number): number[] {
  assert.ok(period > 0 && period < 2048, 'the period fits an addi immediate');
  const t = X_HANDLER_SCRATCH;
  const skip = [
    csrrs(t, CSR_MEPC, 0),
    iType(0, t, 5, t, LOAD), // lhu t, 0(t): the first parcel
    iType(3, t, 7, t), // andi t, t, 3
    addi(t, t, -3),
    beq(t, 0, 16), // 32-bit → four
    csrrs(t, CSR_MEPC, 0),
    addi(t, t, 2),
    jal(12, 0), // → write
    // four:
    csrrs(t, CSR_MEPC, 0),
    addi(t, t, 4),
    // write:
    csrrw(0, CSR_MEPC, t),
    MRET,
  ];
  const head = [
    csrrs(t, CSR_MCAUSE, 0),
    0, // blt t, 0, irq: filled in below
    addi(t, t, -1),
    bne(t, 0, 12), // not a fetch access fault → skip
    csrrw(0, CSR_MEPC, X_CODE),
    MRET,
  ];
  head[1] = blt(t, 0, 4 * (head.length - 1 + skip.length));
  return [
    ...head,
    ...skip,
    // irq: mtimecmp = mtime + period (high word first; wfi may have skipped past 2^32 cycles)
    uType((CLINT_BASE + 0xc000) >>> 12, t),
    lw(t, t, -4),
    sw(t, X_MTIMECMP, 4),
    uType((CLINT_BASE + 0xc000) >>> 12, t),
    lw(t, t, -8),
    addi(t, t, period),
    sw(t, X_MTIMECMP, 0),
    MRET,
  ];
}

function prologue(random: SeededRandom, traits: ProgramTraits): number[] {
  const words: number[] = [
    ...li(X_DATA_A, DATA_A),
    ...li(X_DATA_B, DATA_B),
    ...li(X_UART, UART_BASE),
    ...li(X_CODE, CODE),
    ...li(X_MTIME, CLINT_BASE + CLINT_MTIME),
    ...li(X_MTIMECMP, CLINT_BASE + CLINT_MTIMECMP),
    ...li(X_SYSINFO, SYSINFO_BASE),
  ];
  for (let r = 1; r <= RANDOM_REGISTERS; r++) words.push(...li(r, random.chance(0.3) ? random.below(64) : random.nextU32()));
  words.push(...li(X_HANDLER_SCRATCH, HANDLER), csrrw(0, CSR_MTVEC, X_HANDLER_SCRATCH));
  if (traits.timer) {
    // Timer interrupts: armed by the first pass through the handler's irq path below.
    words.push(...li(X_HANDLER_SCRATCH, MIE_MTIE), csrrw(0, CSR_MIE, X_HANDLER_SCRATCH));
    words.push(...li(X_HANDLER_SCRATCH, 500 + random.below(5000)), sw(X_HANDLER_SCRATCH, X_MTIMECMP, 0), sw(0, X_MTIMECMP, 4));
    words.push(...li(X_HANDLER_SCRATCH, MSTATUS_MIE), csrrs(0, CSR_MSTATUS, X_HANDLER_SCRATCH));
  }
  const here = RAM_BASE + 4 * words.length;
  words.push(jal(CODE - here, 0));
  return words;
}

function randomRegister(random: SeededRandom): number {
  return random.below(RANDOM_REGISTERS + 1);
}

/** What a random program may do besides computing and touching its data. */
interface ProgramTraits {
  /** Timer interrupts are armed (and wfi may appear). */
  timer: boolean;
  /** Stores may hit the code (self-modification). */
  selfModifying: boolean;
}

/** A base register for a memory access, mostly RAM data, sometimes a device, code or nothing. */
function randomBase(random: SeededRandom, store: boolean, traits: ProgramTraits): number {
  const roll = random.below(100);
  if (roll < 45) return X_DATA_A;
  if (roll < 82) return X_DATA_B;
  if (roll < 88) return X_UART;
  if (roll < 92) return store ? X_MTIMECMP : X_SYSINFO;
  if (roll < 94) return X_MTIME;
  if (roll < 97 && (!store || traits.selfModifying)) return X_CODE;
  return randomRegister(random);
}

/** A register-immediate computation; shift amounts favour 0 and 31, the edges. */
function randomOpImm(random: SeededRandom, rd: number, rs1: number): number {
  const f3 = random.below(8);
  const shamt = random.chance(0.3) ? [0, 31][random.below(2)]! : random.below(32);
  if (f3 === 1) return iType(shamt, rs1, 1, rd);
  if (f3 === 5) return iType(shamt | (random.chance(0.5) ? 0x400 : 0), rs1, 5, rd);
  return iType(random.nextU32(), rs1, f3, rd);
}

/** An offset from a base register: aligned to the access size most of the time. */
function randomOffset(random: SeededRandom, base: number, sizeBytes: number): number {
  if (base === X_CODE) return random.below(2048) & ~3;
  // mtimecmp's low word only: a high word far ahead would let wfi skip past 2^32 cycles.
  if (base === X_MTIMECMP) return 0;
  if (base === X_MTIME) return 4 * random.below(2);
  const offset = (random.nextU32() << 20) >> 20;
  return random.chance(0.95) ? offset & -sizeBytes : offset;
}

const LOAD_SIZES = [1, 2, 4, 0, 1, 2];

/** One random instruction, or a counted backward branch (two words) to an earlier one. */
function randomInstructions(random: SeededRandom, index: number, traits: ProgramTraits): number[] {
  const rd = randomRegister(random);
  const rs1 = random.chance(0.1) ? 24 + random.below(8) : randomRegister(random);
  const rs2 = randomRegister(random);
  const roll = random.below(1000);
  if (roll < 250) return [randomOpImm(random, rd, rs1)];
  if (roll < 450) {
    const kind = random.below(3);
    const f3 = random.below(8);
    if (kind === 0) return [rType(0, rs2, rs1, f3, rd)];
    if (kind === 1) return [rType(1, rs2, rs1, f3, rd)];
    return [rType(0x20, rs2, rs1, random.chance(0.5) ? 0 : 5, rd)];
  }
  if (roll < 490) return [uType(random.nextU32(), rd, random.chance(0.5) ? AUIPC : 0x37)];
  if (roll < 660) {
    const f3 = [0, 1, 2, 4, 5][random.below(5)]!;
    const base = randomBase(random, false, traits);
    return [iType(randomOffset(random, base, LOAD_SIZES[f3]!), base, f3, random.chance(0.05) ? 0 : rd, LOAD)];
  }
  if (roll < 800) {
    const f3 = random.below(3);
    const base = randomBase(random, true, traits);
    return [sType(randomOffset(random, base, 1 << f3), rs2, base, f3)];
  }
  if (roll < 880) {
    // Forward within the code, now and then to a misaligned target.
    return [bType(4 * (1 + random.below(12)) + (random.chance(0.03) ? 2 : 0), rs2, rs1, [0, 1, 4, 5, 6, 7][random.below(6)]!)];
  }
  if (roll < 900 && index > 0) {
    // A loop back over the last few instructions, bounded by the loop budget.
    const back = 1 + random.below(Math.min(index, 12));
    return [addi(X_LOOP_BUDGET, X_LOOP_BUDGET, -1), bType(-4 * (back + 1), X_LOOP_BUDGET, 0, 4)]; // blt x0, budget
  }
  if (roll < 920) return [jal(4 * (1 + random.below(16)) + (random.chance(0.03) ? 2 : 0), random.chance(0.5) ? 0 : rd)];
  if (roll < 935) {
    // auipc + jalr: forward, now and then misaligned (bit 0 is dropped, bit 1 traps).
    const link = 1 + random.below(RANDOM_REGISTERS);
    const offset = 4 * (2 + random.below(16)) + (random.chance(0.05) ? 2 : 0) + (random.chance(0.1) ? 1 : 0);
    return [uType(0, link, AUIPC), iType(offset, link, 0, random.chance(0.5) ? 0 : rd, JALR)];
  }
  if (roll < 985) {
    const system = [ECALL, EBREAK, FENCE, FENCE_I, csrrs(rd, CSR_CYCLE, 0), csrrs(rd, CSR_INSTRET, 0), csrrw(rd, CSR_MSCRATCH, rs1)];
    system.push(...system.slice(2), ...system.slice(2));
    // wfi only where the timer can wake the hart; elsewhere it would idle for good.
    if (traits.timer && random.chance(0.1)) system.push(WFI);
    return [system[random.below(system.length)]!];
  }
  if (roll < 990 && traits.selfModifying) {
    // Flip bit 20 of a computation a little ahead (its immediate's or rs2's lowest bit), so that
    // every pass changes the code again, often inside the running block (see fixUp()).
    const [value, flip, base] = [1, 2, 3].map(() => 1 + random.below(RANDOM_REGISTERS)) as [number, number, number];
    const ahead = 4 * (5 + random.below(random.chance(0.7) ? 3 : 24));
    return [uType(0, base, AUIPC), lw(value, base, ahead), uType(0x100, flip), xor(value, value, flip), sw(value, base, ahead)];
  }
  if (roll < 990 && traits.timer) {
    // Arm the timer a few cycles ahead: the interrupt lands inside the following blocks.
    const t = 1 + random.below(RANDOM_REGISTERS);
    return [uType((CLINT_BASE + 0xc000) >>> 12, t), lw(t, t, -8), addi(t, t, random.below(24)), sw(t, X_MTIMECMP, 0)];
  }
  if (roll < 993) return [rType(0, rs2, rs1, random.below(8), rd)];
  // Illegal: an unused opcode, a reserved funct3, or all zeros.
  return [[0, 0x0000_002b, iType(0, rs1, 3, rd, LOAD), sType(0, rs2, rs1, 5), bType(8, rs2, rs1, 2)][random.below(5)]!];
}

/** A computation as a compressed parcel (no control flow), on the random registers. */
function randomCompressedComputation(random: SeededRandom): number {
  const rd = 1 + random.below(RANDOM_REGISTERS);
  const rdPrime = 8 + random.below(8);
  const imm6 = random.below(64) - 32;
  switch (random.below(12)) {
    case 0:
      return cAddi(random.chance(0.1) ? 0 : rd, imm6);
    case 1:
      return cLi(rd, imm6);
    case 2:
      return cLui(rd === 2 ? 3 : rd, imm6 === 0 ? 1 : imm6);
    case 3:
      return cSlli(rd, random.below(32));
    case 4:
      return random.chance(0.5) ? cSrli(rdPrime, random.below(32)) : cSrai(rdPrime, random.below(32));
    case 5:
      return cAndi(rdPrime, imm6);
    case 6:
      return cArith(random.below(4), rdPrime, 8 + random.below(8));
    case 7:
      return cMv(rd, 1 + random.below(31));
    case 8:
      return cAdd(rd, 1 + random.below(RANDOM_REGISTERS));
    case 9:
      return cAddi16sp(16 * (random.below(63) - 32) || 16);
    case 10:
      return cAddi4spn(rdPrime, 4 * (1 + random.below(255)));
    default:
      return C_NOP;
  }
}

/** A 32-bit computation, load or store that is not control flow (to run at 2 mod 4). */
function randomPlainInstruction(random: SeededRandom, traits: ProgramTraits): number {
  const rd = randomRegister(random);
  const rs1 = randomRegister(random);
  const rs2 = randomRegister(random);
  switch (random.below(4)) {
    case 0:
      return randomOpImm(random, rd, rs1);
    case 1:
      return rType(random.chance(0.5) ? 0 : 1, rs2, rs1, random.below(8), rd);
    case 2: {
      const f3 = [0, 1, 2, 4, 5][random.below(5)]!;
      const base = randomBase(random, false, traits);
      return iType(randomOffset(random, base, LOAD_SIZES[f3]!), base, f3, rd, LOAD);
    }
    default: {
      const f3 = random.below(3);
      const base = randomBase(random, true, { ...traits, selfModifying: false });
      return sType(randomOffset(random, base, 1 << f3), rs2, base, f3);
    }
  }
}

const AMO_OPERATIONS = Object.entries(AMO_FUNCTIONS)
  .filter(([name]) => name !== 'lr' && name !== 'sc')
  .map(([, f5]) => f5);

/**
 * Code of the C and A extensions, as whole words (so that branches still land on word
 * boundaries): compressed pairs, compressed loads, stores, branches and jumps, a 32-bit
 * instruction straddling two words (sometimes two pages), AMOs and LR/SC sequences. `guarded`
 * lists the words (relative) that no branch may land on: the second half of a straddling
 * instruction.
 */
function randomExtensionInstructions(
  random: SeededRandom,
  traits: ProgramTraits,
  straddle = false,
): { words: number[]; guarded: number[] } {
  const roll = straddle ? 60 : random.below(100);
  const noCode = { ...traits, selfModifying: false };
  const prime = () => 8 + random.below(8);
  if (roll < 25) return { words: [pack(randomCompressedComputation(random), randomCompressedComputation(random))], guarded: [] };
  if (roll < 40) {
    // A compressed load or store through a base copied into x8..x15 or sp.
    const store = random.chance(0.4);
    let base = randomBase(random, store, noCode);
    if (base === X_CODE && store) base = X_DATA_A;
    const fixedOffset = base === X_MTIME || base === X_MTIMECMP;
    if (random.chance(0.3)) {
      const uimm = fixedOffset ? 0 : 4 * random.below(64);
      const access = store ? cSwsp(randomRegister(random), uimm) : cLwsp(1 + random.below(RANDOM_REGISTERS), uimm);
      return { words: [pack(cMv(2, base), access)], guarded: [] };
    }
    const address = prime();
    const uimm = fixedOffset ? 0 : 4 * random.below(32);
    return { words: [pack(cMv(address, base), store ? cSw(prime(), address, uimm) : cLw(prime(), address, uimm))], guarded: [] };
  }
  if (roll < 52) {
    // A compressed branch or jump forward, first or second in its word; the target is a word.
    const words = 4 * (1 + random.below(12));
    const second = random.chance(0.4);
    const offset = second ? words + 2 : words;
    const kind = random.below(4);
    const jump = kind === 0 ? cBeqz(prime(), offset) : kind === 1 ? cBnez(prime(), offset) : kind === 2 ? cJ(offset) : cJal(offset);
    return { words: [second ? pack(randomCompressedComputation(random), jump) : pack(jump, C_NOP)], guarded: [] };
  }
  if (roll < 67) {
    // A 32-bit instruction at 2 mod 4, between two compressed ones.
    const inst = randomPlainInstruction(random, traits);
    return {
      words: [pack(randomCompressedComputation(random), inst & 0xffff), pack(inst >>> 16, randomCompressedComputation(random))],
      guarded: [1],
    };
  }
  const t = 1 + random.below(RANDOM_REGISTERS);
  const base = randomBase(random, true, noCode);
  const offset = base === X_MTIME || base === X_MTIMECMP ? 0 : randomOffset(random, base, 4);
  const address = addi(t, base === X_CODE ? X_DATA_A : base, offset);
  const aqrl = random.below(4);
  if (roll < 82) {
    const f5 = random.chance(0.03) ? 0x05 : AMO_OPERATIONS[random.below(AMO_OPERATIONS.length)]!;
    return { words: [address, amo(f5, randomRegister(random), t, randomRegister(random), aqrl)], guarded: [] };
  }
  if (roll < 94) {
    // LR/SC, with now and then a store into the reservation set, elsewhere, or a second SC.
    const words = [address];
    if (random.chance(0.9)) words.push(amo(AMO_FUNCTIONS.lr, randomRegister(random), t, 0, aqrl));
    const between = random.below(5);
    if (between === 0) words.push(sw(randomRegister(random), t, 4 * random.below(8)));
    else if (between === 1) words.push(sw(randomRegister(random), X_DATA_B, 0));
    else if (between === 2) words.push(pack(randomCompressedComputation(random), randomCompressedComputation(random)));
    words.push(amo(AMO_FUNCTIONS.sc, randomRegister(random), t, randomRegister(random), aqrl));
    if (random.chance(0.1)) words.push(amo(AMO_FUNCTIONS.sc, randomRegister(random), t, randomRegister(random), aqrl));
    return { words, guarded: [] };
  }
  // Traps from compressed code: c.ebreak, reserved parcels, and an LR.W with rs2 set.
  const illegal = [C_EBREAK, 0x0000, 0x0004, 0x6101, 0x4002, 0x9d01, 0x2000][random.below(7)]!;
  if (random.chance(0.2)) return { words: [address, amo(AMO_FUNCTIONS.lr, randomRegister(random), t, 1 + random.below(31))], guarded: [] };
  return {
    words: [random.chance(0.5) ? pack(illegal, randomCompressedComputation(random)) : pack(randomCompressedComputation(random), illegal)],
    guarded: [],
  };
}

/** Where a compressed branch or jump in `parcel` (at byte `at` of word `i`) lands, as a word index; undefined for others. */
function compressedTarget(parcel: number, i: number, at: number): number | undefined {
  const inst = expandCompressed(parcel);
  const opcode = inst & 0x7f;
  if (opcode !== 0x63 && opcode !== 0x6f) return undefined;
  return i + (at + jumpOffset(inst)) / 4;
}

/** The offset of a branch (B-type) or jal (J-type). */
function jumpOffset(inst: number): number {
  if ((inst & 0x7f) === 0x6f) return ((inst >> 31) << 20) | (inst & 0xff000) | (((inst >> 20) & 1) << 11) | (((inst >> 21) & 0x3ff) << 1);
  return ((inst >> 31) << 12) | (((inst >> 7) & 1) << 11) | (((inst >> 25) & 0x3f) << 5) | (((inst >> 8) & 0xf) << 1);
}

/** The same compressed branch or jump with its offset grown by `delta`. */
function moveCompressed(parcel: number, delta: number): number {
  const inst = expandCompressed(parcel);
  const offset = jumpOffset(inst) + delta;
  if ((inst & 0x7f) === 0x6f) return ((inst >> 7) & 31) === 0 ? cJ(offset) : cJal(offset);
  const rs1 = (inst >> 15) & 31;
  return ((inst >> 12) & 7) === 0 ? cBeqz(rs1, offset) : cBnez(rs1, offset);
}

/**
 * Fixes up the finished code. A forward branch or jump that would land between an auipc and its
 * jalr would jump through a stale register, possibly back into a loop without end: it lands one
 * word later instead. A patching store whose target is not a lone computation (it could break a
 * loop's budget or a jump) becomes a no-op.
 */
function fixUp(code: number[], jalrAt: Set<number>, patchable: Set<number>, patchStoresAt: number[], straddling: Set<number>): void {
  for (const i of patchStoresAt) {
    const target = i - 4 + (((code[i]! >> 25) << 5) | ((code[i]! >> 7) & 31)) / 4;
    // The base register may differ from the value and flip registers; else the pattern misfires.
    const registers = new Set([(code[i - 4]! >> 7) & 31, (code[i - 3]! >> 7) & 31, (code[i - 2]! >> 7) & 31]);
    if (!patchable.has(target) || registers.size < 3) code[i] = addi(0, 0, 0);
  }
  for (let i = 0; i < code.length; i++) {
    const inst = code[i]!;
    const opcode = inst & 0x7f;
    // The second word of a straddling instruction is no instruction of its own.
    if (straddling.has(i)) continue;
    if ((inst & 3) !== 3) {
      // A word of two compressed parcels: move their forward branches and jumps the same way.
      for (const at of [0, 2]) {
        let parcel = (inst >>> (8 * at)) & 0xffff;
        let target = compressedTarget(parcel, i, at);
        if (target === undefined || target <= i) continue;
        while (jalrAt.has(target!)) {
          parcel = moveCompressed(parcel, 4);
          target = compressedTarget(parcel, i, at);
        }
        code[i] = at === 0 ? pack(parcel, code[i]! >>> 16) : pack(code[i]! & 0xffff, parcel);
      }
    } else if (opcode === 0x63) {
      let offset = jumpOffset(inst);
      if (offset <= 0) continue;
      while (jalrAt.has(i + offset / 4)) offset += 4;
      code[i] = bType(offset, (inst >> 20) & 31, (inst >> 15) & 31, (inst >> 12) & 7);
    } else if (opcode === 0x6f) {
      let offset = jumpOffset(inst);
      if (offset <= 0) continue;
      while (jalrAt.has(i + offset / 4)) offset += 4;
      code[i] = jal(offset, (inst >> 7) & 31);
    } else if (opcode === JALR && jalrAt.has(i)) {
      // Relative to the auipc just before it.
      let offset = inst >> 20;
      while (jalrAt.has(i - 1 + (offset >> 2))) offset += 4;
      code[i] = iType(offset, (inst >> 15) & 31, 0, (inst >> 7) & 31, JALR);
    }
  }
}

function writeWords(machine: Machine, address: number, words: number[]): void {
  const first = (address - RAM_BASE) >>> 2;
  words.forEach((word, i) => {
    machine.memory.i32[first + i] = word;
  });
}

/** murmur3's finaliser: neighbouring seeds give unrelated streams (xorshift's first draws do not). */
function mixSeed(seed: number, salt: number): number {
  let h = (seed ^ salt) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85eb_ca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
  return (h ^ (h >>> 16)) >>> 0 || 1;
}

function loadProgram(machine: Machine, seed: number): void {
  const random = new SeededRandom(mixSeed(seed, 0x9e37_79b9));
  const traits: ProgramTraits = { timer: random.chance(0.7), selfModifying: random.chance(0.3) };
  writeWords(machine, RAM_BASE, prologue(random, traits));
  writeWords(machine, HANDLER, handler(200 + random.below(1800)));
  const codeWords = 200 + random.below(CODE_WORDS_MAX - 200);
  const code: number[] = [addi(X_LOOP_BUDGET, 0, 3 + random.below(30))];
  const jalrAt = new Set<number>();
  const patchable = new Set<number>();
  const patchStoresAt: number[] = [];
  const straddling = new Set<number>();
  while (code.length < codeWords) {
    let words: number[];
    // The last word of a page: a 32-bit instruction at its second half straddles two pages.
    const atPageEnd = ((CODE + 4 * code.length) & 0xfff) === 0xffc;
    if (random.chance(0.25) || (atPageEnd && random.chance(0.8))) {
      const extension = randomExtensionInstructions(random, traits, atPageEnd);
      words = extension.words;
      for (const g of extension.guarded) {
        jalrAt.add(code.length + g);
        straddling.add(code.length + g);
      }
    } else {
      words = randomInstructions(random, code.length - 1, traits);
    }
    const last = words[words.length - 1]!;
    const opcode = last & 0x7f;
    if (opcode === JALR && (last & 3) === 3 && !straddling.has(code.length + words.length - 1)) jalrAt.add(code.length + words.length - 1);
    if (words.length === 5 && (words[0]! & 0x7f) === AUIPC) patchStoresAt.push(code.length + 4);
    if (words.length === 1 && (opcode === 0x13 || opcode === 0x33) && ((last >> 7) & 31) !== X_LOOP_BUDGET) patchable.add(code.length);
    code.push(...words);
  }
  code.push(jal(-4 * code.length, 0));
  fixUp(code, jalrAt, patchable, patchStoresAt, straddling);
  writeWords(machine, CODE, code);
  for (const data of [DATA_A, DATA_B])
    writeWords(
      machine,
      data - 0x800,
      Array.from({ length: 1024 }, () => random.nextU32() | 0),
    );
  machine.cpu.pc = RAM_BASE | 0;
}

test('random programs run identically on both engines, instruction for instruction, under every strategy', () => {
  const baseSeed = testSeed();
  let compiled = 0;
  for (let program = 0; program < PROGRAMS; program++) {
    const seed = (baseSeed + program) >>> 0 || 1;
    const random = new SeededRandom(mixSeed(seed, 0x5bd1_e995));
    const strategy = TRACKING_STRATEGIES[program % TRACKING_STRATEGIES.length]!;
    const entriesBeforeCompile = [0, 1, 16][random.below(3)]!;
    const context = `program seed ${seed} under ${strategy}, blocks compiled after ${entriesBeforeCompile} entries (replay with HBFT_SEED=${baseSeed}, program ${program})`;
    const pair = createEnginePair({ memoryBytes: MEMORY_BYTES, cpu: { blockEntriesBeforeCompile: entriesBeforeCompile } }, (machine) =>
      loadProgram(machine, seed),
    );
    try {
      runLockstep(pair, {
        instructionsMax: INSTRUCTIONS_PER_PROGRAM,
        nextSlice: () => (random.chance(0.2) ? 1 + random.below(8) : 1 + random.below(20_000)),
        tracking: strategy,
        epochInstructions: 5_000 + random.below(30_000),
        compareRamEverySlices: 25,
        hashAtEnd: false,
        context,
      });
    } catch (error) {
      console.error(`cpu engine fuzz failed: ${context}`);
      throw error;
    }
    compiled += pair.blocks.cpu.blockStats!.blocksCompiled;
  }
  assert.ok(compiled > PROGRAMS, `the programs exercised compiled blocks (${compiled} compiled)`);
});
