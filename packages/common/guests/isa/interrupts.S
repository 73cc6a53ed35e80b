/*
 * Machine interrupts (Privileged manual, sections 3.1.6.1, 3.1.7, 3.1.9, 3.2.1): the software
 * interrupt from the CLINT's msip (bit 0 only) and the timer interrupt from mtime >= mtimecmp
 * (compared on all 64 bits) show in mip whatever mie says; one is taken only when mstatus.MIE
 * and its mie bit are both set, at once after the CSR write or mret that enables it (mepc = the
 * next instruction), and before the exception that instruction would raise; mcause has bit 31
 * set, mtval is 0; trap entry clears MIE and saves it in MPIE, mret restores it and resumes the
 * interrupted instruction exactly once; MSI is taken before MTI when both are pending; vectored
 * mtvec sends interrupt i to BASE + 4i; and timer interrupts in the middle of a hot loop lose
 * no work. The external interrupt needs NIC traffic and is not covered here.
 */
#include "test_macros.h"

/* Points mtvec at `label` in direct mode. Clobbers t6. */
.macro MTVEC_TO label
  la t6, \label
  csrw mtvec, t6
.endm

/* Spins up to `count` iterations waiting for an interrupt that lands elsewhere; fails if none
   comes. Clobbers a5. */
.macro WAIT_FOR_INTERRUPT count
  li a5, \count
.Lwait\@:
  addi a5, a5, -1
  bnez a5, .Lwait\@
  j fail
.endm

/* A wait long enough for a device-raised interrupt on any machine: hbft counts mtime in
   instructions, QEMU in real time at 10 MHz. */
#define WAIT_ITERATIONS 20000000

TEST_BEGIN

  /* msip drives mip.MSIP with every interrupt disabled. */
  li TESTNUM, 1
  CHECK_CSR mip, 0
  MSIP_SET 1
  li TESTNUM, 2
  csrr a3, mip
  andi a3, a3, MIP_MSIP
  CHECK a3, MIP_MSIP
  MSIP_SET 0
  li TESTNUM, 3
  csrr a3, mip
  andi a3, a3, MIP_MSIP
  CHECK a3, 0

  /* Only bit 0 of msip exists (the upper bits are hardwired to zero). */
  li TESTNUM, 8
  MSIP_SET 2
  li t0, ISA_CLINT_MSIP
  lw a3, 0(t0)
  CHECK a3, 0
  csrr a3, mip
  andi a3, a3, MIP_MSIP
  CHECK a3, 0
  MSIP_SET -1
  li t0, ISA_CLINT_MSIP
  lw a3, 0(t0)
  CHECK a3, 1
  MSIP_SET 0

  /* mtimecmp reads back what was written. */
  li TESTNUM, 9
  li t0, ISA_CLINT_MTIMECMP
  li t1, 0x12345678
  sw t1, 0(t0)
  lw a3, 0(t0)
  CHECK a3, 0x12345678
  lw a3, 4(t0)
  CHECK a3, 0xffffffff
  TIMER_PARK

  /* mtime advances. */
  li TESTNUM, 4
  li t0, ISA_CLINT_MTIME
  lw a1, 0(t0)
  li a5, 1000
1:
  addi a5, a5, -1
  bnez a5, 1b
  lw a2, 0(t0)
  beq a1, a2, fail

  /* mip.MTIP follows mtime >= mtimecmp, level-sensitively. */
  li TESTNUM, 5
  li t0, ISA_CLINT_MTIMECMP
  sw zero, 0(t0)
  sw zero, 4(t0)
  csrr a3, mip
  andi a3, a3, MIP_MTIP
  CHECK a3, MIP_MTIP
  li TESTNUM, 6
  TIMER_PARK
  csrr a3, mip
  andi a3, a3, MIP_MTIP
  CHECK a3, 0
  /* A compare value just ahead becomes pending by itself. */
  li TESTNUM, 7
  TIMER_IN 100
  li a5, WAIT_ITERATIONS
1:
  csrr a3, mip
  andi a3, a3, MIP_MTIP
  bnez a3, 2f
  addi a5, a5, -1
  bnez a5, 1b
  j fail
2:
  TIMER_PARK

  /* The comparison is on all 64 bits: a high word above mtime's keeps the timer quiet whatever
     the low word, an equal high word with a low word of 0 makes it pending. */
  li TESTNUM, 14
  li t0, ISA_CLINT_MTIME
  lw t2, 4(t0)
  addi t2, t2, 1
  li t0, ISA_CLINT_MTIMECMP
  li t1, -1
  sw t1, 4(t0)
  sw zero, 0(t0)
  sw t2, 4(t0)
  csrr a3, mip
  andi a3, a3, MIP_MTIP
  CHECK a3, 0
  li TESTNUM, 15
  li t0, ISA_CLINT_MTIME
  lw t2, 4(t0)
  li t0, ISA_CLINT_MTIMECMP
  sw t2, 4(t0)
  csrr a3, mip
  andi a3, a3, MIP_MTIP
  CHECK a3, MIP_MTIP
  TIMER_PARK

  /* A pending software interrupt waits for mie.MSIE and mstatus.MIE. */
  li TESTNUM, 10
  MTVEC_TO .Ltrap_10
  MSIP_SET 1
  csrsi mstatus, MSTATUS_MIE
  li a5, 100
1:
  addi a5, a5, -1
  bnez a5, 1b
  csrci mstatus, MSTATUS_MIE
  li t0, MIP_MSIP
  csrs mie, t0
  li a5, 100
1:
  addi a5, a5, -1
  bnez a5, 1b
  /* Both enabled: the trap comes right after the CSR write, before the next instruction. */
  li TESTNUM, 11
  li a0, 0
  csrsi mstatus, MSTATUS_MIE
.Lnext_11:
  addi a0, a0, 1
  j .Lresumed_11
  .balign 4
.Ltrap_10:
  CHECK a0, 0
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_SOFT
  CHECK_CSR mtval, 0
  csrr a3, mepc
  la a4, .Lnext_11
  CHECK_EQ a3, a4
  csrr a3, mstatus
  andi a3, a3, MSTATUS_MIE | MSTATUS_MPIE
  CHECK a3, MSTATUS_MPIE
  MSIP_SET 0
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  li TESTNUM, 12
  mret
.Lresumed_11:
  /* The interrupted instruction ran exactly once, and MIE is back. */
  CHECK a0, 1
  csrr a3, mstatus
  andi a3, a3, MSTATUS_MIE
  CHECK a3, MSTATUS_MIE
  csrci mstatus, MSTATUS_MIE
  csrw mie, zero

  /* msip raised while everything is enabled interrupts soon after the store. */
  li TESTNUM, 13
  MTVEC_TO .Ltrap_13
  li t0, MIP_MSIP
  csrs mie, t0
  csrsi mstatus, MSTATUS_MIE
  MSIP_SET 1
  WAIT_FOR_INTERRUPT WAIT_ITERATIONS
  .balign 4
.Ltrap_13:
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_SOFT
  MSIP_SET 0
  csrw mie, zero

  /* The timer interrupt: mtimecmp just ahead, everything enabled. */
  li TESTNUM, 20
  MTVEC_TO .Ltrap_20
  TIMER_IN 300
  li t0, MIP_MTIP
  csrs mie, t0
  csrsi mstatus, MSTATUS_MIE
  WAIT_FOR_INTERRUPT WAIT_ITERATIONS
  .balign 4
.Ltrap_20:
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_TIMER
  CHECK_CSR mtval, 0
  /* Not early: mtime has reached mtimecmp (both high words are 0 this soon after reset). */
  li t0, ISA_CLINT_MTIME
  lw a1, 0(t0)
  li t0, ISA_CLINT_MTIMECMP
  lw a2, 0(t0)
  bltu a1, a2, fail
  csrr a3, mip
  andi a3, a3, MIP_MTIP
  CHECK a3, MIP_MTIP
  csrr a3, mstatus
  andi a3, a3, MSTATUS_MIE
  CHECK a3, 0
  /* Moving mtimecmp ahead again withdraws the request. */
  li TESTNUM, 21
  TIMER_PARK
  csrr a3, mip
  andi a3, a3, MIP_MTIP
  CHECK a3, 0
  csrw mie, zero

  /* mie gates a pending timer: the trap follows the csrs that sets MTIE. */
  li TESTNUM, 22
  MTVEC_TO .Ltrap_22
  li t0, ISA_CLINT_MTIMECMP
  sw zero, 0(t0)
  sw zero, 4(t0)
  csrsi mstatus, MSTATUS_MIE
  li a5, 100
1:
  addi a5, a5, -1
  bnez a5, 1b
  li t0, MIP_MTIP
  csrs mie, t0
.Lnext_22:
  j fail
  .balign 4
.Ltrap_22:
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_TIMER
  csrr a3, mepc
  la a4, .Lnext_22
  CHECK_EQ a3, a4
  TIMER_PARK
  csrw mie, zero

  /* MSI has priority over MTI: both pending, enabled together, software comes first, then the
     timer as soon as mret re-enables interrupts. */
  li TESTNUM, 30
  MTVEC_TO .Ltrap_30
  li a0, 0
  MSIP_SET 1
  li t0, ISA_CLINT_MTIMECMP
  sw zero, 0(t0)
  sw zero, 4(t0)
  li t0, MIP_MSIP | MIP_MTIP
  csrs mie, t0
  csrsi mstatus, MSTATUS_MIE
  j fail
  .balign 4
.Ltrap_30:
  addi a0, a0, 1
  csrr a3, mcause
  li a4, CAUSE_INTERRUPT | IRQ_M_SOFT
  beq a3, a4, .Ltrap_30_soft
  li a4, CAUSE_INTERRUPT | IRQ_M_TIMER
  bne a3, a4, fail
  /* The timer, second. */
  CHECK a0, 2
  TIMER_PARK
  csrw mie, zero
  j .Ldone_30
.Ltrap_30_soft:
  CHECK a0, 1
  MSIP_SET 0
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  mret
.Ldone_30:

  /* mret that sets MIE from MPIE with an interrupt pending and enabled: the interrupt is taken
     at once, before the instruction mret returns to (mepc = that instruction). */
  li TESTNUM, 32
  MTVEC_TO .Ltrap_32
  li a0, 0
  MSIP_SET 1
  li t0, MIP_MSIP
  csrs mie, t0
  li t0, MSTATUS_MPIE | MSTATUS_MPP
  csrs mstatus, t0
  la t0, .Ltarget_32
  csrw mepc, t0
  mret
  j fail
.Ltarget_32:
  addi a0, a0, 1
  j fail
  .balign 4
.Ltrap_32:
  CHECK a0, 0
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_SOFT
  csrr a3, mepc
  la a4, .Ltarget_32
  CHECK_EQ a3, a4
  MSIP_SET 0
  csrw mie, zero

  /* An interrupt comes before the exception the next instruction would raise: with MSI
     pending, enabling MIE in front of an illegal instruction traps for the interrupt with mepc
     at the illegal instruction, which then traps in its turn after mret. */
  li TESTNUM, 33
  MTVEC_TO .Ltrap_33
  li a0, 0
  MSIP_SET 1
  li t0, MIP_MSIP
  csrs mie, t0
  csrsi mstatus, MSTATUS_MIE
.Lillegal_33:
  .word 0
  j fail
  .balign 4
.Ltrap_33:
  addi a0, a0, 1
  csrr a3, mepc
  la a4, .Lillegal_33
  CHECK_EQ a3, a4
  li t0, 1
  bne a0, t0, .Ltrap_33_second
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_SOFT
  MSIP_SET 0
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  mret
.Ltrap_33_second:
  CHECK a0, 2
  CHECK_CSR mcause, CAUSE_ILLEGAL_INSTRUCTION
  csrw mie, zero

  /* A plain csrw of mstatus that sets MIE takes a pending interrupt right after it too. */
  li TESTNUM, 34
  MTVEC_TO .Ltrap_34
  MSIP_SET 1
  li t0, MIP_MSIP
  csrs mie, t0
  li t0, MSTATUS_MIE | MSTATUS_MPP
  csrw mstatus, t0
.Lnext_34:
  j fail
  .balign 4
.Ltrap_34:
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_SOFT
  csrr a3, mepc
  la a4, .Lnext_34
  CHECK_EQ a3, a4
  MSIP_SET 0
  csrw mie, zero

  /* Vectored mtvec: interrupt i goes to BASE + 4i, exceptions to BASE. */
  li TESTNUM, 40
  la t0, .Lvectors
  ori t0, t0, MTVEC_VECTORED
  csrw mtvec, t0
  li a0, 0
  MSIP_SET 1
  li t0, MIP_MSIP
  csrs mie, t0
  csrsi mstatus, MSTATUS_MIE
  j fail
.Lvector_soft:
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_SOFT
  MSIP_SET 0
  csrw mie, zero
  li TESTNUM, 41
  TIMER_IN 200
  li t0, MIP_MTIP
  csrs mie, t0
  csrsi mstatus, MSTATUS_MIE
  WAIT_FOR_INTERRUPT WAIT_ITERATIONS
.Lvector_timer:
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_TIMER
  TIMER_PARK
  csrw mie, zero
  li TESTNUM, 42
  ecall
  j fail
.Lvector_exception:
  CHECK_CSR mcause, CAUSE_MACHINE_ECALL
  j .Lvectors_done

  .balign 256
.Lvectors:
  j .Lvector_exception
  .rept IRQ_M_SOFT - 1
  j fail
  .endr
  j .Lvector_soft
  .rept IRQ_M_TIMER - IRQ_M_SOFT - 1
  j fail
  .endr
  j .Lvector_timer
  .rept 16 - IRQ_M_TIMER - 1
  j fail
  .endr
.Lvectors_done:

  /* Timer interrupts in the middle of a hot loop: each one is handled and returns, and the loop
     still does exactly its work. The handler re-arms the timer a little ahead each time. */
  li TESTNUM, 50
  MTVEC_TO .Ltrap_50
  li s0, 0          /* interrupts taken */
  li a0, 0          /* loop sum */
  li a1, 0          /* loop counter */
  li a2, 200000
  TIMER_IN 500
  li t0, MIP_MTIP
  csrs mie, t0
  csrsi mstatus, MSTATUS_MIE
.Lloop_50:
  addi a1, a1, 1
  add a0, a0, a1
  xori a3, a0, 0x55
  bne a1, a2, .Lloop_50
  csrci mstatus, MSTATUS_MIE
  csrw mie, zero
  TIMER_PARK
  j .Lcheck_50
  .balign 4
.Ltrap_50:
  addi s0, s0, 1
  TIMER_IN 500
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  mret
.Lcheck_50:
  /* Sum 1..200000 = 20000100000 = 0x4_a819_4ea0; the low word. */
  CHECK a0, 0xa8194ea0
  CHECK a1, 200000
  li TESTNUM, 51
  beqz s0, fail

TEST_END
