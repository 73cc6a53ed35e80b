/*
 * The guest runtime: what every hbft guest program links with besides the device ABI (hbft.h).
 *
 * The runtime is split so that only machine.c touches devices or CSRs (and, in network guests, the
 * packet NIC's driver net/hbft_netif.c); console.c, args.c, arena.c and the inline helpers below are
 * plain C, which lets a host harness compile the guests' logic with an ordinary compiler (see
 * guests/test/). Nothing here keeps hidden state: the allocator and the generator are structs the
 * caller owns and passes in.
 */
#ifndef HBFT_RT_H
#define HBFT_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "hbft.h"

#define HBFT_NORETURN __attribute__((noreturn))
#define HBFT_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))

#define HBFT_KIB(n) ((uint32_t)(n) * 1024u)
#define HBFT_MIB(n) ((uint32_t)(n) * 1024u * 1024u)

/* QEMU's virt machine has no SYSINFO device; these are the values the runtime assumes there. */
#define HBFT_FALLBACK_RAM_BYTES HBFT_MIB(128)
#define HBFT_FALLBACK_TIMEBASE_HZ 10000000u

/* ---- machine.c: the machine itself ---- */

/* What SYSINFO reports, with QEMU's defaults substituted when the device is absent. */
struct hbft_machine_info {
  uint32_t ram_base;
  uint32_t ram_bytes;
  uint32_t timebase_hz;
  int sysinfo_present; /* 0 under QEMU: no arguments, fallback RAM size */
};
void hbft_machine_info(struct hbft_machine_info *info);

/* Copies the SYSINFO argument string into buf (NUL-terminated, truncated to cap - 1 bytes) and
   returns its length; 0 when there is no SYSINFO device or no arguments. */
uint32_t hbft_sysinfo_args(char *buf, uint32_t cap);
#define HBFT_ARGS_BYTES_MAX 3840u

/* Ends the run through the test finisher: 0 is PASS, anything else (code << 16) | FAIL. */
HBFT_NORETURN void hbft_exit(uint32_t code);

/* Guest-visible time in timebase ticks (under hbft one tick per retired instruction). */
uint64_t hbft_mtime(void);

/* Sets mie.MEIE and mie.MTIE and executes wfi: returns when an external interrupt (the packet NIC)
   is pending, once mtime reaches deadline, or spuriously; callers re-check their condition in a
   loop. The timer stays armed until the next call moves it; UINT64_MAX disarms it. */
void hbft_wait_for_interrupt_until(uint64_t deadline);

/* The lowest and highest addresses a heap may use: [_end, stack top - stack_reserve_bytes). */
void hbft_heap_bounds(uint32_t stack_reserve_bytes, uintptr_t *start, uintptr_t *end);

/* Low-level console output: one byte to the UART. */
void hbft_putc(char c);

/* ---- console.c: formatted output ---- */

/* Writes s and a newline, like C's puts. */
void hbft_puts(const char *s);
void hbft_write(const char *bytes, uint32_t len);
/* A small printf: %d %i %u %x %X %c %s %p %% with optional '-', '0', a width, and the length
   modifiers l (32-bit here) and ll (64-bit), e.g. %08x, %llu, %lld, %llx, %-10s. */
void hbft_printf(const char *fmt, ...) HBFT_PRINTF(1, 2);
void hbft_vprintf(const char *fmt, va_list ap);
/* Like snprintf: always NUL-terminates when cap > 0 and returns the length the full output needs. */
uint32_t hbft_snprintf(char *buf, uint32_t cap, const char *fmt, ...) HBFT_PRINTF(3, 4);
uint32_t hbft_vsnprintf(char *buf, uint32_t cap, const char *fmt, va_list ap);
/* Prints "<what>: <message>" and exits with code 1; for conditions that must never happen. */
HBFT_NORETURN void hbft_panic(const char *fmt, ...) HBFT_PRINTF(1, 2);

#define HBFT_ASSERT(cond)                                                        \
  do {                                                                           \
    if (!(cond)) hbft_panic("%s:%d: assertion failed: %s", __FILE__, __LINE__, #cond); \
  } while (0)

/* ---- args.c: "key=value key2=value2" from SYSINFO ---- */

/* Looks key up in a space-separated key=value string. Returns 1 and sets *value (pointing into
   args, not NUL-terminated) and *value_len when found, 0 otherwise. The last occurrence wins. */
int hbft_args_find(const char *args, const char *key, const char **value, uint32_t *value_len);
/* Parses a decimal or 0x-prefixed hexadecimal unsigned number that fills the whole span.
   Returns 1 on success, 0 when the text is empty, has other characters, or overflows 64 bits. */
int hbft_parse_u64(const char *text, uint32_t len, uint64_t *out);
/* The machine's argument for key as a number, or dflt when absent. A value that is not a number
   (or does not fit) is a usage error: the guest prints which argument was wrong and exits with 2. */
uint32_t hbft_arg_u32(const char *key, uint32_t dflt);
uint64_t hbft_arg_u64(const char *key, uint64_t dflt);
/* Same, over an explicit argument string (what hbft_arg_u32 uses after reading SYSINFO). */
uint64_t hbft_args_u64(const char *args, const char *key, uint64_t dflt, uint64_t max);

/* ---- arena.c: bump allocation ---- */

/*
 * A bump allocator over a fixed range. It never hands out the same bytes twice, so memory it returns
 * is still zero from boot: callers must not clear it (clearing would dirty pages that the
 * replication's initial sync skips while they are zero).
 */
struct hbft_arena {
  uintptr_t next;
  uintptr_t end;
};
void hbft_arena_init(struct hbft_arena *arena, uintptr_t start, uintptr_t end);
/* The heap between _end and the stack, leaving stack_reserve_bytes below the top of RAM. */
void hbft_arena_init_heap(struct hbft_arena *arena, uint32_t stack_reserve_bytes);
/* Returns bytes aligned to align (a power of two), or NULL when the arena is exhausted. */
void *hbft_arena_alloc(struct hbft_arena *arena, uint32_t bytes, uint32_t align);
/* Like hbft_arena_alloc but a failure is fatal: prints what could not be allocated and exits 3. */
void *hbft_arena_alloc_or_die(struct hbft_arena *arena, uint32_t bytes, uint32_t align, const char *what);
uint32_t hbft_arena_free_bytes(const struct hbft_arena *arena);

#define HBFT_STACK_RESERVE_BYTES HBFT_KIB(256)

/* ---- checksums and pseudo-random numbers (inline: used in inner loops) ---- */

#define HBFT_FNV1A64_INIT 0xcbf29ce484222325ull
#define HBFT_FNV1A64_PRIME 0x00000100000001b3ull

/* 64-bit FNV-1a over bytes; start from HBFT_FNV1A64_INIT. */
static inline uint64_t hbft_fnv1a64(uint64_t hash, const void *data, uint32_t len) {
  const uint8_t *bytes = (const uint8_t *)data;
  for (uint32_t i = 0; i < len; i++) {
    hash ^= bytes[i];
    hash *= HBFT_FNV1A64_PRIME;
  }
  return hash;
}

/* One FNV-1a step over a whole 32-bit word: four times cheaper than hashing its bytes, for folding
   large arrays of words into a run's checksum (not interchangeable with the byte-wise hash). */
static inline uint64_t hbft_fnv1a64_u32(uint64_t hash, uint32_t word) {
  hash ^= word;
  return hash * HBFT_FNV1A64_PRIME;
}

static inline uint64_t hbft_fnv1a64_u64(uint64_t hash, uint64_t value) {
  hash = hbft_fnv1a64_u32(hash, (uint32_t)value);
  return hbft_fnv1a64_u32(hash, (uint32_t)(value >> 32));
}

/* Marsaglia's xorshift128: period 2^128 - 1, only shifts and xors, so cheap on RV32. */
struct hbft_rng {
  uint32_t x, y, z, w;
};

static inline uint32_t hbft_rng_next(struct hbft_rng *rng) {
  uint32_t t = rng->x ^ (rng->x << 11);
  rng->x = rng->y;
  rng->y = rng->z;
  rng->z = rng->w;
  rng->w = rng->w ^ (rng->w >> 19) ^ t ^ (t >> 8);
  return rng->w;
}

/* Seeds from any 32-bit value (0 included) by spreading it with a splitmix-style mixer. */
static inline void hbft_rng_seed(struct hbft_rng *rng, uint32_t seed) {
  uint32_t s = seed;
  uint32_t *words[4] = {&rng->x, &rng->y, &rng->z, &rng->w};
  for (int i = 0; i < 4; i++) {
    s += 0x9e3779b9u;
    uint32_t z = s;
    z = (z ^ (z >> 16)) * 0x85ebca6bu;
    z = (z ^ (z >> 13)) * 0xc2b2ae35u;
    z ^= z >> 16;
    *words[i] = z;
  }
  if ((rng->x | rng->y | rng->z | rng->w) == 0) rng->w = 1;
}

/* A value in [0, bound) for bound > 0; the multiply-shift keeps it nearly unbiased without a divide. */
static inline uint32_t hbft_rng_below(struct hbft_rng *rng, uint32_t bound) {
  return (uint32_t)(((uint64_t)hbft_rng_next(rng) * bound) >> 32);
}

/* ---- string.c: what gcc may call implicitly, plus a few helpers ---- */

void *memcpy(void *dst, const void *src, size_t len);
void *memmove(void *dst, const void *src, size_t len);
void *memset(void *dst, int value, size_t len);
int memcmp(const void *a, const void *b, size_t len);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t len);

#endif
