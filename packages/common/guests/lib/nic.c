/*
 * The guest's side of the virtual NIC (the record format and ring rules are in hbft.h).
 *
 * Offsets are free-running 32-bit byte counts, so "head - tail" is the number of bytes in use even
 * across the 2^32 wrap; a ring size is a power of two, which divides 2^32, so "offset & (size - 1)"
 * stays the ring position across that wrap too.
 */
#include "hbft_rt.h"

/* Orders the ring's memory against the register accesses around it. The "memory" clobber is what
   matters to gcc (volatile register accesses alone do not order plain loads and stores); the fence
   states the same to the machine. */
static inline void ring_barrier(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }

static inline uint32_t record_bytes(uint32_t payload_bytes) {
  return HBFT_NIC_HEADER_BYTES + ((payload_bytes + 7u) & ~7u);
}

int hbft_nic_present(void) {
  uint32_t conn_max = HBFT_REG(HBFT_NIC_CONN_MAX);
  uint32_t record_max = HBFT_REG(HBFT_NIC_RECORD_MAX);
  return conn_max > 0 && conn_max <= 0xffffu && record_max > 0 && record_max <= HBFT_NIC_RING_SIZE_MAX;
}

int hbft_nic_init(struct hbft_nic *nic, struct hbft_arena *arena, uint32_t ring_bytes) {
  HBFT_ASSERT(ring_bytes >= HBFT_NIC_RING_SIZE_MIN && ring_bytes <= HBFT_NIC_RING_SIZE_MAX);
  HBFT_ASSERT((ring_bytes & (ring_bytes - 1)) == 0);
  if (!hbft_nic_present()) return -1;
  /* Page-aligned rings keep the device's writes off pages the guest uses for anything else. */
  uint8_t *rx_ring = (uint8_t *)hbft_arena_alloc(arena, ring_bytes, 4096);
  uint8_t *tx_ring = (uint8_t *)hbft_arena_alloc(arena, ring_bytes, 4096);
  if (rx_ring == NULL || tx_ring == NULL) return -1;

  nic->rx_ring = rx_ring;
  nic->rx_ring_bytes = ring_bytes;
  nic->tx_ring = tx_ring;
  nic->tx_ring_bytes = ring_bytes;
  nic->conn_max = HBFT_REG(HBFT_NIC_CONN_MAX);
  uint32_t record_max = HBFT_REG(HBFT_NIC_RECORD_MAX);
  /* A transmit record may use at most half the ring, so that a PAD plus the record always fit
     in an empty ring (see tx_reserve). */
  uint32_t half_ring_payload = ring_bytes / 2 - HBFT_NIC_HEADER_BYTES;
  nic->record_payload_bytes_max = record_max < half_ring_payload ? record_max : half_ring_payload;
  nic->rx_errors = 0;

  HBFT_REG(HBFT_NIC_RX_BASE) = (uint32_t)(uintptr_t)rx_ring;
  HBFT_REG(HBFT_NIC_RX_SIZE) = ring_bytes;
  HBFT_REG(HBFT_NIC_TX_BASE) = (uint32_t)(uintptr_t)tx_ring;
  HBFT_REG(HBFT_NIC_TX_SIZE) = ring_bytes;
  ring_barrier();
  HBFT_REG(HBFT_NIC_CTRL) = HBFT_NIC_CTRL_ENABLE;
  /* A device that finds the rings unusable stays disabled; reading CTRL back tells. */
  if ((HBFT_REG(HBFT_NIC_CTRL) & HBFT_NIC_CTRL_ENABLE) == 0) return -1;
  /* The guest's own offsets are adopted from the device once enabled (hbft's device resets them
     to zero then) rather than assumed. */
  nic->rx_tail = HBFT_REG(HBFT_NIC_RX_TAIL);
  nic->tx_head = HBFT_REG(HBFT_NIC_TX_HEAD);
  nic->tx_flushed = nic->tx_head;
  return 0;
}

/* The device broke the ring's rules: drop everything it has produced so far rather than loop or
   read outside the ring. Counted so the guest can report it. */
static void rx_resynchronise(struct hbft_nic *nic, uint32_t head) {
  nic->rx_errors++;
  nic->rx_tail = head;
  ring_barrier();
  HBFT_REG(HBFT_NIC_RX_TAIL) = head;
}

int hbft_nic_rx_peek(struct hbft_nic *nic, struct hbft_nic_rx *record) {
  uint32_t size = nic->rx_ring_bytes;
  for (;;) {
    uint32_t head = HBFT_REG(HBFT_NIC_RX_HEAD);
    ring_barrier();
    uint32_t available = head - nic->rx_tail;
    if (available == 0) return 0;
    uint32_t position = nic->rx_tail & (size - 1);
    if (available < HBFT_NIC_HEADER_BYTES || available > size || (position & 7u) != 0) {
      rx_resynchronise(nic, head);
      return 0;
    }
    const struct hbft_nic_record *header = (const struct hbft_nic_record *)(nic->rx_ring + position);
    uint32_t type = header->type;
    if (type == HBFT_NIC_PAD) {
      /* A PAD always covers the rest of the ring: the next record starts at offset 0. */
      uint32_t rest = size - position;
      if (rest > available) {
        rx_resynchronise(nic, head);
        return 0;
      }
      nic->rx_tail += rest;
      ring_barrier();
      HBFT_REG(HBFT_NIC_RX_TAIL) = nic->rx_tail;
      continue;
    }
    uint32_t length = header->length;
    uint32_t conn = header->conn;
    if (type > HBFT_NIC_CLOSE || length > size || record_bytes(length) > available ||
        position + record_bytes(length) > size) {
      rx_resynchronise(nic, head);
      return 0;
    }
    record->type = type;
    record->conn = conn;
    record->length = length;
    record->payload = nic->rx_ring + position + HBFT_NIC_HEADER_BYTES;
    return 1;
  }
}

void hbft_nic_rx_consume(struct hbft_nic *nic, const struct hbft_nic_rx *record) {
  nic->rx_tail += record_bytes(record->length);
  ring_barrier();
  HBFT_REG(HBFT_NIC_RX_TAIL) = nic->rx_tail;
}

int hbft_nic_rx_pending(const struct hbft_nic *nic) { return HBFT_REG(HBFT_NIC_RX_HEAD) != nic->rx_tail; }

void hbft_nic_wait_rx(struct hbft_nic *nic) {
  while (!hbft_nic_rx_pending(nic)) hbft_wait_for_interrupt();
}

void hbft_nic_tx_flush(struct hbft_nic *nic) {
  if (nic->tx_head == nic->tx_flushed) return;
  ring_barrier();
  HBFT_REG(HBFT_NIC_TX_HEAD) = nic->tx_head;
  /* The ABI promises the device has consumed everything once the doorbell write returns. */
  uint32_t tail = HBFT_REG(HBFT_NIC_TX_TAIL);
  if (tail != nic->tx_head) {
    hbft_panic("nic: TX_TAIL is 0x%08x after the doorbell for 0x%08x; the device must consume the "
               "whole transmit ring on the TX_HEAD write", tail, nic->tx_head);
  }
  nic->tx_flushed = tail;
}

/* Returns where a record of `bytes` (header included) can be written contiguously, flushing the
   ring first when it is too full and writing a PAD record when the rest of the ring is too short. */
static uint8_t *tx_reserve(struct hbft_nic *nic, uint32_t bytes) {
  uint32_t size = nic->tx_ring_bytes;
  uint32_t position = nic->tx_head & (size - 1);
  uint32_t rest = size - position;
  uint32_t needed = rest < bytes ? rest + bytes : bytes;
  if (size - (nic->tx_head - nic->tx_flushed) < needed) hbft_nic_tx_flush(nic);
  if (rest < bytes) {
    struct hbft_nic_record *pad = (struct hbft_nic_record *)(nic->tx_ring + position);
    pad->type = HBFT_NIC_PAD;
    pad->conn = 0;
    pad->length = rest - HBFT_NIC_HEADER_BYTES;
    nic->tx_head += rest;
    position = 0;
  }
  return nic->tx_ring + position;
}

static void tx_record(struct hbft_nic *nic, uint32_t type, uint32_t conn, const void *bytes,
                      uint32_t len) {
  uint32_t total = record_bytes(len);
  uint8_t *slot = tx_reserve(nic, total);
  struct hbft_nic_record *header = (struct hbft_nic_record *)slot;
  header->type = (uint16_t)type;
  header->conn = (uint16_t)conn;
  header->length = len;
  memcpy(slot + HBFT_NIC_HEADER_BYTES, bytes, len);
  nic->tx_head += total;
}

void hbft_nic_tx_data(struct hbft_nic *nic, uint32_t conn, const void *bytes, uint32_t len) {
  const uint8_t *p = (const uint8_t *)bytes;
  while (len > 0) {
    uint32_t chunk = len < nic->record_payload_bytes_max ? len : nic->record_payload_bytes_max;
    tx_record(nic, HBFT_NIC_DATA, conn, p, chunk);
    p += chunk;
    len -= chunk;
  }
}

void hbft_nic_tx_close(struct hbft_nic *nic, uint32_t conn) { tx_record(nic, HBFT_NIC_CLOSE, conn, NULL, 0); }
