/*
 * kvnet: the kv server (lib/kv_engine.c, the same engine as kv) on TCP port 6379 of the guest's
 * own IPv4 address, through lwIP's raw API over the packet NIC. Every byte of every connection's
 * TCP state lives in guest memory, so a checkpoint carries the connections with it.
 *
 * Connections: up to KVNET_CONNECTIONS_MAX at once; a closed connection's slot is free at once.
 * When every slot is taken, a new client evicts the connection idle longest, if it has been idle
 * for KVNET_IDLE_EVICT_MS (so connections that open and go quiet cannot lock others out); when
 * none has, the new client is refused (reset).
 * Backpressure: a connection's requests run only while its send buffer has room for replies
 * (KVNET_SEND_ROOM_BYTES_MIN) and nothing of an earlier reply waits; the rest of its input stays in
 * lwIP's pbufs, unacknowledged to the window, so a client that does not read its replies is
 * stopped by TCP's own flow control and holds at most a window of input and one request's replies.
 * A reply larger than the free send buffer (lwIP's is 64 KiB) goes out in part, and the rest waits
 * in the connection's spill: chunks from a shared pool, moved into the send buffer as the client
 * acknowledges. A connection whose replies to one request pass KVNET_SPILL_BYTES_MAX, or that finds
 * the pool empty, is reset, as Redis closes a client over its output buffer limit. Nothing a client
 * sends can stop the others from being served.
 *
 * Arguments: ip=<A.B.C.D/N> (10.0.0.2/24), gw=<A.B.C.D> (none), port=<TCP port> (6379).
 */
#include "hbft_netif.h"
#include "hbft_rt.h"
#include "kv_engine.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "netif/ethernet.h"

#define KVNET_CONNECTIONS_MAX HBFT_TCP_CLIENTS_MAX
/* Input is taken from a client only while its send buffer has at least this much room. */
#define KVNET_SEND_ROOM_BYTES_MIN (TCP_SND_BUF / 2)
/* A connection this long without input may be evicted for a new client when every slot is taken. */
#define KVNET_IDLE_EVICT_MS 10000u
/* Room in the send queue (segments) that the same test asks for. */
#define KVNET_SEND_QUEUE_ROOM_MIN (TCP_SND_QUEUELEN / 4)
/* Replies that did not fit the send buffer wait in chunks of this size from a shared pool. */
#define KVNET_SPILL_CHUNK_BYTES HBFT_KIB(16)
/* The pool: this much, or an eighth of the memory left after the engine's, whichever is less. */
#define KVNET_SPILL_POOL_BYTES_MAX HBFT_MIB(16)
/* One connection's spill, at most: more than the largest reply to one request the store can hold. */
#define KVNET_SPILL_BYTES_MAX HBFT_MIB(4)
/* lwIP's poll callback period for each connection, in its coarse ticks (TCP_SLOW_INTERVAL, 500 ms):
   a spill that could not move for want of lwIP memory is retried then. */
#define KVNET_POLL_TICKS 2
/* Buckets of the connection table by client address and port: a power of two, twice the slots. */
#define KVNET_PEER_BUCKETS (2 * KVNET_CONNECTIONS_MAX)

struct spill_chunk {
  struct spill_chunk *next;
  uint32_t start; /* bytes before start were moved to the send buffer */
  uint32_t end;
  uint8_t data[KVNET_SPILL_CHUNK_BYTES];
};

/* Replies of one connection waiting for room in its send buffer, oldest first. */
struct spill {
  struct spill_chunk *head;
  struct spill_chunk *tail;
  uint32_t bytes;
};

struct kvnet {
  struct kv_server server;
  struct netif netif;
  struct tcp_pcb *pcbs[KVNET_CONNECTIONS_MAX]; /* NULL: the slot is free */
  uint32_t free_slots[KVNET_CONNECTIONS_MAX];   /* a stack of free slots */
  uint32_t free_count;
  uint8_t overflowed[KVNET_CONNECTIONS_MAX];    /* replies could not be queued: reset it */
  struct pbuf *pending[KVNET_CONNECTIONS_MAX];  /* input not yet taken (backpressure) */
  uint32_t last_input_ms[KVNET_CONNECTIONS_MAX]; /* sys_now() at accept or the last input */
  struct spill spills[KVNET_CONNECTIONS_MAX];
  struct spill_chunk *free_chunks; /* the pool's free list */
  uint32_t free_chunk_count;       /* on the free list or never used */
  struct spill_chunk *chunks;      /* the pool; chunks past chunks_used were never used */
  uint32_t chunks_used;
  uint32_t chunk_count;
  uint32_t accepted;
  uint32_t refused;
  uint32_t evicted;
  uint32_t reset_for_output;
  uint32_t spilled_replies; /* replies that went out in part and waited in a spill */
  struct tcp_pcb_listen *listener;
  uint32_t half_open_dropped; /* SYN_RCVD connections dropped for a newer SYN (a SYN flood) */
  /* Finding a segment's connection (see bring_to_front): slots by the client's address and port,
     chained; each entry is a slot + 1, 0 ends a chain. */
  uint16_t by_peer[KVNET_PEER_BUCKETS];
  uint16_t peer_next[KVNET_CONNECTIONS_MAX];
  uint32_t peer_ip[KVNET_CONNECTIONS_MAX];   /* the client's address and port (network order) */
  uint16_t peer_port[KVNET_CONNECTIONS_MAX];
  struct tcp_pcb *front_prev[KVNET_CONNECTIONS_MAX]; /* the pcb before this one in tcp_active_pcbs, as last seen */
  uint32_t lookups_fast;  /* segments whose connection was brought to the front in O(1) */
  uint32_t lookups_walked; /* ... after a walk of the list (the list changed around it) */
};

static struct kvnet kvnet; /* in .bss: zero, like the rest of a fresh machine */

static void spill_clear(struct spill *spill) {
  while (spill->head != NULL) {
    struct spill_chunk *chunk = spill->head;
    spill->head = chunk->next;
    chunk->next = kvnet.free_chunks;
    kvnet.free_chunks = chunk;
    kvnet.free_chunk_count++;
  }
  spill->tail = NULL;
  spill->bytes = 0;
}

/* Appends bytes to a spill; 0 when the connection's bound or the pool would be passed (then
   nothing is appended and the connection must be reset: its reply cannot be delivered whole). */
static int spill_append(struct spill *spill, const uint8_t *bytes, uint32_t len) {
  if (spill->bytes + len > KVNET_SPILL_BYTES_MAX) return 0;
  uint32_t room = spill->tail != NULL ? KVNET_SPILL_CHUNK_BYTES - spill->tail->end : 0;
  uint32_t chunks_needed = len <= room ? 0 : (len - room + KVNET_SPILL_CHUNK_BYTES - 1) / KVNET_SPILL_CHUNK_BYTES;
  if (chunks_needed > kvnet.free_chunk_count) return 0;
  while (len > 0) {
    if (spill->tail == NULL || spill->tail->end == KVNET_SPILL_CHUNK_BYTES) {
      /* Chunks never used are taken in order, so the pool's pages stay untouched (and out of
         checkpoints) until replies need them. */
      struct spill_chunk *chunk = kvnet.free_chunks;
      if (chunk != NULL) kvnet.free_chunks = chunk->next;
      else chunk = &kvnet.chunks[kvnet.chunks_used++];
      kvnet.free_chunk_count--;
      chunk->next = NULL;
      chunk->start = chunk->end = 0;
      if (spill->tail != NULL) spill->tail->next = chunk;
      else spill->head = chunk;
      spill->tail = chunk;
    }
    uint32_t copy = KVNET_SPILL_CHUNK_BYTES - spill->tail->end;
    if (copy > len) copy = len;
    memcpy(spill->tail->data + spill->tail->end, bytes, copy);
    spill->tail->end += copy;
    spill->bytes += copy;
    bytes += copy;
    len -= copy;
  }
  return 1;
}

/* How many bytes lwIP's send buffer takes now in one tcp_write (at most 0xffff). */
static uint32_t send_room(struct tcp_pcb *pcb) {
  if (tcp_sndqueuelen(pcb) + 4 > TCP_SND_QUEUELEN) return 0;
  uint32_t room = tcp_sndbuf(pcb);
  return room < 0xffffu ? room : 0xffffu;
}

/* Moves what the send buffer takes from the connection's spill into it. */
static void spill_drain(uint32_t slot, struct tcp_pcb *pcb) {
  struct spill *spill = &kvnet.spills[slot];
  while (spill->head != NULL) {
    struct spill_chunk *chunk = spill->head;
    uint32_t len = chunk->end - chunk->start;
    uint32_t room = send_room(pcb);
    if (len > room) len = room;
    if (len == 0 || tcp_write(pcb, chunk->data + chunk->start, (u16_t)len, TCP_WRITE_FLAG_COPY) != ERR_OK) return;
    chunk->start += len;
    spill->bytes -= len;
    if (chunk->start < chunk->end) return;
    spill->head = chunk->next;
    if (spill->head == NULL) spill->tail = NULL;
    chunk->next = kvnet.free_chunks;
    kvnet.free_chunks = chunk;
    kvnet.free_chunk_count++;
  }
}

static uint32_t peer_bucket(uint32_t ip, uint16_t port) {
  return ((ip ^ ((uint32_t)port * 0x9e3779b1u)) * 0x85ebca6bu) >> 21 & (KVNET_PEER_BUCKETS - 1);
}

static void peer_insert(uint32_t slot, const struct tcp_pcb *pcb) {
  kvnet.peer_ip[slot] = ip4_addr_get_u32(&pcb->remote_ip);
  kvnet.peer_port[slot] = pcb->remote_port;
  kvnet.front_prev[slot] = NULL;
  uint32_t bucket = peer_bucket(kvnet.peer_ip[slot], kvnet.peer_port[slot]);
  kvnet.peer_next[slot] = kvnet.by_peer[bucket];
  kvnet.by_peer[bucket] = (uint16_t)(slot + 1);
}

static void peer_remove(uint32_t slot) {
  uint16_t *link = &kvnet.by_peer[peer_bucket(kvnet.peer_ip[slot], kvnet.peer_port[slot])];
  while (*link != 0 && *link != slot + 1) link = &kvnet.peer_next[*link - 1];
  if (*link != 0) *link = kvnet.peer_next[slot];
}

/* The slot of an attached connection's pcb, or UINT32_MAX for one without (half-open, closing). */
static uint32_t slot_of(const struct tcp_pcb *pcb) {
  uint32_t slot = (uint32_t)(uintptr_t)pcb->callback_arg;
  return slot < KVNET_CONNECTIONS_MAX && kvnet.pcbs[slot] == pcb ? slot : UINT32_MAX;
}

/*
 * lwIP finds a segment's connection by walking tcp_active_pcbs and moves it to the front. Under
 * many clients that each wait for their reply (redis-benchmark -c 50) the next segment is for the
 * connection served longest ago, the last of the list: the walk cost 12 instructions per open
 * connection for every segment, about 600 of a request's 6,000 with 50 clients. So before lwIP
 * sees a segment, kvnet finds its connection in a hash table by the client's address and port and
 * moves it to the front itself; lwIP then finds it first. Unlinking needs the pcb before it in the
 * list: each slot remembers it (set when the pcb ahead moves to the front), and it is still right
 * when that pcb still points at this one (a pcb removed from the list points nowhere, and pcbs
 * of other lists never point into this one); otherwise (the list changed around it: a connection
 * opened or closed) the list is walked once.
 */
static void bring_to_front(uint32_t slot, struct tcp_pcb *pcb) {
  struct tcp_pcb *head = tcp_active_pcbs;
  if (head == pcb) return;
  struct tcp_pcb *prev = kvnet.front_prev[slot];
  if (prev != NULL && prev->next == pcb) {
    kvnet.lookups_fast++;
  } else {
    for (prev = head; prev != NULL && prev->next != pcb; prev = prev->next) {
    }
    if (prev == NULL) return; /* not an active connection: lwIP decides */
    kvnet.lookups_walked++;
  }
  struct tcp_pcb *next = pcb->next;
  prev->next = next;
  if (next != NULL) {
    uint32_t next_slot = slot_of(next);
    if (next_slot != UINT32_MAX) kvnet.front_prev[next_slot] = prev;
  }
  pcb->next = head;
  tcp_active_pcbs = pcb;
  kvnet.front_prev[slot] = NULL;
  uint32_t head_slot = slot_of(head);
  if (head_slot != UINT32_MAX) kvnet.front_prev[head_slot] = pcb;
}

/* Brings the connection of a TCP segment for the listener's port to the front (see above). */
static void find_connection(const uint8_t *ip, uint32_t ihl) {
  const uint8_t *tcp = ip + ihl;
  if (kvnet.listener == NULL || (uint16_t)((tcp[2] << 8) | tcp[3]) != kvnet.listener->local_port) return;
  /* (As it lies in memory, network order: what pcb->remote_ip holds.) */
  uint32_t source_ip = (uint32_t)ip[12] | (uint32_t)ip[13] << 8 | (uint32_t)ip[14] << 16 | (uint32_t)ip[15] << 24;
  uint16_t source_port = (uint16_t)((tcp[0] << 8) | tcp[1]);
  for (uint16_t entry = kvnet.by_peer[peer_bucket(source_ip, source_port)]; entry != 0; entry = kvnet.peer_next[entry - 1]) {
    uint32_t slot = entry - 1u;
    if (kvnet.peer_ip[slot] == source_ip && kvnet.peer_port[slot] == source_port) {
      if (kvnet.pcbs[slot] != NULL) bring_to_front(slot, kvnet.pcbs[slot]);
      return;
    }
  }
}

static void release_slot(uint32_t slot) {
  peer_remove(slot);
  spill_clear(&kvnet.spills[slot]);
  if (kvnet.pending[slot] != NULL) pbuf_free(kvnet.pending[slot]);
  kvnet.pending[slot] = NULL;
  kvnet.pcbs[slot] = NULL;
  kvnet.overflowed[slot] = 0;
  kvnet.free_slots[kvnet.free_count++] = slot;
}

static void detach(struct tcp_pcb *pcb) {
  tcp_arg(pcb, NULL);
  tcp_recv(pcb, NULL);
  tcp_sent(pcb, NULL);
  tcp_err(pcb, NULL);
  tcp_poll(pcb, NULL, 0);
}

static int tcp_transport_writable(void *context, uint32_t slot) {
  (void)context;
  struct tcp_pcb *pcb = kvnet.pcbs[slot];
  return pcb != NULL && !kvnet.overflowed[slot] && kvnet.spills[slot].head == NULL &&
         tcp_sndbuf(pcb) >= KVNET_SEND_ROOM_BYTES_MIN && tcp_sndqueuelen(pcb) + KVNET_SEND_QUEUE_ROOM_MIN <= TCP_SND_QUEUELEN;
}

/* The engine's replies: queued on the connection (copied), sent at the end of the callback; what
   the send buffer cannot take now waits in the connection's spill. */
static void tcp_transport_send(void *context, uint32_t slot, const uint8_t *bytes, uint32_t len) {
  (void)context;
  struct tcp_pcb *pcb = kvnet.pcbs[slot];
  if (pcb == NULL || kvnet.overflowed[slot]) return;
  struct spill *spill = &kvnet.spills[slot];
  while (len > 0 && spill->head == NULL) {
    uint32_t chunk = send_room(pcb);
    if (chunk > len) chunk = len;
    if (chunk == 0 || tcp_write(pcb, bytes, (u16_t)chunk, TCP_WRITE_FLAG_COPY) != ERR_OK) break;
    bytes += chunk;
    len -= chunk;
  }
  if (len == 0) return;
  if (spill->head == NULL) kvnet.spilled_replies++;
  if (!spill_append(spill, bytes, len)) kvnet.overflowed[slot] = 1;
}

/* The engine closes a connection (QUIT, a protocol error, or the client's own hang-up): queued
   replies go out, then FIN; the slot is free at once. */
static void tcp_transport_close(void *context, uint32_t slot) {
  (void)context;
  struct tcp_pcb *pcb = kvnet.pcbs[slot];
  if (pcb == NULL) return;
  detach(pcb);
  /* Input still held counts as taken: a close with data not taken would make lwIP reset the
     connection and drop the replies still queued (a QUIT's +OK, a protocol error's message). */
  if (kvnet.pending[slot] != NULL) tcp_recved(pcb, kvnet.pending[slot]->tot_len);
  if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
  release_slot(slot);
}

/* lwIP freed the connection (reset by the peer, or too many retransmissions). */
static void on_error(void *arg, err_t err) {
  (void)err;
  uint32_t slot = (uint32_t)(uintptr_t)arg;
  if (kvnet.pcbs[slot] == NULL) return;
  kvnet.pcbs[slot] = NULL; /* already freed by lwIP: the close below must not touch it */
  kv_conn_closed_by_client(&kvnet.server, slot);
  release_slot(slot);
}

/* Resets a connection whose replies could not be queued. Returns ERR_ABRT for lwIP's callbacks. */
static err_t reset_for_output(uint32_t slot, struct tcp_pcb *pcb) {
  kvnet.reset_for_output++;
  detach(pcb);
  kvnet.pcbs[slot] = NULL;
  kv_conn_closed_by_client(&kvnet.server, slot);
  release_slot(slot);
  tcp_abort(pcb);
  return ERR_ABRT;
}

/* Runs the connection's input while it takes replies: what the engine buffered first, then the
   pending pbufs, each byte acknowledged to the window once the engine has taken it. `output`: send
   what was queued now; lwIP's input path (on_receive, on_sent) calls tcp_output itself right after
   its callbacks return, so only the poll callback asks (lwIP's timer may skip it). */
static err_t feed(uint32_t slot, struct tcp_pcb *pcb, int output) {
  spill_drain(slot, pcb);
  if (kvnet.spills[slot].head == NULL) kv_conn_resume(&kvnet.server, slot);
  while (kvnet.pcbs[slot] == pcb && kvnet.pending[slot] != NULL && tcp_transport_writable(NULL, slot)) {
    struct pbuf *p = kvnet.pending[slot];
    uint32_t taken = kv_conn_receive(&kvnet.server, slot, (const uint8_t *)p->payload, p->len);
    if (kvnet.pcbs[slot] != pcb) return ERR_OK; /* closed by the engine (QUIT, protocol error) */
    tcp_recved(pcb, (u16_t)taken);
    kvnet.pending[slot] = pbuf_free_header(p, (u16_t)taken);
  }
  if (kvnet.pcbs[slot] != pcb) return ERR_OK;
  if (kvnet.overflowed[slot]) return reset_for_output(slot, pcb);
  if (output) tcp_output(pcb);
  return ERR_OK;
}

static err_t on_receive(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) {
  uint32_t slot = (uint32_t)(uintptr_t)arg;
  if (kvnet.pcbs[slot] != pcb) {
    if (p != NULL) pbuf_free(p);
    return ERR_OK;
  }
  if (p == NULL || err != ERR_OK) {
    if (p != NULL) pbuf_free(p);
    kv_conn_closed_by_client(&kvnet.server, slot); /* closes through tcp_transport_close */
    return ERR_OK;
  }
  kvnet.last_input_ms[slot] = sys_now();
  if (kvnet.pending[slot] == NULL) kvnet.pending[slot] = p;
  else pbuf_cat(kvnet.pending[slot], p);
  return feed(slot, pcb, 0);
}

/* The client acknowledged replies: room in the send buffer, so held input may run. */
static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t length) {
  (void)length;
  uint32_t slot = (uint32_t)(uintptr_t)arg;
  if (kvnet.pcbs[slot] != pcb) return ERR_OK;
  /* A client that reads its replies leaves nothing waiting (every request): feed would do nothing. */
  if (kvnet.spills[slot].head == NULL && kvnet.pending[slot] == NULL && kvnet.server.conns[slot].input_bytes == 0 &&
      !kvnet.overflowed[slot])
    return ERR_OK;
  return feed(slot, pcb, 0);
}

/* lwIP's periodic call: replies that waited for lwIP memory (not for the client) move on. */
static err_t on_poll(void *arg, struct tcp_pcb *pcb) {
  uint32_t slot = (uint32_t)(uintptr_t)arg;
  if (kvnet.pcbs[slot] != pcb) return ERR_OK;
  if (kvnet.spills[slot].head == NULL && kvnet.pending[slot] == NULL) return ERR_OK;
  return feed(slot, pcb, 1);
}

/* Frees the slot of the connection idle longest, if it has been idle KVNET_IDLE_EVICT_MS. */
static void evict_idle_connection(void) {
  uint32_t now = sys_now();
  uint32_t victim = UINT32_MAX, victim_idle_ms = 0;
  for (uint32_t slot = 0; slot < kvnet.server.conn_count; slot++) {
    if (kvnet.pcbs[slot] == NULL) continue;
    uint32_t idle_ms = now - kvnet.last_input_ms[slot];
    if (idle_ms >= KVNET_IDLE_EVICT_MS && (victim == UINT32_MAX || idle_ms > victim_idle_ms)) {
      victim = slot;
      victim_idle_ms = idle_ms;
    }
  }
  if (victim == UINT32_MAX) return;
  struct tcp_pcb *pcb = kvnet.pcbs[victim];
  detach(pcb);
  kvnet.pcbs[victim] = NULL;
  kv_conn_closed_by_client(&kvnet.server, victim);
  release_slot(victim);
  tcp_abort(pcb);
  kvnet.evicted++;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err) {
  (void)arg;
  if (err != ERR_OK || pcb == NULL) return ERR_VAL;
  if (kvnet.free_count == 0) evict_idle_connection();
  if (kvnet.free_count == 0) {
    kvnet.refused++;
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  uint32_t slot = kvnet.free_slots[--kvnet.free_count];
  kvnet.pcbs[slot] = pcb;
  peer_insert(slot, pcb);
  kvnet.last_input_ms[slot] = sys_now();
  kvnet.accepted++;
  tcp_arg(pcb, (void *)(uintptr_t)slot);
  tcp_recv(pcb, on_receive);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_error);
  tcp_poll(pcb, on_poll, KVNET_POLL_TICKS);
  tcp_nagle_disable(pcb);
  kv_conn_open(&kvnet.server, slot);
  return ERR_OK;
}

/* INFO's "# Network" section: what the guest did with its clients and frames (host-side drops of
   bad frames are the NIC's counters, reported by the host). */
static uint32_t tcp_transport_info(void *context, char *out, uint32_t capacity) {
  (void)context;
  struct hbft_netif_stats net;
  hbft_netif_stats(&net);
  uint32_t open = kvnet.server.conn_count - kvnet.free_count;
  uint32_t len = hbft_snprintf(out, capacity,
                               "# Network\r\nconnection_slots:%u\r\nconnections_open:%u\r\nconnections_accepted:%u\r\n"
                               "connections_refused:%u\r\nconnections_evicted_idle:%u\r\nconnections_reset_for_output:%u\r\n"
                               "replies_spilled:%u\r\nspill_chunks_in_use:%u\r\nspill_chunks:%u\r\n"
                               "half_open_dropped:%u\r\npcb_lookups_fast:%u\r\npcb_lookups_walked:%u\r\nrx_frames:%u\r\ntx_frames:%u\r\nrx_dropped_no_pbuf:%u\r\ntx_dropped:%u\r\n"
                               "link_changes:%u\r\narp_refreshes:%u\r\n",
                               kvnet.server.conn_count, open, kvnet.accepted, kvnet.refused, kvnet.evicted,
                               kvnet.reset_for_output, kvnet.spilled_replies, kvnet.chunk_count - kvnet.free_chunk_count,
                               kvnet.chunk_count, kvnet.half_open_dropped, kvnet.lookups_fast, kvnet.lookups_walked, net.rx_frames, net.tx_frames, net.rx_no_pbuf, net.tx_dropped,
                               net.link_changes, net.arp_refreshes);
  return len < capacity ? len : capacity - 1;
}

/* A frame's IPv4 header if it carries a whole TCP header (as lwIP holds frames: ETH_PAD_SIZE bytes
   first), else NULL; *ihl is the IP header's length. */
static const uint8_t *tcp_segment_ip(const struct pbuf *p, uint32_t *ihl) {
  const uint8_t *frame = (const uint8_t *)p->payload + ETH_PAD_SIZE;
  uint32_t len = p->len - ETH_PAD_SIZE;
  if (p->len < ETH_PAD_SIZE || len < 14 + 20 + 20 || frame[12] != 0x08 || frame[13] != 0x00) return NULL;
  const uint8_t *ip = frame + 14;
  *ihl = (uint32_t)(ip[0] & 0x0fu) * 4u;
  if ((ip[0] >> 4) != 4 || ip[9] != IP_PROTO_TCP || *ihl < 20 || 14 + *ihl + 20 > len) return NULL;
  return ip;
}

/* Drops the half-open connection (SYN_RCVD) waiting longest for its handshake, without a reset:
   its source is likely forged. */
static void drop_oldest_half_open(void) {
  struct tcp_pcb *oldest = NULL;
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
    if (pcb->state == SYN_RCVD && (oldest == NULL || (u32_t)(tcp_ticks - pcb->tmr) > (u32_t)(tcp_ticks - oldest->tmr)))
      oldest = pcb;
  }
  if (oldest == NULL) return;
  kvnet.half_open_dropped++;
  tcp_abandon(oldest, 0);
}

/* Every frame goes through here to lwIP. A half-open connection holds a place in the listener's
   backlog until its handshake times out (20 s), so a flood of forged SYNs would lock real clients
   out for that long: when the backlog is full, a new SYN takes the place of the oldest half-open
   connection instead of being dropped (a real client's handshake completes within a round trip,
   long before it could become the oldest). */
static err_t kvnet_input(struct pbuf *p, struct netif *netif) {
  uint32_t ihl;
  const uint8_t *ip = tcp_segment_ip(p, &ihl);
  if (ip != NULL) {
    uint8_t flags = ip[ihl + 13];
    if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
      if (kvnet.listener != NULL && kvnet.listener->accepts_pending >= kvnet.listener->backlog) drop_oldest_half_open();
    } else {
      find_connection(ip, ihl);
    }
  }
  return ethernet_input(p, netif);
}

static void print_ipv4(const char *label, uint32_t ip) {
  hbft_printf("%s%u.%u.%u.%u", label, ip >> 24, (ip >> 16) & 0xffu, (ip >> 8) & 0xffu, ip & 0xffu);
}

int main(void) {
  struct hbft_netif_config config;
  if (hbft_netif_config_from_args(&config, 0x0a000002u, 24) != 0) return 2;
  uint32_t port = hbft_arg_u32("port", 6379);
  if (port == 0 || port > 0xffffu) {
    hbft_printf("argument port=%u: expected a TCP port, 1-65535\n", port);
    return 2;
  }
  struct hbft_arena arena;
  hbft_arena_init_heap(&arena, HBFT_STACK_RESERVE_BYTES);

  if (!hbft_netif_present()) {
    /* No packet NIC (QEMU): prove the engine works with the built-in conversation, then exit. */
    kv_server_init(&kvnet.server, &arena, 1);
    uint8_t *capture = hbft_arena_alloc_or_die(&arena, 4096, 8, "kvnet self-test capture");
    uint32_t failures = kv_run_self_test(&kvnet.server, capture, 4096);
    hbft_printf("kvnet: no packet NIC; self-test %s (%u of %u exchanges failed)\n", failures == 0 ? "passed" : "FAILED",
                failures, KV_SELF_TEST_EXCHANGES);
    return failures == 0 ? 0 : 1;
  }
  if (hbft_netif_start(&kvnet.netif, &arena, &config) != 0) {
    hbft_printf("kvnet: the packet NIC refused its rings\n");
    return 3;
  }
  kv_server_init(&kvnet.server, &arena, KVNET_CONNECTIONS_MAX);
  kvnet.server.transport.send = tcp_transport_send;
  kvnet.server.transport.close = tcp_transport_close;
  kvnet.server.transport.writable = tcp_transport_writable;
  kvnet.server.transport.info = tcp_transport_info;
  for (uint32_t slot = kvnet.server.conn_count; slot > 0; slot--) kvnet.free_slots[kvnet.free_count++] = slot - 1;
  uint32_t pool_bytes = hbft_arena_free_bytes(&arena) / 8;
  if (pool_bytes > KVNET_SPILL_POOL_BYTES_MAX) pool_bytes = KVNET_SPILL_POOL_BYTES_MAX;
  kvnet.chunk_count = pool_bytes / sizeof(struct spill_chunk);
  kvnet.chunks = hbft_arena_alloc_or_die(&arena, kvnet.chunk_count * sizeof(struct spill_chunk), 8, "kvnet reply spill pool");
  kvnet.free_chunk_count = kvnet.chunk_count;

  struct tcp_pcb *listener = tcp_new();
  if (listener == NULL || tcp_bind(listener, IP4_ADDR_ANY, (u16_t)port) != ERR_OK) {
    hbft_printf("kvnet: cannot bind TCP port %u\n", port);
    return 3;
  }
  listener = tcp_listen_with_backlog(listener, TCP_DEFAULT_LISTEN_BACKLOG);
  if (listener == NULL) {
    hbft_printf("kvnet: cannot listen on TCP port %u\n", port);
    return 3;
  }
  tcp_accept(listener, on_accept);
  kvnet.listener = (struct tcp_pcb_listen *)listener;
  kvnet.netif.input = kvnet_input;

  const uint8_t *mac = kvnet.netif.hwaddr;
  print_ipv4("kvnet: listening on ", config.ip);
  hbft_printf(":%u (netmask ", port);
  print_ipv4("", config.netmask);
  hbft_printf(", MAC %02x:%02x:%02x:%02x:%02x:%02x), %u connection slots, %u KiB input each\n", mac[0], mac[1],
              mac[2], mac[3], mac[4], mac[5], kvnet.server.conn_count, kvnet.server.input_capacity / 1024);
  for (;;) {
    hbft_netif_poll(&kvnet.netif);
    hbft_netif_wait(&kvnet.netif);
  }
}
