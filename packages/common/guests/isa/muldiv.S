/*
 * The M extension (Unprivileged manual, chapter 7): mul, mulh, mulhsu, mulhu, div, divu, rem,
 * remu. Covers the signed/unsigned mixes of the high-half products at their extremes, division
 * truncating toward zero with the remainder taking the dividend's sign, and the special cases of
 * section 7.2 (table 7.1): division by zero gives all ones (remainder: the dividend) and the
 * signed overflow -2^31 / -1 gives -2^31 (remainder 0), neither raising an exception.
 * Expected values were computed with arbitrary-precision integers from those definitions.
 */
#include "test_macros.h"

TEST_BEGIN

  TEST_RR 1, mul, 0x00000000, 0x00000000, 0x00000000
  TEST_RR 2, mul, 0x00000001, 0x00000001, 0x00000001
  TEST_RR 3, mul, 0x00000015, 0x00000003, 0x00000007
  TEST_RR 4, mul, 0xffffffeb, 0xfffffffd, 0x00000007
  TEST_RR 5, mul, 0x00000001, 0x7fffffff, 0x7fffffff
  TEST_RR 6, mul, 0x00000000, 0x80000000, 0x80000000
  TEST_RR 7, mul, 0x00000001, 0xffffffff, 0xffffffff
  TEST_RR 8, mul, 0x80000000, 0x80000000, 0xffffffff
  TEST_RR 9, mul, 0x242d2080, 0x12345678, 0x9abcdef0
  TEST_RR 10, mul, 0xffffffff, 0x0000ffff, 0x00010001
  TEST_RR 11, mul, 0xc0000000, 0xffff8000, 0x00008000
  TEST_RR 12, mul, 0x00000001, 0xaaaaaaab, 0x00000003
  TEST_RR_SAME 13, mul, 0x00000009, 0xfffffffd
  TEST_RR_X0 14, mul, 0x00000000, 0x00000000, 0xfffffff9

  TEST_RR 20, mulh, 0x00000000, 0x00000000, 0x00000000
  TEST_RR 21, mulh, 0x00000000, 0x00000001, 0x00000001
  TEST_RR 22, mulh, 0x00000000, 0x00000003, 0x00000007
  TEST_RR 23, mulh, 0xffffffff, 0xfffffffd, 0x00000007
  TEST_RR 24, mulh, 0x3fffffff, 0x7fffffff, 0x7fffffff
  TEST_RR 25, mulh, 0x40000000, 0x80000000, 0x80000000
  TEST_RR 26, mulh, 0xc0000000, 0x80000000, 0x7fffffff
  TEST_RR 27, mulh, 0x00000000, 0xffffffff, 0xffffffff
  TEST_RR 28, mulh, 0x00000000, 0x80000000, 0xffffffff
  TEST_RR 29, mulh, 0xffffffff, 0xffffffff, 0x00000001
  TEST_RR 30, mulh, 0xf8cc93d6, 0x12345678, 0x9abcdef0
  TEST_RR 31, mulh, 0x00000001, 0x00010000, 0x00010000
  TEST_RR 32, mulh, 0xffffffff, 0xffff0000, 0x00010000
  TEST_RR_SAME 33, mulh, 0x40000000, 0x80000000
  TEST_RR_X0 34, mulh, 0x00000000, 0x00000000, 0x80000000

  TEST_RR 40, mulhsu, 0x00000000, 0x00000000, 0x00000000
  TEST_RR 41, mulhsu, 0x00000000, 0x00000001, 0x00000001
  TEST_RR 42, mulhsu, 0x00000000, 0x00000003, 0x00000007
  TEST_RR 43, mulhsu, 0xffffffff, 0xfffffffd, 0x00000007
  TEST_RR 44, mulhsu, 0x7ffffffe, 0x7fffffff, 0xffffffff
  TEST_RR 45, mulhsu, 0x80000000, 0x80000000, 0xffffffff
  TEST_RR 46, mulhsu, 0xc0000000, 0x80000000, 0x80000000
  TEST_RR 47, mulhsu, 0xffffffff, 0xffffffff, 0xffffffff
  TEST_RR 48, mulhsu, 0xffffffff, 0xffffffff, 0x00000001
  TEST_RR 49, mulhsu, 0x00000000, 0x00000001, 0xffffffff
  TEST_RR 50, mulhsu, 0x0b00ea4e, 0x12345678, 0x9abcdef0
  TEST_RR 51, mulhsu, 0xf8cc93d6, 0x9abcdef0, 0x12345678
  TEST_RR 52, mulhsu, 0xffffffff, 0xffff0000, 0x00010000
  TEST_RR_SAME 53, mulhsu, 0xc0000000, 0x80000000
  TEST_RR_X0 54, mulhsu, 0x00000000, 0x00000000, 0x80000000

  TEST_RR 60, mulhu, 0x00000000, 0x00000000, 0x00000000
  TEST_RR 61, mulhu, 0x00000000, 0x00000001, 0x00000001
  TEST_RR 62, mulhu, 0x00000000, 0x00000003, 0x00000007
  TEST_RR 63, mulhu, 0x00000006, 0xfffffffd, 0x00000007
  TEST_RR 64, mulhu, 0xfffffffe, 0xffffffff, 0xffffffff
  TEST_RR 65, mulhu, 0x40000000, 0x80000000, 0x80000000
  TEST_RR 66, mulhu, 0x7fffffff, 0x80000000, 0xffffffff
  TEST_RR 67, mulhu, 0x3fffffff, 0x7fffffff, 0x7fffffff
  TEST_RR 68, mulhu, 0x00000000, 0xffffffff, 0x00000001
  TEST_RR 69, mulhu, 0x0b00ea4e, 0x12345678, 0x9abcdef0
  TEST_RR 70, mulhu, 0x00000001, 0x00010000, 0x00010000
  TEST_RR 71, mulhu, 0xfffe0001, 0xffff0000, 0xffff0000
  TEST_RR_SAME 72, mulhu, 0xfffffffe, 0xffffffff
  TEST_RR_X0 73, mulhu, 0x00000000, 0x00000000, 0xfffffff9

  /* Signed division truncates toward zero. */
  TEST_RR 80, div, 0x00000003, 0x00000014, 0x00000006
  TEST_RR 81, div, 0xfffffffd, 0xffffffec, 0x00000006
  TEST_RR 82, div, 0xfffffffd, 0x00000014, 0xfffffffa
  TEST_RR 83, div, 0x00000003, 0xffffffec, 0xfffffffa
  TEST_RR 84, div, 0xfffffffd, 0xfffffff9, 0x00000002
  TEST_RR 85, div, 0x00000001, 0x00000007, 0x00000007
  TEST_RR 86, div, 0x00000000, 0x00000000, 0x00000005
  TEST_RR 87, div, 0x80000000, 0x80000000, 0x00000001
  /* Overflow: -2^31 / -1 = -2^31. */
  TEST_RR 88, div, 0x80000000, 0x80000000, 0xffffffff
  TEST_RR 89, div, 0x80000001, 0x7fffffff, 0xffffffff
  TEST_RR 90, div, 0x00000001, 0x80000000, 0x80000000
  TEST_RR 91, div, 0xc0000000, 0x80000000, 0x00000002
  /* Division by zero: all ones, whatever the sign of the dividend. */
  TEST_RR 92, div, 0xffffffff, 0x00000014, 0x00000000
  TEST_RR 93, div, 0xffffffff, 0x00000000, 0x00000000
  TEST_RR 94, div, 0xffffffff, 0xffffffff, 0x00000000
  TEST_RR 95, div, 0xffffffff, 0x80000000, 0x00000000
  TEST_RR_SAME 96, div, 0x00000001, 0x80000000
  TEST_RR_X0 97, div, 0x00000000, 0xffffffff, 0x80000000

  TEST_RR 100, divu, 0x00000003, 0x00000014, 0x00000006
  TEST_RR 101, divu, 0x2aaaaaa7, 0xffffffec, 0x00000006
  TEST_RR 102, divu, 0x00000000, 0x00000014, 0xfffffffa
  TEST_RR 103, divu, 0xffffffff, 0xffffffff, 0x00000001
  TEST_RR 104, divu, 0x00000001, 0xffffffff, 0xffffffff
  TEST_RR 105, divu, 0x00000000, 0x80000000, 0xffffffff
  TEST_RR 106, divu, 0x40000000, 0x80000000, 0x00000002
  TEST_RR 107, divu, 0x00000001, 0x00000007, 0x00000007
  TEST_RR 108, divu, 0x00000000, 0x00000000, 0x00000005
  TEST_RR 109, divu, 0xffffffff, 0x00000014, 0x00000000
  TEST_RR 110, divu, 0xffffffff, 0x00000000, 0x00000000
  TEST_RR 111, divu, 0xffffffff, 0xffffffff, 0x00000000
  TEST_RR_SAME 112, divu, 0x00000001, 0xfffffff0
  TEST_RR_X0 113, divu, 0x00000000, 0xffffffff, 0xfffffff9

  TEST_RR 120, rem, 0x00000002, 0x00000014, 0x00000006
  TEST_RR 121, rem, 0xfffffffe, 0xffffffec, 0x00000006
  TEST_RR 122, rem, 0x00000002, 0x00000014, 0xfffffffa
  TEST_RR 123, rem, 0xfffffffe, 0xffffffec, 0xfffffffa
  TEST_RR 124, rem, 0xffffffff, 0xfffffff9, 0x00000002
  TEST_RR 125, rem, 0x00000000, 0x00000007, 0x00000007
  TEST_RR 126, rem, 0x00000000, 0x00000000, 0x00000005
  TEST_RR 127, rem, 0x00000000, 0x80000000, 0x00000001
  TEST_RR 128, rem, 0x00000000, 0x80000000, 0xffffffff
  TEST_RR 129, rem, 0x00000000, 0x7fffffff, 0xffffffff
  TEST_RR 130, rem, 0x00000000, 0x80000000, 0x80000000
  TEST_RR 131, rem, 0xffffffff, 0x80000001, 0x00000002
  /* Remainder of division by zero: the dividend. */
  TEST_RR 132, rem, 0x00000014, 0x00000014, 0x00000000
  TEST_RR 133, rem, 0x00000000, 0x00000000, 0x00000000
  TEST_RR 134, rem, 0xffffffff, 0xffffffff, 0x00000000
  TEST_RR 135, rem, 0x80000000, 0x80000000, 0x00000000
  TEST_RR_SAME 136, rem, 0x00000000, 0x80000000
  TEST_RR_X0 137, rem, 0x00000000, 0x80000000, 0x80000000

  TEST_RR 140, remu, 0x00000002, 0x00000014, 0x00000006
  TEST_RR 141, remu, 0x00000002, 0xffffffec, 0x00000006
  TEST_RR 142, remu, 0x00000014, 0x00000014, 0xfffffffa
  TEST_RR 143, remu, 0x00000000, 0xffffffff, 0x00000001
  TEST_RR 144, remu, 0x00000000, 0xffffffff, 0xffffffff
  TEST_RR 145, remu, 0x80000000, 0x80000000, 0xffffffff
  TEST_RR 146, remu, 0x00000001, 0x80000001, 0x00000002
  TEST_RR 147, remu, 0x00000000, 0x00000007, 0x00000007
  TEST_RR 148, remu, 0x00000000, 0x00000000, 0x00000005
  TEST_RR 149, remu, 0x00000014, 0x00000014, 0x00000000
  TEST_RR 150, remu, 0x00000000, 0x00000000, 0x00000000
  TEST_RR 151, remu, 0xffffffff, 0xffffffff, 0x00000000
  TEST_RR_SAME 152, remu, 0x00000000, 0xfffffff0
  TEST_RR_X0 153, remu, 0x00000000, 0xfffffff9, 0xfffffff9

  /* Results written to x0 are discarded, including the special cases. */
  li TESTNUM, 160
  li a1, 0x80000000
  li a2, -1
  mul x0, a1, a2
  mulh x0, a1, a2
  mulhsu x0, a1, a2
  mulhu x0, a1, a2
  div x0, a1, a2
  divu x0, a1, x0
  rem x0, a1, x0
  remu x0, a1, a2
  bnez x0, fail

  /* The low and high halves from separate instructions make the full 64-bit product. */
  li TESTNUM, 161
  li a1, 0xdeadbeef
  li a2, 0xcafebabe
  mulhu a3, a1, a2
  mul a4, a1, a2
  CHECK a3, 0xb092ab7b
  CHECK a4, 0x88cf5b62

TEST_END
