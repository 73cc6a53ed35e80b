/*
 * Start-up code for hbft guests: machine mode, one hart, no interrupts taken.
 * It finds the top of RAM from SYSINFO for the stack, clears .bss, runs main and reports main's
 * return value through the test finisher. The checks on what SYSINFO returns mirror machine.c:
 * under QEMU's virt machine that address holds a virtio-mmio slot, not SYSINFO, so anything that
 * is not a plausible RAM description means "use QEMU's default of 128 MiB at 0x80000000".
 */

/* hbft.h cannot be included from assembly (its constants carry C's "u" suffix and it declares a
   struct), so the three addresses needed here are repeated; machine.c uses the header's names. */
#define SYSINFO_BASE 0x10002000
#define RAM_BASE 0x80000000

  .section .text.init, "ax", @progbits
  .globl _start
_start:
  /* A stray trap must not loop forever at address 0: report it and stop (see hbft_on_trap). */
  la t0, hbft_trap_entry
  csrw mtvec, t0
  csrw mie, zero

  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop

  /* sp = RAM base + RAM size; with 2 GiB this wraps to 0, which is still right for a full
     descending stack (the first push lands at 0xfffffff0). */
  li t0, SYSINFO_BASE
  lw t1, 0x00(t0)              /* RAM base */
  lw t2, 0x04(t0)              /* RAM size */
  li t3, RAM_BASE
  bne t1, t3, 1f
  li t4, 0x01000000            /* at least 16 MiB, as the machine guarantees */
  bltu t2, t4, 1f
  j 2f
1:
  li t1, RAM_BASE
  li t2, 0x08000000            /* HBFT_FALLBACK_RAM_BYTES: QEMU virt's default */
2:
  add sp, t1, t2
  andi sp, sp, -16

  /* Clear .bss, writing only words that are not already zero: RAM is zero at boot, and a store
     of zero would still dirty the page for the replication's first checkpoint. */
  la t0, __bss_start
  la t1, __bss_end
3:
  bgeu t0, t1, 5f
  lw t2, 0(t0)
  beqz t2, 4f
  sw zero, 0(t0)
4:
  addi t0, t0, 4
  j 3b
5:
  call main
  call hbft_exit
6:
  j 6b

/* Any trap: hand the cause, the faulting pc and mtval to C, which prints them and exits. */
  .section .text, "ax", @progbits
  .balign 4
  .globl hbft_trap_entry
hbft_trap_entry:
  csrr a0, mcause
  csrr a1, mepc
  csrr a2, mtval
  andi sp, sp, -16
  call hbft_on_trap
7:
  j 7b
