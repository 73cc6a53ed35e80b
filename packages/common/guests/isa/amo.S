/*
 * The A extension, RV32A (Unprivileged manual ch. 8): LR.W/SC.W (8.2) and the AMO*.W
 * instructions (8.4) on one hart. SC.W writes and returns 0 only while the reservation of the
 * last LR.W holds; it returns 1 and writes nothing without one, after another SC.W, or after a
 * store into the reservation set. Each AMO returns the old word and stores the operation's
 * result, rd may be a source, and x0 discards the old value. A misaligned LR.W is a load
 * address-misaligned exception, a misaligned SC.W or AMO a store/AMO one (8.4); an AMO on a
 * device has no PMA support here and is a store/AMO access fault (Privileged 3.6.3.1).
 */
#include "test_macros.h"
.option arch, +a

  .data
  .balign 16
amo_data:
  .word 0, 0, 0, 0

/* AMO `op` on a word holding `old` with operand `operand`: rd gets `old`, memory `want`. */
.macro TEST_AMO n, op, old, operand, want
  li TESTNUM, \n
  la a1, amo_data
  li a2, \old
  sw a2, 0(a1)
  li a2, \operand
  \op a3, a2, (a1)
  CHECK a3, \old
  lw a4, 0(a1)
  CHECK a4, \want
  CHECK a2, \operand
.endm

TEST_BEGIN

  /* LR.W then SC.W: the store happens and rd = 0. */
  li TESTNUM, 1
  la a1, amo_data
  li a2, 41
  sw a2, 0(a1)
  lr.w a3, (a1)
  CHECK a3, 41
  addi a3, a3, 1
  sc.w a4, a3, (a1)
  CHECK a4, 0
  lw a5, 0(a1)
  CHECK a5, 42

  /* A second SC.W fails: the first ended the reservation. */
  li TESTNUM, 2
  li a3, 99
  sc.w a4, a3, (a1)
  CHECK a4, 1
  lw a5, 0(a1)
  CHECK a5, 42

  /* A store into the reservation set between them makes SC.W fail. */
  li TESTNUM, 3
  lr.w a3, (a1)
  sw zero, 4(a1)
  sc.w a4, a3, (a1)
  CHECK a4, 1
  li TESTNUM, 4
  lr.w a3, (a1)
  sb zero, 0(a1)
  sc.w a4, a3, (a1)
  CHECK a4, 1
  lw a5, 0(a1)
  CHECK a5, 0

  /* ... and so does an AMO into it. */
  li TESTNUM, 5
  lr.w a3, (a1)
  addi t0, a1, 8
  amoadd.w zero, a3, (t0)
  sc.w a4, a3, (a1)
  CHECK a4, 1

  /* The ordering bits change nothing on one hart; the loop of a compare-and-swap works. */
  li TESTNUM, 6
  sw zero, 0(a1)
  li a2, 5
1:
  lr.w.aq a3, (a1)
  add a3, a3, a2
  sc.w.rl a4, a3, (a1)
  bnez a4, 1b
  lw a5, 0(a1)
  CHECK a5, 5

  /* The AMOs, with signed and unsigned extremes. */
  TEST_AMO 10, amoswap.w, 0x12345678, 0x9abcdef0, 0x9abcdef0
  TEST_AMO 11, amoadd.w, 0xffffffff, 2, 1
  TEST_AMO 12, amoxor.w, 0xff00ff00, 0x0ff00ff0, 0xf0f0f0f0
  TEST_AMO 13, amoand.w, 0xff00ff00, 0x0ff00ff0, 0x0f000f00
  TEST_AMO 14, amoor.w, 0xff00ff00, 0x0ff00ff0, 0xfff0fff0
  TEST_AMO 15, amomin.w, 0x80000000, 1, 0x80000000
  TEST_AMO 16, amomin.w, 5, 0xffffffff, 0xffffffff
  TEST_AMO 17, amomax.w, 0x80000000, 1, 1
  TEST_AMO 18, amomax.w, 0x7fffffff, 0xffffffff, 0x7fffffff
  TEST_AMO 19, amominu.w, 0x80000000, 1, 1
  TEST_AMO 20, amominu.w, 5, 0xffffffff, 5
  TEST_AMO 21, amomaxu.w, 0x80000000, 1, 0x80000000
  TEST_AMO 22, amomaxu.w, 5, 0xffffffff, 0xffffffff

  /* rd = rs2: the old value lands in it after the operand was read. */
  li TESTNUM, 23
  la a1, amo_data
  li a2, 10
  sw a2, 0(a1)
  li a3, 3
  amoadd.w a3, a3, (a1)
  CHECK a3, 10
  lw a4, 0(a1)
  CHECK a4, 13
  /* rd = x0 discards the old value; memory still changes. */
  li TESTNUM, 24
  amoswap.w zero, a2, (a1)
  lw a4, 0(a1)
  CHECK a4, 10

  /* Misaligned and device addresses. */
  la a1, amo_data + 2
  mv t0, a1
  TEST_TRAP 30, CAUSE_MISALIGNED_LOAD, "lr.w a3, (a1)", tval=t0
  TEST_TRAP 31, CAUSE_MISALIGNED_STORE, "sc.w a3, a2, (a1)", tval=t0
  TEST_TRAP 32, CAUSE_MISALIGNED_STORE, "amoadd.w a3, a2, (a1)", tval=t0
  li a1, ISA_UART_THR
  mv t0, a1
  li a3, 0x5ca1ab1e
  TEST_TRAP 33, CAUSE_STORE_ACCESS, "amoor.w a3, a2, (a1)", tval=t0
  CHECK a3, 0x5ca1ab1e
  li a1, ISA_UNMAPPED
  mv t0, a1
  TEST_TRAP 34, CAUSE_LOAD_ACCESS, "lr.w a3, (a1)", tval=t0
  TEST_TRAP 35, CAUSE_STORE_ACCESS, "sc.w a3, a2, (a1)", tval=t0

  /* Encodings of the AMO opcode that are not RV32A: illegal. */
  TEST_ILLEGAL 40, ".word 0x0020b6af"   /* amoadd.d: RV64 only */
  TEST_ILLEGAL 41, ".word 0x1020a6af"   /* lr.w with rs2 != 0 */
  TEST_ILLEGAL 42, ".word 0x2820a6af"   /* funct5 00101 */

TEST_END
