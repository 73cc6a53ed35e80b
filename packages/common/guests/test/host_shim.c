/*
 * The host's stand-in for lib/machine.c: lets guest programs and the kv engine run as ordinary
 * host processes (see host-test.sh). Console output goes to stdout, the guest's arguments come
 * from the HBFT_ARGS environment variable, and the "RAM" is an anonymous mapping, zero like a
 * freshly booted machine's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hbft_rt.h"

#define HOST_RAM_BYTES (1024ull * 1024 * 1024)

void hbft_putc(char c) { fputc(c, stdout); }

void hbft_exit(uint32_t code) {
  fflush(stdout);
  exit((int)code);
}

uint64_t hbft_mtime(void) { return 0; }

void hbft_machine_info(struct hbft_machine_info *info) {
  info->ram_base = HBFT_RAM_BASE;
  info->ram_bytes = (uint32_t)(HOST_RAM_BYTES - 1);
  info->timebase_hz = HBFT_FALLBACK_TIMEBASE_HZ;
  info->sysinfo_present = 1;
}

uint32_t hbft_sysinfo_args(char *buf, uint32_t cap) {
  const char *args = getenv("HBFT_ARGS");
  if (args == NULL) args = "";
  uint32_t len = (uint32_t)strlen(args);
  if (len > cap - 1) len = cap - 1;
  memcpy(buf, args, len);
  buf[len] = 0;
  return len;
}

void hbft_heap_bounds(uint32_t stack_reserve_bytes, uintptr_t *start, uintptr_t *end) {
  (void)stack_reserve_bytes;
  static uint8_t *ram = NULL;
  if (ram == NULL) {
    ram = mmap(NULL, HOST_RAM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) {
      perror("host_shim: mmap");
      exit(1);
    }
  }
  /* The arena's sizes are 32-bit, like the guest's: stay below 4 GiB of span. */
  *start = (uintptr_t)ram;
  *end = (uintptr_t)ram + HOST_RAM_BYTES - 4096;
}
