/*
 * hbft ISA conformance tests: the test environment and the checking macros.
 *
 * Written for this project from the RISC-V Unprivileged (20191213) and Privileged (20211203) ISA
 * manuals; it shares no code with riscv-tests, only its outward conventions, which hosts know:
 *   - the number of the test case being run is kept in gp (TESTNUM);
 *   - the result is written to the 64-bit word `tohost`: 1 for a pass, (n << 1) | 1 when test case
 *     n failed;
 *   - the run then also ends through the test finisher (QEMU's sifive_test), so that machines that
 *     do not watch `tohost` stop too.
 *
 * A standalone test is
 *     #include "test_macros.h"
 *     TEST_BEGIN
 *       ... test cases, each starting with `li TESTNUM, n` (the macros below do it) ...
 *     TEST_END
 * Falling off the end of the body is a pass; any check that fails jumps to `fail`. Traps nobody
 * expected land in `isa_trap_unexpected`, which prints mcause/mepc/mtval on the UART and fails the
 * current test. C tests use the same environment through crt.S.
 *
 * Register conventions inside the macros: a1..a3 carry operands and results, t6 holds the expected
 * value of a check, t5 and t6 are scratch in TEST_TRAP. Tests may use any register between macros.
 */
#ifndef ISA_TEST_MACROS_H
#define ISA_TEST_MACROS_H

/* Devices, as in ../include/hbft.h (which is C only). */
#define ISA_FINISHER 0x00100000
#define ISA_FINISHER_PASS 0x5555
#define ISA_FINISHER_FAIL 0x3333
#define ISA_CLINT_MSIP 0x02000000
#define ISA_CLINT_MTIMECMP 0x02004000
#define ISA_CLINT_MTIME 0x0200bff8
#define ISA_UART_THR 0x10000000
#define ISA_NIC 0x10001000
#define ISA_SYSINFO 0x10002000 /* +0: RAM base, +4: RAM size */
#define ISA_RAM_BASE 0x80000000

/*
 * An address with no device behind it on hbft and on QEMU's virt board alike (QEMU maps the
 * platform bus up to 0x0600_0000 and the PLIC from 0x0c00_0000).
 */
#define ISA_UNMAPPED 0x08000000

/*
 * ISA_QEMU is 1 when qemu-check.sh builds the tests for QEMU's virt board (QEMU 7.2 with a hart
 * stripped to RV32IM), to cross-check them against an independent implementation. It leaves out
 * the few checks where QEMU departs from the manuals, each marked where it is; images for hbft
 * are built without it and contain every check.
 */
#ifndef ISA_QEMU
#define ISA_QEMU 0
#endif

/* Reported as the failing test when a check fails before any test case has started. */
#define ISA_FAIL_UNNUMBERED 0xfff

/* mcause values (Privileged manual, table 3.6). */
#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS 1
#define CAUSE_ILLEGAL_INSTRUCTION 2
#define CAUSE_BREAKPOINT 3
#define CAUSE_MISALIGNED_LOAD 4
#define CAUSE_LOAD_ACCESS 5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS 7
#define CAUSE_MACHINE_ECALL 11
#define CAUSE_INTERRUPT 0x80000000
#define IRQ_M_SOFT 3
#define IRQ_M_TIMER 7
#define IRQ_M_EXT 11

/* mstatus, mie and mip bits (Privileged manual, sections 3.1.6 and 3.1.9). */
#define MSTATUS_MIE 0x00000008
#define MSTATUS_MPIE 0x00000080
#define MSTATUS_MPP 0x00001800
#define MIP_MSIP (1 << IRQ_M_SOFT)
#define MIP_MTIP (1 << IRQ_M_TIMER)
#define MIP_MEIP (1 << IRQ_M_EXT)

#define MTVEC_VECTORED 1

#ifdef __ASSEMBLER__

/* Under the 20191213 ISA spec (binutils' default) Zicsr and Zifencei are not part of rv32im;
   the machine has both. Redundant, and harmless, with -misa-spec=2.2. */
.option arch, +zicsr, +zifencei

#define TESTNUM gp

/* ---------------------------------------------------------------------------------------------
 * Environment
 * ------------------------------------------------------------------------------------------- */

/*
 * Machine set-up: a trap vector that reports, interrupts off, the timer parked, .bss cleared, a
 * stack, and every other register zero so that no test depends on reset values.
 */
.macro TEST_BEGIN
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  la t0, isa_trap_unexpected
  csrw mtvec, t0
  li t0, MSTATUS_MPP
  csrw mstatus, t0
  csrw mie, zero
  /* QEMU resets mtimecmp to 0, which makes the timer pending at once: park it at the maximum,
     high word first so the 64-bit value never passes below mtime on the way. */
  li t0, ISA_CLINT_MTIMECMP
  li t1, -1
  sw t1, 4(t0)
  sw t1, 0(t0)
  li t0, ISA_CLINT_MSIP
  sw zero, 0(t0)
  la t0, __bss_start
  la t1, __bss_end
.Lisa_clear_bss\@:
  bgeu t0, t1, .Lisa_clear_done\@
  sw zero, 0(t0)
  addi t0, t0, 4
  j .Lisa_clear_bss\@
.Lisa_clear_done\@:
  la sp, isa_stack_top
  li x1, 0
  li x3, 0
  li x4, 0
  li x5, 0
  li x6, 0
  li x7, 0
  li x8, 0
  li x9, 0
  li x10, 0
  li x11, 0
  li x12, 0
  li x13, 0
  li x14, 0
  li x15, 0
  li x16, 0
  li x17, 0
  li x18, 0
  li x19, 0
  li x20, 0
  li x21, 0
  li x22, 0
  li x23, 0
  li x24, 0
  li x25, 0
  li x26, 0
  li x27, 0
  li x28, 0
  li x29, 0
  li x30, 0
  li x31, 0
  j isa_test_body
  .text
isa_test_body:
.endm

/*
 * The end of the test body (a pass), then the reporting code, the trap vector for surprises,
 * `tohost` and the stack.
 */
.macro TEST_END
  j pass

  .balign 4
  .globl pass
pass:
  la t0, tohost
  li t1, 1
  sw zero, 4(t0)
  sw t1, 0(t0)
  li t0, ISA_FINISHER
  li t1, ISA_FINISHER_PASS
  sw t1, 0(t0)
1:
  j 1b

  .globl fail
fail:
  bnez TESTNUM, 1f
  li TESTNUM, ISA_FAIL_UNNUMBERED
1:
  la a0, isa_msg_fail
  jal isa_puts
  mv a0, TESTNUM
  jal isa_puthex
  li a0, 10
  jal isa_putc
  la t0, tohost
  slli t1, TESTNUM, 1
  ori t1, t1, 1
  sw zero, 4(t0)
  sw t1, 0(t0)
  /* The finisher carries a 16-bit code; test numbers stay below that. */
  slli t1, TESTNUM, 16
  li t0, ISA_FINISHER_FAIL
  or t1, t1, t0
  li t0, ISA_FINISHER
  sw t1, 0(t0)
1:
  j 1b

  /* Direct-mode trap vector for traps no test asked for: say what happened, then fail. */
  .balign 64
  .globl isa_trap_unexpected
isa_trap_unexpected:
  la a0, isa_msg_trap
  jal isa_puts
  csrr a0, mcause
  jal isa_puthex
  la a0, isa_msg_mepc
  jal isa_puts
  csrr a0, mepc
  jal isa_puthex
  la a0, isa_msg_mtval
  jal isa_puts
  csrr a0, mtval
  jal isa_puthex
  li a0, 10
  jal isa_putc
  j fail

  /* Console helpers: leaf routines that clobber a0..a2 and t0..t2 only. */
  .globl isa_putc
isa_putc:
  li t0, ISA_UART_THR
  sb a0, 0(t0)
  ret

  .globl isa_puts
isa_puts:
  li t0, ISA_UART_THR
1:
  lbu t1, 0(a0)
  beqz t1, 2f
  sb t1, 0(t0)
  addi a0, a0, 1
  j 1b
2:
  ret

  .globl isa_puthex
isa_puthex:
  mv a1, a0
  li t0, ISA_UART_THR
  li t1, '0'
  sb t1, 0(t0)
  li t1, 'x'
  sb t1, 0(t0)
  li a2, 28
1:
  srl t1, a1, a2
  andi t1, t1, 15
  li t2, 10
  blt t1, t2, 2f
  addi t1, t1, 'a' - '0' - 10
2:
  addi t1, t1, '0'
  sb t1, 0(t0)
  addi a2, a2, -4
  bgez a2, 1b
  ret

  .section .rodata.isa_env, "a", @progbits
isa_msg_fail:
  .string "isa: FAIL test "
isa_msg_trap:
  .string "isa: unexpected trap mcause="
isa_msg_mepc:
  .string " mepc="
isa_msg_mtval:
  .string " mtval="

  .section .tohost, "aw", @progbits
  .balign 64
  .globl tohost
tohost:
  .dword 0
  .balign 64
  .globl fromhost
fromhost:
  .dword 0

  .section .bss.isa_stack, "aw", @nobits
  .balign 16
isa_stack:
  .space 8192
  .globl isa_stack_top
isa_stack_top:

  .text
.endm

/* ---------------------------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------------------------- */

/* Fails the current test unless register `reg` holds the constant `value`. Clobbers t6. */
.macro CHECK reg, value
  li t6, \value
  bne \reg, t6, fail
.endm

/* Fails the current test unless registers `a` and `b` are equal. */
.macro CHECK_EQ a, b
  bne \a, \b, fail
.endm

/* Fails the current test unless CSR `csr` reads `value`. Clobbers t5, t6. */
.macro CHECK_CSR csr, value
  csrr t5, \csr
  li t6, \value
  bne t5, t6, fail
.endm

/* ---------------------------------------------------------------------------------------------
 * Integer computational instructions (Unprivileged manual, section 2.4)
 * ------------------------------------------------------------------------------------------- */

/*
 * Register-register operation: a op b must give `want`, with the sources left alone, and the
 * same when the destination is also the first or the second source.
 */
.macro TEST_RR n, op, want, a, b
  li TESTNUM, \n
  li a1, \a
  li a2, \b
  \op a3, a1, a2
  CHECK a3, \want
  CHECK a1, \a
  CHECK a2, \b
  \op a1, a1, a2
  CHECK a1, \want
  li a1, \a
  \op a2, a1, a2
  CHECK a2, \want
.endm

/* Register-register operation with both sources the same register (and rd too). */
.macro TEST_RR_SAME n, op, want, a
  li TESTNUM, \n
  li a1, \a
  \op a3, a1, a1
  CHECK a3, \want
  CHECK a1, \a
  \op a1, a1, a1
  CHECK a1, \want
.endm

/* Register-immediate operation, also with rd == rs1. */
.macro TEST_IMM n, op, want, a, imm
  li TESTNUM, \n
  li a1, \a
  \op a3, a1, \imm
  CHECK a3, \want
  CHECK a1, \a
  \op a1, a1, \imm
  CHECK a1, \want
.endm

/*
 * Operations with x0: as the first source, as the second source, and as the destination (which
 * must stay zero, and must not disturb the source).
 */
.macro TEST_RR_X0 n, op, want_zero_first, want_zero_second, a
  li TESTNUM, \n
  li a1, \a
  \op a3, x0, a1
  CHECK a3, \want_zero_first
  \op a3, a1, x0
  CHECK a3, \want_zero_second
  \op x0, a1, a1
  bnez x0, fail
  CHECK a1, \a
.endm

.macro TEST_IMM_X0 n, op, want, imm
  li TESTNUM, \n
  \op a3, x0, \imm
  CHECK a3, \want
  li a1, 0x5a5a
  \op x0, a1, \imm
  bnez x0, fail
.endm

/* ---------------------------------------------------------------------------------------------
 * Control transfer (Unprivileged manual, section 2.5)
 * ------------------------------------------------------------------------------------------- */

/*
 * Conditional branch on a and b, once to a target ahead and once to a target behind; `taken`
 * is 1 when the branch must be taken. Checks that the operands are left alone.
 */
.macro TEST_BR n, op, a, b, taken
  li TESTNUM, \n
  li a1, \a
  li a2, \b
  \op a1, a2, .Lbr_ahead\@
  .if \taken
  j fail
  .else
  j .Lbr_back_start\@
  .endif
.Lbr_ahead\@:
  .if !\taken
  j fail
  .endif
.Lbr_back_start\@:
  j .Lbr_back_branch\@
.Lbr_behind\@:
  .if \taken
  j .Lbr_done\@
  .else
  j fail
  .endif
.Lbr_back_branch\@:
  \op a1, a2, .Lbr_behind\@
  .if \taken
  j fail
  .endif
.Lbr_done\@:
  CHECK a1, \a
  CHECK a2, \b
.endm

/* ---------------------------------------------------------------------------------------------
 * Loads and stores (Unprivileged manual, section 2.6)
 * ------------------------------------------------------------------------------------------- */

/* Load at `offset` from label `base`; also with the base register as the destination. */
.macro TEST_LOAD n, op, want, offset, base
  li TESTNUM, \n
  la a1, \base
  \op a3, \offset(a1)
  CHECK a3, \want
  \op a1, \offset(a1)
  CHECK a1, \want
.endm

/*
 * Store `value` with `sop` at `offset` from label `base`, then read it back with `lop`: the
 * result must be `want` (the value truncated, then extended by the load).
 */
.macro TEST_STORE n, sop, lop, want, value, offset, base
  li TESTNUM, \n
  la a1, \base
  li a2, \value
  \sop a2, \offset(a1)
  \lop a3, \offset(a1)
  CHECK a3, \want
.endm

/*
 * Sub-word store into the middle word of three words that hold `fill`: only the addressed
 * bytes change. `bytes` is 1 (sb) or 2 (sh), `k` the byte offset within the word.
 */
.macro TEST_STORE_NEIGHBOURS n, sop, bytes, k, value, fill
  li TESTNUM, \n
  la a1, isa_store_scratch
  li a2, \fill
  sw a2, 0(a1)
  sw a2, 4(a1)
  sw a2, 8(a1)
  li a2, \value
  \sop a2, 4 + \k(a1)
  lw a3, 0(a1)
  CHECK a3, \fill
  lw a3, 8(a1)
  CHECK a3, \fill
  lw a3, 4(a1)
  .set .Lmask\@, ((1 << (8 * \bytes)) - 1) << (8 * \k)
  CHECK a3, (((\fill) & ~.Lmask\@) | (((\value) << (8 * \k)) & .Lmask\@)) & 0xffffffff
.endm

/* ---------------------------------------------------------------------------------------------
 * Traps (Privileged manual, sections 3.1.14 to 3.1.16)
 * ------------------------------------------------------------------------------------------- */

/*
 * Runs `insn` (quoted; may be several instructions separated by ';') expecting a synchronous
 * exception with mcause `cause` and, unless given otherwise, mepc = the address of `insn`'s
 * first instruction. `tval`, when given, is a register holding the expected mtval, or `insn` for
 * the bits of the (first) instruction itself; `epc`, when given, a register holding the expected
 * mepc. The trap lands on a local vector that checks the
 * CSRs and continues after the macro with the unexpected-trap vector restored.
 * Clobbers t5 and t6 (so neither may carry `tval` or `epc`).
 */
.macro TEST_TRAP n, cause, insn, tval=none, epc=none
  li TESTNUM, \n
  la t6, .Ltrap_landing\@
  csrw mtvec, t6
.Ltrap_insn\@:
  \insn
  j fail
  .balign 4
.Ltrap_landing\@:
  csrr t6, mcause
  li t5, \cause
  bne t6, t5, fail
  csrr t6, mepc
  .ifc \epc,none
  la t5, .Ltrap_insn\@
  bne t6, t5, fail
  .else
  bne t6, \epc, fail
  .endif
  .ifc \tval,insn
  lw t5, .Ltrap_insn\@
  csrr t6, mtval
  bne t6, t5, fail
  .else
  .ifnc \tval,none
  csrr t6, mtval
  bne t6, \tval, fail
  .endif
  .endif
  la t6, isa_trap_unexpected
  csrw mtvec, t6
.endm


/*
 * `insn` must raise an illegal-instruction exception with mtval = its own bits, and must not
 * write its destination: instructions under test use a3 as rd, which holds a marker.
 */
.macro TEST_ILLEGAL n, insn
  li a3, 0x5ca1ab1e
  TEST_TRAP \n, CAUSE_ILLEGAL_INSTRUCTION, "\insn", tval=insn
  CHECK a3, 0x5ca1ab1e
.endm

/* ---------------------------------------------------------------------------------------------
 * The CLINT (msip, mtimecmp, mtime)
 * ------------------------------------------------------------------------------------------- */

/* Parks the timer at mtimecmp = all ones, high word first. Clobbers t0, t1. */
.macro TIMER_PARK
  li t0, ISA_CLINT_MTIMECMP
  li t1, -1
  sw t1, 4(t0)
  sw t1, 0(t0)
.endm

/*
 * Sets mtimecmp = mtime + delta on all 64 bits, never passing through a smaller value on the
 * way, and leaves the new compare value in a6 (low word) and a7 (high word). Clobbers t0..t3.
 */
.macro TIMER_IN delta
  li t0, ISA_CLINT_MTIME
.Ltimer_in_read\@:
  lw t2, 4(t0)
  lw t1, 0(t0)
  lw t3, 4(t0)
  bne t2, t3, .Ltimer_in_read\@
  li t3, \delta
  add a6, t1, t3
  sltu t3, a6, t1
  add a7, t2, t3
  li t0, ISA_CLINT_MTIMECMP
  li t1, -1
  sw t1, 4(t0)
  sw a6, 0(t0)
  sw a7, 4(t0)
.endm

/* Writes `value` to the CLINT's msip. Clobbers t0, t1. */
.macro MSIP_SET value
  li t0, ISA_CLINT_MSIP
  li t1, \value
  sw t1, 0(t0)
.endm

/*
 * Scratch memory the macros may use: three words for the neighbour checks. Tests that use
 * TEST_STORE_NEIGHBOURS invoke this once, outside the code.
 */
.macro TEST_STORE_SCRATCH
  .section .bss.isa_store_scratch, "aw", @nobits
  .balign 16
isa_store_scratch:
  .space 16
  .text
.endm

#endif /* __ASSEMBLER__ */
#endif /* ISA_TEST_MACROS_H */
