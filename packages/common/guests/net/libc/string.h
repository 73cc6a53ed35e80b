/* The part of <string.h> lwIP uses, implemented by the guest runtime (lib/string.c): guests have no
   C library, and the cross compiler's freestanding headers do not include this one. */
#ifndef HBFT_NET_LIBC_STRING_H
#define HBFT_NET_LIBC_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
