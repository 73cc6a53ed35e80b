/*
 * Loads and stores (Unprivileged manual, section 2.6): lb, lh, lw, lbu, lhu, sb, sh, sw.
 * Covers sign and zero extension, little-endian byte order, positive, negative and extreme
 * (-2048, +2047) offsets, the base register as the destination, an effective address in RAM
 * from a base that is not, stores truncating rs2, byte and halfword stores leaving every
 * neighbouring byte alone, and RAM far from the image (the shadow page tables see other L1
 * tables there). All accesses are naturally aligned; misaligned ones trap and are covered by
 * trap_data_misaligned.S.
 */
#include "test_macros.h"

  .data
  .balign 16
load_data:
  .byte 0xff, 0x00, 0xf0, 0x0f        /* word 0x0ff000ff */
  .byte 0x80, 0x7f, 0x01, 0x80        /* word 0x80017f80 */
  .word 0x7fffffff
  .word 0x80000000
load_data_end:

  .balign 16
store_data:
  .space 64

  .balign 16
extreme_data:
  .space 4096

TEST_STORE_SCRATCH

TEST_BEGIN

  /* lb sign-extends, lbu zero-extends. */
  TEST_LOAD 1, lb, 0xffffffff, 0, load_data
  TEST_LOAD 2, lb, 0x00000000, 1, load_data
  TEST_LOAD 3, lb, 0xfffffff0, 2, load_data
  TEST_LOAD 4, lb, 0x0000000f, 3, load_data
  TEST_LOAD 5, lb, 0xffffff80, 4, load_data
  TEST_LOAD 6, lb, 0x0000007f, 5, load_data
  TEST_LOAD 7, lb, 0x00000001, 6, load_data
  TEST_LOAD 8, lb, 0xffffff80, -9, load_data_end
  TEST_LOAD 9, lb, 0x0000007f, -5, load_data_end
  TEST_LOAD 10, lbu, 0x000000ff, 0, load_data
  TEST_LOAD 11, lbu, 0x00000000, 1, load_data
  TEST_LOAD 12, lbu, 0x000000f0, 2, load_data
  TEST_LOAD 13, lbu, 0x0000000f, 3, load_data
  TEST_LOAD 14, lbu, 0x00000080, 4, load_data
  TEST_LOAD 15, lbu, 0x0000007f, 5, load_data
  TEST_LOAD 16, lbu, 0x00000080, -9, load_data_end

  /* lh sign-extends, lhu zero-extends, both little-endian. */
  TEST_LOAD 20, lh, 0x000000ff, 0, load_data
  TEST_LOAD 21, lh, 0x00000ff0, 2, load_data
  TEST_LOAD 22, lh, 0x00007f80, 4, load_data
  TEST_LOAD 23, lh, 0xffff8001, 6, load_data
  TEST_LOAD 24, lh, 0xffffffff, 8, load_data
  TEST_LOAD 25, lh, 0x00007fff, 10, load_data
  TEST_LOAD 26, lh, 0xffff8000, -2, load_data_end
  TEST_LOAD 27, lhu, 0x000000ff, 0, load_data
  TEST_LOAD 28, lhu, 0x00008001, 6, load_data
  TEST_LOAD 29, lhu, 0x0000ffff, 8, load_data
  TEST_LOAD 30, lhu, 0x00008000, -2, load_data_end

  TEST_LOAD 40, lw, 0x0ff000ff, 0, load_data
  TEST_LOAD 41, lw, 0x80017f80, 4, load_data
  TEST_LOAD 42, lw, 0x7fffffff, 8, load_data
  TEST_LOAD 43, lw, 0x80000000, 12, load_data
  TEST_LOAD 44, lw, 0x0ff000ff, -16, load_data_end
  TEST_LOAD 45, lw, 0x80000000, -4, load_data_end

  /* Loads into x0 are performed and discarded. */
  li TESTNUM, 50
  la a1, load_data
  lw x0, 0(a1)
  lb x0, 0(a1)
  lhu x0, 0(a1)
  bnez x0, fail

  /* Stores write the low bytes of rs2; a load of the same width reads them back. */
  TEST_STORE 60, sb, lb, 0xffffffaa, 0xaa, 0, store_data
  TEST_STORE 61, sb, lbu, 0x000000aa, 0xaa, 1, store_data
  TEST_STORE 62, sb, lb, 0xffffffef, 0xdeadbeef, 2, store_data
  TEST_STORE 63, sb, lbu, 0x0000007f, 0x1234567f, 3, store_data
  TEST_STORE 64, sb, lbu, 0x00000000, 0xffffff00, 4, store_data
  TEST_STORE 65, sh, lh, 0xffffaa55, 0xaa55, 8, store_data
  TEST_STORE 66, sh, lhu, 0x0000beef, 0xdeadbeef, 10, store_data
  TEST_STORE 67, sh, lh, 0x00007ff1, 0x80007ff1, 12, store_data
  TEST_STORE 68, sw, lw, 0xdeadbeef, 0xdeadbeef, 16, store_data
  TEST_STORE 69, sw, lw, 0x00000000, 0x00000000, 20, store_data
  TEST_STORE 70, sw, lw, 0x80000001, 0x80000001, 24, store_data
  TEST_STORE 71, sw, lw, 0x12345678, 0x12345678, 28, store_data
  TEST_STORE 72, sw, lw, 0xa5a5a5a5, 0xa5a5a5a5, -4, load_data_end + 4
  TEST_STORE 73, sh, lhu, 0x0000c3c3, 0x5a5ac3c3, -2, load_data_end + 4
  TEST_STORE 74, sb, lbu, 0x00000011, 0x00000011, -1, load_data_end + 4

  /* A word store is little-endian: byte 0 holds bits 7:0. */
  li TESTNUM, 80
  la a1, store_data
  li a2, 0x8844cc11
  sw a2, 32(a1)
  lbu a3, 32(a1)
  CHECK a3, 0x11
  lb a3, 33(a1)
  CHECK a3, 0xffffffcc
  lbu a3, 34(a1)
  CHECK a3, 0x44
  lb a3, 35(a1)
  CHECK a3, 0xffffff88
  lhu a3, 32(a1)
  CHECK a3, 0xcc11
  lh a3, 34(a1)
  CHECK a3, 0xffff8844

  /* Halfword and byte stores compose a word. */
  li TESTNUM, 81
  la a1, store_data
  li a2, 0x5678
  sh a2, 36(a1)
  li a2, 0x34
  sb a2, 38(a1)
  li a2, 0x12
  sb a2, 39(a1)
  lw a3, 36(a1)
  CHECK a3, 0x12345678

  /* Storing the base register itself. */
  li TESTNUM, 82
  la a1, store_data
  sw a1, 40(a1)
  lw a3, 40(a1)
  CHECK_EQ a3, a1

  /* Sub-word stores leave the neighbouring bytes alone. */
  TEST_STORE_NEIGHBOURS 90, sb, 1, 0, 0xdeadbe00, 0xa5a5a5a5
  TEST_STORE_NEIGHBOURS 91, sb, 1, 1, 0x000000ff, 0xa5a5a5a5
  TEST_STORE_NEIGHBOURS 92, sb, 1, 2, 0x12345678, 0xa5a5a5a5
  TEST_STORE_NEIGHBOURS 93, sb, 1, 3, 0xffffff3c, 0xa5a5a5a5
  TEST_STORE_NEIGHBOURS 94, sb, 1, 0, 0xffffffff, 0x00000000
  TEST_STORE_NEIGHBOURS 95, sb, 1, 3, 0xffffff80, 0x00000000
  TEST_STORE_NEIGHBOURS 96, sb, 1, 1, 0x00000000, 0xffffffff
  TEST_STORE_NEIGHBOURS 97, sb, 1, 2, 0xffffff00, 0xffffffff
  TEST_STORE_NEIGHBOURS 98, sh, 2, 0, 0xdead0000, 0xa5a5a5a5
  TEST_STORE_NEIGHBOURS 99, sh, 2, 2, 0x0000beef, 0xa5a5a5a5
  TEST_STORE_NEIGHBOURS 100, sh, 2, 0, 0xffffffff, 0x00000000
  TEST_STORE_NEIGHBOURS 101, sh, 2, 2, 0xffff8000, 0x00000000
  TEST_STORE_NEIGHBOURS 102, sh, 2, 0, 0x00000000, 0xffffffff
  TEST_STORE_NEIGHBOURS 103, sh, 2, 2, 0x12340000, 0xffffffff

  /* The extremes of the 12-bit offset. */
  li TESTNUM, 110
  la a1, extreme_data + 2048
  li a2, 0x01020304
  sw a2, -2048(a1)
  li a2, 0x7e
  sb a2, 2047(a1)
  la a4, extreme_data
  lw a3, 0(a4)
  CHECK a3, 0x01020304
  li a5, 4095
  add a5, a4, a5
  lbu a3, 0(a5)
  CHECK a3, 0x7e
  lw a3, -2048(a1)
  CHECK a3, 0x01020304
  lb a3, 2047(a1)
  CHECK a3, 0x7e

  /* The effective address is base + offset, even when the base alone is not RAM: from just
     below RAM (0x7fff_fffc + 4) and from beyond it (0x8000_0800 - 2048), both the first word
     of the image. */
  li TESTNUM, 115
  lui a4, %hi(_start)
  lw a4, %lo(_start)(a4)
  li a1, ISA_RAM_BASE - 4
  lw a3, 4(a1)
  CHECK_EQ a3, a4
  li a1, ISA_RAM_BASE + 2048
  lw a3, -2048(a1)
  CHECK_EQ a3, a4

  /* RAM well away from the image: 4 MiB and just under 16 MiB into RAM (the smallest RAM). */
  li TESTNUM, 120
  li a1, ISA_RAM_BASE + 0x400000
  li a2, 0xcafef00d
  sw a2, 0(a1)
  li a1, ISA_RAM_BASE + 0xfffff0
  li a2, 0x0badc0de
  sw a2, 12(a1)
  li a2, 0x55
  sb a2, 0(a1)
  li a1, ISA_RAM_BASE + 0x400000
  lw a3, 0(a1)
  CHECK a3, 0xcafef00d
  li a1, ISA_RAM_BASE + 0xfffff0
  lw a3, 12(a1)
  CHECK a3, 0x0badc0de
  lbu a3, 0(a1)
  CHECK a3, 0x55

TEST_END
