// Encodes RV32IM instructions (Unprivileged ISA ch. 2, 7, 9) for tests that write programs into RAM.

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
export const MISC_MEM = 0x0f;

export function rType(f7: number, rs2: number, rs1: number, f3: number, rd: number, opcode = OP): number {
  return ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode) | 0;
}

export function iType(imm: number, rs1: number, f3: number, rd: number, opcode = OP_IMM): number {
  return (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode) | 0;
}

export function sType(imm: number, rs2: number, rs1: number, f3: number): number {
  return ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | STORE) | 0;
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
  return (((upper20 & 0xfffff) << 12) | (rd << 7) | opcode) | 0;
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
