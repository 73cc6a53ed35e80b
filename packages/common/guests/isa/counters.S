/*
 * Counters (Unprivileged manual, chapter 10 "Zicntr"; Privileged 3.1.11, 3.3.1): minstret counts
 * every retired instruction exactly (a CSR read sees the count before its own instruction
 * retires), whatever kind it is, and only those that retire: ecall, ebreak and instructions that
 * fault do not, mret and wfi do. A write to minstret replaces that instruction's increment, so
 * the next instruction reads the written value; the 64-bit count carries into minstreth. mcycle
 * advances at least as fast as minstret and is writable; cycle, instret and time (and their
 * high halves) read the same counters as mcycle, minstret and the CLINT's mtime.
 */
#include "test_macros.h"

  .data
  .balign 16
counter_data:
  .word 7, 0

TEST_BEGIN

  /* Back-to-back reads differ by one: the first read retired in between. */
  li TESTNUM, 1
  csrr s0, minstret
  csrr s1, minstret
  sub a3, s1, s0
  CHECK a3, 1

  /* Ten simple instructions between the reads: eleven retired. */
  li TESTNUM, 2
  csrr s0, minstret
  addi a1, a1, 1
  addi a1, a1, 1
  addi a1, a1, 1
  addi a1, a1, 1
  addi a1, a1, 1
  nop
  nop
  nop
  nop
  nop
  csrr s1, minstret
  sub a3, s1, s0
  CHECK a3, 11

  /* One of every kind, with a taken branch that skips two instructions: only what executes
     counts (here 12 instructions, then the read). */
  li TESTNUM, 3
  la a1, counter_data
  li a2, 3
  csrr s0, minstret
  lw a3, 0(a1)            /* 1 */
  mul a4, a3, a2          /* 2 */
  div a4, a4, a2          /* 3 */
  sw a4, 4(a1)            /* 4 */
  beq a3, a4, 1f          /* 5: taken */
  addi a3, a3, 1
  addi a3, a3, 1
1:
  bne a3, a4, fail        /* 6: not taken */
  jal t0, 2f              /* 7 */
2:
  lui a5, 1               /* 8 */
  auipc a5, 0             /* 9 */
  csrr a5, mscratch       /* 10 */
  la t0, 3f               /* 11, 12 (auipc, addi) */
  jr t0                   /* 13 */
3:
  csrr s1, minstret
  sub a3, s1, s0
  CHECK a3, 14

  /* A loop: 1000 iterations of three instructions, plus the setup. */
  li TESTNUM, 4
  li a1, 1000
  csrr s0, minstret
  li a2, 0                /* 1 */
1:
  addi a2, a2, 3          /* 3 per iteration */
  addi a1, a1, -1
  bnez a1, 1b
  csrr s1, minstret
  sub a3, s1, s0
  CHECK a3, 1 + 3000 + 1

  /* The instret alias reads the same counter. */
  li TESTNUM, 5
  csrr s0, minstret
  csrr s1, instret
  sub a3, s1, s0
  CHECK a3, 1
  csrr s0, instret
  csrr s1, instreth
  csrr s2, minstreth
  CHECK_EQ s1, s2

  /* An ecall does not retire; the four handler instructions (mret included) do. QEMU's icount
     counts trapping instructions and wfi differently. */
#if !ISA_QEMU
  li TESTNUM, 10
  la t6, .Lskip_handler
  csrw mtvec, t6
  csrr s0, minstret
  ecall
  csrr s1, minstret
  sub a3, s1, s0
  CHECK a3, 1 + 0 + 4
  li TESTNUM, 11
  csrr s0, minstret
  ebreak
  csrr s1, minstret
  sub a3, s1, s0
  CHECK a3, 1 + 0 + 4
  li TESTNUM, 12
  csrr s0, minstret
  .word 0
  csrr s1, minstret
  sub a3, s1, s0
  CHECK a3, 1 + 0 + 4
  li TESTNUM, 13
  li a1, ISA_UNMAPPED
  csrr s0, minstret
  lw a2, 0(a1)
  csrr s1, minstret
  sub a3, s1, s0
  CHECK a3, 1 + 0 + 4
  li TESTNUM, 14
  csrr s0, minstret
  sw a2, 0(a1)
  csrr s1, minstret
  sub a3, s1, s0
  CHECK a3, 1 + 0 + 4
  la t6, isa_trap_unexpected
  csrw mtvec, t6
  j .Lafter_skip_handler
  /* Resumes after the trapping instruction: exactly four instructions. */
  .balign 4
.Lskip_handler:
  csrr t6, mepc
  addi t6, t6, 4
  csrw mepc, t6
  mret
.Lafter_skip_handler:

  /* wfi retires (it returns at once here: a software interrupt is pending and enabled). */
  li TESTNUM, 15
  li t0, ISA_CLINT_MSIP
  li t1, 1
  sw t1, 0(t0)
  li t1, MIP_MSIP
  csrw mie, t1
  csrr s0, minstret
  wfi
  csrr s1, minstret
  sw zero, 0(t0)
  csrw mie, zero
  sub a3, s1, s0
  CHECK a3, 2
#endif

  /* A write to minstret is read back exactly by the next instruction. QEMU counts the writing
     instruction too, and does not carry into minstreth. */
#if !ISA_QEMU
  li TESTNUM, 20
  li a1, 0x00001000
  csrw minstret, a1
  csrr a3, minstret
  csrr a4, minstret
  CHECK a3, 0x00001000
  CHECK a4, 0x00001001

  /* The low half carries into the high half. */
  li TESTNUM, 21
  li a1, 5
  csrw minstreth, a1
  li a1, 0xfffffffe
  csrw minstret, a1       /* instret = 5:fffffffe, this write instead of the increment */
  csrr a3, minstret       /* reads 5:fffffffe, then 5:ffffffff */
  nop                     /* 6:00000000 */
  csrr a4, minstreth      /* reads 6 */
  CHECK a3, 0xfffffffe
  CHECK a4, 6
  csrr a4, instreth
  CHECK a4, 6

  /* Writing one half while the other stands at its carry point, 0xffffffff, leaves that half as
     it was before the writing instruction: the write replaces the instruction's increment, so
     nothing carries. The next instruction then carries as usual (issue 12's reproduction). */
  li TESTNUM, 22
  li a1, 7
  li a2, 0xffffffff
  csrw minstret, a2       /* H:ffffffff */
  csrw minstreth, a1      /* 7:ffffffff, not 7:00000000 */
  nop                     /* 8:00000000 */
  csrr a3, minstret       /* reads 0 */
  csrr a4, minstreth      /* reads 8 */
  CHECK a3, 0
  CHECK a4, 8

  /* The mirror: the low half written while it stands at 0xffffffff leaves the high half. */
  li TESTNUM, 23
  csrw minstreth, zero
  csrw minstret, a2       /* 0:ffffffff */
  csrw minstret, a1       /* 0:00000007, not 1:00000007 */
  csrr a3, minstreth
  CHECK a3, 0

  /* The same two carry points on mcycle (one cycle per instruction while running). */
  li TESTNUM, 24
  csrw mcycle, a2
  csrw mcycleh, a1        /* 7:ffffffff */
  nop                     /* 8:00000000 */
  csrr a3, mcycle
  csrr a4, mcycleh
  CHECK a3, 0
  CHECK a4, 8
  li TESTNUM, 25
  csrw mcycleh, zero
  csrw mcycle, a2         /* 0:ffffffff */
  csrw mcycle, a1         /* 0:00000007 */
  csrr a3, mcycleh
  CHECK a3, 0
#endif

  /* mcycle is writable, advances, and advances at least one per instruction. */
  li TESTNUM, 30
  csrw mcycle, zero
  csrr a3, mcycle
  li a4, 16
  bgeu a3, a4, fail
  li TESTNUM, 31
  li a1, 0x7ffffff0
  csrw mcycleh, a1
  csrr a3, mcycleh
  CHECK a3, 0x7ffffff0
  csrr a3, cycleh
  CHECK a3, 0x7ffffff0
  li TESTNUM, 32
  csrr s0, mcycle
  csrr s2, minstret
  li a1, 100
1:
  addi a1, a1, -1
  bnez a1, 1b
  csrr s1, mcycle
  csrr s3, minstret
  sub a3, s1, s0
  sub a4, s3, s2
  bltu a3, a4, fail
  li TESTNUM, 33
  csrr s0, mcycle
  csrr s1, cycle
  bltu s1, s0, fail

  /* time is the CLINT's mtime, read between two loads of mtime. */
  li TESTNUM, 40
  li t0, ISA_CLINT_MTIME
  lw a1, 0(t0)
  csrr a2, time
  lw a3, 0(t0)
  bltu a2, a1, fail
  bltu a3, a2, fail
  li TESTNUM, 41
  lw a1, 4(t0)
  csrr a2, timeh
  lw a3, 4(t0)
  bltu a2, a1, fail
  bltu a3, a2, fail

TEST_END
