/*
 * kv: a key-value server speaking the Redis protocol (RESP2) on every NIC connection, the
 * replicated service of hbft's demos and failover tests.
 *
 * Strings only: PING, ECHO, GET, SET (with NX, XX, GET), DEL, EXISTS, INCR, INCRBY, DECR, DECRBY,
 * MGET, MSET, DBSIZE, FLUSHALL, FLUSHDB, SELECT 0, QUIT, and what client libraries send when they
 * connect (COMMAND, COMMAND DOCS, INFO, CLIENT SETNAME/SETINFO, CONFIG GET). Requests may be
 * pipelined, split across NIC records, or typed by hand as inline commands.
 *
 * The engine (the store, the request parser, the commands and the connection layer) is
 * lib/kv_engine.c, shared with kvnet, which serves the same over TCP; this file is the NIC loop.
 * The host harness in guests/test/ compiles the engine natively and feeds it byte streams.
 * Without a NIC (under QEMU) the guest runs a built-in conversation against itself instead.
 *
 * Memory: about 70% of free RAM for keys and values (items in size classes with free lists, so
 * freed space is reused), a hash table sized from that, and a bounded input buffer per connection.
 * Nothing is cleared at start-up: RAM is zero at boot, which is exactly an empty table.
 *
 * Arguments: exit_after=<requests> (0: serve forever), ring_kib=<NIC ring size> (256).
 */
#include "hbft_rt.h"
#include "kv_engine.h"

/* ------------------------------------------------------------------------------------------------
 * The NIC loop
 * --------------------------------------------------------------------------------------------- */

static void nic_send(void *context, uint32_t conn, const uint8_t *bytes, uint32_t len) {
  hbft_nic_tx_data((struct hbft_nic *)context, conn, bytes, len);
}

static void nic_close(void *context, uint32_t conn) { hbft_nic_tx_close((struct hbft_nic *)context, conn); }

static void handle_record(struct kv_server *server, struct hbft_nic *nic, const struct hbft_nic_rx *record) {
  if (record->conn >= server->conn_count) {
    /* A slot beyond what this server keeps state for: refuse the client politely. */
    if (record->type == HBFT_NIC_OPEN) {
      hbft_nic_tx_close(nic, record->conn);
      server->connections_refused++;
    }
    return;
  }
  switch (record->type) {
    case HBFT_NIC_OPEN: kv_conn_open(server, record->conn); break;
    case HBFT_NIC_DATA: kv_conn_receive(server, record->conn, record->payload, record->length); break;
    case HBFT_NIC_CLOSE: kv_conn_closed_by_client(server, record->conn); break;
    default: break;
  }
}

static uint32_t ring_bytes_for(uint32_t ring_kib, uint32_t record_max) {
  uint32_t wanted = ring_kib * 1024u;
  /* The ring must hold a few of the device's largest records, whatever was asked for. */
  uint64_t least = 4ull * (record_max + HBFT_NIC_HEADER_BYTES);
  uint32_t bytes = HBFT_NIC_RING_SIZE_MIN;
  while (bytes < HBFT_NIC_RING_SIZE_MAX && (bytes < wanted || bytes < least)) bytes <<= 1;
  return bytes;
}

int main(void) {
  uint64_t exit_after = hbft_arg_u64("exit_after", 0);
  uint32_t ring_kib = hbft_arg_u32("ring_kib", 256);

  struct hbft_arena arena;
  hbft_arena_init_heap(&arena, HBFT_STACK_RESERVE_BYTES);
  static struct kv_server server; /* in .bss: zero, like the rest of a fresh machine */

  if (!hbft_nic_present()) {
    /* No NIC (QEMU): prove the engine works with the built-in conversation, then exit. */
    kv_server_init(&server, &arena, 1);
    uint8_t *capture = hbft_arena_alloc_or_die(&arena, 4096, 8, "kv self-test capture");
    uint32_t failures = kv_run_self_test(&server, capture, 4096);
    hbft_printf("kv: no NIC; self-test %s (%u of %u exchanges failed)\n", failures == 0 ? "passed" : "FAILED",
                failures, KV_SELF_TEST_EXCHANGES);
    hbft_printf("checksum=%016llx\n", (unsigned long long)server.replies_hash);
    return failures == 0 ? 0 : 1;
  }

  static struct hbft_nic nic;
  uint32_t ring_bytes = ring_bytes_for(ring_kib, HBFT_REG(HBFT_NIC_RECORD_MAX));
  if (hbft_nic_init(&nic, &arena, ring_bytes) != 0) {
    hbft_printf("kv: cannot set up the NIC with two rings of %u KiB\n", ring_bytes / 1024);
    return 3;
  }
  kv_server_init(&server, &arena, nic.conn_max);
  server.transport.send = nic_send;
  server.transport.close = nic_close;
  server.transport.context = &nic;
  hbft_printf("kv: serving %u connection slots (of %u), %u KiB input each, %u buckets, %u MiB for items, "
              "rings of %u KiB\n",
              server.conn_count, nic.conn_max, server.input_capacity / 1024, server.store.bucket_mask + 1,
              (uint32_t)((server.store.items.end - server.store.items_start) >> 20), ring_bytes / 1024);

  for (;;) {
    struct hbft_nic_rx record;
    while (hbft_nic_rx_peek(&nic, &record)) {
      handle_record(&server, &nic, &record);
      hbft_nic_rx_consume(&nic, &record);
      if (exit_after != 0 && server.commands_processed >= exit_after) break;
    }
    kv_reply_flush(&server);
    hbft_nic_tx_flush(&nic);
    if (exit_after != 0 && server.commands_processed >= exit_after) {
      hbft_printf("kv: %llu commands, %u keys, %u connections refused, %u bad NIC records\n",
                  (unsigned long long)server.commands_processed, server.store.count, server.connections_refused,
                  nic.rx_errors);
      hbft_printf("checksum=%016llx\n", (unsigned long long)kv_store_checksum(&server.store));
      return 0;
    }
    hbft_nic_wait_rx(&nic);
  }
}

