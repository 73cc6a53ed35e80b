// Encodes RV32IMAC instructions (Unprivileged ISA ch. 2, 7, 8, 9, 16) for tests that write programs into RAM.

export const OP_IMM = 0x13;
export const OP = 0x33;
export const LOAD = 0x03;
export const STORE = 0x23;
export const BRANCH = 0x63;
export const JAL = 0x6f;
export const JALR = 0x67;
export const LUI = 0x37;
export const AUIPC = 0x17;
export const SYSTEM = 0x73;

export function rType(f7: number, rs2: number, rs1: number, f3: number, rd: number, opcode = OP): number {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode | 0;
}

export function iType(imm: number, rs1: number, f3: number, rd: number, opcode = OP_IMM): number {
  return ((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode | 0;
}

export function sType(imm: number, rs2: number, rs1: number, f3: number): number {
  return (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | STORE | 0;
}

/** A branch to pc + offset (offset even, ±4 KiB). */
export function bType(offset: number, rs2: number, rs1: number, f3: number): number {
  return (
    (((offset >> 12) & 1) << 31) |
    (((offset >> 5) & 0x3f) << 25) |
    (rs2 << 20) |
    (rs1 << 15) |
    (f3 << 12) |
    (((offset >> 1) & 0xf) << 8) |
    (((offset >> 11) & 1) << 7) |
    BRANCH
  );
}

export function uType(upper20: number, rd: number, opcode = LUI): number {
  return ((upper20 & 0xfffff) << 12) | (rd << 7) | opcode | 0;
}

/** JAL to pc + offset (offset even, ±1 MiB). */
export function jal(offset: number, rd: number): number {
  return (
    (((offset >> 20) & 1) << 31) |
    (((offset >> 1) & 0x3ff) << 21) |
    (((offset >> 11) & 1) << 20) |
    (((offset >> 12) & 0xff) << 12) |
    (rd << 7) |
    JAL
  );
}

export const addi = (rd: number, rs1: number, imm: number): number => iType(imm, rs1, 0, rd);
export const lw = (rd: number, rs1: number, offset: number): number => iType(offset, rs1, 2, rd, LOAD);
export const sw = (rs2: number, rs1: number, offset: number): number => sType(offset, rs2, rs1, 2);
export const add = (rd: number, rs1: number, rs2: number): number => rType(0, rs2, rs1, 0, rd);
export const beq = (rs1: number, rs2: number, offset: number): number => bType(offset, rs2, rs1, 0);
export const bne = (rs1: number, rs2: number, offset: number): number => bType(offset, rs2, rs1, 1);
export const blt = (rs1: number, rs2: number, offset: number): number => bType(offset, rs2, rs1, 4);
export const xor = (rd: number, rs1: number, rs2: number): number => rType(0, rs2, rs1, 4, rd);
export const csrrw = (rd: number, csr: number, rs1: number): number => iType(csr, rs1, 1, rd, SYSTEM);
export const csrrs = (rd: number, csr: number, rs1: number): number => iType(csr, rs1, 2, rd, SYSTEM);
export const MRET = 0x3020_0073;
export const ECALL = 0x0000_0073;
export const EBREAK = 0x0010_0073;
export const WFI = 0x1050_0073;
export const FENCE = 0x0ff0_000f;
export const FENCE_I = 0x0000_100f;

/** `li rd, value` as lui + addi (two words). */
export function li(rd: number, value: number): number[] {
  const low = (value << 20) >> 20;
  return [uType(((value - low) >>> 12) & 0xfffff, rd), addi(rd, rd, low)];
}

/* The A extension (Unprivileged ISA ch. 8): funct5 values, and an AMO word instruction. */
export const AMO = 0x2f;
export const AMO_FUNCTIONS = {
  add: 0x00,
  swap: 0x01,
  lr: 0x02,
  sc: 0x03,
  xor: 0x04,
  or: 0x08,
  and: 0x0c,
  min: 0x10,
  max: 0x14,
  minu: 0x18,
  maxu: 0x1c,
} as const;
export function amo(f5: number, rd: number, rs1: number, rs2: number, aqrl = 0): number {
  return rType((f5 << 2) | (aqrl & 3), rs2, rs1, 2, rd, AMO);
}

/*
 * The C extension (Unprivileged ISA ch. 16): 16-bit parcels. Registers written r' are x8..x15
 * (pass the full number); immediates are checked by the caller's choice of values.
 */
const bitAt = (value: number, from: number, to: number): number => ((value >> from) & 1) << to;
const prime = (r: number): number => {
  if (r < 8 || r > 15) throw new Error(`x${r} is not one of x8..x15`);
  return r - 8;
};
export const C_NOP = 0x0001;
export const C_EBREAK = 0x9002;
export const cAddi = (rd: number, imm: number): number => 0x0001 | bitAt(imm, 5, 12) | (rd << 7) | ((imm & 31) << 2);
export const cLi = (rd: number, imm: number): number => 0x4001 | bitAt(imm, 5, 12) | (rd << 7) | ((imm & 31) << 2);
/** c.lui rd, nzimm: `upper6` is nzimm[17:12] (signed 6 bits, not 0). */
export const cLui = (rd: number, upper6: number): number => 0x6001 | bitAt(upper6, 5, 12) | (rd << 7) | ((upper6 & 31) << 2);
export const cAddi16sp = (imm: number): number =>
  0x6101 | bitAt(imm, 9, 12) | bitAt(imm, 4, 6) | bitAt(imm, 6, 5) | bitAt(imm, 8, 4) | bitAt(imm, 7, 3) | bitAt(imm, 5, 2);
export const cAddi4spn = (rd: number, imm: number): number =>
  (((imm >> 4) & 3) << 11) | (((imm >> 6) & 15) << 7) | bitAt(imm, 2, 6) | bitAt(imm, 3, 5) | (prime(rd) << 2);
export const cSrli = (rd: number, shamt: number): number => 0x8001 | (prime(rd) << 7) | ((shamt & 31) << 2);
export const cSrai = (rd: number, shamt: number): number => 0x8401 | (prime(rd) << 7) | ((shamt & 31) << 2);
export const cAndi = (rd: number, imm: number): number => 0x8801 | bitAt(imm, 5, 12) | (prime(rd) << 7) | ((imm & 31) << 2);
/** c.sub (0), c.xor (1), c.or (2), c.and (3). */
export const cArith = (op: number, rd: number, rs2: number): number => 0x8c01 | ((op & 3) << 5) | (prime(rd) << 7) | (prime(rs2) << 2);
export const cSlli = (rd: number, shamt: number): number => 0x0002 | (rd << 7) | ((shamt & 31) << 2);
export const cMv = (rd: number, rs2: number): number => 0x8002 | (rd << 7) | (rs2 << 2);
export const cAdd = (rd: number, rs2: number): number => 0x9002 | (rd << 7) | (rs2 << 2);
export const cJr = (rs1: number): number => 0x8002 | (rs1 << 7);
export const cJalr = (rs1: number): number => 0x9002 | (rs1 << 7);
const clOffset = (uimm: number): number => (((uimm >> 3) & 7) << 10) | bitAt(uimm, 2, 6) | bitAt(uimm, 6, 5);
export const cLw = (rd: number, rs1: number, uimm: number): number => 0x4000 | clOffset(uimm) | (prime(rs1) << 7) | (prime(rd) << 2);
export const cSw = (rs2: number, rs1: number, uimm: number): number => 0xc000 | clOffset(uimm) | (prime(rs1) << 7) | (prime(rs2) << 2);
export const cLwsp = (rd: number, uimm: number): number =>
  0x4002 | bitAt(uimm, 5, 12) | (rd << 7) | (((uimm >> 2) & 7) << 4) | (((uimm >> 6) & 3) << 2);
export const cSwsp = (rs2: number, uimm: number): number => 0xc002 | (((uimm >> 2) & 15) << 9) | (((uimm >> 6) & 3) << 7) | (rs2 << 2);
const cbOffset = (off: number): number =>
  bitAt(off, 8, 12) |
  bitAt(off, 4, 11) |
  bitAt(off, 3, 10) |
  bitAt(off, 7, 6) |
  bitAt(off, 6, 5) |
  bitAt(off, 2, 4) |
  bitAt(off, 1, 3) |
  bitAt(off, 5, 2);
export const cBeqz = (rs1: number, offset: number): number => 0xc001 | cbOffset(offset) | (prime(rs1) << 7);
export const cBnez = (rs1: number, offset: number): number => 0xe001 | cbOffset(offset) | (prime(rs1) << 7);
const cjOffset = (off: number): number =>
  bitAt(off, 11, 12) |
  bitAt(off, 4, 11) |
  bitAt(off, 9, 10) |
  bitAt(off, 8, 9) |
  bitAt(off, 10, 8) |
  bitAt(off, 6, 7) |
  bitAt(off, 7, 6) |
  bitAt(off, 3, 5) |
  bitAt(off, 2, 4) |
  bitAt(off, 1, 3) |
  bitAt(off, 5, 2);
export const cJ = (offset: number): number => 0xa001 | cjOffset(offset);
export const cJal = (offset: number): number => 0x2001 | cjOffset(offset);
/** Two parcels in one word: `first` at the lower address. */
export const pack = (first: number, second: number): number => (first & 0xffff) | (second << 16) | 0;
