/*
 * The C extension (RISC-V Unprivileged ISA v20191213 ch. 16, "C" Standard Extension for
 * Compressed Instructions, v2.0): every RV32C instruction is an alias of one RV32I instruction
 * (§16.1), so both engines expand a 16-bit parcel into its 32-bit equivalent and execute that,
 * with the instruction length (2) used wherever the pc advances or a link register is written.
 *
 * RVC_EXPANSION holds the expansion of every one of the 65 536 parcels, built once at load, so
 * the fetch path costs one typed-array read and allocates nothing. A parcel whose low two bits are
 * 11 is the first half of a 32-bit instruction (§1.5) and has no entry (0). The parcels the manual
 * lists as reserved, the RV64/RV128-only encodings and the F/D loads and stores (this hart has no
 * floating point) expand to 0, which both engines treat as an illegal instruction: 0 is not a
 * valid 32-bit encoding either (its opcode is not 11-terminated).
 */

const OP_IMM = 0x13;
const OP = 0x33;
const LOAD = 0x03;
const STORE = 0x23;
const BRANCH = 0x63;
const JAL = 0x6f;
const JALR = 0x67;
const LUI = 0x37;
const SYSTEM = 0x73;
const EBREAK = 0x0010_0000 | SYSTEM;
/** x2, the stack pointer that the *SP forms address (§16.3). */
const SP = 2;
const RA = 1;

function iType(imm: number, rs1: number, f3: number, rd: number, opcode: number): number {
  return ((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode | 0;
}

function sType(imm: number, rs2: number, rs1: number, f3: number): number {
  return (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | STORE | 0;
}

function rType(f7: number, rs2: number, rs1: number, f3: number, rd: number): number {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | OP | 0;
}

function bType(offset: number, rs2: number, rs1: number, f3: number): number {
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

function jType(offset: number, rd: number): number {
  return (
    (((offset >> 20) & 1) << 31) |
    (((offset >> 1) & 0x3ff) << 21) |
    (((offset >> 11) & 1) << 20) |
    (((offset >> 12) & 0xff) << 12) |
    (rd << 7) |
    JAL
  );
}

/** Bit `from` of `parcel` moved to bit `to`. */
function bit(parcel: number, from: number, to: number): number {
  return ((parcel >> from) & 1) << to;
}

/** Sign-extends the low `bits` bits. */
function signExtend(value: number, bits: number): number {
  return (value << (32 - bits)) >> (32 - bits);
}

/** The 6-bit immediate of CI-format instructions: imm[5] = bit 12, imm[4:0] = bits 6:2 (signed). */
function ciImmediate(parcel: number): number {
  return signExtend(bit(parcel, 12, 5) | ((parcel >> 2) & 31), 6);
}

/** The CJ-format jump offset of C.J and C.JAL: imm[11|4|9:8|10|6|7|3:1|5] in bits 12:2. */
function cjOffset(p: number): number {
  return signExtend(
    bit(p, 12, 11) |
      bit(p, 11, 4) |
      bit(p, 10, 9) |
      bit(p, 9, 8) |
      bit(p, 8, 10) |
      bit(p, 7, 6) |
      bit(p, 6, 7) |
      bit(p, 5, 3) |
      bit(p, 4, 2) |
      bit(p, 3, 1) |
      bit(p, 2, 5),
    12,
  );
}

/** The CB-format branch offset of C.BEQZ and C.BNEZ: offset[8|4:3] in bits 12:10, [7:6|2:1|5] in 6:2. */
function cbOffset(p: number): number {
  return signExtend(
    bit(p, 12, 8) | bit(p, 11, 4) | bit(p, 10, 3) | bit(p, 6, 7) | bit(p, 5, 6) | bit(p, 4, 2) | bit(p, 3, 1) | bit(p, 2, 5),
    9,
  );
}

/**
 * The 32-bit instruction a compressed parcel stands for (tables 16.5–16.7 with §16.3–16.6), or 0
 * when the parcel is reserved, illegal or belongs to an extension this hart lacks.
 */
export function expandCompressed(parcel: number): number {
  const p = parcel & 0xffff;
  const f3 = p >> 13;
  const rd = (p >> 7) & 31;
  const rs2 = (p >> 2) & 31;
  /** The 3-bit register fields of CIW, CL, CS, CA and CB formats name x8–x15 (§16.2). */
  const rdPrime = 8 + ((p >> 2) & 7);
  const rs1Prime = 8 + ((p >> 7) & 7);
  switch (p & 3) {
    case 0: {
      // Quadrant 0 (table 16.5).
      // CL/CS word offset: uimm[5:3] in bits 12:10, uimm[2] in bit 6, uimm[6] in bit 5.
      const wordOffset = (((p >> 10) & 7) << 3) | bit(p, 6, 2) | bit(p, 5, 6);
      switch (f3) {
        case 0: {
          // C.ADDI4SPN: nzuimm[5:4|9:6|2|3] in bits 12:5; zero is reserved (and 0x0000 illegal).
          const imm = (((p >> 11) & 3) << 4) | (((p >> 7) & 15) << 6) | bit(p, 6, 2) | bit(p, 5, 3);
          return imm === 0 ? 0 : iType(imm, SP, 0, rdPrime, OP_IMM);
        }
        case 2: // C.LW
          return iType(wordOffset, rs1Prime, 2, rdPrime, LOAD);
        case 6: // C.SW
          return sType(wordOffset, rdPrime, rs1Prime, 2);
        default:
          // C.FLD, C.FLW, C.FSD, C.FSW (no F or D here) and the reserved funct3 100.
          return 0;
      }
    }
    case 1: {
      // Quadrant 1 (table 16.6).
      switch (f3) {
        case 0: // C.ADDI (C.NOP when rd = x0; the other rd = x0 or imm = 0 forms are HINTs)
          return iType(ciImmediate(p), rd, 0, rd, OP_IMM);
        case 1: // C.JAL (RV32 only)
          return jType(cjOffset(p), RA);
        case 2: // C.LI (rd = x0 is a HINT)
          return iType(ciImmediate(p), 0, 0, rd, OP_IMM);
        case 3: {
          if (rd === SP) {
            // C.ADDI16SP: nzimm[9] in bit 12, nzimm[4|6|8:7|5] in bits 6:2; zero is reserved.
            const imm = signExtend(bit(p, 12, 9) | bit(p, 6, 4) | bit(p, 5, 6) | bit(p, 4, 8) | bit(p, 3, 7) | bit(p, 2, 5), 10);
            return imm === 0 ? 0 : iType(imm, SP, 0, SP, OP_IMM);
          }
          // C.LUI: nzimm[17] in bit 12, nzimm[16:12] in bits 6:2; zero is reserved (rd = x0 a HINT).
          const imm = ciImmediate(p);
          return imm === 0 ? 0 : ((imm & 0xfffff) << 12) | (rd << 7) | LUI | 0;
        }
        case 4: {
          const shamt = (p >> 2) & 31;
          switch ((p >> 10) & 3) {
            case 0: // C.SRLI: shamt[5] = 1 is reserved (NSE) on RV32
              return (p & 0x1000) !== 0 ? 0 : iType(shamt, rs1Prime, 5, rs1Prime, OP_IMM);
            case 1: // C.SRAI
              return (p & 0x1000) !== 0 ? 0 : iType(0x400 | shamt, rs1Prime, 5, rs1Prime, OP_IMM);
            case 2: // C.ANDI
              return iType(ciImmediate(p), rs1Prime, 7, rs1Prime, OP_IMM);
            default: {
              // C.SUB, C.XOR, C.OR, C.AND; with bit 12 set, RV64's C.SUBW/C.ADDW or reserved.
              if ((p & 0x1000) !== 0) return 0;
              const rs2Prime = rdPrime;
              switch ((p >> 5) & 3) {
                case 0:
                  return rType(0x20, rs2Prime, rs1Prime, 0, rs1Prime);
                case 1:
                  return rType(0, rs2Prime, rs1Prime, 4, rs1Prime);
                case 2:
                  return rType(0, rs2Prime, rs1Prime, 6, rs1Prime);
                default:
                  return rType(0, rs2Prime, rs1Prime, 7, rs1Prime);
              }
            }
          }
        }
        case 5: // C.J
          return jType(cjOffset(p), 0);
        case 6: // C.BEQZ
          return bType(cbOffset(p), 0, rs1Prime, 0);
        default: // C.BNEZ
          return bType(cbOffset(p), 0, rs1Prime, 1);
      }
    }
    case 2: {
      // Quadrant 2 (table 16.7).
      switch (f3) {
        case 0: // C.SLLI: shamt[5] = 1 is reserved (NSE) on RV32; rd = x0 or shamt = 0 are HINTs
          return (p & 0x1000) !== 0 ? 0 : iType(rs2, rd, 1, rd, OP_IMM);
        case 2: {
          // C.LWSP: uimm[5] in bit 12, uimm[4:2] in bits 6:4, uimm[7:6] in bits 3:2; rd = x0 reserved.
          const imm = bit(p, 12, 5) | (((p >> 4) & 7) << 2) | (((p >> 2) & 3) << 6);
          return rd === 0 ? 0 : iType(imm, SP, 2, rd, LOAD);
        }
        case 4:
          if ((p & 0x1000) === 0) {
            if (rs2 === 0) return rd === 0 ? 0 : iType(0, rd, 0, 0, JALR); // C.JR (rs1 = x0 reserved)
            return rType(0, rs2, 0, 0, rd); // C.MV (rd = x0 is a HINT)
          }
          if (rs2 === 0) return rd === 0 ? EBREAK : iType(0, rd, 0, RA, JALR); // C.EBREAK, C.JALR
          return rType(0, rs2, rd, 0, rd); // C.ADD (rd = x0 is a HINT)
        case 6: {
          // C.SWSP: uimm[5:2] in bits 12:9, uimm[7:6] in bits 8:7.
          const imm = (((p >> 9) & 15) << 2) | (((p >> 7) & 3) << 6);
          return sType(imm, rs2, SP, 2);
        }
        default:
          // C.FLDSP, C.FLWSP, C.FSDSP, C.FSWSP: no F or D here.
          return 0;
      }
    }
    default:
      // Low bits 11: not a compressed parcel.
      return 0;
  }
}

/** The expansion of every 16-bit parcel (see above); 0 where there is none. */
export const RVC_EXPANSION: Int32Array = (() => {
  const table = new Int32Array(1 << 16);
  for (let parcel = 0; parcel < table.length; parcel++) table[parcel] = expandCompressed(parcel);
  return table;
})();
