/*
 * Unconditional jumps (Unprivileged manual, section 2.5.1): jal and jalr. Covers the link value
 * (pc + 4, checked against absolute addresses), rd = x0 (no link), links in registers other than
 * ra, forward and backward targets across more than 4 KiB, jalr adding a negative or positive
 * offset, jalr clearing bit 0 of the target, and jalr with rd == rs1 (the target comes from the
 * old value of rs1).
 */
#include "test_macros.h"

/* Loads the absolute address of `label` without pc-relative arithmetic. */
.macro LA_ABS reg, label
  lui \reg, %hi(\label)
  addi \reg, \reg, %lo(\label)
.endm

TEST_BEGIN

  /* jal links pc + 4 and goes to pc + offset. */
  li TESTNUM, 1
  li ra, 0
  jal ra, .Ljal_1_target
.Ljal_1_return:
  j fail
.Ljal_1_target:
  LA_ABS a4, .Ljal_1_return
  CHECK_EQ ra, a4

  /* Any register can take the link. */
  li TESTNUM, 2
  jal t0, .Ljal_2_target
.Ljal_2_return:
  j fail
.Ljal_2_target:
  LA_ABS a4, .Ljal_2_return
  CHECK_EQ t0, a4
  jal x31, .Ljal_2b_target
.Ljal_2b_return:
  j fail
.Ljal_2b_target:
  LA_ABS a4, .Ljal_2b_return
  CHECK_EQ x31, a4

  /* j (jal x0) links nothing. */
  li TESTNUM, 3
  li a1, 0x1234
  jal x0, .Ljal_3_target
  j fail
.Ljal_3_target:
  bnez x0, fail
  CHECK a1, 0x1234

  /* A backward jal, and jumps over more than 4 KiB in both directions (offsets with imm[11]
     and imm[12] set). */
  li TESTNUM, 4
  jal ra, .Lfar_ahead
.Lfar_ahead_return:
  j fail
.Lfar_behind:
  LA_ABS a4, .Lfar_back_return
  CHECK_EQ ra, a4
  j .Lfar_done
  .fill 0x1800 / 4, 4, 0x00000013
.Lfar_ahead:
  LA_ABS a4, .Lfar_ahead_return
  CHECK_EQ ra, a4
  li TESTNUM, 5
  jal ra, .Lfar_behind
.Lfar_back_return:
  j fail
.Lfar_done:

  /* jalr: target rs1 + offset, link pc + 4. */
  li TESTNUM, 10
  LA_ABS a1, .Ljalr_10_target
  jalr ra, 0(a1)
.Ljalr_10_return:
  j fail
.Ljalr_10_target:
  LA_ABS a4, .Ljalr_10_return
  CHECK_EQ ra, a4

  li TESTNUM, 11
  LA_ABS a1, .Ljalr_11_target + 16
  jalr t1, -16(a1)
.Ljalr_11_return:
  j fail
.Ljalr_11_target:
  LA_ABS a4, .Ljalr_11_return
  CHECK_EQ t1, a4

  li TESTNUM, 12
  LA_ABS a1, .Ljalr_12_target - 2044
  jalr t1, 2044(a1)
  j fail
.Ljalr_12_target:

  li TESTNUM, 13
  LA_ABS a1, .Ljalr_13_target + 2048
  jalr t1, -2048(a1)
  j fail
.Ljalr_13_target:

  /* The least significant bit of the sum is cleared; from an odd rs1, and from an odd offset. */
  li TESTNUM, 14
  LA_ABS a1, .Ljalr_14_target + 1
  jalr t1, 0(a1)
  j fail
.Ljalr_14_target:

  li TESTNUM, 15
  LA_ABS a1, .Ljalr_15_target
  jalr t1, 1(a1)
  j fail
.Ljalr_15_target:

  li TESTNUM, 16
  LA_ABS a1, .Ljalr_16_target + 4
  jalr t1, -3(a1)
  j fail
.Ljalr_16_target:

  /* rd == rs1: the target uses rs1 from before the link is written. */
  li TESTNUM, 17
  LA_ABS a1, .Ljalr_17_target
  jalr a1, 0(a1)
.Ljalr_17_return:
  j fail
.Ljalr_17_target:
  LA_ABS a4, .Ljalr_17_return
  CHECK_EQ a1, a4

  /* jalr x0 (ret and indirect jumps) links nothing and leaves rs1 alone. */
  li TESTNUM, 18
  LA_ABS a1, .Ljalr_18_target
  jalr x0, 0(a1)
  j fail
.Ljalr_18_target:
  bnez x0, fail
  LA_ABS a4, .Ljalr_18_target
  CHECK_EQ a1, a4

  /* The pseudo-instructions call (auipc + jalr), jalr rs and ret. */
  li TESTNUM, 19
  call .Lleaf
  CHECK a0, 0x5a
  li TESTNUM, 20
  la t2, .Lleaf
  jalr t2
  CHECK a0, 0x5a
  j .Lafter_leaf
.Lleaf:
  li a0, 0x5a
  ret
.Lafter_leaf:

  /* A chain of calls and returns through the stack. */
  li TESTNUM, 21
  li a0, 5
  call .Lfactorial
  CHECK a0, 120
  j .Lafter_factorial
.Lfactorial:
  li t0, 1
  bgt a0, t0, 1f
  li a0, 1
  ret
1:
  addi sp, sp, -16
  sw ra, 12(sp)
  sw a0, 8(sp)
  addi a0, a0, -1
  call .Lfactorial
  lw t0, 8(sp)
  mul a0, a0, t0
  lw ra, 12(sp)
  addi sp, sp, 16
  ret
.Lafter_factorial:

TEST_END
