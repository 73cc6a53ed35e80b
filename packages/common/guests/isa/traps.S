/*
 * Synchronous traps other than address faults (Privileged manual, sections 3.1.6.1, 3.1.14 to
 * 3.1.16, 3.3): ecall (cause 11, mtval 0), ebreak (cause 3, mtval 0 or its address), illegal
 * instructions (cause 2, mtval = the instruction bits, rd untouched) over a range of encodings
 * that RV32IM with Zicsr/Zifencei does not define; mepc = the trapping instruction; trap entry
 * moving MIE to MPIE and clearing MIE; mret restoring MIE from MPIE, setting MPIE and resuming at
 * mepc, whose bits 1:0 read zero; exceptions going to BASE in vectored mode; and the
 * architectural state at a trap in the middle of straight-line code or of a hot loop (what a
 * block-compiling interpreter must write back before it takes the trap).
 */
#include "test_macros.h"

  .data
  .balign 16
trap_data:
  .word 0, 0, 0, 0

TEST_BEGIN

  TEST_TRAP 1, CAUSE_MACHINE_ECALL, "ecall", tval=x0

  TEST_TRAP 2, CAUSE_BREAKPOINT, ".Lebreak_2: ebreak"
  /* mtval is either 0 or the address of the ebreak (Privileged 3.1.16). */
  csrr a3, mtval
  beqz a3, 1f
  la a4, .Lebreak_2
  CHECK_EQ a3, a4
1:

  /* Encodings that are not RV32IMAC + Zicsr + Zifencei instructions. */
  TEST_ILLEGAL 10, ".word 0x00000000"   /* all zeros is defined to be illegal */
  TEST_ILLEGAL 11, ".word 0xffffffff"   /* all ones too */
  TEST_ILLEGAL 12, ".word 0x0020b6af"   /* amoadd.d a3, sp, (ra): RV64 only */
  TEST_ILLEGAL 13, ".word 0x0000a687"   /* flw fa3, 0(ra): no F extension */
  TEST_ILLEGAL 14, ".word 0x0000b683"   /* ld a3, 0(ra): RV64 only */
  TEST_ILLEGAL 15, ".word 0x00d0b023"   /* sd a3, 0(ra): RV64 only */
  TEST_ILLEGAL 16, ".word 0x0000f683"   /* load with funct3 = 111 */
  TEST_ILLEGAL 17, ".word 0x00d0c023"   /* store with funct3 = 100 */
  TEST_ILLEGAL 18, ".word 0x00d5a063"   /* branch with funct3 = 010 */
  TEST_ILLEGAL 19, ".word 0x00d5b063"   /* branch with funct3 = 011 */
  TEST_ILLEGAL 20, ".word 0x000596e7"   /* jalr with funct3 = 001 */
  TEST_ILLEGAL 21, ".word 0x0015869b"   /* addiw a3, a1, 1: RV64 only */
  TEST_ILLEGAL 22, ".word 0x00b586bb"   /* addw a3, a1, a1: RV64 only */
  TEST_ILLEGAL 23, ".word 0x04b586b3"   /* OP with funct7 = 0000010 */
  TEST_ILLEGAL 24, ".word 0x40b5f6b3"   /* and with funct7 = 0100000 */
  TEST_ILLEGAL 25, ".word 0x40b596b3"   /* sll with funct7 = 0100000 */
  TEST_ILLEGAL 26, ".word 0x02059693"   /* slli a3, a1, 32: shamt[5] is reserved in RV32 */
  TEST_ILLEGAL 27, ".word 0x0205d693"   /* srli a3, a1, 32 */
  TEST_ILLEGAL 28, ".word 0x4205d693"   /* srai a3, a1, 32 */
  TEST_ILLEGAL 29, ".word 0x2005d693"   /* srli with imm[11:5] = 0010000 */
  TEST_ILLEGAL 30, ".word 0x0000068b"   /* custom-0 opcode */
  TEST_ILLEGAL 31, ".word 0x0000406b"   /* reserved opcode 1101011 */
  TEST_ILLEGAL 32, ".word 0x10200073"   /* sret: no S mode */
#if !ISA_QEMU /* QEMU executes sfence.vma in M-mode even without S-mode */
  TEST_ILLEGAL 33, ".word 0x12000073"   /* sfence.vma: no S mode */
#endif
  TEST_ILLEGAL 34, ".word 0x7b200073"   /* dret outside debug mode */
  TEST_ILLEGAL 35, ".word 0x000046f3"   /* SYSTEM with funct3 = 100 */
  TEST_ILLEGAL 36, ".word 0x00300073"   /* ECALL/EBREAK space, imm = 3 */

  /* A reserved compressed parcel (c.lwsp x0) is illegal; mtval holds the 16-bit parcel only
     (Privileged 3.1.16: the shorter of the faulting instruction and ILEN bits). */
  li a3, 0x5ca1ab1e
  TEST_TRAP 40, CAUSE_ILLEGAL_INSTRUCTION, ".Lcompressed_40: .word 0x00014002"
  CHECK a3, 0x5ca1ab1e
  csrr a3, mtval
  CHECK a3, 0x4002

  /* Trap entry saves MIE in MPIE and clears MIE; mret restores it and sets MPIE. No interrupt
     is enabled in mie, so MIE = 1 is harmless here. */
  li TESTNUM, 50
  la t0, .Ltrap_50
  csrw mtvec, t0
  li t0, MSTATUS_MIE | MSTATUS_MPIE
  csrc mstatus, t0
  csrsi mstatus, MSTATUS_MIE
  li a5, 0
.Lecall_50:
  ecall
  j .Lresumed_51
  .balign 4
.Ltrap_50:
  li a5, 1
  csrr a3, mstatus
  andi a3, a3, MSTATUS_MIE | MSTATUS_MPIE
  CHECK a3, MSTATUS_MPIE
  CHECK_CSR mcause, CAUSE_MACHINE_ECALL
  csrr a3, mepc
  la a4, .Lecall_50
  CHECK_EQ a3, a4
  /* Resume after the ecall. MPP is set for harts that have a lower mode (ours reads 3). */
  addi a3, a3, 4
  csrw mepc, a3
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  mret
  j fail
  /* mret returned to mepc, the instruction after the ecall, and restored MIE = 1. */
.Lresumed_51:
  li TESTNUM, 51
  CHECK a5, 1
  csrr a3, mstatus
  andi a3, a3, MSTATUS_MIE | MSTATUS_MPIE
  CHECK a3, MSTATUS_MIE | MSTATUS_MPIE
  csrci mstatus, MSTATUS_MIE
  la t0, isa_trap_unexpected
  csrw mtvec, t0

  /* The same with MIE = 0 before the trap: it stays 0 and mret leaves MPIE = 1. */
  li TESTNUM, 52
  la t0, .Ltrap_52
  csrw mtvec, t0
  li t0, MSTATUS_MIE | MSTATUS_MPIE
  csrc mstatus, t0
  ebreak
  j fail
  .balign 4
.Ltrap_52:
  csrr a3, mstatus
  andi a3, a3, MSTATUS_MIE | MSTATUS_MPIE
  CHECK a3, 0
  CHECK_CSR mcause, CAUSE_BREAKPOINT
  la a3, .Lafter_52
  csrw mepc, a3
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  mret
  j fail
.Lafter_52:
  li TESTNUM, 53
  csrr a3, mstatus
  andi a3, a3, MSTATUS_MIE | MSTATUS_MPIE
  CHECK a3, MSTATUS_MPIE
  la t0, isa_trap_unexpected
  csrw mtvec, t0

  /* mret outside a trap simply jumps to mepc and moves MPIE to MIE: MPIE = 1 gives MIE = 1,
     MPIE = 0 gives MIE = 0; MPIE reads 1 afterwards either way. */
  li TESTNUM, 54
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  li t0, MSTATUS_MPIE | MSTATUS_MPP
  csrs mstatus, t0
  la t0, .Lafter_54
  csrw mepc, t0
  mret
  j fail
.Lafter_54:
  csrr a3, mstatus
  andi a3, a3, MSTATUS_MIE | MSTATUS_MPIE
  CHECK a3, MSTATUS_MIE | MSTATUS_MPIE
  li TESTNUM, 55
  li t0, MSTATUS_MPIE
  csrc mstatus, t0
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  la t0, .Lafter_55
  csrw mepc, t0
  mret
  j fail
.Lafter_55:
  csrr a3, mstatus
  andi a3, a3, MSTATUS_MIE | MSTATUS_MPIE
  CHECK a3, MSTATUS_MPIE
  csrci mstatus, MSTATUS_MIE

  /* mepc[0] reads as zero, and mret goes where mepc reads: writing L + 1 returns to L
     (Privileged 3.1.14; with C, IALIGN = 16 and bit 1 stays, fetch_align.S). */
  li TESTNUM, 56
  la t0, .Lafter_56 + 1
  csrw mepc, t0
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  mret
  j fail
  j fail
.Lafter_56:
  csrci mstatus, MSTATUS_MIE

  /* A trap in the middle of straight-line code: everything before it has happened (registers
     and memory), nothing after it has, and the handler sees the registers as they were. */
  li TESTNUM, 60
  la a1, trap_data
  li a2, 0x600d
  li a0, 10
  li a4, 20
  li a5, 30
  la t0, .Ltrap_60
  csrw mtvec, t0
  addi a0, a0, 1
  sw a2, 0(a1)
  addi a4, a4, 1
.Lecall_60:
  ecall
  addi a0, a0, 100
  sw a2, 4(a1)
  li a5, 0
  j fail
  .balign 4
.Ltrap_60:
  CHECK a0, 11
  CHECK a4, 21
  CHECK a5, 30
  lw a3, 0(a1)
  CHECK a3, 0x600d
  lw a3, 4(a1)
  CHECK a3, 0
  csrr a3, mepc
  la t0, .Lecall_60
  CHECK_EQ a3, t0
  la t0, isa_trap_unexpected
  csrw mtvec, t0

  /* An illegal instruction inside a loop that has run many times, so that a cached or compiled
     form of the loop body is in use when it finally traps. */
  li TESTNUM, 61
  la t0, .Ltrap_61
  csrw mtvec, t0
  li a0, 0
  li a1, 1000
.Lloop_61:
  addi a0, a0, 1
  bne a0, a1, .Lloop_61_next
.Lillegal_61:
  .word 0
.Lloop_61_next:
  addi a4, a0, 0
  j .Lloop_61
  .balign 4
.Ltrap_61:
  CHECK a0, 1000
  CHECK a4, 999
  CHECK_CSR mcause, CAUSE_ILLEGAL_INSTRUCTION
  CHECK_CSR mtval, 0
  csrr a3, mepc
  la t0, .Lillegal_61
  CHECK_EQ a3, t0
  la t0, isa_trap_unexpected
  csrw mtvec, t0

  /* Traps in a vectored mtvec go to BASE whatever their cause. */
  li TESTNUM, 62
  la t0, .Lvector_62
  ori t0, t0, MTVEC_VECTORED
  csrw mtvec, t0
  ecall
  j fail
  .balign 256
.Lvector_62:
  j .Lvector_62_ok
  .rept 15
  j fail
  .endr
.Lvector_62_ok:
  CHECK_CSR mcause, CAUSE_MACHINE_ECALL
  la t0, isa_trap_unexpected
  csrw mtvec, t0

TEST_END
