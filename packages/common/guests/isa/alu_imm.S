/*
 * Register-immediate instructions (Unprivileged manual, section 2.4.1): addi, slti, sltiu, xori,
 * ori, andi, slli, srli, srai, lui, auipc. Covers sign extension of the 12-bit immediate, the
 * extremes of both operands, wrap-around, x0 as source and destination, and rd == rs1.
 */
#include "test_macros.h"

TEST_BEGIN

  /* addi: the immediate is sign-extended; overflow wraps silently. */
  TEST_IMM 1, addi, 0x00000000, 0x00000000, 0
  TEST_IMM 2, addi, 0x00000002, 0x00000001, 1
  TEST_IMM 3, addi, 0x0000000a, 0x00000003, 7
  TEST_IMM 4, addi, 0xfffff800, 0x00000000, -2048
  TEST_IMM 5, addi, 0x000007ff, 0x00000000, 2047
  TEST_IMM 6, addi, 0x80000000, 0x7fffffff, 1
  TEST_IMM 7, addi, 0x7fffffff, 0x80000000, -1
  TEST_IMM 8, addi, 0x00000000, 0xffffffff, 1
  TEST_IMM 9, addi, 0x800007fe, 0x7fffffff, 2047
  TEST_IMM 10, addi, 0x7ffff800, 0x80000000, -2048
  TEST_IMM 11, addi, 0xfffffffe, 0xffffffff, -1
  TEST_IMM 12, addi, 0x12344e79, 0x12345678, -2047
  TEST_IMM_X0 13, addi, 0x000007ff, 2047
  TEST_IMM_X0 14, addi, 0xfffff800, -2048

  /* slti: signed comparison with the sign-extended immediate. */
  TEST_IMM 20, slti, 0, 0x00000000, 0
  TEST_IMM 21, slti, 0, 0x00000001, 1
  TEST_IMM 22, slti, 1, 0x00000003, 7
  TEST_IMM 23, slti, 0, 0x00000007, 3
  TEST_IMM 24, slti, 1, 0x80000000, 0
  TEST_IMM 25, slti, 0, 0x7fffffff, -1
  TEST_IMM 26, slti, 1, 0xffffffff, 2047
  TEST_IMM 27, slti, 0, 0x00000000, -2048
  TEST_IMM 28, slti, 0, 0xfffff800, -2048
  TEST_IMM 29, slti, 1, 0xfffff7ff, -2048
  TEST_IMM 30, slti, 1, 0x80000000, -2048
  TEST_IMM 31, slti, 0, 0x000007ff, 2047
  TEST_IMM 32, slti, 1, 0x000007fe, 2047
  TEST_IMM_X0 33, slti, 1, 1
  TEST_IMM_X0 34, slti, 0, -1

  /* sltiu: the immediate is sign-extended, then compared unsigned. */
  TEST_IMM 40, sltiu, 0, 0x00000000, 0
  TEST_IMM 41, sltiu, 1, 0x00000000, 1
  TEST_IMM 42, sltiu, 0, 0x00000001, 1
  TEST_IMM 43, sltiu, 1, 0x00000000, -1
  TEST_IMM 44, sltiu, 1, 0xfffffffe, -1
  TEST_IMM 45, sltiu, 0, 0xffffffff, -1
  TEST_IMM 46, sltiu, 0, 0x80000000, 2047
  TEST_IMM 47, sltiu, 1, 0x000007ff, -2048
  TEST_IMM 48, sltiu, 1, 0x7fffffff, -2048
  TEST_IMM 49, sltiu, 0, 0xfffff800, -2048
  TEST_IMM 50, sltiu, 1, 0xfffff7ff, -2048
  TEST_IMM_X0 51, sltiu, 1, -1
  TEST_IMM_X0 52, sltiu, 0, 0

  /* xori, ori, andi: the immediate is sign-extended before the bitwise operation. */
  TEST_IMM 60, xori, 0xff00f00f, 0x00ff0f00, -241
  TEST_IMM 61, xori, 0x00ff0ff0, 0x00ff08ff, 0x70f
  TEST_IMM 62, xori, 0xf00ff0ff, 0x0ff00ff0, -241
  TEST_IMM 63, xori, 0x00000000, 0xffffffff, -1
  TEST_IMM 64, xori, 0xedcba987, 0x12345678, -1
  TEST_IMM 65, xori, 0x800007ff, 0x80000000, 0x7ff
  TEST_IMM_X0 66, xori, 0xfffff800, -2048

  TEST_IMM 70, ori, 0xffffff0f, 0xff00ff00, -241
  TEST_IMM 71, ori, 0xffffffff, 0x0ff00ff0, -241
  TEST_IMM 72, ori, 0x00ff07ff, 0x00ff00ff, 0x70f
  TEST_IMM 73, ori, 0xfffff800, 0x00000000, -2048
  TEST_IMM 74, ori, 0x12345678, 0x12345678, 0
  TEST_IMM_X0 75, ori, 0x000007ff, 0x7ff

  TEST_IMM 80, andi, 0x00000700, 0xff00ff00, 0x7ff
  TEST_IMM 81, andi, 0x00000700, 0x0ff00ff0, 0x70f
  TEST_IMM 82, andi, 0xff00ff00, 0xff00ff00, -241
  TEST_IMM 83, andi, 0x12345000, 0x12345678, -2048
  TEST_IMM 84, andi, 0x00000000, 0xffffffff, 0
  TEST_IMM 85, andi, 0xffffffff, 0xffffffff, -1
  TEST_IMM_X0 86, andi, 0, -1

  /* Shifts by an immediate: the shift amount is imm[4:0]. */
  TEST_IMM 90, slli, 0x21212121, 0x21212121, 0
  TEST_IMM 91, slli, 0x42424242, 0x21212121, 1
  TEST_IMM 92, slli, 0x90909080, 0x21212121, 7
  TEST_IMM 93, slli, 0x48484000, 0x21212121, 14
  TEST_IMM 94, slli, 0x80000000, 0x21212121, 31
  TEST_IMM 95, slli, 0x00000000, 0x80000000, 1
  TEST_IMM 96, slli, 0x03030302, 0x81818181, 1
  TEST_IMM 97, slli, 0xc0000000, 0x7fffffff, 30
  TEST_IMM 98, slli, 0x80000000, 0xffffffff, 31
  TEST_IMM_X0 99, slli, 0, 31

  TEST_IMM 100, srli, 0x21212121, 0x21212121, 0
  TEST_IMM 101, srli, 0x10909090, 0x21212121, 1
  TEST_IMM 102, srli, 0x00424242, 0x21212121, 7
  TEST_IMM 103, srli, 0x00008484, 0x21212121, 14
  TEST_IMM 104, srli, 0x00000000, 0x21212121, 31
  TEST_IMM 105, srli, 0x40000000, 0x80000000, 1
  TEST_IMM 106, srli, 0x00000001, 0x80000000, 31
  TEST_IMM 107, srli, 0x01030303, 0x81818181, 7
  TEST_IMM 108, srli, 0x00020606, 0x81818181, 14
  TEST_IMM 109, srli, 0x00000001, 0xffffffff, 31
  TEST_IMM_X0 110, srli, 0, 1

  TEST_IMM 120, srai, 0x21212121, 0x21212121, 0
  TEST_IMM 121, srai, 0x10909090, 0x21212121, 1
  TEST_IMM 122, srai, 0x00424242, 0x21212121, 7
  TEST_IMM 123, srai, 0x00000000, 0x21212121, 31
  TEST_IMM 124, srai, 0xc0000000, 0x80000000, 1
  TEST_IMM 125, srai, 0xffffffff, 0x80000000, 31
  TEST_IMM 126, srai, 0xc0c0c0c0, 0x81818181, 1
  TEST_IMM 127, srai, 0xff030303, 0x81818181, 7
  TEST_IMM 128, srai, 0xfffe0606, 0x81818181, 14
  TEST_IMM 129, srai, 0x00000001, 0x7fffffff, 30
  TEST_IMM 130, srai, 0x81818181, 0x81818181, 0
  TEST_IMM_X0 131, srai, 0, 31

  /* lui: the 20-bit immediate fills bits 31:12, the low bits are zero. */
  li TESTNUM, 140
  lui a3, 0
  CHECK a3, 0
  li TESTNUM, 141
  li a3, -1
  lui a3, 0xfffff
  CHECK a3, 0xfffff000
  li TESTNUM, 142
  lui a3, 0x7ffff
  CHECK a3, 0x7ffff000
  li TESTNUM, 143
  lui a3, 0x80000
  CHECK a3, 0x80000000
  li TESTNUM, 144
  lui a3, 0x12345
  addi a3, a3, 0x678
  CHECK a3, 0x12345678
  li TESTNUM, 145
  lui x0, 0xfffff
  bnez x0, fail

  /* auipc: pc of the auipc itself plus the shifted immediate; checked against absolute addresses
     built with lui/addi so that pc-relative addressing is not its own oracle. */
  li TESTNUM, 150
.Lauipc_0:
  auipc a3, 0
  lui a4, %hi(.Lauipc_0)
  addi a4, a4, %lo(.Lauipc_0)
  CHECK_EQ a3, a4
  li TESTNUM, 151
.Lauipc_1:
  auipc a3, 1
  lui a4, %hi(.Lauipc_1 + 0x1000)
  addi a4, a4, %lo(.Lauipc_1 + 0x1000)
  CHECK_EQ a3, a4
  li TESTNUM, 152
.Lauipc_2:
  auipc a3, 0xfffff
  lui a4, %hi(.Lauipc_2 - 0x1000)
  addi a4, a4, %lo(.Lauipc_2 - 0x1000)
  CHECK_EQ a3, a4
  li TESTNUM, 153
.Lauipc_3:
  auipc a3, 0x80000
  lui a4, %hi(.Lauipc_3 + 0x80000000)
  addi a4, a4, %lo(.Lauipc_3 + 0x80000000)
  CHECK_EQ a3, a4
  li TESTNUM, 154
  auipc x0, 0x12345
  bnez x0, fail

  /* The canonical nop and other writes to x0 change nothing. */
  li TESTNUM, 160
  li a1, 0x5a5a5a5a
  addi x0, x0, 0
  addi x0, a1, 1
  bnez x0, fail
  CHECK a1, 0x5a5a5a5a

TEST_END
