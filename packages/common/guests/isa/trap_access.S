/*
 * Access-fault exceptions (Privileged manual, sections 3.1.15, 3.1.16, 3.5): loads and stores of
 * every width to an address with no device behind it raise cause 5 and 7 with mepc = the access
 * and mtval = the address, leaving rd alone; a jump to such an address retires (its link is
 * written) and the fetch at the target raises cause 1 with mepc = mtval = the target, also when
 * the target comes from mret. Address arithmetic wraps at 2^32. The address used, 0x0800_0000,
 * is unmapped on hbft and on QEMU's virt board; the null page is too. A fetch from the CLINT
 * faults as well: only RAM holds code (machine.S covers the other devices).
 */
#include "test_macros.h"

TEST_BEGIN

  li a1, ISA_UNMAPPED
  mv t0, a1

  li a3, 0x5ca1ab1e
  TEST_TRAP 1, CAUSE_LOAD_ACCESS, "lw a3, 0(a1)", tval=t0
  CHECK a3, 0x5ca1ab1e
  TEST_TRAP 2, CAUSE_LOAD_ACCESS, "lh a3, 0(a1)", tval=t0
  TEST_TRAP 3, CAUSE_LOAD_ACCESS, "lhu a3, 0(a1)", tval=t0
  TEST_TRAP 4, CAUSE_LOAD_ACCESS, "lb a3, 0(a1)", tval=t0
  TEST_TRAP 5, CAUSE_LOAD_ACCESS, "lbu a3, 0(a1)", tval=t0
  CHECK a3, 0x5ca1ab1e
  /* mtval is the effective address, base plus offset. */
  addi t1, a1, 0x7f0
  TEST_TRAP 6, CAUSE_LOAD_ACCESS, "lw a3, 0x7f0(a1)", tval=t1
  addi t1, a1, -4
  TEST_TRAP 7, CAUSE_LOAD_ACCESS, "lw a3, -4(a1)", tval=t1
  /* A load into x0 still accesses memory, and so still faults. */
  TEST_TRAP 8, CAUSE_LOAD_ACCESS, "lw x0, 0(a1)", tval=t0
  /* The base register as destination keeps the address. */
  mv a2, a1
  TEST_TRAP 9, CAUSE_LOAD_ACCESS, "lw a2, 0(a2)", tval=t0
  CHECK_EQ a2, t0

  li a2, 0x12345678
  TEST_TRAP 10, CAUSE_STORE_ACCESS, "sw a2, 0(a1)", tval=t0
  TEST_TRAP 11, CAUSE_STORE_ACCESS, "sh a2, 0(a1)", tval=t0
  TEST_TRAP 12, CAUSE_STORE_ACCESS, "sb a2, 0(a1)", tval=t0
  addi t1, a1, 0x10
  TEST_TRAP 13, CAUSE_STORE_ACCESS, "sb a2, 0x10(a1)", tval=t1
  TEST_TRAP 14, CAUSE_STORE_ACCESS, "sw zero, 0(a1)", tval=t0

  /* The null page is no memory either. */
  li a1, 0
  TEST_TRAP 15, CAUSE_LOAD_ACCESS, "lw a3, 0(a1)", tval=x0
  addi t1, a1, 8
  TEST_TRAP 16, CAUSE_STORE_ACCESS, "sw a2, 8(a1)", tval=t1

  /* Address arithmetic wraps modulo 2^32: 0xffff_fffc + 4 is address 0. */
  li a1, 0xfffffffc
  TEST_TRAP 17, CAUSE_LOAD_ACCESS, "lw a3, 4(a1)", tval=x0
  li a1, -1
  TEST_TRAP 18, CAUSE_FETCH_ACCESS, "jalr ra, 1(a1)", tval=x0, epc=x0

  /* A jump to unmapped memory: the jump retires, the fetch faults. */
  li a1, ISA_UNMAPPED
  mv t0, a1
  li ra, 0
  TEST_TRAP 20, CAUSE_FETCH_ACCESS, ".Ljalr_20: jalr ra, 0(a1)", tval=t0, epc=t0
  la t1, .Ljalr_20 + 4
  CHECK_EQ ra, t1

  li TESTNUM, 21
  la t6, .Ltrap_21
  csrw mtvec, t6
  li a1, ISA_UNMAPPED + 0x100
  jr a1
  j fail
  .balign 4
.Ltrap_21:
  CHECK_CSR mcause, CAUSE_FETCH_ACCESS
  CHECK_CSR mepc, ISA_UNMAPPED + 0x100
  CHECK_CSR mtval, ISA_UNMAPPED + 0x100
  la t6, isa_trap_unexpected
  csrw mtvec, t6

  /* mret to an unmapped mepc: the fetch there faults (mret itself has retired). */
  li TESTNUM, 22
  la t6, .Ltrap_22
  csrw mtvec, t6
  li t0, ISA_UNMAPPED + 0x200
  csrw mepc, t0
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  mret
  j fail
  .balign 4
.Ltrap_22:
  CHECK_CSR mcause, CAUSE_FETCH_ACCESS
  CHECK_CSR mepc, ISA_UNMAPPED + 0x200
  CHECK_CSR mtval, ISA_UNMAPPED + 0x200
  la t6, isa_trap_unexpected
  csrw mtvec, t6

  /* Device registers are not a place to run code: fetching from the CLINT faults too. */
  li a1, ISA_CLINT_MSIP
  mv t0, a1
  TEST_TRAP 30, CAUSE_FETCH_ACCESS, "jalr ra, 0(a1)", tval=t0, epc=t0

TEST_END
