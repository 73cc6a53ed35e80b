/*
 * rvsim: a small RV32IM machine with hbft's devices (hbft.h), for checking the guests on the host
 * before (and independently of) the real emulator in packages/common/src/guest/. It is a test tool,
 * not a reference: where hbft.h leaves a choice open, rvsim makes one and says so below.
 *
 * It gives what QEMU cannot: SYSINFO (RAM size, arguments), exact instruction counts, and per-epoch
 * dirty-page statistics in the terms of the seed paper (dirty pages per epoch, ave_stride: the
 * mean length of runs of consecutive dirty pages within each 512-page L1 table).
 *
 * Usage: rvsim [-m RAM_MIB] [-a ARGS] [-e EPOCH_INSTRUCTIONS] [-l INSTRUCTION_LIMIT] IMAGE.elf
 *
 * Output: the guest's console on stdout; the statistics on stderr. The exit code is the
 * guest's (finisher) exit code, 124 for the instruction limit, 125 for a simulator error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hbft.h"

#define PAGE_BYTES 4096u
#define L1_PAGES 512u

struct machine {
  uint32_t x[32];
  uint32_t pc;
  uint8_t *ram;
  uint32_t ram_bytes;
  uint64_t instret;
  uint64_t mtime_skipped; /* cycles skipped while waiting for the timer */
  uint32_t mstatus, mie, mtvec, mscratch, mepc, mcause, mtval;
  uint64_t mtimecmp;
  const char *args;
  int exited;
  uint32_t exit_code;
  /* dirty tracking */
  uint8_t *dirty;          /* one byte per page: written this epoch */
  uint64_t epoch_instructions, epoch_end;
  uint64_t epochs, dirty_pages_total, strides_total, stride_pages_total;
  uint32_t dirty_pages_max;
  uint64_t wfi_count;
};

static void fail(const char *message) {
  fprintf(stderr, "rvsim: %s\n", message);
  exit(125);
}

/* ---- epochs and dirty pages ---- */

static void end_epoch(struct machine *m) {
  uint32_t pages = m->ram_bytes / PAGE_BYTES;
  uint32_t dirty = 0, strides = 0;
  for (uint32_t l1 = 0; l1 < pages; l1 += L1_PAGES) {
    int in_run = 0;
    for (uint32_t p = l1; p < l1 + L1_PAGES && p < pages; p++) {
      if (m->dirty[p]) {
        dirty++;
        if (!in_run) strides++;
        in_run = 1;
      } else {
        in_run = 0;
      }
    }
  }
  if (dirty > 0) {
    m->epochs++;
    m->dirty_pages_total += dirty;
    m->strides_total += strides;
    m->stride_pages_total += dirty;
    if (dirty > m->dirty_pages_max) m->dirty_pages_max = dirty;
  }
  memset(m->dirty, 0, pages);
}

/* ---- memory and devices ---- */

static uint64_t mtime(const struct machine *m) { return m->instret + m->mtime_skipped; }

static int mmio_load(struct machine *m, uint32_t address, uint32_t *value) {
  uint32_t offset;
  if (address >= HBFT_SYSINFO_BASE && address < HBFT_SYSINFO_BASE + 0x1000) {
    offset = address - HBFT_SYSINFO_BASE;
    uint32_t args_len = (uint32_t)strlen(m->args);
    if (offset == 0x00) *value = HBFT_RAM_BASE;
    else if (offset == 0x04) *value = m->ram_bytes;
    else if (offset == 0x08) *value = 100000000;
    else if (offset == 0x0c) *value = args_len;
    else if (offset >= 0x100) {
      uint32_t word = 0;
      for (uint32_t i = 0; i < 4; i++) {
        uint32_t at = offset - 0x100 + i;
        if (at < args_len) word |= (uint32_t)(uint8_t)m->args[at] << (8 * i);
      }
      *value = word;
    } else *value = 0;
    return 1;
  }
  if (address >= HBFT_CLINT_BASE && address < HBFT_CLINT_BASE + 0x10000) {
    offset = address - HBFT_CLINT_BASE;
    if (offset == 0xbff8) *value = (uint32_t)mtime(m);
    else if (offset == 0xbffc) *value = (uint32_t)(mtime(m) >> 32);
    else if (offset == 0x4000) *value = (uint32_t)m->mtimecmp;
    else if (offset == 0x4004) *value = (uint32_t)(m->mtimecmp >> 32);
    else *value = 0;
    return 1;
  }
  if (address >= HBFT_UART_BASE && address < HBFT_UART_BASE + 0x100) {
    *value = address == HBFT_UART_LSR ? 0x20 : 0;
    return 1;
  }
  return 0;
}

static int mmio_store(struct machine *m, uint32_t address, uint32_t value) {
  if (address == HBFT_FINISHER_BASE) {
    m->exited = 1;
    m->exit_code = (value & 0xffff) == HBFT_FINISHER_PASS ? 0 : value >> 16;
    return 1;
  }
  if (address == HBFT_UART_THR) {
    fputc((int)(value & 0xff), stdout);
    return 1;
  }
  if (address >= HBFT_CLINT_BASE && address < HBFT_CLINT_BASE + 0x10000) {
    uint32_t offset = address - HBFT_CLINT_BASE;
    if (offset == 0x4000) m->mtimecmp = (m->mtimecmp & ~0xffffffffull) | value;
    if (offset == 0x4004) m->mtimecmp = (m->mtimecmp & 0xffffffffull) | ((uint64_t)value << 32);
    return 1;
  }
  return 0;
}

/* Returns 0 on success, or the trap cause. */
static int load(struct machine *m, uint32_t address, uint32_t size, uint32_t *value) {
  if (address & (size - 1)) return 4;
  if (address >= HBFT_RAM_BASE && (uint64_t)address - HBFT_RAM_BASE + size <= m->ram_bytes) {
    uint8_t *p = m->ram + (address - HBFT_RAM_BASE);
    *value = size == 4 ? *(uint32_t *)p : size == 2 ? *(uint16_t *)p : *p;
    return 0;
  }
  if (size == 4 && mmio_load(m, address, value)) return 0;
  if (size == 1 && address == HBFT_UART_LSR) {
    *value = 0x20;
    return 0;
  }
  return 5;
}

static int store(struct machine *m, uint32_t address, uint32_t size, uint32_t value) {
  if (address & (size - 1)) return 6;
  if (address >= HBFT_RAM_BASE && (uint64_t)address - HBFT_RAM_BASE + size <= m->ram_bytes) {
    uint32_t offset = address - HBFT_RAM_BASE;
    uint8_t *p = m->ram + offset;
    if (size == 4) *(uint32_t *)p = value;
    else if (size == 2) *(uint16_t *)p = (uint16_t)value;
    else *p = (uint8_t)value;
    m->dirty[offset / PAGE_BYTES] = 1;
    return 0;
  }
  if (size == 4 && mmio_store(m, address, value)) return 0;
  if (size == 1 && address == HBFT_UART_THR) return mmio_store(m, address, value) ? 0 : 7;
  return 7;
}

/* ---- the CPU ---- */

static int csr_access(struct machine *m, uint32_t csr, uint32_t *value, int write, uint32_t new_value) {
  uint32_t *reg = NULL, read_value = 0;
  uint32_t mip = mtime(m) >= m->mtimecmp ? (1u << 7) : 0; /* no external interrupt source */
  switch (csr) {
    case 0x300: reg = &m->mstatus; break;
    case 0x304: reg = &m->mie; break;
    case 0x305: reg = &m->mtvec; break;
    case 0x340: reg = &m->mscratch; break;
    case 0x341: reg = &m->mepc; break;
    case 0x342: reg = &m->mcause; break;
    case 0x343: reg = &m->mtval; break;
    case 0x301: read_value = 0x40001100; break; /* RV32IM */
    case 0x344: read_value = mip; break;
    case 0xf14: read_value = 0; break;
    case 0xc00: case 0xc02: case 0xb00: case 0xb02: read_value = (uint32_t)m->instret; break;
    case 0xc80: case 0xc82: case 0xb80: case 0xb82: read_value = (uint32_t)(m->instret >> 32); break;
    case 0xc01: read_value = (uint32_t)mtime(m); break;
    case 0xc81: read_value = (uint32_t)(mtime(m) >> 32); break;
    default: return 0;
  }
  *value = reg ? *reg : read_value;
  if (write && reg) *reg = new_value;
  return 1;
}

static void trap(struct machine *m, uint32_t cause, uint32_t tval) {
  m->mepc = m->pc;
  m->mcause = cause;
  m->mtval = tval;
  m->pc = m->mtvec & ~3u;
}

/* wfi: returns 0 when the machine should stop (nothing will ever wake it). */
static int wait_for_interrupt(struct machine *m) {
  m->wfi_count++;
  if (m->mie & (1u << 7) && m->mtimecmp > mtime(m) && m->mtimecmp != UINT64_MAX) {
    m->mtime_skipped += m->mtimecmp - mtime(m);
    return 1;
  }
  return 0;
}

static int64_t sx(uint32_t v) { return (int32_t)v; }

static void run(struct machine *m, uint64_t limit) {
  uint32_t *x = m->x;
  while (!m->exited) {
    if (m->instret >= m->epoch_end) {
      end_epoch(m);
      m->epoch_end += m->epoch_instructions;
    }
    if (m->instret >= limit) {
      fprintf(stderr, "rvsim: instruction limit reached\n");
      m->exit_code = 124;
      return;
    }
    uint32_t pc = m->pc, inst;
    if (pc & 3 || pc < HBFT_RAM_BASE || (uint64_t)pc - HBFT_RAM_BASE + 4 > m->ram_bytes) {
      trap(m, pc & 3 ? 0 : 1, pc);
      continue;
    }
    inst = *(uint32_t *)(m->ram + (pc - HBFT_RAM_BASE));
    uint32_t opcode = inst & 0x7f, rd = (inst >> 7) & 31, f3 = (inst >> 12) & 7, rs1 = (inst >> 15) & 31,
             rs2 = (inst >> 20) & 31, f7 = inst >> 25;
    uint32_t a = x[rs1], b = x[rs2], result = 0, next = pc + 4;
    int32_t imm_i = (int32_t)inst >> 20;
    int writes_rd = 1, cause = 0;
    switch (opcode) {
      case 0x37: result = inst & 0xfffff000; break;
      case 0x17: result = pc + (inst & 0xfffff000); break;
      case 0x6f: {
        int32_t imm = (int32_t)(((inst >> 31) << 20) | (((inst >> 12) & 0xff) << 12) | (((inst >> 20) & 1) << 11) |
                                (((inst >> 21) & 0x3ff) << 1));
        imm = (imm << 11) >> 11;
        result = pc + 4;
        next = pc + (uint32_t)imm;
        break;
      }
      case 0x67: result = pc + 4; next = (a + (uint32_t)imm_i) & ~1u; break;
      case 0x63: {
        int32_t imm = (int32_t)(((inst >> 31) << 12) | (((inst >> 7) & 1) << 11) | (((inst >> 25) & 0x3f) << 5) |
                                (((inst >> 8) & 0xf) << 1));
        imm = (imm << 19) >> 19;
        int taken;
        switch (f3) {
          case 0: taken = a == b; break;
          case 1: taken = a != b; break;
          case 4: taken = (int32_t)a < (int32_t)b; break;
          case 5: taken = (int32_t)a >= (int32_t)b; break;
          case 6: taken = a < b; break;
          case 7: taken = a >= b; break;
          default: cause = 2; taken = 0;
        }
        if (taken) next = pc + (uint32_t)imm;
        writes_rd = 0;
        break;
      }
      case 0x03: {
        uint32_t address = a + (uint32_t)imm_i, value = 0;
        uint32_t size = (f3 & 3) == 0 ? 1 : (f3 & 3) == 1 ? 2 : 4;
        if (f3 == 3 || f3 > 5) { cause = 2; break; }
        cause = load(m, address, size, &value);
        if (cause) { m->mtval = address; break; }
        if (f3 == 0) value = (uint32_t)(int8_t)value;
        if (f3 == 1) value = (uint32_t)(int16_t)value;
        result = value;
        break;
      }
      case 0x23: {
        int32_t imm = (int32_t)(((inst >> 25) << 5) | ((inst >> 7) & 31));
        imm = (imm << 20) >> 20;
        uint32_t address = a + (uint32_t)imm;
        if (f3 > 2) { cause = 2; break; }
        cause = store(m, address, 1u << f3, b);
        if (cause) m->mtval = address;
        writes_rd = 0;
        break;
      }
      case 0x13: {
        uint32_t shamt = rs2;
        switch (f3) {
          case 0: result = a + (uint32_t)imm_i; break;
          case 1: result = a << shamt; break;
          case 2: result = (int32_t)a < imm_i; break;
          case 3: result = a < (uint32_t)imm_i; break;
          case 4: result = a ^ (uint32_t)imm_i; break;
          case 5: result = f7 & 0x20 ? (uint32_t)((int32_t)a >> shamt) : a >> shamt; break;
          case 6: result = a | (uint32_t)imm_i; break;
          case 7: result = a & (uint32_t)imm_i; break;
        }
        break;
      }
      case 0x33:
        if (f7 == 1) {
          switch (f3) {
            case 0: result = a * b; break;
            case 1: result = (uint32_t)((sx(a) * sx(b)) >> 32); break;
            case 2: result = (uint32_t)((sx(a) * (int64_t)(uint64_t)b) >> 32); break;
            case 3: result = (uint32_t)(((uint64_t)a * b) >> 32); break;
            case 4: result = b == 0 ? UINT32_MAX : (a == 0x80000000u && b == UINT32_MAX) ? a : (uint32_t)((int32_t)a / (int32_t)b); break;
            case 5: result = b == 0 ? UINT32_MAX : a / b; break;
            case 6: result = b == 0 ? a : (a == 0x80000000u && b == UINT32_MAX) ? 0 : (uint32_t)((int32_t)a % (int32_t)b); break;
            case 7: result = b == 0 ? a : a % b; break;
          }
        } else {
          switch (f3) {
            case 0: result = f7 & 0x20 ? a - b : a + b; break;
            case 1: result = a << (b & 31); break;
            case 2: result = (int32_t)a < (int32_t)b; break;
            case 3: result = a < b; break;
            case 4: result = a ^ b; break;
            case 5: result = f7 & 0x20 ? (uint32_t)((int32_t)a >> (b & 31)) : a >> (b & 31); break;
            case 6: result = a | b; break;
            case 7: result = a & b; break;
          }
        }
        break;
      case 0x0f: writes_rd = 0; break; /* fence, fence.i: nothing to order in this machine */
      case 0x73:
        if (f3 == 0) {
          writes_rd = 0;
          if (inst == 0x00000073) cause = 11;
          else if (inst == 0x00100073) cause = 3;
          else if (inst == 0x30200073) next = m->mepc;
          else if (inst == 0x10500073) {
            if (!wait_for_interrupt(m)) {
              fprintf(stderr, "rvsim: the guest waits and nothing is left to wake it\n");
              m->exited = 1;
              m->exit_code = 0;
            }
          } else cause = 2;
        } else {
          uint32_t csr = inst >> 20, old, source = f3 & 4 ? rs1 : a;
          int write = (f3 & 3) == 1 || rs1 != 0;
          uint32_t value = (f3 & 3) == 1 ? source : (f3 & 3) == 2 ? 0 : 0;
          if (!csr_access(m, csr, &old, 0, 0)) { cause = 2; break; }
          if ((f3 & 3) == 2) value = old | source;
          if ((f3 & 3) == 3) value = old & ~source;
          if (write) csr_access(m, csr, &old, 1, value);
          result = old;
        }
        break;
      default: cause = 2;
    }
    if (cause) {
      trap(m, (uint32_t)cause, cause == 2 ? inst : m->mtval);
      m->instret++;
      continue;
    }
    if (writes_rd && rd != 0) x[rd] = result;
    m->pc = next;
    m->instret++;
  }
}

static uint32_t load_elf(struct machine *m, const char *path) {
  FILE *file = fopen(path, "rb");
  if (!file) fail("cannot open the image");
  fseek(file, 0, SEEK_END);
  long size = ftell(file);
  fseek(file, 0, SEEK_SET);
  uint8_t *image = malloc((size_t)size);
  if (fread(image, 1, (size_t)size, file) != (size_t)size) fail("cannot read the image");
  fclose(file);
  if (size < 52 || memcmp(image, "\x7f" "ELF\x01\x01", 6) != 0) fail("not a little-endian ELF32 file");
  uint32_t entry, phoff;
  uint16_t phentsize, phnum;
  memcpy(&entry, image + 24, 4);
  memcpy(&phoff, image + 28, 4);
  memcpy(&phentsize, image + 42, 2);
  memcpy(&phnum, image + 44, 2);
  for (uint32_t i = 0; i < phnum; i++) {
    uint32_t ph[8];
    memcpy(ph, image + phoff + i * phentsize, 32);
    if (ph[0] != 1 || ph[5] == 0) continue; /* PT_LOAD with something in it */
    uint32_t offset = ph[1], paddr = ph[3], filesz = ph[4], memsz = ph[5];
    if (paddr < HBFT_RAM_BASE || (uint64_t)paddr - HBFT_RAM_BASE + memsz > m->ram_bytes) fail("segment outside RAM");
    memcpy(m->ram + (paddr - HBFT_RAM_BASE), image + offset, filesz);
  }
  free(image);
  return entry;
}

int main(int argc, char **argv) {
  struct machine *m = calloc(1, sizeof *m);
  uint32_t ram_mib = 256;
  uint64_t limit = UINT64_MAX;
  m->args = "";
  m->epoch_instructions = 3000000; /* 20 ms at 150 MIPS */
  int i = 1;
  for (; i < argc - 1; i += 2) {
    if (strcmp(argv[i], "-m") == 0) ram_mib = (uint32_t)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "-a") == 0) m->args = argv[i + 1];
    else if (strcmp(argv[i], "-e") == 0) m->epoch_instructions = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "-l") == 0) limit = strtoull(argv[i + 1], NULL, 10);
    else break;
  }
  if (i != argc - 1) fail("usage: rvsim [-m MiB] [-a ARGS] [-e N] [-l N] IMAGE");
  m->ram_bytes = ram_mib << 20;
  m->ram = mmap(NULL, m->ram_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  m->dirty = calloc(m->ram_bytes / PAGE_BYTES, 1);
  if (m->ram == MAP_FAILED || !m->dirty) fail("out of host memory");
  m->mtimecmp = UINT64_MAX;
  m->pc = load_elf(m, argv[argc - 1]);
  memset(m->dirty, 0, m->ram_bytes / PAGE_BYTES); /* loading the image is not the guest's writing */
  m->epoch_end = m->epoch_instructions;
  run(m, limit);
  end_epoch(m);
  fflush(stdout);
  fprintf(stderr, "rvsim: %llu instructions, %llu wfi, exit code %u\n", (unsigned long long)m->instret,
          (unsigned long long)m->wfi_count, m->exit_code);
  if (m->epochs > 0) {
    fprintf(stderr,
            "rvsim: %llu epochs of %llu instructions with writes: %.1f dirty pages per epoch (max %u), "
            "ave_stride %.1f pages\n",
            (unsigned long long)m->epochs, (unsigned long long)m->epoch_instructions,
            (double)m->dirty_pages_total / m->epochs, m->dirty_pages_max,
            (double)m->stride_pages_total / (double)m->strides_total);
  }
  return (int)m->exit_code;
}
