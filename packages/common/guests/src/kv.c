/*
 * kv: the key-value class of the seed paper's workloads, a Redis-style store under a steady mix of
 * small requests (scattered small writes, like SPECweb's): the kv engine (lib/kv_engine.c, the one
 * kvnet serves over TCP) driven from inside the guest, so it needs no network and no client.
 *
 * Eight connections each send pipelines of 16 requests, in RESP exactly as a client library
 * writes them, through the engine's connection layer: every request is parsed and executed as one
 * from the network would be. Each pipeline is cut at a random byte and its tail is sent on that
 * connection's next turn, after the other connections had theirs, so requests split across
 * reads and interleaved connections are part of every run. The mix: 40 % SET of a 64-byte value,
 * 40 % GET over `keys` keys, 20 % INCR over keys/10 counters (at least one), keys and kinds drawn
 * from a seeded generator. Over an epoch the dirty pages are the hot buffers (requests, replies,
 * the engine's staging) plus one isolated page per SET or INCR scattered across the store.
 *
 * Before the workload the engine's built-in conversation (kv_run_self_test) checks its replies.
 * The checksum covers every reply and the store's final contents, and no address: the rv32im and
 * rv32imac builds, and the host build in guests/test/, print the same one for the same arguments.
 *
 * Arguments: mb=<memory for the engine: store, hash table and buffers, MiB> (64),
 * rounds=<thousands of requests> (150; 0 runs until the machine is stopped),
 * keys=<n> (3125 per MiB of mb: 200,000 at mb=64, about half the store full of 64-byte values),
 * seed=<n> (1). Anything else is refused (exit 2), and a key space that cannot fit in mb (exit 3). Instructions: about 2,000 per request (~300 M by default).
 */
#include "hbft_rt.h"
#include "kv_engine.h"

#define REQUESTS_PER_ROUND 1000u
#define CONNECTIONS 8u
#define PIPELINE_DEPTH 16u
#define VALUE_BYTES 64u
#define KEY_BYTES_MAX 24u /* "counter:" or "key:" and up to 10 digits */
/* The largest request: a SET with the longest key. */
#define REQUEST_BYTES_MAX (4u + 9u + 5u + KEY_BYTES_MAX + 2u + 5u + VALUE_BYTES + 2u)
#define PIPELINE_BYTES_MAX (PIPELINE_DEPTH * REQUEST_BYTES_MAX)
#define MB_MAX 1536u
#define KEYS_PER_MIB 3125u /* the default key space: 200,000 keys at mb=64 */
#define KEYS_MAX 100000000u

/* What the replies looked like, as the transport saw them. */
struct reply_sink {
  uint64_t checksum;
  uint64_t error_replies;
  uint64_t reply_bytes;
};

struct driver {
  struct kv_server *server;
  struct hbft_rng rng;
  uint32_t keys;
  uint32_t counters;
  uint64_t requests; /* generated so far */
  uint64_t sets, gets, incrs;
  /* Per connection: the bytes held back from its last pipeline, and where its next one goes. */
  uint8_t *pending[CONNECTIONS];
  uint32_t pending_bytes[CONNECTIONS];
  uint32_t held_bytes[CONNECTIONS]; /* of pending_bytes: held back at its last turn */
  uint32_t batch_bytes;    /* of the pipeline being written for connection `conn` */
  uint32_t batch_requests; /* requests in it */
  uint32_t conn;
};

/* Replies arrive in whole replies (the engine stages them per connection). A 32-bit FNV-1a per byte
   (cheap on RV32, unlike the 64-bit one) is folded into the run's 64-bit checksum per chunk; the
   same pass counts error replies, which are the only replies here that start with '-' ("$-1" is a
   missing key, and values and counters never hold a '-'). */
static void sink_send(void *context, uint32_t conn, const uint8_t *bytes, uint32_t len) {
  struct reply_sink *sink = (struct reply_sink *)context;
  uint32_t hash = 2166136261u ^ conn;
  uint8_t previous = '\n';
  for (uint32_t i = 0; i < len; i++) {
    uint8_t byte = bytes[i];
    if (byte == '-' && previous == '\n') sink->error_replies++;
    previous = byte;
    hash = (hash ^ byte) * 16777619u;
  }
  sink->checksum = hbft_fnv1a64_u32(sink->checksum, hash);
  sink->reply_bytes += len;
}

static void sink_close(void *context, uint32_t conn) {
  (void)context;
  hbft_panic("kv: the engine closed connection %u: a request it could not parse", conn);
}

static uint8_t *put_text(uint8_t *out, const char *text) {
  while (*text != 0) *out++ = (uint8_t)*text++;
  return out;
}

static uint8_t *put_u32(uint8_t *out, uint32_t value) {
  char digits[10];
  int count = 0;
  do {
    digits[count++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (count > 0) *out++ = (uint8_t)digits[--count];
  return out;
}

/* A bulk string header and its bytes: "$<len>\r\n<bytes>\r\n". */
static uint8_t *put_bulk(uint8_t *out, const uint8_t *bytes, uint32_t len) {
  *out++ = '$';
  out = put_u32(out, len);
  out = put_text(out, "\r\n");
  memcpy(out, bytes, len);
  out += len;
  return put_text(out, "\r\n");
}

/* "<prefix><n>" into key; returns its length. */
static uint32_t make_key(uint8_t *key, const char *prefix, uint32_t n) {
  return (uint32_t)(put_u32(put_text(key, prefix), n) - key);
}

/* One request in RESP, appended at out; returns the end. */
static uint8_t *write_request(struct driver *driver, uint8_t *out) {
  uint8_t key[KEY_BYTES_MAX];
  uint32_t kind = hbft_rng_below(&driver->rng, 10);
  driver->requests++;
  if (kind < 4) {
    uint32_t key_bytes = make_key(key, "key:", hbft_rng_below(&driver->rng, driver->keys));
    /* The value names the request that wrote it: 16 hex digits, then filler. */
    static const char hex[] = "0123456789abcdef";
    uint8_t value[VALUE_BYTES];
    uint64_t serial = driver->requests;
    for (uint32_t i = 0; i < 16; i++) value[i] = (uint8_t)hex[(uint32_t)(serial >> (60 - 4 * i)) & 15u];
    memset(value + 16, 'v', VALUE_BYTES - 16);
    out = put_text(out, "*3\r\n$3\r\nSET\r\n");
    out = put_bulk(out, key, key_bytes);
    driver->sets++;
    return put_bulk(out, value, VALUE_BYTES);
  }
  if (kind < 8) {
    uint32_t key_bytes = make_key(key, "key:", hbft_rng_below(&driver->rng, driver->keys));
    out = put_text(out, "*2\r\n$3\r\nGET\r\n");
    driver->gets++;
    return put_bulk(out, key, key_bytes);
  }
  uint32_t key_bytes = make_key(key, "counter:", hbft_rng_below(&driver->rng, driver->counters));
  out = put_text(out, "*2\r\n$4\r\nINCR\r\n");
  driver->incrs++;
  return put_bulk(out, key, key_bytes);
}

/* Sends what connection conn holds back from its last turn and the pipeline written since, except
   (when hold_back is set) everything after a random byte of that pipeline, which waits for the
   connection's next turn. What is held back is thus always shorter than one pipeline. */
static void take_turn(struct driver *driver, uint32_t conn, int hold_back) {
  uint8_t *bytes = driver->pending[conn];
  uint32_t len = driver->pending_bytes[conn];
  if (len == 0) return;
  uint32_t held = driver->held_bytes[conn];
  uint32_t fresh = len - held;
  uint32_t send = hold_back && fresh > 1 ? held + 1 + hbft_rng_below(&driver->rng, fresh - 1) : len;
  uint32_t taken = kv_conn_receive(driver->server, conn, bytes, send);
  if (taken != send) hbft_panic("kv: the engine took %u of %u bytes on connection %u", taken, send, conn);
  memmove(bytes, bytes + send, len - send);
  driver->pending_bytes[conn] = len - send;
  driver->held_bytes[conn] = len - send;
}

/* Writes one request into the current connection's pipeline; a full pipeline is sent and the next
   connection's turn begins. */
static void drive_one(struct driver *driver) {
  uint32_t conn = driver->conn;
  uint8_t *end = write_request(driver, driver->pending[conn] + driver->pending_bytes[conn]);
  driver->pending_bytes[conn] = (uint32_t)(end - driver->pending[conn]);
  if (++driver->batch_requests < PIPELINE_DEPTH) return;
  take_turn(driver, conn, 1);
  driver->batch_requests = 0;
  driver->conn = (conn + 1) % CONNECTIONS;
}

/* Sends everything still held back, on every connection. */
static void drain(struct driver *driver) {
  for (uint32_t conn = 0; conn < CONNECTIONS; conn++) take_turn(driver, conn, 0);
}

/* Refuses arguments kv does not take, so that a typo (or the old server's exit_after=/ring_kib=)
   is not silently ignored. */
static void check_argument_names(void) {
  static const char *const known[] = {"mb", "rounds", "keys", "seed"};
  static char args[HBFT_ARGS_BYTES_MAX + 1];
  hbft_sysinfo_args(args, sizeof args);
  const char *p = args;
  while (*p != 0) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    const char *token = p;
    while (*p != 0 && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
    uint32_t token_len = (uint32_t)(p - token);
    if (token_len == 0) continue;
    uint32_t name_len = 0;
    while (name_len < token_len && token[name_len] != '=') name_len++;
    int ok = 0;
    for (uint32_t k = 0; k < sizeof known / sizeof known[0]; k++) {
      if (strlen(known[k]) == name_len && memcmp(known[k], token, name_len) == 0) ok = 1;
    }
    if (ok) continue;
    if ((name_len == 10 && memcmp(token, "exit_after", 10) == 0) || (name_len == 8 && memcmp(token, "ring_kib", 8) == 0)) {
      hbft_printf("kv: %.*s is an argument of the old NIC server, which is gone: kv now drives its own load "
                  "(mb= rounds= keys= seed=); for a Redis server on the network use the kvnet guest\n",
                  (int)name_len, token);
    } else {
      hbft_printf("kv: unknown argument '%.*s' (kv takes mb= rounds= keys= seed=)\n", (int)token_len, token);
    }
    hbft_exit(2);
  }
}

int main(void) {
  check_argument_names();
  uint32_t mb = hbft_arg_u32("mb", 64);
  uint32_t rounds = hbft_arg_u32("rounds", 150);
  uint32_t seed = hbft_arg_u32("seed", 1);
  if (mb < 1 || mb > MB_MAX) {
    hbft_printf("kv: mb=%u is out of range (1..%u)\n", mb, MB_MAX);
    return 2;
  }
  uint32_t keys = hbft_arg_u32("keys", mb * KEYS_PER_MIB);
  if (keys < 1 || keys > KEYS_MAX) {
    hbft_printf("kv: keys=%u is out of range (1..%u)\n", keys, KEYS_MAX);
    return 2;
  }
  uint64_t start_ticks = hbft_mtime();

  struct hbft_arena heap;
  hbft_arena_init_heap(&heap, HBFT_STACK_RESERVE_BYTES);
  /* The engine gets exactly mb MiB, whatever the machine's RAM and wherever the image ends, so its
     sizing (hash table, buffers, store) is the same in every build and every run. */
  uint8_t *engine_memory = hbft_arena_alloc_or_die(&heap, mb * HBFT_MIB(1), 4096, "kv engine memory (mb=)");
  struct hbft_arena engine_arena;
  hbft_arena_init(&engine_arena, (uintptr_t)engine_memory, (uintptr_t)engine_memory + mb * HBFT_MIB(1));
  static struct kv_server server; /* in .bss: zero, like the rest of a fresh machine */
  kv_server_init(&server, &engine_arena, CONNECTIONS);

  uint32_t counters = keys / 10 > 0 ? keys / 10 : 1;
  /* Every key and counter stored at once must fit: an item is its header, key and value rounded up
     to its size class (at most a quarter more). */
  uint64_t item_space = server.store.items.end - server.store.items_start;
  uint64_t needed = (uint64_t)keys * ((sizeof(struct kv_item) + 4 + 10 + VALUE_BYTES) * 5 / 4 + 8) +
                    (uint64_t)counters * ((sizeof(struct kv_item) + 8 + 10 + INTEGER_TEXT_BYTES_MAX) * 5 / 4 + 8);
  if (needed > item_space) {
    hbft_printf("kv: keys=%u need about %llu MiB of item space, mb=%u gives %llu MiB: raise mb= or lower keys=\n", keys,
                (unsigned long long)(needed >> 20) + 1, mb, (unsigned long long)(item_space >> 20));
    return 3;
  }

  uint8_t *capture = hbft_arena_alloc_or_die(&heap, 4096, 8, "kv self-test capture");
  uint32_t failures = kv_run_self_test(&server, capture, 4096);
  if (failures != 0) {
    hbft_printf("kv: engine self-test FAILED (%u of %u exchanges)\n", failures, KV_SELF_TEST_EXCHANGES);
    return 1;
  }

  static struct reply_sink sink;
  sink.checksum = HBFT_FNV1A64_INIT;
  server.transport.send = sink_send;
  server.transport.close = sink_close;
  server.transport.context = &sink;

  static struct driver driver;
  driver.server = &server;
  driver.keys = keys;
  driver.counters = counters;
  hbft_rng_seed(&driver.rng, seed);
  for (uint32_t conn = 0; conn < CONNECTIONS; conn++) {
    /* Room for a held-back tail and a whole pipeline after it. */
    driver.pending[conn] = hbft_arena_alloc_or_die(&heap, 2 * PIPELINE_BYTES_MAX, 64, "kv pipelines");
    kv_conn_open(&server, conn);
  }
  uint64_t commands_before = server.commands_processed;

  hbft_printf("kv: mb=%u rounds=%u keys=%u seed=%u: %u connections x %u pipelined, %u buckets, %u MiB for items, "
              "self-test passed\n",
              mb, rounds, keys, seed, CONNECTIONS, PIPELINE_DEPTH, server.store.bucket_mask + 1,
              (uint32_t)(item_space >> 20));

  uint32_t report_every = rounds == 0 ? 1000 : rounds >= 4 ? rounds / 4 : 1;
  for (uint32_t round = 1; rounds == 0 || round <= rounds; round++) {
    for (uint32_t r = 0; r < REQUESTS_PER_ROUND; r++) drive_one(&driver);
    if (rounds == 0 && round % report_every == 0) {
      hbft_printf("kv: round %u (no end: rounds=0) requests=%llu keys stored=%u\n", round,
                  (unsigned long long)driver.requests, server.store.count);
    } else if (round % report_every == 0 || round == rounds) {
      hbft_printf("kv: round %u/%u requests=%llu keys stored=%u\n", round, rounds, (unsigned long long)driver.requests,
                  server.store.count);
    }
  }
  drain(&driver);

  uint64_t executed = server.commands_processed - commands_before;
  hbft_printf("kv: %llu requests (%llu SET, %llu GET, %llu INCR), %llu bytes of replies, %u keys stored\n",
              (unsigned long long)executed, (unsigned long long)driver.sets, (unsigned long long)driver.gets,
              (unsigned long long)driver.incrs, (unsigned long long)sink.reply_bytes, server.store.count);
  if (executed != driver.requests || sink.error_replies != 0) {
    hbft_printf("kv: FAILED: %llu requests sent, %llu executed, %llu error replies\n", (unsigned long long)driver.requests,
                (unsigned long long)executed, (unsigned long long)sink.error_replies);
    return 1;
  }
  uint64_t checksum = hbft_fnv1a64_u64(sink.checksum, kv_store_checksum(&server.store));
  hbft_printf("kv: done in %llu ticks\n", (unsigned long long)(hbft_mtime() - start_ticks));
  hbft_printf("checksum=%016llx\n", (unsigned long long)checksum);
  return 0;
}
