/*
 * Self-modifying code and fence.i (Unprivileged manual, chapter 3 "Zifencei"): after fence.i,
 * instruction fetches see every store made before it. Covers code written into a data buffer
 * and called, rewritten after it has run many times (so any cached or compiled form is stale),
 * rewritten a halfword or a byte at a time, and the hardest case for a block-compiling
 * interpreter: an instruction patched in place right after the fence.i that follows the store,
 * in the same straight-line sequence, on a second pass through code that has already run.
 */
#include "test_macros.h"

/* Encodings (Unprivileged manual, chapter 24). */
#define ADDI_A0_ZERO(imm) ((((imm) & 0xfff) << 20) | 0x00000513)  /* addi a0, zero, imm */
#define ADDI_A0_A0_1 0x00150513                                 /* addi a0, a0, 1 */
#define RET 0x00008067                                          /* jalr zero, 0(ra) */
#define JAL_ZERO_PLUS_8 0x0080006f                              /* jal zero, .+8 */

  .data
  .balign 64
code_buffer:
  .space 1024

TEST_BEGIN

  /* A two-instruction function written into the buffer. */
  li TESTNUM, 1
  la s0, code_buffer
  li t0, ADDI_A0_ZERO(1)
  sw t0, 0(s0)
  li t0, RET
  sw t0, 4(s0)
  fence.i
  li a0, 0
  jalr s0
  CHECK a0, 1

  /* Called a thousand times, then rewritten. */
  li TESTNUM, 2
  li s1, 1000
1:
  jalr s0
  addi s1, s1, -1
  bnez s1, 1b
  CHECK a0, 1
  li t0, ADDI_A0_ZERO(2)
  sw t0, 0(s0)
  fence.i
  jalr s0
  CHECK a0, 2

  /* Rewritten a halfword at a time: the upper half of addi holds imm[11:0] << 4 here. */
  li TESTNUM, 3
  li t0, ADDI_A0_ZERO(0x123) >> 16
  sh t0, 2(s0)
  fence.i
  jalr s0
  CHECK a0, 0x123

  /* And a byte at a time: the top byte holds imm[11:4]. */
  li TESTNUM, 4
  li t0, 0x7f
  sb t0, 3(s0)
  fence.i
  jalr s0
  CHECK a0, 0x7f3

  /* A longer generated function: 200 increments and a return. */
  li TESTNUM, 5
  li t0, ADDI_A0_A0_1
  li t1, 200
  mv t2, s0
1:
  sw t0, 0(t2)
  addi t2, t2, 4
  addi t1, t1, -1
  bnez t1, 1b
  li t0, RET
  sw t0, 0(t2)
  fence.i
  li a0, 0
  jalr s0
  CHECK a0, 200
  /* Moving the return earlier shortens it. */
  li TESTNUM, 6
  li t0, RET
  sw t0, 40(s0)
  fence.i
  li a0, 0
  jalr s0
  CHECK a0, 10

  /* Patching the instruction just after the fence.i, in place, on two passes. The first pass
     turns `addi a0, zero, 1` into `addi a0, zero, 41`; the second, by then code that has run,
     into `addi a0, zero, 42`. */
  li TESTNUM, 7
  li s1, 41
  la s2, .Lpatch_site
.Lpatch_loop:
  li t0, ADDI_A0_ZERO(0)
  slli t1, s1, 20
  or t0, t0, t1
  sw t0, 0(s2)
  fence.i
.Lpatch_site:
  addi a0, zero, 1
  bne a0, s1, fail
  addi s1, s1, 1
  li t0, 43
  bne s1, t0, .Lpatch_loop

  /* Patching a jump that has already been taken: the second pass follows the new target. */
  li TESTNUM, 8
  li s3, 0
.Ljump_site:
  j .Ljump_first          /* becomes JAL_ZERO_PLUS_8, i.e. j .Ljump_patched */
  j fail
.Ljump_patched:
  CHECK s3, 1
  j .Ljump_done
.Ljump_first:
  addi s3, s3, 1
  li t0, JAL_ZERO_PLUS_8
  la t1, .Ljump_site
  sw t0, 0(t1)
  fence.i
  j .Ljump_site
.Ljump_done:

  /* Code that straddles a page boundary, compiled by running it, then patched just after the
     boundary: the new instruction is what runs. */
  li TESTNUM, 9
  li s1, 0
.Lstraddle_again:
  jal ra, .Lstraddle
  li t0, 1
  bne s1, t0, 1f
  CHECK a0, 3
  j .Lstraddle_done
1:
  CHECK a0, 2
  li s1, 1
  li t0, ADDI_A0_A0_1
  la t1, .Lstraddle_patch
  sw t0, 0(t1)
  fence.i
  j .Lstraddle_again

  /* Place the function so that its second half starts a new page. */
  .balign 4096
  .skip 4096 - 8
.Lstraddle:
  li a0, 1
  addi a0, a0, 1
  /* page boundary */
.Lstraddle_patch:
  nop
  ret
.Lstraddle_done:

TEST_END
