/*
 * lwIP configuration of hbft's network guests: NO_SYS (one loop, no threads), the raw API, IPv4
 * over Ethernet, TCP for many concurrent clients. Every pool is static and sized here, so the
 * stack's memory is bounded whatever the network sends.
 */
#ifndef HBFT_LWIPOPTS_H
#define HBFT_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_TCP 1
#define LWIP_STATS 0
#define LWIP_SINGLE_NETIF 1
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define IP_REASSEMBLY 0
#define IP_FRAG 0

/* Memory: the heap (outgoing segments' data) and the pools are static arrays in .bss. */
#define MEM_ALIGNMENT 4
/* The heap is pools of fixed sizes (lwippools.h), 4 MiB in all, like the first-fit heap they replace. */
#define MEM_USE_POOLS 1
#define MEMP_USE_CUSTOM_POOLS 1
#define MEM_USE_POOLS_TRY_BIGGER_POOL 1
#define MEMP_NUM_PBUF 1024
#define PBUF_POOL_SIZE 2048
#define PBUF_POOL_BUFSIZE 1536
/* Received frames go to lwIP in the driver's buffers (hbft_netif.c), not copied into the pool. */
#define LWIP_SUPPORT_CUSTOM_PBUF 1

/* TCP: at least 1,024 clients at once (plus room for those closing), each with a full window. */
#define HBFT_TCP_CLIENTS_MAX 1024
#define MEMP_NUM_TCP_PCB (HBFT_TCP_CLIENTS_MAX + 64)
#define MEMP_NUM_TCP_PCB_LISTEN 2
#define MEMP_NUM_TCP_SEG 8192
#define TCP_MSS 1460
#define TCP_WND (16 * TCP_MSS)
#define TCP_SND_BUF 65535
#define TCP_SND_QUEUELEN ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
#define TCP_LISTEN_BACKLOG 1
#define TCP_DEFAULT_LISTEN_BACKLOG 255
#define TCP_QUEUE_OOSEQ 1
/* No room kept behind a segment's data for later writes: a reply is one write (the engine stages
   them), and an MSS-sized buffer for each 5-byte reply was 1.5 KB of heap touched (and dirtied) for
   nothing. */
#define TCP_OVERSIZE 0
#define LWIP_TCP_KEEPALIVE 1
#define LWIP_TCP_TIMESTAMPS 0
#define ARP_TABLE_SIZE 64
#define ARP_QUEUEING 1
#define MEMP_NUM_ARP_QUEUE 64

/* Checksums per interface: hbft_netif.c leaves IPv4 header and TCP checksums to a packet NIC that
   offloads them. Not on copy: with offload, a sum taken while tcp_write copies would be wasted. */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1
#define LWIP_CHECKSUM_ON_COPY 0
/* Checksums a 32-bit word at a time (lwIP's third algorithm): the fastest of its three on RV32,
   where the default (16-bit steps) took 6.5 % of a GET's instructions. */
#define LWIP_CHKSUM_ALGORITHM 3
/* Two bytes before each Ethernet header, so that IP and TCP headers and the payload after them are
   word-aligned: copies of frames and of client bytes then move words instead of bytes (memcpy was
   12 % of a GET's instructions). The driver puts frames at buffer + 2 to match. */
#define ETH_PAD_SIZE 2
/* Byte swaps inline (a few shifts and ors) instead of a call per header field; written out because
   on RV32IM gcc's __builtin_bswap32 is itself a call into libgcc. */
#include <stdint.h>
static inline uint16_t hbft_bswap16(uint16_t x) { return (uint16_t)((x >> 8) | (x << 8)); }
static inline uint32_t hbft_bswap32(uint32_t x) {
  /* Bytes swapped within each half, then the halves: one mask constant, 8 instructions. */
  x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
  return (x >> 16) | (x << 16);
}
#define lwip_htons(x) hbft_bswap16((uint16_t)(x))
#define lwip_htonl(x) hbft_bswap32((uint32_t)(x))
/* (lwIP's def.h defines lwip_ntohs and lwip_ntohl as these.) */
/* lwIP's copies of a few bytes of known length (MAC and IP addresses, ethernet_output's header):
   inline loads and stores instead of a call each to memcpy (ethernet_output's two were 24 % of the
   memcpy a SET costs). */
#include <stddef.h>
static inline __attribute__((always_inline)) void hbft_smemcpy(void *dst, const void *src, size_t len) {
  /* gcc calls memcpy for a __builtin_memcpy of 6 bytes it cannot prove aligned (an Ethernet
     address): ~30 instructions for ethernet_output's two, where 12 loads and stores do. */
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  if (len == 6) {
    d[0] = s[0], d[1] = s[1], d[2] = s[2], d[3] = s[3], d[4] = s[4], d[5] = s[5];
  } else if (len == 4) {
    d[0] = s[0], d[1] = s[1], d[2] = s[2], d[3] = s[3];
  } else {
    __builtin_memcpy(dst, src, len);
  }
}
#define SMEMCPY(dst, src, len) hbft_smemcpy(dst, src, len)
/* lwIP's copies of data (tcp_write's of a reply into its segment): the few bytes of most replies
   inline, as the call to memcpy cost more than they do. */
void *memcpy(void *dst, const void *src, size_t len);
static inline __attribute__((always_inline)) void *hbft_memcpy(void *dst, const void *src, size_t len) {
  if (len > 8) return memcpy(dst, src, len);
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  for (size_t i = 0; i < len; i++) d[i] = s[i];
  return dst;
}
#define MEMCPY(dst, src, len) hbft_memcpy(dst, src, len)
#define LWIP_DEBUG 0

#endif
