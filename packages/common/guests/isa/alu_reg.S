/*
 * Register-register instructions (Unprivileged manual, section 2.4.2): add, sub, sll, slt, sltu,
 * xor, srl, sra, or, and. Covers wrap-around, signed against unsigned comparison, shift amounts
 * taken from rs2[4:0] only (so 32 shifts by 0 and -1 by 31), x0 in every operand position, and
 * every aliasing of rd with the sources.
 */
#include "test_macros.h"

TEST_BEGIN

  TEST_RR 1, add, 0x00000000, 0x00000000, 0x00000000
  TEST_RR 2, add, 0x00000002, 0x00000001, 0x00000001
  TEST_RR 3, add, 0x0000000a, 0x00000003, 0x00000007
  TEST_RR 4, add, 0xffff8000, 0x00000000, 0xffff8000
  TEST_RR 5, add, 0x80000000, 0x80000000, 0x00000000
  TEST_RR 6, add, 0x7fff8000, 0x80000000, 0xffff8000
  TEST_RR 7, add, 0x80000000, 0x7fffffff, 0x00000001
  TEST_RR 8, add, 0x00000000, 0x80000000, 0x80000000
  TEST_RR 9, add, 0x00000000, 0xffffffff, 0x00000001
  TEST_RR 10, add, 0xfffffffe, 0xffffffff, 0xffffffff
  TEST_RR 11, add, 0x7ffffffe, 0xffffffff, 0x7fffffff
  TEST_RR 12, add, 0xffffffff, 0x12345678, 0xedcba987
  TEST_RR_SAME 13, add, 0x2468acf0, 0x12345678
  TEST_RR_X0 14, add, 0x89abcdef, 0x89abcdef, 0x89abcdef

  TEST_RR 20, sub, 0x00000000, 0x00000000, 0x00000000
  TEST_RR 21, sub, 0x00000000, 0x00000001, 0x00000001
  TEST_RR 22, sub, 0xfffffffc, 0x00000003, 0x00000007
  TEST_RR 23, sub, 0x00000004, 0x00000007, 0x00000003
  TEST_RR 24, sub, 0x7fffffff, 0x80000000, 0x00000001
  TEST_RR 25, sub, 0x80000000, 0x7fffffff, 0xffffffff
  TEST_RR 26, sub, 0x80000001, 0x00000000, 0x7fffffff
  TEST_RR 27, sub, 0x80000000, 0x00000000, 0x80000000
  TEST_RR 28, sub, 0xfffffffe, 0xffffffff, 0x00000001
  TEST_RR 29, sub, 0x2468acf1, 0x12345678, 0xedcba987
  TEST_RR_SAME 30, sub, 0x00000000, 0x89abcdef
  TEST_RR_X0 31, sub, 0x76543211, 0x89abcdef, 0x89abcdef

  TEST_RR 40, slt, 0, 0x00000000, 0x00000000
  TEST_RR 41, slt, 0, 0x00000001, 0x00000001
  TEST_RR 42, slt, 1, 0x00000003, 0x00000007
  TEST_RR 43, slt, 0, 0x00000007, 0x00000003
  TEST_RR 44, slt, 1, 0x80000000, 0x00000000
  TEST_RR 45, slt, 0, 0x00000000, 0x80000000
  TEST_RR 46, slt, 1, 0x80000000, 0x7fffffff
  TEST_RR 47, slt, 0, 0x7fffffff, 0x80000000
  TEST_RR 48, slt, 1, 0xffffffff, 0x00000000
  TEST_RR 49, slt, 0, 0xffffffff, 0xfffffffe
  TEST_RR 50, slt, 1, 0xfffffffe, 0xffffffff
  TEST_RR 51, slt, 1, 0x80000000, 0x80000001
  TEST_RR_SAME 52, slt, 0, 0x80000000
  TEST_RR_X0 53, slt, 0, 1, 0x80000000
  TEST_RR_X0 54, slt, 1, 0, 0x00000001

  TEST_RR 60, sltu, 0, 0x00000000, 0x00000000
  TEST_RR 61, sltu, 0, 0x00000001, 0x00000001
  TEST_RR 62, sltu, 1, 0x00000003, 0x00000007
  TEST_RR 63, sltu, 0, 0x00000007, 0x00000003
  TEST_RR 64, sltu, 0, 0x80000000, 0x00000000
  TEST_RR 65, sltu, 1, 0x00000000, 0x80000000
  TEST_RR 66, sltu, 0, 0x80000000, 0x7fffffff
  TEST_RR 67, sltu, 1, 0x7fffffff, 0x80000000
  TEST_RR 68, sltu, 0, 0xffffffff, 0x00000000
  TEST_RR 69, sltu, 1, 0xfffffffe, 0xffffffff
  TEST_RR 70, sltu, 0, 0xffffffff, 0xfffffffe
  TEST_RR 71, sltu, 1, 0x80000000, 0x80000001
  TEST_RR_SAME 72, sltu, 0, 0xffffffff
  /* snez is sltu rd, x0, rs. */
  TEST_RR_X0 73, sltu, 1, 0, 0x00000001
  TEST_RR_X0 74, sltu, 1, 0, 0x80000000

  TEST_RR 80, xor, 0xf00ff00f, 0xff00ff00, 0x0f0f0f0f
  TEST_RR 81, xor, 0xff00ff00, 0x0ff00ff0, 0xf0f0f0f0
  TEST_RR 82, xor, 0x0ff00ff0, 0x00ff00ff, 0x0f0f0f0f
  TEST_RR 83, xor, 0x00ff00ff, 0xf00ff00f, 0xf0f0f0f0
  TEST_RR 84, xor, 0xffffffff, 0x12345678, 0xedcba987
  TEST_RR_SAME 85, xor, 0, 0x12345678
  TEST_RR_X0 86, xor, 0x80000001, 0x80000001, 0x80000001

  TEST_RR 90, or, 0xff0fff0f, 0xff00ff00, 0x0f0f0f0f
  TEST_RR 91, or, 0xfff0fff0, 0x0ff00ff0, 0xf0f0f0f0
  TEST_RR 92, or, 0x0fff0fff, 0x00ff00ff, 0x0f0f0f0f
  TEST_RR 93, or, 0xf0fff0ff, 0xf00ff00f, 0xf0f0f0f0
  TEST_RR_SAME 94, or, 0x12345678, 0x12345678
  TEST_RR_X0 95, or, 0x80000001, 0x80000001, 0x80000001

  TEST_RR 100, and, 0x0f000f00, 0xff00ff00, 0x0f0f0f0f
  TEST_RR 101, and, 0x00f000f0, 0x0ff00ff0, 0xf0f0f0f0
  TEST_RR 102, and, 0x000f000f, 0x00ff00ff, 0x0f0f0f0f
  TEST_RR 103, and, 0xf000f000, 0xf00ff00f, 0xf0f0f0f0
  TEST_RR 104, and, 0x00000000, 0x12345678, 0xedcba987
  TEST_RR_SAME 105, and, 0x12345678, 0x12345678
  TEST_RR_X0 106, and, 0, 0, 0xffffffff

  /* Shifts by a register use rs2[4:0]; the upper bits of rs2 are ignored. */
  TEST_RR 110, sll, 0x00000001, 0x00000001, 0
  TEST_RR 111, sll, 0x00000002, 0x00000001, 1
  TEST_RR 112, sll, 0x00000080, 0x00000001, 7
  TEST_RR 113, sll, 0x80000000, 0x00000001, 31
  TEST_RR 114, sll, 0x90909080, 0x21212121, 7
  TEST_RR 115, sll, 0x48484000, 0x21212121, 14
  TEST_RR 116, sll, 0x21212121, 0x21212121, 32
  TEST_RR 117, sll, 0x42424242, 0x21212121, 33
  TEST_RR 118, sll, 0x80000000, 0x21212121, 0xffffffff
  TEST_RR 119, sll, 0x21212121, 0x21212121, 0xffffffe0
  TEST_RR 120, sll, 0x90909080, 0x21212121, 0x80000007
  TEST_RR 121, sll, 0xc0000000, 0x7fffffff, 30
  TEST_RR_SAME 122, sll, 0x00000018, 0x00000003
  TEST_RR_X0 123, sll, 0, 0x00000021, 0x00000021

  TEST_RR 130, srl, 0x80000000, 0x80000000, 0
  TEST_RR 131, srl, 0x40000000, 0x80000000, 1
  TEST_RR 132, srl, 0x01000000, 0x80000000, 7
  TEST_RR 133, srl, 0x00000001, 0x80000000, 31
  TEST_RR 134, srl, 0x01030303, 0x81818181, 7
  TEST_RR 135, srl, 0x00020606, 0x81818181, 14
  TEST_RR 136, srl, 0x81818181, 0x81818181, 32
  TEST_RR 137, srl, 0x40c0c0c0, 0x81818181, 33
  TEST_RR 138, srl, 0x00000001, 0x81818181, 0xffffffff
  TEST_RR 139, srl, 0x81818181, 0x81818181, 0xffffffe0
  TEST_RR 140, srl, 0x01030303, 0x81818181, 0x80000007
  TEST_RR_SAME 141, srl, 0x00000010, 0x00000021
  TEST_RR_X0 142, srl, 0, 0x80000000, 0x80000000

  TEST_RR 150, sra, 0x80000000, 0x80000000, 0
  TEST_RR 151, sra, 0xc0000000, 0x80000000, 1
  TEST_RR 152, sra, 0xff000000, 0x80000000, 7
  TEST_RR 153, sra, 0xffffffff, 0x80000000, 31
  TEST_RR 154, sra, 0xff030303, 0x81818181, 7
  TEST_RR 155, sra, 0xfffe0606, 0x81818181, 14
  TEST_RR 156, sra, 0x81818181, 0x81818181, 32
  TEST_RR 157, sra, 0xc0c0c0c0, 0x81818181, 33
  TEST_RR 158, sra, 0xffffffff, 0x81818181, 0xffffffff
  TEST_RR 159, sra, 0x81818181, 0x81818181, 0xffffffe0
  TEST_RR 160, sra, 0xff030303, 0x81818181, 0x80000007
  TEST_RR 161, sra, 0x00000001, 0x7fffffff, 30
  TEST_RR 162, sra, 0x00424242, 0x21212121, 7
  TEST_RR_SAME 163, sra, 0xfe000000, 0x80000006
  TEST_RR_X0 164, sra, 0, 0x80000000, 0x80000000

  /* Writes to x0 from every register-register instruction are discarded. */
  li TESTNUM, 170
  li a1, 0x12345678
  li a2, 0x0000000f
  add x0, a1, a2
  sub x0, a1, a2
  sll x0, a1, a2
  slt x0, a2, a1
  sltu x0, a2, a1
  xor x0, a1, a2
  srl x0, a1, a2
  sra x0, a1, a2
  or x0, a1, a2
  and x0, a1, a2
  bnez x0, fail
  mv a3, x0
  bnez a3, fail

  /* The highest register works as destination and source like any other. */
  li TESTNUM, 171
  li x30, 40
  li x29, 2
  add x31, x30, x29
  li x28, 42
  bne x31, x28, fail
  sub x31, x31, x31
  bnez x31, fail

TEST_END
