/*
 * Encodings that must do nothing visible (Unprivileged manual, sections 2.7 and 2.9, chapter 3):
 * fence in its ordinary, TSO and reserved-field forms, pause, fence with empty sets, fence.i
 * with nonzero reserved fields (rd, rs1 and the immediate are ignored: rd is not written), and
 * the HINT encodings of RV32I, which write x0 and so must leave every register alone rather
 * than trap.
 */
#include "test_macros.h"

TEST_BEGIN

  li a1, 0x11111111
  li a2, 0x22222222

  li TESTNUM, 1
  fence
  fence rw, rw
  fence iorw, iorw
  fence r, w
  fence.tso
  .word 0x0100000f        /* pause: fence w, 0 (Zihintpause) */
  .word 0x0000000f        /* fence 0, 0: a HINT */
  .word 0x1ff0000f        /* fm = 0001 is reserved: treated as an ordinary fence */
  .word 0x0ff6058f        /* fence iorw, iorw with rd = a1 and rs1 = a2: reserved, ignored */
  CHECK a1, 0x11111111
  CHECK a2, 0x22222222

  li TESTNUM, 2
  fence.i
  .word 0x1236158f        /* fence.i with rd = a1, rs1 = a2, imm = 0x123: fields ignored */
  CHECK a1, 0x11111111
  CHECK a2, 0x22222222

  /* HINTs: computational instructions with rd = x0. */
  li TESTNUM, 3
  addi x0, a1, 5
  addi x0, x0, 1
  lui x0, 0x12345
  auipc x0, 0x54321
  slti x0, a1, -1
  sltiu x0, a1, 3
  xori x0, a2, 0x7f
  ori x0, a2, 0x70
  andi x0, a2, -1
  slli x0, a1, 3
  srli x0, a1, 31
  srai x0, a1, 7
  add x0, a1, a2
  sub x0, a1, a2
  sll x0, a1, a2
  slt x0, a1, a2
  sltu x0, a1, a2
  xor x0, a1, a2
  srl x0, a1, a2
  sra x0, a1, a2
  or x0, a1, a2
  and x0, a1, a2
  bnez x0, fail
  CHECK a1, 0x11111111
  CHECK a2, 0x22222222

TEST_END
