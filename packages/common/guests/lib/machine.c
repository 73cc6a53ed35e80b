/*
 * Everything in the runtime that touches a device register or a CSR (network guests add the packet
 * NIC's driver, net/hbft_netif.c).
 * Keeping it in one file lets a host harness replace exactly this file to run guest logic natively.
 */
#include "hbft_rt.h"

extern char _end[];

/* SYSINFO is believed only when it describes RAM where the machine puts it and at least the
   machine's minimum size; QEMU's virt machine answers this address with a virtio-mmio slot. */
static int sysinfo_plausible(uint32_t ram_base, uint32_t ram_bytes) {
  return ram_base == HBFT_RAM_BASE && ram_bytes >= HBFT_MIB(16) && ram_bytes <= 0x80000000u &&
         (ram_bytes & 0xfffu) == 0;
}

void hbft_machine_info(struct hbft_machine_info *info) {
  uint32_t ram_base = HBFT_REG(HBFT_SYSINFO_RAM_BASE);
  uint32_t ram_bytes = HBFT_REG(HBFT_SYSINFO_RAM_SIZE);
  if (sysinfo_plausible(ram_base, ram_bytes)) {
    uint32_t timebase_hz = HBFT_REG(HBFT_SYSINFO_TIMEBASE_HZ);
    info->ram_base = ram_base;
    info->ram_bytes = ram_bytes;
    info->timebase_hz = timebase_hz != 0 ? timebase_hz : HBFT_FALLBACK_TIMEBASE_HZ;
    info->sysinfo_present = 1;
  } else {
    info->ram_base = HBFT_RAM_BASE;
    info->ram_bytes = HBFT_FALLBACK_RAM_BYTES;
    info->timebase_hz = HBFT_FALLBACK_TIMEBASE_HZ;
    info->sysinfo_present = 0;
  }
}

uint32_t hbft_sysinfo_args(char *buf, uint32_t cap) {
  HBFT_ASSERT(cap > 0);
  struct hbft_machine_info info;
  hbft_machine_info(&info);
  uint32_t len = info.sysinfo_present ? HBFT_REG(HBFT_SYSINFO_ARGS_LEN) : 0;
  if (len > HBFT_ARGS_BYTES_MAX) len = 0; /* not a SYSINFO we understand: no arguments */
  if (len > cap - 1) len = cap - 1;
  /* The device is read a word at a time (the ABI allows only lw/sw on registers). */
  for (uint32_t offset = 0; offset < len; offset += 4) {
    uint32_t word = HBFT_REG(HBFT_SYSINFO_ARGS + offset);
    for (uint32_t i = 0; i < 4 && offset + i < len; i++) buf[offset + i] = (char)(word >> (8 * i));
  }
  buf[len] = 0;
  return len;
}

void hbft_exit(uint32_t code) {
  uint32_t value = code == 0 ? HBFT_FINISHER_PASS : (code << 16) | HBFT_FINISHER_FAIL;
  HBFT_REG(HBFT_FINISHER_BASE) = value;
  for (;;) __asm__ volatile("wfi");
}

uint64_t hbft_mtime(void) {
  /* Read high, low, high again: a carry between the two halves shows as a changed high word. */
  for (;;) {
    uint32_t high = HBFT_REG(HBFT_CLINT_MTIME_HI);
    uint32_t low = HBFT_REG(HBFT_CLINT_MTIME_LO);
    if (HBFT_REG(HBFT_CLINT_MTIME_HI) == high) return ((uint64_t)high << 32) | low;
  }
}

void hbft_wait_for_interrupt_until(uint64_t deadline) {
  /* mstatus.MIE stays clear, so the interrupt is never taken: wfi only waits for it to be pending
     (privileged spec, section 3.3.3), and the caller polls the device afterwards. */
  /* mtimecmp is written high word first with an impossible value in between, so that no moment
     holds a deadline earlier than both the old and the new one (privileged spec, section 3.2.1). */
  HBFT_REG(HBFT_CLINT_MTIMECMP_HI) = 0xffffffffu;
  HBFT_REG(HBFT_CLINT_MTIMECMP_LO) = (uint32_t)deadline;
  HBFT_REG(HBFT_CLINT_MTIMECMP_HI) = (uint32_t)(deadline >> 32);
  __asm__ volatile("csrs mie, %0" : : "r"(HBFT_MIE_MEIE | HBFT_MIE_MTIE));
  __asm__ volatile("wfi" ::: "memory");
}

void hbft_heap_bounds(uint32_t stack_reserve_bytes, uintptr_t *start, uintptr_t *end) {
  struct hbft_machine_info info;
  hbft_machine_info(&info);
  uint64_t ram_top = (uint64_t)info.ram_base + info.ram_bytes;
  uintptr_t heap_start = ((uintptr_t)_end + 15u) & ~(uintptr_t)15u;
  uint64_t heap_end = ram_top > stack_reserve_bytes ? ram_top - stack_reserve_bytes : 0;
  *start = heap_start;
  *end = heap_end > heap_start ? (uintptr_t)heap_end : heap_start;
}

void hbft_putc(char c) { HBFT_REG(HBFT_UART_THR) = (uint8_t)c; }

static const char *trap_cause_name(uint32_t mcause) {
  switch (mcause) {
    case 0: return "instruction address misaligned";
    case 1: return "instruction access fault";
    case 2: return "illegal instruction";
    case 3: return "breakpoint";
    case 4: return "load address misaligned";
    case 5: return "load access fault";
    case 6: return "store address misaligned";
    case 7: return "store access fault";
    case 11: return "environment call from M-mode";
    default: return (mcause & 0x80000000u) ? "interrupt" : "unknown";
  }
}

/* Called by crt0's trap vector: a guest never expects a trap, so any trap is a bug worth a clear
   line on the console and a distinctive exit code (126). */
HBFT_NORETURN void hbft_on_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval);
void hbft_on_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval) {
  hbft_printf("trap: %s (mcause=%u) at pc=0x%08x mtval=0x%08x\n", trap_cause_name(mcause), mcause,
              mepc, mtval);
  hbft_exit(126);
}
