/*
 * wfi (Privileged manual, section 3.3.3): it returns when an interrupt is pending in mip & mie,
 * whether or not mstatus.MIE is set; with MIE set the interrupt is taken with mepc = the
 * instruction after the wfi. On hbft, a hart waiting only for the timer skips guest time ahead
 * to mtimecmp rather than executing its way there, so a long wait costs a few instructions:
 * checked last, with minstret, as a property of this machine rather than of the ISA (the ISA
 * lets wfi be a nop).
 */
#include "test_macros.h"

/* Fails unless the 64-bit mtime is at least a7:a6. Clobbers t0..t3. */
.macro CHECK_MTIME_REACHED
  li t0, ISA_CLINT_MTIME
.Lreached_read\@:
  lw t2, 4(t0)
  lw t1, 0(t0)
  lw t3, 4(t0)
  bne t2, t3, .Lreached_read\@
  bltu t2, a7, fail
  bne t2, a7, .Lreached_ok\@
  bltu t1, a6, fail
.Lreached_ok\@:
.endm

TEST_BEGIN

  /* A pending, enabled software interrupt wakes wfi at once; with MIE clear nothing traps. */
  li TESTNUM, 1
  MSIP_SET 1
  li t0, MIP_MSIP
  csrw mie, t0
  wfi
  MSIP_SET 0
  csrw mie, zero

  /* Waiting for the timer with MIE clear: wfi returns once mtime has reached mtimecmp. wfi may
     return early on some machines, hence the loop. */
  li TESTNUM, 2
  li t0, MIP_MTIP
  csrw mie, t0
  TIMER_IN 20000
  li a5, 1000000
1:
  wfi
  csrr a3, mip
  andi a3, a3, MIP_MTIP
  bnez a3, 2f
  addi a5, a5, -1
  bnez a5, 1b
  j fail
2:
  CHECK_MTIME_REACHED
  TIMER_PARK
  csrw mie, zero

  /* With MIE set the interrupt is taken on the instruction after the wfi. */
  li TESTNUM, 3
  la t6, .Ltrap_3
  csrw mtvec, t6
  li t0, MIP_MTIP
  csrw mie, t0
  TIMER_IN 20000
  csrsi mstatus, MSTATUS_MIE
.Lwfi_3:
  wfi
.Lafter_wfi_3:
  j .Lwfi_3
  .balign 4
.Ltrap_3:
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_TIMER
  csrr a3, mepc
  la a4, .Lafter_wfi_3
  CHECK_EQ a3, a4
  CHECK_MTIME_REACHED
  TIMER_PARK
  csrw mie, zero
  la t6, isa_trap_unexpected
  csrw mtvec, t6

#if !ISA_QEMU
  /* hbft: a wait of 10^9 ticks (10 s of guest time) costs a handful of instructions, because
     the wait skips to mtimecmp. */
  li TESTNUM, 4
  li t0, MIP_MTIP
  csrw mie, t0
  TIMER_IN 1000000000
  csrr s0, minstret
  wfi
  csrr s1, minstret
  CHECK_MTIME_REACHED
  sub a3, s1, s0
  li a4, 16
  bgeu a3, a4, fail
  TIMER_PARK
  csrw mie, zero
#endif

TEST_END
