/*
 * The Zicsr instructions (Unprivileged manual, chapter 9) and the access rules of the Privileged
 * manual (section 2.1): csrrw, csrrs, csrrc and their immediate forms return the old value and
 * write the new one; rd = x0 still writes; csrrs/csrrc with rs1 = x0 (or uimm = 0) do not write
 * and so may read read-only CSRs, while csrrw/csrrwi always write; writes to read-only CSRs
 * (address bits 11:10 = 11) and any access to a CSR that does not exist raise illegal
 * instruction with mtval = the instruction bits and leave rd alone. Also the machine CSRs that
 * every M-mode implementation has: mscratch, mepc (bits 1:0 read 0 without the C extension),
 * mtval, mcause, mtvec, and mhartid = 0 on a single-hart machine.
 */
#include "test_macros.h"

TEST_BEGIN

  /* csrrw swaps. */
  li TESTNUM, 1
  li a1, 0x12345678
  csrw mscratch, a1
  li a2, 0xdeadbeef
  csrrw a3, mscratch, a2
  CHECK a3, 0x12345678
  CHECK_CSR mscratch, 0xdeadbeef
  CHECK a2, 0xdeadbeef

  /* csrrs sets the bits of rs1, csrrc clears them; both return the old value. */
  li TESTNUM, 2
  li a1, 0xf0f0f0f0
  csrw mscratch, a1
  li a2, 0x0f0000ff
  csrrs a3, mscratch, a2
  CHECK a3, 0xf0f0f0f0
  CHECK_CSR mscratch, 0xfff0f0ff
  li TESTNUM, 3
  li a2, 0x00ff00f0
  csrrc a3, mscratch, a2
  CHECK a3, 0xfff0f0ff
  CHECK_CSR mscratch, 0xff00f00f

  /* The immediate forms take a 5-bit zero-extended immediate (31 is 0x1f, not -1). */
  li TESTNUM, 4
  csrrwi a3, mscratch, 31
  CHECK a3, 0xff00f00f
  CHECK_CSR mscratch, 0x0000001f
  li TESTNUM, 5
  csrrci a3, mscratch, 0x15
  CHECK a3, 0x1f
  CHECK_CSR mscratch, 0x0000000a
  li TESTNUM, 6
  csrrsi a3, mscratch, 0x11
  CHECK a3, 0x0a
  CHECK_CSR mscratch, 0x0000001b
  li TESTNUM, 7
  csrrwi a3, mscratch, 0
  CHECK a3, 0x1b
  CHECK_CSR mscratch, 0

  /* rd = x0: the write still happens (csrw, csrs, csrc, and the immediate forms). */
  li TESTNUM, 8
  li a1, 0x55aa55aa
  csrrw x0, mscratch, a1
  CHECK_CSR mscratch, 0x55aa55aa
  li a1, 0x0000ffff
  csrrs x0, mscratch, a1
  CHECK_CSR mscratch, 0x55aaffff
  li a1, 0x00ff00ff
  csrrc x0, mscratch, a1
  CHECK_CSR mscratch, 0x5500ff00
  csrrwi x0, mscratch, 7
  CHECK_CSR mscratch, 7
  csrrsi x0, mscratch, 8
  CHECK_CSR mscratch, 15
  csrrci x0, mscratch, 3
  CHECK_CSR mscratch, 12
  bnez x0, fail

  /* rs1 = x0 with csrrs/csrrc, and uimm = 0 with csrrsi/csrrci, only read. csrrw from x0 writes
     zero. */
  li TESTNUM, 9
  li a1, 0x87654321
  csrw mscratch, a1
  csrrs a3, mscratch, x0
  CHECK a3, 0x87654321
  csrrc a3, mscratch, x0
  CHECK a3, 0x87654321
  csrrsi a3, mscratch, 0
  CHECK a3, 0x87654321
  csrrci a3, mscratch, 0
  CHECK a3, 0x87654321
  CHECK_CSR mscratch, 0x87654321
  csrrw a3, mscratch, x0
  CHECK a3, 0x87654321
  CHECK_CSR mscratch, 0

  /* A source register that holds zero sets or clears nothing. */
  li TESTNUM, 10
  li a1, 0x0f0f0f0f
  csrw mscratch, a1
  li a2, 0
  csrrs a3, mscratch, a2
  csrrc a3, mscratch, a2
  CHECK a3, 0x0f0f0f0f
  CHECK_CSR mscratch, 0x0f0f0f0f

  /* rd == rs1: the old CSR value goes to rd, the old register value to the CSR. */
  li TESTNUM, 11
  li a1, 0x11111111
  csrw mscratch, a1
  li a1, 0x22222222
  csrrw a1, mscratch, a1
  CHECK a1, 0x11111111
  CHECK_CSR mscratch, 0x22222222
  li a1, 0x0000000f
  csrrs a1, mscratch, a1
  CHECK a1, 0x22222222
  CHECK_CSR mscratch, 0x2222222f
  li a1, 0x20000000
  csrrc a1, mscratch, a1
  CHECK a1, 0x2222222f
  CHECK_CSR mscratch, 0x0222222f

  /* Read-write machine CSRs hold what is written to them. */
  li TESTNUM, 20
  li a1, 0xffffffff
  csrw mscratch, a1
  CHECK_CSR mscratch, 0xffffffff
  li TESTNUM, 21
  li a1, 0x80001234
  csrw mtval, a1
  CHECK_CSR mtval, 0x80001234
  li a1, 0xffffffff
  csrw mtval, a1
  CHECK_CSR mtval, 0xffffffff
  csrw mtval, zero
  CHECK_CSR mtval, 0
  li TESTNUM, 22
  li a1, CAUSE_ILLEGAL_INSTRUCTION
  csrw mcause, a1
  CHECK_CSR mcause, CAUSE_ILLEGAL_INSTRUCTION
  li a1, CAUSE_INTERRUPT | IRQ_M_TIMER
  csrw mcause, a1
  CHECK_CSR mcause, CAUSE_INTERRUPT | IRQ_M_TIMER
  li TESTNUM, 23
  li a1, 0x80001000
  csrw mepc, a1
  CHECK_CSR mepc, 0x80001000
  li a1, 0xfffffffc
  csrw mepc, a1
  CHECK_CSR mepc, 0xfffffffc

  /* mepc[0] is always zero; with the C extension (IALIGN = 16) bit 1 is kept (Privileged
     3.1.14). */
  li TESTNUM, 24
  li a1, 0x80001003
  csrw mepc, a1
  CHECK_CSR mepc, 0x80001002
  li a1, 0x80001002
  csrw mepc, a1
  CHECK_CSR mepc, 0x80001002
  li a1, 0x80001001
  csrw mepc, a1
  CHECK_CSR mepc, 0x80001000

  /* mtvec in direct mode holds a 4-byte-aligned base. */
  li TESTNUM, 25
  li a1, 0x80001000
  csrw mtvec, a1
  CHECK_CSR mtvec, 0x80001000
  la a1, isa_trap_unexpected
  csrw mtvec, a1
  csrr a3, mtvec
  CHECK_EQ a3, a1

  /* One hart, numbered 0. */
  li TESTNUM, 26
  li a3, -1
  csrr a3, mhartid
  CHECK a3, 0

  /* Read-only CSRs may be read with every form that does not write. */
  li TESTNUM, 30
  csrrs a3, mhartid, x0
  csrrc a3, mhartid, x0
  csrrsi a3, mhartid, 0
  csrrci a3, mhartid, 0
  csrrs a3, mvendorid, x0
  csrrs a3, marchid, x0
  csrrs a3, mimpid, x0
  csrrs a3, cycle, x0
  csrrc a3, time, x0
  csrrsi a3, instret, 0
  csrrci a3, cycleh, 0
  csrrs a3, timeh, x0
  csrrs a3, instreth, x0

  /* Writes to read-only CSRs are illegal, whatever the form, whatever rd. */
  li a1, 0x1234
  li a2, 0
  TEST_ILLEGAL 40, "csrrw a3, mhartid, a1"
  TEST_ILLEGAL 41, "csrrw x0, mhartid, x0"
  TEST_ILLEGAL 42, "csrrwi a3, mhartid, 0"
  TEST_ILLEGAL 43, "csrrs a3, mhartid, a1"
  TEST_ILLEGAL 44, "csrrc a3, mhartid, a1"
  TEST_ILLEGAL 45, "csrrsi a3, mhartid, 1"
  TEST_ILLEGAL 46, "csrrci a3, mhartid, 1"
  TEST_ILLEGAL 47, "csrrw a3, mvendorid, a1"
  TEST_ILLEGAL 48, "csrrw a3, marchid, a1"
  TEST_ILLEGAL 49, "csrrw a3, mimpid, a1"
  TEST_ILLEGAL 50, "csrrw a3, cycle, a1"
  TEST_ILLEGAL 51, "csrrw a3, time, a1"
  TEST_ILLEGAL 52, "csrrw a3, instret, a1"
  TEST_ILLEGAL 53, "csrrw a3, cycleh, a1"
  TEST_ILLEGAL 54, "csrrw a3, timeh, a1"
  TEST_ILLEGAL 55, "csrrw a3, instreth, a1"
  TEST_ILLEGAL 56, "csrrsi a3, cycle, 4"
  TEST_ILLEGAL 57, "csrrwi x0, time, 0"
  li TESTNUM, 58
  CHECK_CSR mhartid, 0

  /* rs1 other than x0 counts as a write attempt even when it holds zero (Unprivileged 9.1).
     QEMU decides on the value instead. */
#if !ISA_QEMU
  TEST_ILLEGAL 60, "csrrs a3, mhartid, a2"
  TEST_ILLEGAL 61, "csrrc a3, cycle, a2"
#endif

  /* CSRs that do not exist on an M-mode-only RV32IM machine: supervisor CSRs, floating-point
     CSRs, and custom ones. Reading is as illegal as writing. */
  TEST_ILLEGAL 70, "csrr a3, sstatus"
  TEST_ILLEGAL 71, "csrr a3, satp"
  TEST_ILLEGAL 72, "csrw satp, a1"
  TEST_ILLEGAL 73, "csrr a3, fcsr"
  TEST_ILLEGAL 74, "csrr a3, 0x7c0"
  TEST_ILLEGAL 75, "csrw 0x7c0, a1"
  TEST_ILLEGAL 76, "csrr a3, 0xfc0"
  TEST_ILLEGAL 77, "csrr a3, 0x800"
  TEST_ILLEGAL 78, "csrrsi a3, 0xbc0, 0"
  TEST_ILLEGAL 79, "csrr a3, stvec"

  /* Registers other than the destination survive an illegal CSR access. */
  li TESTNUM, 80
  CHECK a1, 0x1234
  CHECK a2, 0

TEST_END
