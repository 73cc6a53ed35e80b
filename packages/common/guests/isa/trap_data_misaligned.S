/*
 * Load and store address-misaligned exceptions (Unprivileged manual, section 2.6; Privileged
 * 3.1.15, 3.1.16). hbft never emulates misaligned accesses: lh/lhu/sh at an odd address and
 * lw/sw at an address that is not a multiple of 4 raise cause 4 (load) or 6 (store) with
 * mepc = the access and mtval = the effective address. A faulting load leaves rd alone and a
 * faulting store leaves memory alone. Byte accesses are never misaligned.
 */
#include "test_macros.h"

  .data
  .balign 16
misaligned_data:
  .word 0x33221100, 0x77665544, 0xbbaa9988, 0xffeeddcc

TEST_BEGIN

  la a1, misaligned_data

  li a3, 0x5ca1ab1e
  addi t0, a1, 1
  TEST_TRAP 1, CAUSE_MISALIGNED_LOAD, "lh a3, 1(a1)", tval=t0
  CHECK a3, 0x5ca1ab1e
  addi t0, a1, 3
  TEST_TRAP 2, CAUSE_MISALIGNED_LOAD, "lhu a3, 3(a1)", tval=t0
  CHECK a3, 0x5ca1ab1e
  addi t0, a1, 1
  TEST_TRAP 3, CAUSE_MISALIGNED_LOAD, "lw a3, 1(a1)", tval=t0
  CHECK a3, 0x5ca1ab1e
  addi t0, a1, 6
  TEST_TRAP 4, CAUSE_MISALIGNED_LOAD, "lw a3, 6(a1)", tval=t0
  CHECK a3, 0x5ca1ab1e
  addi t0, a1, 11
  TEST_TRAP 5, CAUSE_MISALIGNED_LOAD, "lw a3, 11(a1)", tval=t0
  CHECK a3, 0x5ca1ab1e
  /* The effective address, not the base, is what is misaligned and reported. */
  addi a2, a1, 3
  addi t0, a1, 2
  TEST_TRAP 6, CAUSE_MISALIGNED_LOAD, "lw a3, -1(a2)", tval=t0
  CHECK a3, 0x5ca1ab1e
  /* The destination is the base register: it keeps the address. */
  addi a2, a1, 1
  mv t0, a2
  TEST_TRAP 7, CAUSE_MISALIGNED_LOAD, "lw a2, 0(a2)", tval=t0
  CHECK_EQ a2, t0
  /* A load into x0 still faults. */
  addi t0, a1, 2
  TEST_TRAP 8, CAUSE_MISALIGNED_LOAD, "lw x0, 2(a1)", tval=t0

  li a2, 0x12345678
  addi t0, a1, 1
  TEST_TRAP 10, CAUSE_MISALIGNED_STORE, "sh a2, 1(a1)", tval=t0
  addi t0, a1, 5
  TEST_TRAP 11, CAUSE_MISALIGNED_STORE, "sw a2, 5(a1)", tval=t0
  addi t0, a1, 10
  TEST_TRAP 12, CAUSE_MISALIGNED_STORE, "sw a2, 10(a1)", tval=t0
  addi t0, a1, 15
  TEST_TRAP 13, CAUSE_MISALIGNED_STORE, "sw a2, 15(a1)", tval=t0
  addi t0, a1, 7
  TEST_TRAP 14, CAUSE_MISALIGNED_STORE, "sh a2, 7(a1)", tval=t0

  /* None of the faulting stores wrote anything. */
  li TESTNUM, 20
  lw a3, 0(a1)
  CHECK a3, 0x33221100
  lw a3, 4(a1)
  CHECK a3, 0x77665544
  lw a3, 8(a1)
  CHECK a3, 0xbbaa9988
  lw a3, 12(a1)
  CHECK a3, 0xffeeddcc

  /* Aligned neighbours of the faulting addresses work, as do bytes at every offset. */
  li TESTNUM, 21
  lh a3, 2(a1)
  CHECK a3, 0x3322
  lhu a3, 14(a1)
  CHECK a3, 0xffee
  lb a3, 7(a1)
  CHECK a3, 0x77
  lbu a3, 13(a1)
  CHECK a3, 0xdd

TEST_END
