// Proves that every RV32C form expands to the 32-bit instruction the manual's tables give (ch. 16), reserved parcels to nothing, and that the test assembler's compressed encoders (used by the engine fuzz) agree with the expander.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RVC_EXPANSION, expandCompressed } from '@hbft/common/guest/rvc.ts';
import {
  EBREAK,
  JALR,
  LOAD,
  addi,
  add,
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
  cJalr,
  cJr,
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
  C_EBREAK,
  C_NOP,
  iType,
  jal,
  lw,
  rType,
  sw,
  uType,
} from './rv32Assembler.ts';

test('each compressed form expands to its RV32I equivalent', () => {
  const cases: [string, number, number][] = [
    ['c.nop', C_NOP, addi(0, 0, 0)],
    ['c.addi', cAddi(5, -3), addi(5, 5, -3)],
    ['c.li', cLi(7, 31), addi(7, 0, 31)],
    ['c.lui (negative)', cLui(9, -1), uType(0xfffff, 9)],
    ['c.lui', cLui(9, 5), uType(5, 9)],
    ['c.addi16sp', cAddi16sp(-512), addi(2, 2, -512)],
    ['c.addi16sp', cAddi16sp(496), addi(2, 2, 496)],
    ['c.addi4spn', cAddi4spn(10, 1020), addi(10, 2, 1020)],
    ['c.srli', cSrli(8, 31), iType(31, 8, 5, 8)],
    ['c.srai', cSrai(15, 7), iType(0x400 | 7, 15, 5, 15)],
    ['c.andi', cAndi(12, -6), iType(-6, 12, 7, 12)],
    ['c.sub', cArith(0, 8, 9), rType(0x20, 9, 8, 0, 8)],
    ['c.xor', cArith(1, 10, 11), rType(0, 11, 10, 4, 10)],
    ['c.or', cArith(2, 12, 13), rType(0, 13, 12, 6, 12)],
    ['c.and', cArith(3, 14, 15), rType(0, 15, 14, 7, 14)],
    ['c.slli', cSlli(20, 13), iType(13, 20, 1, 20)],
    ['c.mv', cMv(3, 30), add(3, 0, 30)],
    ['c.add', cAdd(3, 30), add(3, 3, 30)],
    ['c.lw', cLw(9, 10, 124), lw(9, 10, 124)],
    ['c.sw', cSw(9, 10, 64), sw(9, 10, 64)],
    ['c.lwsp', cLwsp(31, 252), iType(252, 2, 2, 31, LOAD)],
    ['c.swsp', cSwsp(31, 252), sw(31, 2, 252)],
    ['c.beqz', cBeqz(8, -256), bType(-256, 0, 8, 0)],
    ['c.bnez', cBnez(15, 254), bType(254, 0, 15, 1)],
    ['c.j', cJ(-2048), jal(-2048, 0)],
    ['c.jal', cJal(2046), jal(2046, 1)],
    ['c.jr', cJr(5), iType(0, 5, 0, 0, JALR)],
    ['c.jalr', cJalr(5), iType(0, 5, 0, 1, JALR)],
    ['c.ebreak', C_EBREAK, EBREAK],
  ];
  for (const [name, parcel, want] of cases) {
    assert.equal(expandCompressed(parcel) >>> 0, want >>> 0, `${name} (0x${parcel.toString(16)})`);
    assert.equal(RVC_EXPANSION[parcel], expandCompressed(parcel), `${name}: the table holds the same`);
  }
});

test('reserved parcels and those of absent extensions expand to 0 (illegal)', () => {
  const reserved: [string, number][] = [
    ['all zeros', 0x0000],
    ['c.addi4spn with imm 0', 0x0004],
    ['c.addi16sp with imm 0', 0x6101],
    ['c.lui with imm 0', 0x6501],
    ['c.slli shamt[5] (RV32 NSE)', 0x1506],
    ['c.srli shamt[5]', 0x9001],
    ['c.jr x0', 0x8002],
    ['c.lwsp x0', 0x4002],
    ['c.subw (RV64)', 0x9d01],
    ['c.fld', 0x2000],
    ['c.flw', 0x6000],
    ['c.fsdsp', 0xa002],
    ['quadrant 0 funct3 100', 0x8000],
  ];
  for (const [name, parcel] of reserved) assert.equal(expandCompressed(parcel), 0, name);
  // Every expansion is a 32-bit instruction (low bits 11), so 0 can mark the illegal ones.
  for (let parcel = 0; parcel < 1 << 16; parcel++) {
    const inst = RVC_EXPANSION[parcel]!;
    if ((parcel & 3) === 3) assert.equal(inst, 0);
    else if (inst !== 0) assert.equal(inst & 3, 3);
  }
});
