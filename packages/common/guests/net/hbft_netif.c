/*
 * The packet NIC's lwIP driver. Memory: the descriptor rings and the buffers are carved from the
 * caller's arena once. Receive buffers are more than the ring holds: a received frame goes to lwIP
 * in its own buffer (a custom pbuf, no copy), a spare buffer takes its place in the ring at once,
 * and the buffer becomes a spare again when lwIP frees the pbuf; with no spare left (lwIP or kvnet
 * holding many frames), the frame is copied into a pbuf from lwIP's pool and its buffer posted
 * again, so the device never waits for lwIP to free anything.
 * Transmit copies the pbuf chain into the next transmit buffer and rings the doorbell per frame:
 * the device takes the frame before the doorbell write returns, so the buffer is free again.
 */
#include "hbft_netif.h"

#include <stdlib.h>

#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "lwip/prot/etharp.h"
#include "lwip/prot/icmp.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/tcp.h"

/* lwIP's headers are not packed (arch/cc.h): they must still be exactly the wire's layout. */
_Static_assert(sizeof(struct eth_addr) == ETH_HWADDR_LEN, "struct eth_addr is not 6 bytes");
_Static_assert(sizeof(struct eth_hdr) == SIZEOF_ETH_HDR, "struct eth_hdr has padding");
_Static_assert(sizeof(struct etharp_hdr) == SIZEOF_ETHARP_HDR, "struct etharp_hdr has padding");
_Static_assert(sizeof(struct ip_hdr) == IP_HLEN, "struct ip_hdr has padding");
_Static_assert(sizeof(struct tcp_hdr) == TCP_HLEN, "struct tcp_hdr has padding");
_Static_assert(sizeof(struct icmp_echo_hdr) == 8, "struct icmp_echo_hdr has padding");
/* ... and at word-aligned addresses: a received frame's pbuf payload is its (word-aligned) buffer,
   the frame at ETH_PAD_SIZE, so its IP header is SIZEOF_ETH_HDR (14 + ETH_PAD_SIZE) bytes in. */
_Static_assert(HBFT_NETIF_BUFFER_BYTES % 4 == 0 && SIZEOF_ETH_HDR % 4 == 0, "received IP headers would not be word-aligned");

/* A receive buffer, and the pbuf lwIP gets for the frame in it. */
struct rx_buffer {
  struct pbuf_custom pbuf;
  uint8_t *data;
  struct rx_buffer *next_spare;
};

struct driver {
  struct hbft_net_descriptor *rx_ring;
  struct hbft_net_descriptor *tx_ring;
  struct rx_buffer *rx_in_ring[HBFT_NETIF_RX_BUFFERS]; /* the buffer of each receive descriptor */
  struct rx_buffer *rx_spares;                         /* buffers neither in the ring nor lwIP's */
  uint8_t *tx_buffers;
  uint32_t rx_posted;
  uint32_t rx_consumed;
  uint32_t tx_posted;
  struct hbft_netif_stats stats;
  uint32_t ticks_per_ms;
  uint64_t now_base_ticks; /* sys_now(): now_ms * ticks_per_ms */
  uint32_t now_ms;
  uint64_t armed_deadline; /* what hbft_netif_wait last wrote to mtimecmp (0: nothing yet) */
};

/* One packet NIC per machine, so one driver. */
static struct driver driver;

static inline void ring_barrier(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }

int hbft_netif_present(void) { return HBFT_REG(HBFT_NET_ID) == HBFT_NET_ID_VALUE; }

/* mtime / ticks_per_ms, exactly, without a 64-bit division (a libgcc call of ~50 instructions on
   RV32IM) each time: the milliseconds are kept with the tick count at their start, and only the
   ticks since then (less than 2^32 unless the guest slept for minutes) are divided. */
u32_t sys_now(void) {
  uint64_t since = hbft_mtime() - driver.now_base_ticks;
  if (since >= driver.ticks_per_ms) {
    uint32_t ms = since >> 32 == 0 ? (uint32_t)since / driver.ticks_per_ms : (uint32_t)(since / driver.ticks_per_ms);
    driver.now_base_ticks += (uint64_t)ms * driver.ticks_per_ms;
    driver.now_ms += ms;
  }
  return driver.now_ms;
}

/* lwIP wants randomness only for its first local port, which a server never uses; a fixed
   sequence keeps the guest deterministic, as replication needs. */
int hbft_lwip_rand(void) {
  static uint32_t state = 0x2545f491u;
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return (int)(state >> 1);
}

/* For lwIP's netif_find ("en0"): decimal digits after an optional sign, as the C library's. */
int atoi(const char *text) {
  int sign = 1, value = 0;
  if (*text == '-' || *text == '+') sign = *text++ == '-' ? -1 : 1;
  while (*text >= '0' && *text <= '9') value = value * 10 + (*text++ - '0');
  return sign * value;
}

static void post_rx_buffer(struct rx_buffer *buffer) {
  uint32_t slot = driver.rx_posted & (HBFT_NETIF_RX_BUFFERS - 1);
  /* At buffer + ETH_PAD_SIZE, as lwIP lays frames out in its pbufs: the copy moves words. */
  driver.rx_in_ring[slot] = buffer;
  driver.rx_ring[slot].address = (uint32_t)(uintptr_t)(buffer->data + ETH_PAD_SIZE);
  driver.rx_ring[slot].length = HBFT_NETIF_BUFFER_BYTES - ETH_PAD_SIZE;
  driver.rx_posted++;
}

/* lwIP freed a frame's pbuf: its buffer is a spare again. */
static void rx_buffer_free(struct pbuf *p) {
  struct rx_buffer *buffer = (struct rx_buffer *)p;
  buffer->next_spare = driver.rx_spares;
  driver.rx_spares = buffer;
}

static err_t linkoutput(struct netif *netif, struct pbuf *p) {
  (void)netif;
  /* lwIP's frames start with ETH_PAD_SIZE bytes of padding (lwipopts.h), which the wire never sees. */
  uint32_t length = p->tot_len - ETH_PAD_SIZE;
  if (length > HBFT_NET_FRAME_BYTES_MAX) {
    driver.stats.tx_dropped++;
    return ERR_BUF;
  }
  uint32_t slot = driver.tx_posted & (HBFT_NETIF_TX_BUFFERS - 1);
  uint8_t *buffer;
  if (p->next == NULL) {
    /* The whole frame in one pbuf (a TCP segment whose data lwIP copied in behind its headers): the
       descriptor points at it, as the device takes the frame before the doorbell write returns. */
    buffer = (uint8_t *)p->payload + ETH_PAD_SIZE;
  } else {
    buffer = driver.tx_buffers + slot * HBFT_NETIF_BUFFER_BYTES + ETH_PAD_SIZE;
    pbuf_copy_partial(p, buffer, (u16_t)length, ETH_PAD_SIZE);
  }
  driver.tx_ring[slot].address = (uint32_t)(uintptr_t)buffer;
  driver.tx_ring[slot].length = length;
  driver.tx_posted++;
  ring_barrier();
  HBFT_REG(HBFT_NET_TX_AVAIL) = driver.tx_posted;
  driver.stats.tx_frames++;
  return ERR_OK;
}

static err_t netif_setup(struct netif *netif) {
  netif->name[0] = 'e';
  netif->name[1] = 'n';
  netif->output = etharp_output;
  netif->linkoutput = linkoutput;
  netif->mtu = 1500;
  netif->hwaddr_len = ETH_HWADDR_LEN;
  netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
  return ERR_OK;
}

int hbft_netif_start(struct netif *netif, struct hbft_arena *arena, const struct hbft_netif_config *config) {
  if (!hbft_netif_present()) return -1;
  struct hbft_machine_info info;
  hbft_machine_info(&info);
  driver.ticks_per_ms = info.timebase_hz / 1000u;
  if (driver.ticks_per_ms == 0) driver.ticks_per_ms = 1;
  driver.rx_ring = hbft_arena_alloc_or_die(arena, HBFT_NETIF_RX_BUFFERS * sizeof(struct hbft_net_descriptor), 4096, "rx ring");
  driver.tx_ring = hbft_arena_alloc_or_die(arena, HBFT_NETIF_TX_BUFFERS * sizeof(struct hbft_net_descriptor), 4096, "tx ring");
  uint32_t rx_total = HBFT_NETIF_RX_BUFFERS + HBFT_NETIF_RX_SPARES;
  struct rx_buffer *rx = hbft_arena_alloc_or_die(arena, rx_total * sizeof(struct rx_buffer), 8, "rx buffer records");
  uint8_t *rx_data = hbft_arena_alloc_or_die(arena, rx_total * HBFT_NETIF_BUFFER_BYTES, 4096, "rx buffers");
  driver.tx_buffers = hbft_arena_alloc_or_die(arena, HBFT_NETIF_TX_BUFFERS * HBFT_NETIF_BUFFER_BYTES, 4096, "tx buffers");

  HBFT_REG(HBFT_NET_RX_BASE) = (uint32_t)(uintptr_t)driver.rx_ring;
  HBFT_REG(HBFT_NET_RX_COUNT) = HBFT_NETIF_RX_BUFFERS;
  HBFT_REG(HBFT_NET_TX_BASE) = (uint32_t)(uintptr_t)driver.tx_ring;
  HBFT_REG(HBFT_NET_TX_COUNT) = HBFT_NETIF_TX_BUFFERS;
  HBFT_REG(HBFT_NET_CTRL) = HBFT_NET_CTRL_ENABLE | HBFT_NET_CTRL_CHECKSUM_OFFLOAD;
  uint32_t ctrl = HBFT_REG(HBFT_NET_CTRL);
  if ((ctrl & HBFT_NET_CTRL_ENABLE) == 0) return -1;
  driver.rx_posted = driver.rx_consumed = driver.tx_posted = 0;
  driver.rx_spares = NULL;
  for (uint32_t i = 0; i < rx_total; i++) {
    rx[i].data = rx_data + i * HBFT_NETIF_BUFFER_BYTES;
    rx[i].pbuf.custom_free_function = rx_buffer_free;
    if (i < HBFT_NETIF_RX_BUFFERS) {
      post_rx_buffer(&rx[i]);
    } else {
      rx[i].next_spare = driver.rx_spares;
      driver.rx_spares = &rx[i];
    }
  }
  ring_barrier();
  HBFT_REG(HBFT_NET_RX_AVAIL) = driver.rx_posted;

  lwip_init();
  ip4_addr_t ip, netmask, gateway;
  ip4_addr_set_u32(&ip, lwip_htonl(config->ip));
  ip4_addr_set_u32(&netmask, lwip_htonl(config->netmask));
  ip4_addr_set_u32(&gateway, lwip_htonl(config->gateway));
  netif_add(netif, &ip, &netmask, &gateway, NULL, netif_setup, ethernet_input);
  /* A device that offloads checksums fills in IPv4 header and TCP checksums of what the guest sends
     and drops what arrives with a wrong one: lwIP leaves both to it (about 500 guest instructions
     of a request's 5,600). ICMP's stay lwIP's. */
  if ((ctrl & HBFT_NET_CTRL_CHECKSUM_OFFLOAD) != 0) {
    NETIF_SET_CHECKSUM_CTRL(netif, NETIF_CHECKSUM_ENABLE_ALL & ~(NETIF_CHECKSUM_GEN_IP | NETIF_CHECKSUM_GEN_TCP |
                                                                  NETIF_CHECKSUM_CHECK_IP | NETIF_CHECKSUM_CHECK_TCP));
  }
  uint32_t mac_lo = HBFT_REG(HBFT_NET_MAC_LO);
  uint32_t mac_hi = HBFT_REG(HBFT_NET_MAC_HI);
  if (mac_lo == 0 && (mac_hi & 0xffffu) == 0) {
    /* Locally administered, and the same wherever this guest runs with this address. */
    mac_lo = 0x02u | ((config->ip >> 24) << 16) | (((config->ip >> 16) & 0xffu) << 24);
    mac_hi = ((config->ip >> 8) & 0xffu) | ((config->ip & 0xffu) << 8);
  }
  for (uint32_t i = 0; i < 4; i++) netif->hwaddr[i] = (uint8_t)(mac_lo >> (8 * i));
  netif->hwaddr[4] = (uint8_t)mac_hi;
  netif->hwaddr[5] = (uint8_t)(mac_hi >> 8);
  netif_set_default(netif);
  netif_set_link_up(netif);
  netif_set_up(netif);
  return 0;
}

/*
 * After a takeover the node that resumed the guest signals a link change (down, then up: the cable
 * moved). The guest recovers at once instead of at lwIP's retransmission timers, which may be
 * seconds away after backoff:
 * - netif_set_link_up announces the guest (lwIP sends a gratuitous ARP), so bridges and clients
 *   learn where it is now;
 * - every connection with data the client has not acknowledged sends it again now (part of it
 *   may have been held by output commit and died with the old primary);
 * - every other connection sends four ACKs: the first may update the window the client last saw
 *   (the old primary's last released segment may have advertised another), and the three after it
 *   are duplicate ACKs, which a client whose request died with the old primary (its
 *   acknowledgement was never released) takes as the signal for a fast retransmission (RFC 5681
 *   section 3.2) instead of waiting for its own retransmission timer;
 * - every neighbour in the ARP cache is asked for its address again (an ARP request each): the
 *   cache learns only from ARP, and the new host's segment may reach a neighbour through another
 *   MAC (a router, a bridge whose address changed with its ports). The entries stay in use until
 *   the answers come, so nothing waits for them; a neighbour that answers with another MAC is
 *   used by that MAC from its answer on. Linux does the same by flushing its neighbours on a
 *   carrier change, which here would hold every retransmission above behind a resolution.
 */
static void recover_after_link_change(struct netif *netif) {
  uint32_t status = HBFT_REG(HBFT_NET_STATUS);
  if ((status & HBFT_NET_STATUS_LINK_CHANGED) == 0) return;
  HBFT_REG(HBFT_NET_STATUS) = HBFT_NET_STATUS_LINK_CHANGED;
  driver.stats.link_changes++;
  netif_set_link_down(netif);
  if ((status & HBFT_NET_STATUS_LINK_UP) == 0) return;
  netif_set_link_up(netif);
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
    if (pcb->unacked != NULL) {
      tcp_rexmit_rto(pcb);
    } else if (pcb->state == ESTABLISHED || pcb->state == CLOSE_WAIT) {
      for (int i = 0; i < 4; i++) {
        tcp_ack_now(pcb);
        tcp_output(pcb);
      }
    }
    tcp_output(pcb);
  }
  for (size_t i = 0; i < ARP_TABLE_SIZE; i++) {
    ip4_addr_t *neighbour;
    struct netif *on;
    struct eth_addr *mac;
    if (etharp_get_entry(i, &neighbour, &on, &mac) && on == netif) {
      etharp_request(netif, neighbour);
      driver.stats.arp_refreshes++;
    }
  }
}

void hbft_netif_poll(struct netif *netif) {
  recover_after_link_change(netif);
  uint32_t used = HBFT_REG(HBFT_NET_RX_USED);
  ring_barrier();
  while (driver.rx_consumed != used) {
    uint32_t slot = driver.rx_consumed & (HBFT_NETIF_RX_BUFFERS - 1);
    uint32_t length = driver.rx_ring[slot].length;
    struct rx_buffer *buffer = driver.rx_in_ring[slot];
    driver.rx_consumed++;
    struct rx_buffer *next = buffer;
    if (length > 0 && length <= HBFT_NETIF_BUFFER_BYTES - ETH_PAD_SIZE) {
      struct pbuf *p;
      if (driver.rx_spares != NULL) {
        /* lwIP takes the frame where it is, and a spare takes the buffer's place in the ring. */
        next = driver.rx_spares;
        driver.rx_spares = next->next_spare;
        p = pbuf_alloced_custom(PBUF_RAW, (u16_t)(length + ETH_PAD_SIZE), PBUF_REF, &buffer->pbuf, buffer->data,
                                HBFT_NETIF_BUFFER_BYTES);
      } else {
        p = pbuf_alloc(PBUF_RAW, (u16_t)(length + ETH_PAD_SIZE), PBUF_POOL);
        if (p != NULL) pbuf_take_at(p, buffer->data + ETH_PAD_SIZE, (u16_t)length, ETH_PAD_SIZE);
      }
      if (p == NULL) {
        driver.stats.rx_no_pbuf++;
      } else {
        driver.stats.rx_frames++;
        if (netif->input(p, netif) != ERR_OK) pbuf_free(p);
      }
    }
    post_rx_buffer(next);
    if (driver.rx_consumed != used) continue;
    /* The frames the device had filled are taken: hand their buffers back in one go (two register
       writes for the batch, not for each frame), then look for frames that came meanwhile. */
    ring_barrier();
    HBFT_REG(HBFT_NET_RX_CONSUMED) = driver.rx_consumed;
    HBFT_REG(HBFT_NET_RX_AVAIL) = driver.rx_posted;
    used = HBFT_REG(HBFT_NET_RX_USED);
    ring_barrier();
  }
  sys_check_timeouts();
}

void hbft_netif_wait(struct netif *netif) {
  (void)netif;
  if (HBFT_REG(HBFT_NET_RX_USED) != driver.rx_consumed) return;
  if ((HBFT_REG(HBFT_NET_STATUS) & HBFT_NET_STATUS_LINK_CHANGED) != 0) return;
  /* sys_timeouts_sleeptime() just read the clock through sys_now(), so the next timer is due at
     tick (now_ms + sleep_ms) * ticks_per_ms exactly, with no second read of mtime; and mtimecmp is
     written only when that moves (a deadline already passed wakes the wfi at once, as it should). */
  u32_t sleep_ms = sys_timeouts_sleeptime();
  uint64_t deadline = sleep_ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE
                          ? UINT64_MAX
                          : driver.now_base_ticks + (uint64_t)sleep_ms * driver.ticks_per_ms;
  if (deadline != driver.armed_deadline) {
    /* High word first with an impossible value in between, so that no moment holds a deadline
       earlier than both the old and the new one (privileged spec, section 3.2.1). */
    HBFT_REG(HBFT_CLINT_MTIMECMP_HI) = 0xffffffffu;
    HBFT_REG(HBFT_CLINT_MTIMECMP_LO) = (uint32_t)deadline;
    HBFT_REG(HBFT_CLINT_MTIMECMP_HI) = (uint32_t)(deadline >> 32);
    driver.armed_deadline = deadline;
  }
  /* mstatus.MIE stays clear: wfi waits for the timer or the NIC to be pending, and the loop polls. */
  __asm__ volatile("csrs mie, %0" : : "r"(HBFT_MIE_MEIE | HBFT_MIE_MTIE));
  __asm__ volatile("wfi" ::: "memory");
}

void hbft_netif_stats(struct hbft_netif_stats *stats) { *stats = driver.stats; }

int hbft_parse_ipv4(const char *text, uint32_t len, uint32_t *out) {
  uint32_t value = 0, part = 0, digits = 0, parts = 0;
  for (uint32_t i = 0; i <= len; i++) {
    if (i == len || text[i] == '.') {
      if (digits == 0 || part > 255) return 0;
      value = (value << 8) | part;
      parts++;
      part = digits = 0;
      continue;
    }
    if (text[i] < '0' || text[i] > '9' || digits == 3) return 0;
    part = part * 10 + (uint32_t)(text[i] - '0');
    digits++;
  }
  if (parts != 4) return 0;
  *out = value;
  return 1;
}

int hbft_netif_config_from_args(struct hbft_netif_config *config, uint32_t default_ip, uint32_t default_prefix) {
  static char args[HBFT_ARGS_BYTES_MAX + 1];
  hbft_sysinfo_args(args, sizeof args);
  config->ip = default_ip;
  uint32_t prefix = default_prefix;
  config->gateway = 0;
  const char *value;
  uint32_t value_len;
  if (hbft_args_find(args, "ip", &value, &value_len)) {
    uint32_t slash = 0;
    while (slash < value_len && value[slash] != '/') slash++;
    uint64_t parsed_prefix = 32;
    if (!hbft_parse_ipv4(value, slash, &config->ip) ||
        (slash < value_len && (!hbft_parse_u64(value + slash + 1, value_len - slash - 1, &parsed_prefix) || parsed_prefix > 32))) {
      hbft_printf("argument ip=%.*s: expected an IPv4 address and prefix length, like ip=10.0.0.2/24\n", (int)value_len, value);
      return -1;
    }
    prefix = (uint32_t)parsed_prefix;
  }
  if (hbft_args_find(args, "gw", &value, &value_len) && !hbft_parse_ipv4(value, value_len, &config->gateway)) {
    hbft_printf("argument gw=%.*s: expected an IPv4 address, like gw=10.0.0.1\n", (int)value_len, value);
    return -1;
  }
  config->netmask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
  return 0;
}
