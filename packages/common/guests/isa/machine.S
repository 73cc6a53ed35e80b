/*
 * Facts about hbft's hart and address map rather than the ISA, so QEMU's virt hart (other
 * extensions, other IDs, real-time mtime) fails some of them:
 *   - misa = 0x40001105 (MXL = 1, A, C, I and M) and ignores writes; mvendorid, marchid, mimpid are 0;
 *   - mstatus implements only MIE and MPIE, MPP is hardwired to M (no lower mode to return to);
 *     mie implements exactly MSIE, MTIE and MEIE; writes to mip change nothing; mtvec holds a
 *     vectored base;
 *   - mtime (and the time CSR) count one per retired instruction;
 *   - RAM ends where SYSINFO says, and the gaps between devices, below RAM, the null page and
 *     the top of the address space answer with access faults;
 *   - interrupts are exact: the timer one is taken at the first instruction boundary where
 *     mtime >= mtimecmp, one raised by a store to the CLINT right after that store, and wfi
 *     skipping to the timer lands on mtimecmp.
 */
#include "test_macros.h"

TEST_BEGIN

  /* misa: RV32, extensions A, C, I and M. It is a WARL read-write CSR, so writes are ignored rather
     than illegal (Privileged 3.1.1). */
  li TESTNUM, 1
  CHECK_CSR misa, 0x40001105
  li TESTNUM, 2
  csrw misa, zero
  CHECK_CSR misa, 0x40001105
  li a1, -1
  csrw misa, a1
  CHECK_CSR misa, 0x40001105

  li TESTNUM, 3
  CHECK_CSR mvendorid, 0
  CHECK_CSR marchid, 0
  CHECK_CSR mimpid, 0
  CHECK_CSR mhartid, 0

  /* mstatus: MIE and MPIE are the only writable bits; MPP reads 3 whatever is written. */
  li TESTNUM, 10
  csrw mstatus, zero
  CHECK_CSR mstatus, MSTATUS_MPP
  li TESTNUM, 11
  li a1, -1
  csrw mstatus, a1
  CHECK_CSR mstatus, MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE
  li TESTNUM, 12
  li a1, MSTATUS_MPIE
  csrw mstatus, a1
  CHECK_CSR mstatus, MSTATUS_MPP | MSTATUS_MPIE
  li TESTNUM, 13
  csrci mstatus, MSTATUS_MIE
  li a1, MSTATUS_MPIE | MSTATUS_MPP
  csrc mstatus, a1
  CHECK_CSR mstatus, MSTATUS_MPP

  /* mie: exactly the three machine interrupt enables. */
  li TESTNUM, 20
  li a1, -1
  csrw mie, a1
  CHECK_CSR mie, MIP_MSIP | MIP_MTIP | MIP_MEIP
  csrw mie, zero
  CHECK_CSR mie, 0

  /* mip: nothing is pending (the timer is parked, msip is 0, no NIC traffic), and writes are
     ignored. */
  li TESTNUM, 21
  CHECK_CSR mip, 0
  li a1, -1
  csrw mip, a1
  CHECK_CSR mip, 0
  csrs mip, a1
  CHECK_CSR mip, 0

  /* mtvec: direct and vectored modes keep their base. */
  li TESTNUM, 30
  li a1, 0x80004000 | MTVEC_VECTORED
  csrw mtvec, a1
  CHECK_CSR mtvec, 0x80004001
  li a1, 0x80004000
  csrw mtvec, a1
  CHECK_CSR mtvec, 0x80004000
  la a1, isa_trap_unexpected
  csrw mtvec, a1

  /* mtime counts retired instructions: ten more instructions between two reads add exactly
     ten to the difference; the same for the time CSR. */
  li TESTNUM, 40
  li t0, ISA_CLINT_MTIME
  lw a1, 0(t0)
  lw a2, 0(t0)
  lw a3, 0(t0)
  nop
  nop
  nop
  nop
  nop
  nop
  nop
  nop
  nop
  nop
  lw a4, 0(t0)
  sub a2, a2, a1
  sub a4, a4, a3
  sub a4, a4, a2
  CHECK a4, 10
  li TESTNUM, 41
  csrr a1, time
  csrr a2, time
  csrr a3, time
  nop
  nop
  nop
  nop
  nop
  csrr a4, time
  sub a2, a2, a1
  sub a4, a4, a3
  sub a4, a4, a2
  CHECK a4, 5

  /* RAM ends where SYSINFO says: the last word is there, the next is an access fault for loads,
     stores and fetches. The test assumes RAM smaller than the 2 GiB maximum. */
  li TESTNUM, 50
  li t0, ISA_SYSINFO
  lw a1, 0(t0)                /* RAM base */
  CHECK a1, ISA_RAM_BASE
  lw s0, 4(t0)                /* RAM size */
  li t1, 0x80000000
  bgeu s0, t1, .Lram_end_done
  li t1, ISA_RAM_BASE
  add s1, t1, s0              /* first address after RAM */
  li a2, 0x600df00d
  sw a2, -4(s1)
  lw a3, -4(s1)
  CHECK_EQ a3, a2
  li a2, 0x7ea5
  sh a2, -2(s1)
  lhu a3, -2(s1)
  CHECK a3, 0x7ea5
  li a2, 0xc3
  sb a2, -1(s1)
  lbu a3, -1(s1)
  CHECK a3, 0xc3
  lw a3, -4(s1)
  CHECK a3, 0xc3a5f00d
  mv t0, s1
  TEST_TRAP 51, CAUSE_LOAD_ACCESS, "lw a3, 0(s1)", tval=t0
  TEST_TRAP 52, CAUSE_LOAD_ACCESS, "lbu a3, 0(s1)", tval=t0
  TEST_TRAP 53, CAUSE_STORE_ACCESS, "sw a2, 0(s1)", tval=t0
  TEST_TRAP 54, CAUSE_STORE_ACCESS, "sb a2, 0(s1)", tval=t0
  TEST_TRAP 55, CAUSE_FETCH_ACCESS, "jalr ra, 0(s1)", tval=t0, epc=t0
  /* The top of the address space, reached by a negative offset from x0. */
  li t0, 0xfffffffc
  TEST_TRAP 56, CAUSE_LOAD_ACCESS, "lw a3, -4(x0)", tval=t0
  li t0, 0xfffff800
  TEST_TRAP 57, CAUSE_FETCH_ACCESS, "jalr ra, -2048(x0)", tval=t0, epc=t0
.Lram_end_done:

  /* Nothing answers between the devices, below RAM or in the null page. */
  li t0, 0x00101000           /* after the finisher */
  TEST_TRAP 60, CAUSE_LOAD_ACCESS, "lw a3, 0(t0)", tval=t0
  li t0, 0x02010000           /* after the CLINT */
  TEST_TRAP 61, CAUSE_LOAD_ACCESS, "lw a3, 0(t0)", tval=t0
  li t0, 0x10000100           /* after the UART */
  TEST_TRAP 62, CAUSE_LOAD_ACCESS, "lw a3, 0(t0)", tval=t0
  li t0, 0x10003000           /* after SYSINFO */
  TEST_TRAP 63, CAUSE_STORE_ACCESS, "sw a3, 0(t0)", tval=t0
  li t0, 0x7ffffffc           /* just below RAM */
  TEST_TRAP 64, CAUSE_LOAD_ACCESS, "lw a3, 0(t0)", tval=t0
  TEST_TRAP 65, CAUSE_FETCH_ACCESS, "jalr ra, 0(t0)", tval=t0, epc=t0
  li t0, 0x00000ffc           /* the null page */
  TEST_TRAP 66, CAUSE_STORE_ACCESS, "sw a3, 0(t0)", tval=t0

  /* The timer interrupt is taken at the first instruction boundary where mtime >= mtimecmp:
     the handler's first instruction reads mtime == mtimecmp. */
  li TESTNUM, 70
  la t6, .Ltrap_70
  csrw mtvec, t6
  li s2, ISA_CLINT_MTIME
  TIMER_IN 200
  li t0, MIP_MTIP
  csrw mie, t0
  csrsi mstatus, MSTATUS_MIE
1:
  addi a5, a5, 1
  j 1b
  .balign 4
.Ltrap_70:
  lw a1, 0(s2)
  CHECK_EQ a1, a6
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_TIMER
  TIMER_PARK

  /* A store that raises an enabled interrupt traps before the next instruction: to msip, and
     to mtimecmp's high word (the low word alone, with the high word parked, does not). */
  li TESTNUM, 71
  la t6, .Ltrap_71
  csrw mtvec, t6
  li t0, MIP_MSIP
  csrw mie, t0
  csrsi mstatus, MSTATUS_MIE
  li t0, ISA_CLINT_MSIP
  li t1, 1
  sw t1, 0(t0)
.Lnext_71:
  j fail
  .balign 4
.Ltrap_71:
  csrr a3, mepc
  la a4, .Lnext_71
  CHECK_EQ a3, a4
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_SOFT
  li t0, ISA_CLINT_MSIP
  sw zero, 0(t0)

  li TESTNUM, 72
  la t6, .Ltrap_72
  csrw mtvec, t6
  li t0, MIP_MTIP
  csrw mie, t0
  csrsi mstatus, MSTATUS_MIE
  li t0, ISA_CLINT_MTIMECMP
  sw zero, 0(t0)
  nop
  sw zero, 4(t0)
.Lnext_72:
  j fail
  .balign 4
.Ltrap_72:
  csrr a3, mepc
  la a4, .Lnext_72
  CHECK_EQ a3, a4
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_TIMER
  TIMER_PARK
  csrw mie, zero
  la t6, isa_trap_unexpected
  csrw mtvec, t6

  /* wfi skipping ahead to the timer lands on mtimecmp, not beyond it: the next read of mtime
     is mtimecmp plus at most the wfi itself. */
  li TESTNUM, 73
  li s2, ISA_CLINT_MTIME
  li t0, MIP_MTIP
  csrw mie, t0
  TIMER_IN 100000
  wfi
  lw a1, 0(s2)
  sub a1, a1, a6
  li a2, 2
  bgeu a1, a2, fail
  TIMER_PARK
  csrw mie, zero

  /* Only RAM holds code: a fetch from any device is an access fault, not a device read. */
  li t0, ISA_FINISHER
  TEST_TRAP 80, CAUSE_FETCH_ACCESS, "jalr ra, 0(t0)", tval=t0, epc=t0
  li t0, ISA_UART_THR
  TEST_TRAP 81, CAUSE_FETCH_ACCESS, "jalr ra, 0(t0)", tval=t0, epc=t0
  li t0, ISA_SYSINFO
  TEST_TRAP 82, CAUSE_FETCH_ACCESS, "jalr ra, 0(t0)", tval=t0, epc=t0
  li t0, ISA_NIC
  TEST_TRAP 83, CAUSE_FETCH_ACCESS, "jalr ra, 0(t0)", tval=t0, epc=t0

TEST_END
