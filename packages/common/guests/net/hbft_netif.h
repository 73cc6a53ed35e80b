/*
 * The packet NIC (hbft.h, HBFT_NET_*) as an lwIP network interface, and the rest of lwIP's port
 * for hbft guests: sys_now() from mtime, LWIP_RAND, and a main-loop step that feeds received
 * frames to lwIP, runs its timers and sleeps until the next frame or timer.
 */
#ifndef HBFT_NETIF_H
#define HBFT_NETIF_H

#include <stdint.h>

#include "hbft_rt.h"
#include "lwip/netif.h"

/* Receive buffers posted at once; each holds one frame of up to HBFT_NET_FRAME_BYTES_MAX. */
#define HBFT_NETIF_RX_BUFFERS 256u
/* Receive buffers beyond the ring's, to stand in for those whose frames lwIP holds (see hbft_netif.c). */
#define HBFT_NETIF_RX_SPARES 1024u
/* Transmit descriptors; the device takes every posted frame at the doorbell, so few are needed. */
#define HBFT_NETIF_TX_BUFFERS 64u
#define HBFT_NETIF_BUFFER_BYTES 1536u

struct hbft_netif_config {
  uint32_t ip;      /* host byte order, e.g. 0x0a000002 for 10.0.0.2 */
  uint32_t netmask; /* host byte order */
  uint32_t gateway; /* host byte order; 0 for none */
};

/* Reads "ip=A.B.C.D/N" (and "gw=A.B.C.D", optional) from the machine's arguments. Returns 0, or
   prints which argument is malformed and returns -1. */
int hbft_netif_config_from_args(struct hbft_netif_config *config, uint32_t default_ip, uint32_t default_prefix);
/* Parses "A.B.C.D" (len bytes) into *out (host byte order); 1 on success. */
int hbft_parse_ipv4(const char *text, uint32_t len, uint32_t *out);

/* Whether the packet NIC is there. */
int hbft_netif_present(void);
/* Sets up lwIP (lwip_init) and the interface with the device's rings in the arena; the MAC is the
   device's, or 02:00:<ip> when the host gave none. Returns 0, or -1 when the device refused. */
int hbft_netif_start(struct netif *netif, struct hbft_arena *arena, const struct hbft_netif_config *config);
/* Feeds every received frame to lwIP and runs the timers that are due. */
void hbft_netif_poll(struct netif *netif);
/* Sleeps (wfi) until a frame arrives or lwIP's next timer is due. */
void hbft_netif_wait(struct netif *netif);

struct hbft_netif_stats {
  uint32_t rx_frames;
  uint32_t tx_frames;
  uint32_t tx_dropped; /* no transmit buffer free, or a frame too large */
  uint32_t rx_no_pbuf; /* lwIP's pool was empty: the frame was dropped (TCP retransmits) */
  uint32_t link_changes; /* link changes the device signalled (takeovers) */
  uint32_t arp_refreshes; /* ARP requests sent to cached neighbours after a link change */
};
void hbft_netif_stats(struct hbft_netif_stats *stats);

#endif
