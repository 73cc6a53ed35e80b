/*
 * The C library functions gcc may call on its own (memcpy, memset, memmove, memcmp for struct
 * copies and loops it recognises) and a few string helpers. Word-sized loops keep the copies of kv
 * values and NIC payloads cheap on an interpreter, and every access stays naturally aligned
 * because the machine traps on misaligned loads and stores.
 *
 * The attribute stops gcc from recognising these very loops as memcpy/memset and calling them.
 */
#include "hbft_rt.h"

#define NO_BUILTIN_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))

NO_BUILTIN_LOOPS void *memcpy(void *dst, const void *src, size_t len) {
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  if ((((uintptr_t)d ^ (uintptr_t)s) & 3u) == 0) {
    while (len > 0 && ((uintptr_t)d & 3u) != 0) {
      *d++ = *s++;
      len--;
    }
    uint32_t *dw = (uint32_t *)d;
    const uint32_t *sw = (const uint32_t *)s;
    while (len >= 16) {
      uint32_t a = sw[0], b = sw[1], c = sw[2], e = sw[3];
      dw[0] = a;
      dw[1] = b;
      dw[2] = c;
      dw[3] = e;
      dw += 4;
      sw += 4;
      len -= 16;
    }
    while (len >= 4) {
      *dw++ = *sw++;
      len -= 4;
    }
    d = (uint8_t *)dw;
    s = (const uint8_t *)sw;
  }
  while (len > 0) {
    *d++ = *s++;
    len--;
  }
  return dst;
}

NO_BUILTIN_LOOPS void *memmove(void *dst, const void *src, size_t len) {
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  if (d == s || len == 0) return dst;
  if (d < s || d >= s + len) return memcpy(dst, src, len);
  /* Overlapping with dst above src: copy backwards. */
  d += len;
  s += len;
  if ((((uintptr_t)d ^ (uintptr_t)s) & 3u) == 0) {
    while (len > 0 && ((uintptr_t)d & 3u) != 0) {
      *--d = *--s;
      len--;
    }
    while (len >= 4) {
      d -= 4;
      s -= 4;
      *(uint32_t *)d = *(const uint32_t *)s;
      len -= 4;
    }
  }
  while (len > 0) {
    *--d = *--s;
    len--;
  }
  return dst;
}

NO_BUILTIN_LOOPS void *memset(void *dst, int value, size_t len) {
  uint8_t *d = (uint8_t *)dst;
  uint8_t byte = (uint8_t)value;
  while (len > 0 && ((uintptr_t)d & 3u) != 0) {
    *d++ = byte;
    len--;
  }
  uint32_t word = byte * 0x01010101u;
  uint32_t *dw = (uint32_t *)d;
  while (len >= 16) {
    dw[0] = word;
    dw[1] = word;
    dw[2] = word;
    dw[3] = word;
    dw += 4;
    len -= 16;
  }
  while (len >= 4) {
    *dw++ = word;
    len -= 4;
  }
  d = (uint8_t *)dw;
  while (len > 0) {
    *d++ = byte;
    len--;
  }
  return dst;
}

NO_BUILTIN_LOOPS int memcmp(const void *a, const void *b, size_t len) {
  const uint8_t *x = (const uint8_t *)a;
  const uint8_t *y = (const uint8_t *)b;
  if ((((uintptr_t)x | (uintptr_t)y) & 3u) == 0) {
    while (len >= 4 && *(const uint32_t *)x == *(const uint32_t *)y) {
      x += 4;
      y += 4;
      len -= 4;
    }
  }
  for (; len > 0; len--, x++, y++) {
    if (*x != *y) return *x < *y ? -1 : 1;
  }
  return 0;
}

NO_BUILTIN_LOOPS size_t strlen(const char *s) {
  size_t len = 0;
  while (s[len] != 0) len++;
  return len;
}

int strcmp(const char *a, const char *b) {
  while (*a != 0 && *a == *b) {
    a++;
    b++;
  }
  return (int)(uint8_t)*a - (int)(uint8_t)*b;
}

int strncmp(const char *a, const char *b, size_t len) {
  for (; len > 0; len--, a++, b++) {
    if (*a != *b || *a == 0) return (int)(uint8_t)*a - (int)(uint8_t)*b;
  }
  return 0;
}
