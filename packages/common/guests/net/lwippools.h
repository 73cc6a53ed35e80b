/*
 * lwIP's heap as pools (lwipopts.h: MEM_USE_POOLS): what lwIP allocates from its heap is a TCP
 * segment's buffer (its headers and at most one MSS of data: tcp_write splits larger writes), a
 * header of its own, or a frame it copies (an ARP-queued frame, an ICMP reply): at most an
 * Ethernet frame and some headers. Taking one from a pool of the right size costs a fraction of the
 * first-fit walk of the heap it replaces (mem_malloc was ~170 of a SET's ~4,700 guest instructions).
 * A small request finds a larger pool when its own is empty (MEM_USE_POOLS_TRY_BIGGER_POOL). Sizes
 * are element sizes, including mem_malloc's own few bytes of header.
 */
#if MEM_USE_POOLS
LWIP_MALLOC_MEMPOOL_START
LWIP_MALLOC_MEMPOOL(4096, 256)
LWIP_MALLOC_MEMPOOL(2048, 1664)
LWIP_MALLOC_MEMPOOL_END
#endif
