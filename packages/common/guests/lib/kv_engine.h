/*
 * The kv server's engine, shared by `kvnet` (TCP connections through lwIP) and `kv` (a load it
 * generates itself, on connections of its own). It is plain C: the store (hash table and item
 * allocator), the RESP parser, the commands and the connection layer that turns each connection's
 * byte stream into requests and replies. Where replies go is the caller's `struct kv_transport`;
 * without one they are captured (the self-test, and the host harness in guests/test/).
 *
 * Connections are slots 0..conn_count-1: the caller opens one (kv_conn_open), feeds it bytes
 * (kv_conn_receive, which answers every complete request), and reports the client's hang-up
 * (kv_conn_closed_by_client). The engine closes a connection itself on QUIT or a protocol error,
 * through transport.close.
 */
#ifndef HBFT_KV_ENGINE_H
#define HBFT_KV_ENGINE_H

#include "hbft_rt.h"

/* ------------------------------------------------------------------------------------------------
 * Limits
 * --------------------------------------------------------------------------------------------- */

#define INPUT_BYTES_MAX HBFT_KIB(64)     /* largest request a connection may send */
#define INPUT_BYTES_MIN HBFT_KIB(4)      /* per-connection buffer when memory is tight */
#define ARGS_MAX 8192u                   /* arguments in one request */
#define CONNS_MAX 4096u                  /* connection slots served, whatever the caller asks */
#define REPLY_STAGING_BYTES HBFT_KIB(16) /* replies are gathered into records of up to this */
#define INTEGER_TEXT_BYTES_MAX 20u       /* "-9223372036854775808" */
#define SIZE_CLASSES_MAX 64u
/* Requests larger than a connection's own buffer (a SET of a 1 MiB value) are gathered in one of a
   few shared large-request buffers, borrowed while such a request arrives. */
#define LARGE_REQUEST_BYTES_MAX (HBFT_MIB(2) + HBFT_KIB(64))
#define LARGE_BUFFERS_MAX 4u
#define ITEM_BYTES_MAX LARGE_REQUEST_BYTES_MAX /* a key and value can never exceed a request */
#define STORE_PERCENT_OF_RAM 70u


/* ------------------------------------------------------------------------------------------------
 * The store: a chained hash table of items carved from size classes
 * --------------------------------------------------------------------------------------------- */

struct kv_item {
  struct kv_item *next; /* the bucket chain, or the free list */
  uint32_t hash;
  uint32_t key_bytes;
  uint32_t value_bytes;
  uint32_t size_class;
  uint8_t data[]; /* the key, then the value */
};

struct kv_store {
  struct kv_item **buckets;
  uint32_t bucket_mask;
  uint32_t count;
  struct hbft_arena items; /* fresh memory for items */
  uintptr_t items_start;   /* so FLUSHALL can hand the whole range back */
  uint32_t class_bytes[SIZE_CLASSES_MAX];
  uint32_t class_count;
  struct kv_item *free_lists[SIZE_CLASSES_MAX];
  uint64_t bytes_in_use; /* class bytes of live items */
};

struct kv_transport {
  void (*send)(void *context, uint32_t conn, const uint8_t *bytes, uint32_t len);
  void (*close)(void *context, uint32_t conn);
  /* Optional: whether conn takes more replies now. When it says no, the engine stops running that
     connection's requests until kv_conn_resume (backpressure from a client that does not read). */
  int (*writable)(void *context, uint32_t conn);
  /* Optional: more INFO text ("# Section\r\nname:value\r\n..."), at most capacity bytes; returns
     its length. kvnet reports its connections and network counters there. */
  uint32_t (*info)(void *context, char *out, uint32_t capacity);
  void *context;
};

/* ------------------------------------------------------------------------------------------------
 * Server, connections and replies
 * --------------------------------------------------------------------------------------------- */

enum conn_state {
  CONN_FREE = 0, /* no client; DATA here opens the slot implicitly */
  CONN_OPEN,
  CONN_CLOSING, /* the server closed it; input is dropped until the slot is opened again */
};

struct kv_conn {
  uint32_t state;
  uint32_t input_bytes; /* unparsed bytes waiting in the slot's input buffer (conn_input) */
  uint32_t client_id;
  uint32_t large; /* 1 + the large-request buffer holding its input, or 0: its own buffer */
};

struct request {
  uint32_t argc;
  const uint8_t **argv;
  uint32_t *arg_bytes;
};

struct kv_server {
  struct kv_store store;
  struct kv_conn *conns;
  uint32_t conn_count;
  uint32_t input_capacity;
  uint8_t *input_memory;
  /* Large-request buffers: large_count of large_capacity bytes each (0 of them when memory is
     tight: then no request may exceed input_capacity). */
  uint8_t *large_memory;
  uint32_t large_count;
  uint32_t large_capacity;
  uint32_t large_owner[LARGE_BUFFERS_MAX]; /* 1 + the connection holding it, or 0 */
  uint32_t large_refused;                  /* large requests refused: every large buffer was in use */
  struct request request;
  uint32_t next_client_id;
  uint64_t commands_processed;
  uint32_t connections_refused;
  /* Replies for one connection are staged and sent as one record. */
  uint8_t *staging;
  uint32_t staging_bytes;
  uint32_t staging_conn;
  /* Where replies go: the transport, or (when it has no send: the self-test and the host harness)
     a capture buffer. */
  struct kv_transport transport;
  uint8_t *capture;
  uint32_t capture_bytes;
  uint32_t capture_capacity;
  uint64_t replies_hash; /* FNV-1a over everything captured, for the self-test */
};

/* Carves the server's memory from the arena: up to conn_slots connections with their input
   buffers, then the store from STORE_PERCENT_OF_RAM of what is left. */
void kv_server_init(struct kv_server *server, struct hbft_arena *arena, uint32_t conn_slots);
void kv_conn_open(struct kv_server *server, uint32_t conn);
/* New bytes from the client on conn: every complete request is answered (replies are flushed).
   Returns the bytes taken: fewer than len only when transport.writable said no; the caller keeps
   the rest and offers it again once kv_conn_resume has run what is buffered. */
uint32_t kv_conn_receive(struct kv_server *server, uint32_t conn, const uint8_t *bytes, uint32_t len);
/* Runs the requests still buffered for conn (after transport.writable said no). */
void kv_conn_resume(struct kv_server *server, uint32_t conn);
/* The client hung up: an open connection is closed through the transport, and the slot is free. */
void kv_conn_closed_by_client(struct kv_server *server, uint32_t conn);
void kv_reply_flush(struct kv_server *server);
/* An order-independent digest of the store's contents. */
uint64_t kv_store_checksum(struct kv_store *store);
/* Plays a fixed conversation on connection 0 with replies captured; returns how many exchanges
   differed from the expected replies (each printed). */
#define KV_SELF_TEST_EXCHANGES 24u
uint32_t kv_run_self_test(struct kv_server *server, uint8_t *capture, uint32_t capture_capacity);

#endif
