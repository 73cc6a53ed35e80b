/*
 * A long computation that keeps every general register live: 1,000,000 iterations of a loop
 * that updates 27 registers and a memory word, 31 million instructions, so that whoever
 * runs the machine in slices (the emulator's run(budget) calls, epochs, checkpoints) stops and
 * resumes it many times in the middle of the loop body. At the end every register must hold
 * exactly its closed-form value and minstret must have counted every instruction. Then a loop
 * that takes an ecall trap on every pass, for the same exactness across traps.
 */
#include "test_macros.h"

#define ITERATIONS 1000000
#define TRAP_ITERATIONS 100000
/* Instructions in one pass of the loop body, the branch included. */
#define BODY 31
/* x31 ends as 0x9e3779b9 * 0x01000193^ITERATIONS mod 2^32. */
#define MULTIPLIER 0x01000193
#define PRODUCT 0x158862b9

  .data
  .balign 4
counter_word:
  .word 0

TEST_BEGIN

  li TESTNUM, 1
  la gp, counter_word     /* gp holds the address; the test number is restored at the end */
  li x1, 1
  li x4, 4
  li x5, 5
  li x6, 6
  li x7, 7
  li x8, 8
  li x9, 9
  li x10, 10
  li x11, 11
  li x12, 12
  li x13, 13
  li x14, 14
  li x15, 15
  li x16, 16
  li x17, 17
  li x18, 18
  li x19, 19
  li x20, 20
  li x21, 21
  li x22, 22
  li x23, 23
  li x24, 24
  li x25, 25
  li x26, 26
  li x27, 27
  li x28, MULTIPLIER
  li x29, 0               /* x29: scratch for the memory counter */
  li x30, ITERATIONS      /* x30: iterations left */
  csrr x31, minstret
  sw x31, -4(sp)          /* the start count, kept on the stack */
  li x31, 0x9e3779b9      /* x31: a running product */

.Lloop:
  addi x1, x1, 1
  addi x4, x4, 4
  addi x5, x5, 5
  addi x6, x6, 6
  addi x7, x7, 7
  addi x8, x8, 8
  addi x9, x9, 9
  addi x10, x10, 10
  addi x11, x11, 11
  addi x12, x12, 12
  addi x13, x13, 13
  addi x14, x14, 14
  addi x15, x15, 15
  addi x16, x16, 16
  addi x17, x17, 17
  addi x18, x18, 18
  addi x19, x19, 19
  addi x20, x20, 20
  addi x21, x21, 21
  addi x22, x22, 22
  addi x23, x23, 23
  addi x24, x24, 24
  addi x25, x25, 25
  addi x26, x26, 26
  addi x27, x27, 27
  mul x31, x31, x28
  lw x29, 0(gp)
  addi x29, x29, 1
  sw x29, 0(gp)
  addi x30, x30, -1
  bnez x30, .Lloop

  /* t6 (x31) is the scratch register of CHECK, so the product goes to memory first. */
  csrr x30, minstret
  sw x31, -8(sp)
  lw x31, -4(sp)
  sub x30, x30, x31       /* instructions from the first csrr to the second */
  mv x29, gp
  li TESTNUM, 2
  /* csrr, sw, li (lui + addi), then the loop. */
  CHECK x30, 1 + 1 + 2 + BODY * ITERATIONS
  li TESTNUM, 3
  lw x30, 0(x29)
  CHECK x30, ITERATIONS
  li TESTNUM, 4
  CHECK x1, (1 + 1 * ITERATIONS) & 0xffffffff
  CHECK x4, (4 + 4 * ITERATIONS) & 0xffffffff
  CHECK x5, (5 + 5 * ITERATIONS) & 0xffffffff
  CHECK x6, (6 + 6 * ITERATIONS) & 0xffffffff
  CHECK x7, (7 + 7 * ITERATIONS) & 0xffffffff
  CHECK x8, (8 + 8 * ITERATIONS) & 0xffffffff
  CHECK x9, (9 + 9 * ITERATIONS) & 0xffffffff
  CHECK x10, (10 + 10 * ITERATIONS) & 0xffffffff
  CHECK x11, (11 + 11 * ITERATIONS) & 0xffffffff
  CHECK x12, (12 + 12 * ITERATIONS) & 0xffffffff
  CHECK x13, (13 + 13 * ITERATIONS) & 0xffffffff
  CHECK x14, (14 + 14 * ITERATIONS) & 0xffffffff
  CHECK x15, (15 + 15 * ITERATIONS) & 0xffffffff
  CHECK x16, (16 + 16 * ITERATIONS) & 0xffffffff
  CHECK x17, (17 + 17 * ITERATIONS) & 0xffffffff
  CHECK x18, (18 + 18 * ITERATIONS) & 0xffffffff
  CHECK x19, (19 + 19 * ITERATIONS) & 0xffffffff
  CHECK x20, (20 + 20 * ITERATIONS) & 0xffffffff
  CHECK x21, (21 + 21 * ITERATIONS) & 0xffffffff
  CHECK x22, (22 + 22 * ITERATIONS) & 0xffffffff
  CHECK x23, (23 + 23 * ITERATIONS) & 0xffffffff
  CHECK x24, (24 + 24 * ITERATIONS) & 0xffffffff
  CHECK x25, (25 + 25 * ITERATIONS) & 0xffffffff
  CHECK x26, (26 + 26 * ITERATIONS) & 0xffffffff
  CHECK x27, (27 + 27 * ITERATIONS) & 0xffffffff
  CHECK x28, MULTIPLIER
  li TESTNUM, 5
  lw x30, -8(sp)
  CHECK x30, PRODUCT

  /* A loop that traps on every pass: ecall does not retire, the handler's four instructions
     do, and the count stays exact however the run is cut. (QEMU's icount counts the ecall.) */
  li TESTNUM, 6
  la t6, .Lskip_ecall
  csrw mtvec, t6
  li a1, TRAP_ITERATIONS
  li a2, 0
  csrr s0, minstret
.Ltrap_loop:
  ecall
  addi a2, a2, 1
  addi a1, a1, -1
  bnez a1, .Ltrap_loop
  csrr s1, minstret
  sub a3, s1, s0
#if !ISA_QEMU
  CHECK a3, 1 + TRAP_ITERATIONS * (4 + 3)
#endif
  CHECK a2, TRAP_ITERATIONS
  la t6, isa_trap_unexpected
  csrw mtvec, t6
  j .Ltrap_loop_done
  .balign 4
.Lskip_ecall:
  csrr t6, mepc
  addi t6, t6, 4
  csrw mepc, t6
  mret
.Ltrap_loop_done:

TEST_END
