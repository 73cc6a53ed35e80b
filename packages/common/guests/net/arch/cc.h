/*
 * lwIP's port header for hbft guests: bare metal RV32, no C library. Only the freestanding
 * headers (stddef.h, stdint.h, limits.h) come from the compiler; the rest lwIP needs is here or in
 * the guest runtime (string.c, console.c).
 */
#ifndef HBFT_LWIP_ARCH_CC_H
#define HBFT_LWIP_ARCH_CC_H

#include <stddef.h>
#include <stdint.h>

/* No inttypes.h without a C library: the print formats lwIP's debug output would use. */
#define LWIP_NO_INTTYPES_H 1
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "u"
#define X8_F "02x"

#define LWIP_NO_CTYPE_H 1
#define LWIP_NO_UNISTD_H 1
#define LWIP_PROVIDE_ERRNO 1

#define BYTE_ORDER LITTLE_ENDIAN

/* lwIP's protocol headers (struct eth_hdr, ip_hdr, tcp_hdr, ...) without __attribute__((packed)):
   packed, every field access was byte loads and shifts (a 32-bit sequence number: 4 loads, 6 ALU
   instructions), about 170 instructions of a request. Unpacked, they keep the same layout (every
   field is at an offset of its own alignment: hbft_netif.c checks the sizes), and every header
   lwIP reads or writes is at a word-aligned address, which a misaligned access would trap on: with
   ETH_PAD_SIZE 2 (lwipopts.h) the IP header follows 16 bytes into a pbuf's payload, received
   frames sit at buffer + ETH_PAD_SIZE in word-aligned buffers (hbft_netif.c), lwIP's own pbufs
   are MEM_ALIGNMENT (4) aligned, and IP and TCP header lengths are multiples of 4. TCP options
   are read a byte at a time; ARP's misaligned addresses are two 16-bit halves (ip4_addr2). */
#define PACK_STRUCT_STRUCT
#define LWIP_SKIP_PACKING_CHECK 1

void hbft_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void hbft_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int hbft_lwip_rand(void);

#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
    hbft_printf x;            \
  } while (0)
#define LWIP_PLATFORM_ASSERT(x) hbft_panic("lwip: assertion \"%s\" failed at %s:%d", x, __FILE__, __LINE__)
#define LWIP_RAND() ((u32_t)hbft_lwip_rand())

#endif
