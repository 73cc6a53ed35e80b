/*
 * The C extension, RV32C (Unprivileged manual ch. 16): every compressed instruction does what its
 * 32-bit expansion does (16.1), including the x8-x15 register fields of the CIW, CL, CS, CA and
 * CB formats (16.2), the sp-relative loads and stores (16.3), the scaled immediates, and links of
 * pc + 2 for c.jal and c.jalr (16.4). The reserved encodings are illegal instructions whose mtval
 * is the 16-bit parcel.
 */
#include "test_macros.h"
.option rvc

  .data
  .balign 16
rvc_data:
  .word 0x11111111, 0x22222222, 0x33333333, 0x44444444
  .fill 60, 4, 0
rvc_data_end:

TEST_BEGIN

  /* c.li, c.addi (negative too), c.lui, c.mv, c.add */
  li TESTNUM, 1
  c.li a0, -32
  CHECK a0, -32
  c.li a0, 31
  c.addi a0, -1
  CHECK a0, 30
  c.lui a1, 0xfffff     /* nzimm[17:12] = 0x3f: sign-extended to 0xfffff000 */
  CHECK a1, 0xfffff000
  c.lui a1, 1
  CHECK a1, 0x1000
  c.mv a2, a1
  CHECK a2, 0x1000
  c.add a2, a0
  CHECK a2, 0x101e

  /* c.addi4spn and c.addi16sp (scaled, signed), against sp */
  li TESTNUM, 2
  mv s1, sp
  c.addi4spn a3, sp, 1020
  sub a3, a3, s1
  CHECK a3, 1020
  c.addi16sp sp, -512
  sub a4, sp, s1
  CHECK a4, -512
  c.addi16sp sp, 496
  c.addi16sp sp, 16
  CHECK_EQ sp, s1

  /* c.slli, c.srli, c.srai, c.andi */
  li TESTNUM, 3
  li a0, 0x80000001
  c.slli a0, 31
  CHECK a0, 0x80000000
  c.srai a0, 4
  CHECK a0, 0xf8000000
  c.srli a0, 28
  CHECK a0, 0xf
  c.andi a0, -6
  CHECK a0, 0xa
  c.andi a0, 3
  CHECK a0, 2

  /* c.sub, c.xor, c.or, c.and on x8-x15 */
  li TESTNUM, 4
  li s0, 0x0ff0
  li s1, 0x00ff
  mv a5, s0
  c.sub a5, s1
  CHECK a5, 0x0ef1
  mv a5, s0
  c.xor a5, s1
  CHECK a5, 0x0f0f
  mv a5, s0
  c.or a5, s1
  CHECK a5, 0x0fff
  mv a5, s0
  c.and a5, s1
  CHECK a5, 0x00f0

  /* c.lw and c.sw with the scaled offset, c.lwsp and c.swsp */
  li TESTNUM, 5
  la a4, rvc_data
  c.lw a5, 12(a4)
  CHECK a5, 0x44444444
  c.lw a5, 0(a4)
  CHECK a5, 0x11111111
  c.sw a5, 124(a4)
  lw a3, 124(a4)
  CHECK a3, 0x11111111
  mv s1, sp
  mv sp, a4
  c.lwsp a2, 8(sp)
  c.swsp a2, 252(sp)
  lw a3, 252(a4)
  mv sp, s1
  CHECK a2, 0x33333333
  CHECK a3, 0x33333333

  /* c.j, c.beqz, c.bnez, taken and not taken */
  li TESTNUM, 6
  li a0, 0
  c.j 1f
  j fail
1:
  c.bnez a0, fail_near
  c.beqz a0, 2f
  j fail
2:
  li a0, 5
  c.beqz a0, fail_near
  c.bnez a0, 3f
  j fail
3:

  /* c.jal links pc + 2; c.jr returns through it; c.jalr links pc + 2 as well */
  li TESTNUM, 7
  li a3, 0
.Ljal_7:
  c.jal .Lsub_7
  addi a3, a3, 100      /* after the return */
  la t0, .Ljal_7 + 2
  CHECK_EQ s1, t0
  CHECK a3, 101
  la a1, .Lsub_8
.Ljalr_8:
  c.jalr a1
  la t0, .Ljalr_8 + 2
  CHECK_EQ s1, t0
  CHECK a3, 102
  /* c.jalr with rs1 = ra: the target is read before ra is written */
  li TESTNUM, 9
  la ra, .Lsub_9
  c.jalr ra
  CHECK a3, 103
  j .Ldone_subs
.Lsub_7:
  mv s1, ra
  c.addi a3, 1
  c.jr ra
.Lsub_8:
  mv s1, ra
  c.addi a3, 1
  c.jr ra
.Lsub_9:
  c.addi a3, 1
  c.jr ra
fail_near:
  j fail
.Ldone_subs:

  /* c.ebreak traps with mepc at the parcel */
  TEST_TRAP 10, CAUSE_BREAKPOINT, "c.ebreak"

  /* Reserved and foreign encodings are illegal; mtval holds the parcel. */
  li a4, 0
  TEST_TRAP 11, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x0000", tval=a4   /* all zeros */
  li a4, 0x0004
  TEST_TRAP 12, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x0004", tval=a4   /* c.addi4spn, imm 0 */
  li a4, 0x6101
  TEST_TRAP 13, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x6101", tval=a4   /* c.addi16sp, imm 0 */
  li a4, 0x6501
  TEST_TRAP 14, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x6501", tval=a4   /* c.lui a0, 0 */
  li a4, 0x1506
  TEST_TRAP 15, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x1506", tval=a4   /* c.slli a0, 33: shamt[5] */
  li a4, 0x8002
  TEST_TRAP 16, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x8002", tval=a4   /* c.jr x0 */
  li a4, 0x4002
  TEST_TRAP 17, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x4002", tval=a4   /* c.lwsp x0 */
  li a4, 0x9d01
  TEST_TRAP 18, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x9d01", tval=a4   /* c.subw: RV64 only */
  li a4, 0x2000
  TEST_TRAP 19, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x2000", tval=a4   /* c.fld: no D */
  li a4, 0x8000
  TEST_TRAP 20, CAUSE_ILLEGAL_INSTRUCTION, ".half 0x8000", tval=a4   /* reserved quadrant-0 funct3 */

  /* HINTs are no-ops: c.li x0, c.addi x0 (c.nop with an immediate), c.mv x0 */
  li TESTNUM, 21
  .half 0x4015          /* c.li x0, 5 */
  .half 0x0015          /* c.addi x0, 5 */
  .half 0x802a          /* c.mv x0, a0 */
  CHECK zero, 0

TEST_END
