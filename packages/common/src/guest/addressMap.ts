/**
 * The guest-physical address map. Every device sits below RAM; RAM starts at 0x8000_0000 as on
 * most RISC-V boards (and where the riscv-tests environments link their code), and may fill the
 * whole upper half of the address space (2 GiB). The C view of the same map is
 * `packages/common/guests/include/hbft.h`; the two must agree (a test compares them).
 */

/** Test finisher (as QEMU's `sifive_test`): a 32-bit write ends the run. */
export const FINISHER_BASE = 0x0010_0000;
export const FINISHER_SIZE = 0x1000;
/** Value written to the finisher for a passing exit. */
export const FINISHER_PASS = 0x5555;
/** `(code << 16) | FINISHER_FAIL` ends the run with exit code `code`. */
export const FINISHER_FAIL = 0x3333;

/** Core-local interruptor: msip, mtimecmp and mtime, at the SiFive CLINT offsets. */
export const CLINT_BASE = 0x0200_0000;
export const CLINT_SIZE = 0x1_0000;
export const CLINT_MSIP = 0x0000;
export const CLINT_MTIMECMP = 0x4000;
export const CLINT_MTIME = 0xbff8;

/** Console: a write-only subset of a 16550 UART (THR at +0, LSR at +5 always reports "ready"). */
export const UART_BASE = 0x1000_0000;
export const UART_SIZE = 0x100;
export const UART_THR = 0x0;
export const UART_LSR = 0x5;

/** System information: RAM size, timebase and the guest's argument string. */
export const SYSINFO_BASE = 0x1000_2000;
export const SYSINFO_SIZE = 0x1000;
export const SYSINFO_RAM_BASE = 0x00;
export const SYSINFO_RAM_SIZE = 0x04;
export const SYSINFO_TIMEBASE_HZ = 0x08;
export const SYSINFO_ARGS_LEN = 0x0c;
export const SYSINFO_ARGS = 0x100;
export const SYSINFO_ARGS_BYTES_MAX = SYSINFO_SIZE - SYSINFO_ARGS;

/**
 * Packet NIC: Ethernet frames through descriptor rings in guest RAM (see devices/packetNic.ts). Not
 * right after SYSINFO: the ISA tests check that nothing answers there.
 */
export const NET_BASE = 0x1000_8000;
export const NET_SIZE = 0x1000;

export const RAM_BASE = 0x8000_0000;

/** Guest pages are 4 KiB, as in the paper's shadow page tables. */
export const PAGE_SHIFT = 12;
export const PAGE_BYTES = 1 << PAGE_SHIFT;
/** 32-bit words in a page: a page's index in an Int32Array view of RAM is page × PAGE_WORDS. */
export const PAGE_WORDS = PAGE_BYTES / 4;

export const MEMORY_BYTES_MIN = 16 * 1024 * 1024;
export const MEMORY_BYTES_MAX = 2 * 1024 * 1024 * 1024;
export const MEMORY_BYTES_DEFAULT = 256 * 1024 * 1024;

/**
 * The virtual clock. mtime counts guest cycles (one per retired instruction, plus cycles skipped
 * while waiting in `wfi` for a timer), so execution is deterministic; the guest is told this
 * nominal frequency to turn ticks into seconds.
 */
export const TIMEBASE_HZ = 100_000_000;
