/*
 * Instruction-address-misaligned exceptions (Unprivileged manual, section 2.5; Privileged
 * 3.1.15, 3.1.16). Without the C extension, a taken jal, jalr or branch whose target is not
 * 4-byte aligned raises cause 0 at the jump itself: mepc = the jump, mtval = the target, and the
 * jump does not retire, so its link register keeps its old value. A branch that is not taken
 * raises nothing whatever its target. jalr clears bit 0 of the target first, so only bit 1
 * matters there. The jumps are hand-encoded because the assembler refuses misaligned targets.
 */
#include "test_macros.h"

/* QEMU reports the address of the jump in mtval rather than the misaligned target. */
#if ISA_QEMU
#define MISALIGNED_TVAL none
#else
#define MISALIGNED_TVAL t0
#endif

TEST_BEGIN

  /* jal to pc + 6 (.word 0x006000ef is jal ra, .+6), the link register untouched. */
  li ra, 0x1111
  la t0, .Ljal_1 + 6
  TEST_TRAP 1, CAUSE_MISALIGNED_FETCH, ".Ljal_1: .word 0x006000ef", tval=MISALIGNED_TVAL
  CHECK ra, 0x1111

  /* jal x0 to pc + 6 (.word 0x0060006f). */
  la t0, .Ljal_2 + 6
  TEST_TRAP 2, CAUSE_MISALIGNED_FETCH, ".Ljal_2: .word 0x0060006f", tval=MISALIGNED_TVAL

  /* jal backward to pc - 2 (.word 0xfffff0ef is jal ra, .-2). */
  li ra, 0x3333
  la t0, .Ljal_3 - 2
  TEST_TRAP 3, CAUSE_MISALIGNED_FETCH, ".Ljal_3: .word 0xfffff0ef", tval=MISALIGNED_TVAL
  CHECK ra, 0x3333

  /* jalr to an address with bit 1 set; rd = ra and rd = rs1 both keep their value. */
  la a1, .Ljalr_target + 2
  mv t0, a1
  li ra, 0x4444
  TEST_TRAP 4, CAUSE_MISALIGNED_FETCH, "jalr ra, 0(a1)", tval=MISALIGNED_TVAL
  CHECK ra, 0x4444
  CHECK_EQ a1, t0

  la a1, .Ljalr_target
  addi t0, a1, 2
  TEST_TRAP 5, CAUSE_MISALIGNED_FETCH, "jalr a1, 2(a1)", tval=MISALIGNED_TVAL
  la t1, .Ljalr_target
  CHECK_EQ a1, t1

  /* Bits 1 and 0 set: bit 0 is cleared, bit 1 still faults; mtval is the cleared target. */
  la a1, .Ljalr_target + 3
  addi t0, a1, -1
  TEST_TRAP 6, CAUSE_MISALIGNED_FETCH, "jalr ra, 0(a1)", tval=MISALIGNED_TVAL
  la a1, .Ljalr_target
  addi t0, a1, 2
  TEST_TRAP 7, CAUSE_MISALIGNED_FETCH, "jalr x0, 3(a1)", tval=MISALIGNED_TVAL
  j .Ljalr_done
.Ljalr_target:
  j fail
  j fail
.Ljalr_done:

  /* A taken branch to pc + 6 (.word 0x00000363 is beq zero, zero, .+6). */
  la t0, .Lbeq_8 + 6
  TEST_TRAP 8, CAUSE_MISALIGNED_FETCH, ".Lbeq_8: .word 0x00000363", tval=MISALIGNED_TVAL

  /* A taken branch on real operands: blt a1, a2, .+10 (.word 0x00c5c563). */
  li a1, -5
  li a2, 3
  la t0, .Lblt_9 + 10
  TEST_TRAP 9, CAUSE_MISALIGNED_FETCH, ".Lblt_9: .word 0x00c5c563", tval=MISALIGNED_TVAL

  /* A branch not taken to a misaligned target is no exception (bne zero, zero, .+6). */
  li TESTNUM, 10
  .word 0x00001363
  j 1f
  j fail
1:
  li TESTNUM, 11
  li a1, 5
  li a2, 3
  .word 0x00c5c563      /* blt a1, a2, .+10: not taken */
  j 1f
  j fail
  j fail
1:

TEST_END
