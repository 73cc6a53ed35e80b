/*
 * Conditional branches (Unprivileged manual, section 2.5): beq, bne, blt, bge, bltu, bgeu, each
 * taken and not taken, forward and backward, signed against unsigned at the sign boundary, with
 * x0 and with both sources the same register, and at the extremes of the 13-bit offset
 * (-4096 and +4092).
 */
#include "test_macros.h"

TEST_BEGIN

  TEST_BR 1, beq, 0x00000000, 0x00000000, 1
  TEST_BR 2, beq, 0x00000001, 0x00000001, 1
  TEST_BR 3, beq, 0xffffffff, 0xffffffff, 1
  TEST_BR 4, beq, 0x00000000, 0x00000001, 0
  TEST_BR 5, beq, 0x00000001, 0x00000000, 0
  TEST_BR 6, beq, 0xffffffff, 0x00000001, 0
  TEST_BR 7, beq, 0x80000000, 0x00000000, 0
  TEST_BR 8, beq, 0x12345678, 0x12345679, 0

  TEST_BR 10, bne, 0x00000000, 0x00000001, 1
  TEST_BR 11, bne, 0x00000001, 0x00000000, 1
  TEST_BR 12, bne, 0xffffffff, 0x00000001, 1
  TEST_BR 13, bne, 0x80000000, 0x00000000, 1
  TEST_BR 14, bne, 0x00000000, 0x00000000, 0
  TEST_BR 15, bne, 0x00000001, 0x00000001, 0
  TEST_BR 16, bne, 0xffffffff, 0xffffffff, 0

  TEST_BR 20, blt, 0x00000000, 0x00000001, 1
  TEST_BR 21, blt, 0xffffffff, 0x00000001, 1
  TEST_BR 22, blt, 0xfffffffe, 0xffffffff, 1
  TEST_BR 23, blt, 0x80000000, 0x7fffffff, 1
  TEST_BR 24, blt, 0x80000000, 0x80000001, 1
  TEST_BR 25, blt, 0x00000001, 0x00000000, 0
  TEST_BR 26, blt, 0x00000001, 0xffffffff, 0
  TEST_BR 27, blt, 0xffffffff, 0xfffffffe, 0
  TEST_BR 28, blt, 0x7fffffff, 0x80000000, 0
  TEST_BR 29, blt, 0x00000005, 0x00000005, 0
  TEST_BR 30, blt, 0x80000000, 0x80000000, 0

  TEST_BR 40, bge, 0x00000000, 0x00000000, 1
  TEST_BR 41, bge, 0x00000001, 0x00000001, 1
  TEST_BR 42, bge, 0xffffffff, 0xffffffff, 1
  TEST_BR 43, bge, 0x00000001, 0x00000000, 1
  TEST_BR 44, bge, 0x00000001, 0xffffffff, 1
  TEST_BR 45, bge, 0x7fffffff, 0x80000000, 1
  TEST_BR 46, bge, 0x00000000, 0x00000001, 0
  TEST_BR 47, bge, 0xffffffff, 0x00000001, 0
  TEST_BR 48, bge, 0x80000000, 0x7fffffff, 0
  TEST_BR 49, bge, 0xfffffffe, 0xffffffff, 0

  TEST_BR 60, bltu, 0x00000000, 0x00000001, 1
  TEST_BR 61, bltu, 0xfffffffe, 0xffffffff, 1
  TEST_BR 62, bltu, 0x00000000, 0xffffffff, 1
  TEST_BR 63, bltu, 0x7fffffff, 0x80000000, 1
  TEST_BR 64, bltu, 0x00000001, 0x00000000, 0
  TEST_BR 65, bltu, 0xffffffff, 0xfffffffe, 0
  TEST_BR 66, bltu, 0xffffffff, 0x00000000, 0
  TEST_BR 67, bltu, 0x80000000, 0x7fffffff, 0
  TEST_BR 68, bltu, 0x80000000, 0x80000000, 0

  TEST_BR 80, bgeu, 0x00000000, 0x00000000, 1
  TEST_BR 81, bgeu, 0xffffffff, 0xffffffff, 1
  TEST_BR 82, bgeu, 0x00000001, 0x00000000, 1
  TEST_BR 83, bgeu, 0xffffffff, 0xfffffffe, 1
  TEST_BR 84, bgeu, 0xffffffff, 0x00000000, 1
  TEST_BR 85, bgeu, 0x80000000, 0x7fffffff, 1
  TEST_BR 86, bgeu, 0x00000000, 0x00000001, 0
  TEST_BR 87, bgeu, 0xfffffffe, 0xffffffff, 0
  TEST_BR 88, bgeu, 0x7fffffff, 0x80000000, 0

  /* x0 as an operand, and both operands the same register. */
  li TESTNUM, 100
  li a1, -1
  beq x0, x0, 1f
  j fail
1:
  bne x0, x0, fail
  blt x0, x0, fail
  bltu x0, x0, fail
  bge a1, x0, fail
  bltu a1, x0, fail
  blt x0, a1, fail
  bgeu x0, a1, fail
  bne a1, a1, fail
  blt a1, a1, fail
  bltu a1, a1, fail
  bge a1, a1, 2f
  j fail
2:
  bgeu a1, a1, 3f
  j fail
3:

  /* A taken branch skips exactly the instructions up to its target. */
  li TESTNUM, 101
  li a3, 0
  beq x0, x0, 1f
  addi a3, a3, 1
  addi a3, a3, 2
1:
  addi a3, a3, 4
  CHECK a3, 4

  /* A loop counted by a backward branch runs the expected number of times. */
  li TESTNUM, 102
  li a1, 10
  li a3, 0
1:
  addi a3, a3, 3
  addi a1, a1, -1
  bnez a1, 1b
  CHECK a3, 30

  /* The extremes of the offset: -4096 and +4092 (imm[12] is the sign). */
  li TESTNUM, 103
  j .Lfar_back_branch
.Lfar_back_target:
  j .Lfar_back_done
  .fill (4096 - 4) / 4, 4, 0x00000013
.Lfar_back_branch:
  beq x0, x0, .Lfar_back_target
  j fail
.Lfar_back_done:

  li TESTNUM, 104
  beq x0, x0, .Lfar_fwd_target
  j fail
  .fill (4092 - 8) / 4, 4, 0x00000013
.Lfar_fwd_target:
  li TESTNUM, 105
  /* The same distances not taken fall through. */
  j .Lfar_back_branch_nt
.Lfar_back_target_nt:
  j fail
  .fill (4096 - 4) / 4, 4, 0x00000013
.Lfar_back_branch_nt:
  bne x0, x0, .Lfar_back_target_nt

TEST_END
