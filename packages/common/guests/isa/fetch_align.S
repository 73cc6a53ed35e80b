/*
 * Instruction alignment with the C extension (Unprivileged manual 1.5, 2.2, 2.5, 16.1;
 * Privileged 3.1.14). IALIGN is 16: a taken jal, jalr or branch to any even address goes there
 * and raises no instruction-address-misaligned exception (only odd targets could, and jalr clears
 * bit 0); a 32-bit instruction may start at an address that is 2 mod 4, also with its two halves
 * in two pages; mepc keeps bit 1 when such an instruction traps, and mret returns there. The
 * jumps are hand-encoded so that they stay 32-bit; a skipped parcel is 0x0000 (illegal), so
 * landing on it fails the test.
 */
#include "test_macros.h"
.option rvc

TEST_BEGIN

  /* jal ra, .+6 (.word 0x006000ef): lands on the compressed instruction after the skipped parcel. */
  li TESTNUM, 1
  li a3, 0
  .balign 4
.Ljal_1:
  .word 0x006000ef
  .half 0x0000
  c.li a3, 5
  CHECK a3, 5
  la t0, .Ljal_1 + 4
  CHECK_EQ ra, t0

  /* jal backward to pc - 2 (.word 0xfffff0ef is jal ra, .-2), onto a c.j out. */
  li TESTNUM, 2
  j .Ljal_2
  .balign 4
  .half 0x0000
  c.j .Ljal_2_back      /* at .Ljal_2 - 2 */
.Ljal_2:
  .word 0xfffff0ef
  j fail
.Ljal_2_back:
  la t0, .Ljal_2 + 4
  CHECK_EQ ra, t0

  /* jalr to an address with bit 1 set, then with bits 1 and 0 set (bit 0 is cleared). */
  li TESTNUM, 3
  li a3, 0
  la a1, .Ljalr_target
  .option push
  .option norvc
  jalr ra, 0(a1)
  .option pop
  j fail
  .balign 4
  .half 0x0000
.Ljalr_target:
  c.addi a3, 1
  li t0, 2
  beq a3, t0, .Ljalr_done
  li TESTNUM, 4
  la a1, .Ljalr_target + 1
  .option push
  .option norvc
  jalr ra, 0(a1)
  .option pop
  j fail
.Ljalr_done:
  CHECK a3, 2

  /* A taken branch to pc + 6 (.word 0x00000363 is beq zero, zero, .+6). */
  li TESTNUM, 5
  li a3, 0
  .balign 4
  .word 0x00000363
  .half 0x0000
  c.li a3, 7
  CHECK a3, 7

  /* A 32-bit instruction at 2 mod 4. */
  li TESTNUM, 6
  .balign 4
  c.li a3, 0
  .option push
  .option norvc
  addi a3, a3, 77
  .option pop
  CHECK a3, 77

  /* An ebreak at 2 mod 4 traps with mepc pointing at it, bit 1 included; mret returns to an
     address that is 2 mod 4. */
  li TESTNUM, 7
  la t6, .Lebreak_landing
  csrw mtvec, t6
  .balign 4
  c.nop
.Lebreak_7:
  .word 0x00100073
  j fail
  .balign 4
.Lebreak_landing:
  csrr t6, mcause
  li t5, CAUSE_BREAKPOINT
  bne t6, t5, fail
  csrr t6, mepc
  la t5, .Lebreak_7
  bne t6, t5, fail
  la t6, isa_trap_unexpected
  csrw mtvec, t6
  li TESTNUM, 8
  li a3, 0
  la t0, .Lmret_target
  csrw mepc, t0
  mret
  .balign 4
  .half 0x0000
.Lmret_target:
  c.li a3, 9
  CHECK a3, 9

  /* A 32-bit instruction whose halves lie in two pages. */
  li TESTNUM, 9
  li a3, 0
  j .Lstraddle_2
  .balign 4096
  .skip 4094
.Lstraddle_2:
  .option push
  .option norvc
  addi a3, a3, 12       /* at 4094: halves in two pages */
  .option pop
  CHECK a3, 12

TEST_END
