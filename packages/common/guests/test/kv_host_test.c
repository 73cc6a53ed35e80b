/*
 * Proves that the kv server's engine (lib/kv_engine.c, shared by kv and kvnet) answers the Redis
 * protocol correctly however the bytes are split, keeps connections apart, reuses freed memory,
 * and answers malformed or oversized input with an error instead of crashing or hanging.
 * Built natively with sanitizers by host-test.sh; prints every failed check and exits non-zero if
 * there was one. Servers are never freed: each test's memory lives until the process ends.
 */
#define _GNU_SOURCE /* memmem */
#define HBFT_HOST_TEST 1
#include "../lib/kv_engine.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAPTURE_BYTES (4u * 1024 * 1024)

static int checks_run, checks_failed;

static void check(int ok, const char *what) {
  checks_run++;
  if (!ok) {
    checks_failed++;
    fprintf(stderr, "FAIL: %s\n", what);
  }
}

/* A fresh server over its own zeroed memory, capturing replies. */
static struct kv_server *new_server(uint32_t memory_bytes, uint32_t conns) {
  struct kv_server *server = calloc(1, sizeof *server);
  uint8_t *memory = calloc(1, memory_bytes);
  struct hbft_arena arena;
  hbft_arena_init(&arena, (uintptr_t)memory, (uintptr_t)memory + memory_bytes);
  kv_server_init(server, &arena, conns);
  server->capture = calloc(1, CAPTURE_BYTES);
  server->capture_capacity = CAPTURE_BYTES;
  for (uint32_t c = 0; c < server->conn_count; c++) kv_conn_open(server, c);
  return server;
}

static void send_text(struct kv_server *server, uint32_t conn, const char *text) {
  kv_conn_receive(server, conn, (const uint8_t *)text, (uint32_t)strlen(text));
}

/* Sends text on conn and checks that exactly `expected` came back. */
static void expect(struct kv_server *server, uint32_t conn, const char *text, const char *expected) {
  server->capture_bytes = 0;
  send_text(server, conn, text);
  uint32_t len = (uint32_t)strlen(expected);
  int ok = server->capture_bytes == len && memcmp(server->capture, expected, len) == 0;
  if (!ok) {
    fprintf(stderr, "  sent %s\n  got  %.*s\n  want %s\n", text, (int)server->capture_bytes, server->capture, expected);
  }
  check(ok, text);
}

static void test_self_test_script(void) {
  struct kv_server *server = new_server(16u << 20, 2);
  uint8_t *capture = calloc(1, 4096);
  check(kv_run_self_test(server, capture, 4096) == 0, "built-in self-test script");
}

/* The whole script (minus QUIT) as one pipelined stream, delivered in every two-way split and
   byte by byte, must always produce the same replies. */
static void test_pipelining_and_splits(void) {
  struct kv_server *server = new_server(16u << 20, 1);
  static char stream[8192], expected[8192];
  uint32_t stream_len = 0, expected_len = 0;
  const char *flush = "*1\r\n$8\r\nFLUSHALL\r\n";
  memcpy(stream, flush, strlen(flush));
  stream_len += (uint32_t)strlen(flush);
  memcpy(expected, "+OK\r\n", 5);
  expected_len += 5;
  uint32_t exchanges = KV_SELF_TEST_EXCHANGES;
  for (uint32_t i = 0; i + 1 < exchanges; i++) {
    uint32_t a = (uint32_t)strlen(kv_self_test_script[i].request), b = (uint32_t)strlen(kv_self_test_script[i].reply);
    memcpy(stream + stream_len, kv_self_test_script[i].request, a);
    stream_len += a;
    memcpy(expected + expected_len, kv_self_test_script[i].reply, b);
    expected_len += b;
  }
  int all_ok = 1;
  for (uint32_t split = 0; split <= stream_len; split++) {
    server->capture_bytes = 0;
    kv_conn_receive(server, 0, (const uint8_t *)stream, split);
    kv_conn_receive(server, 0, (const uint8_t *)stream + split, stream_len - split);
    if (server->capture_bytes != expected_len || memcmp(server->capture, expected, expected_len) != 0) {
      fprintf(stderr, "  split at %u gave %u bytes\n", split, server->capture_bytes);
      all_ok = 0;
      break;
    }
  }
  check(all_ok, "pipelined stream split at every byte");
  uint64_t contents = kv_store_checksum(&server->store);
  server->capture_bytes = 0;
  for (uint32_t i = 0; i < stream_len; i++) kv_conn_receive(server, 0, (const uint8_t *)stream + i, 1);
  check(server->capture_bytes == expected_len && memcmp(server->capture, expected, expected_len) == 0,
        "pipelined stream byte by byte");
  check(kv_store_checksum(&server->store) == contents, "the same stream leaves the same contents");
}

static void test_integers(void) {
  struct kv_server *server = new_server(16u << 20, 1);
  expect(server, 0, "INCRBY n -9223372036854775808\r\n", ":-9223372036854775808\r\n");
  expect(server, 0, "DECR n\r\n", "-ERR increment or decrement would overflow\r\n");
  expect(server, 0, "INCR n\r\n", ":-9223372036854775807\r\n");
  expect(server, 0, "DECRBY n -9223372036854775808\r\n", "-ERR decrement would overflow\r\n");
  expect(server, 0, "INCRBY n +5\r\n", "-ERR value is not an integer or out of range\r\n");
  expect(server, 0, "INCRBY n 05\r\n", "-ERR value is not an integer or out of range\r\n");
  expect(server, 0, "INCRBY n 99999999999999999999\r\n", "-ERR value is not an integer or out of range\r\n");
  expect(server, 0, "SET s \"\"\r\n", "+OK\r\n");
  expect(server, 0, "INCR s\r\n", "-ERR value is not an integer or out of range\r\n");
  expect(server, 0, "SET s -0\r\n", "+OK\r\n");
  expect(server, 0, "INCR s\r\n", "-ERR value is not an integer or out of range\r\n");
  expect(server, 0, "SET z 0\r\n", "+OK\r\n");
  expect(server, 0, "DECRBY z 4294967296\r\n", ":-4294967296\r\n");
  expect(server, 0, "GET z\r\n", "$11\r\n-4294967296\r\n");
  expect(server, 0, "INCR fresh\r\n", ":1\r\n");
}

static void test_set_options_and_arity(void) {
  struct kv_server *server = new_server(16u << 20, 1);
  expect(server, 0, "SET k v NX\r\n", "+OK\r\n");
  expect(server, 0, "SET k w NX\r\n", "$-1\r\n");
  expect(server, 0, "SET k w XX GET\r\n", "$1\r\nv\r\n");
  expect(server, 0, "SET q w XX\r\n", "$-1\r\n");
  expect(server, 0, "SET k v NX XX\r\n", "-ERR syntax error\r\n");
  expect(server, 0, "SET k v PX 100\r\n", "-ERR SET expiry options are not supported: keys never expire on this server\r\n");
  expect(server, 0, "SET k v BOGUS\r\n", "-ERR syntax error\r\n");
  expect(server, 0, "SET k\r\n", "-ERR wrong number of arguments for 'set' command\r\n");
  expect(server, 0, "GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
  expect(server, 0, "MSET a 1 b\r\n", "-ERR wrong number of arguments for 'mset' command\r\n");
  expect(server, 0, "SELECT 1\r\n", "-ERR DB index is out of range\r\n");
  expect(server, 0, "SELECT x\r\n", "-ERR value is not an integer or out of range\r\n");
  expect(server, 0, "PING a b\r\n", "-ERR wrong number of arguments for 'ping' command\r\n");
  expect(server, 0, "command count\r\n", ":0\r\n");
  expect(server, 0, "COMMAND\r\n", "*0\r\n");
  expect(server, 0, "CONFIG GET save\r\n", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  expect(server, 0, "CONFIG GET appendonly SAVE nosuch\r\n", "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
  expect(server, 0, "CONFIG GET nosuch\r\n", "*0\r\n");
  expect(server, 0, "CONFIG GET\r\n", "-ERR wrong number of arguments for 'config|get' command\r\n");
  expect(server, 0, "CLIENT SETINFO LIB-NAME redis-py\r\n", "+OK\r\n");
  expect(server, 0, "FLUSHDB ASYNC\r\n", "+OK\r\n");
  expect(server, 0, "\r\n", "");
  expect(server, 0, "   \r\n", "");
  expect(server, 0, "*0\r\n", "");
  expect(server, 0, "*-1\r\n", "");
  expect(server, 0, "GET a\nGET a\n", "$-1\r\n$-1\r\n");
  expect(server, 0, "FOO\r\nBAR 1 2\r\n",
         "-ERR unknown command 'FOO', with args beginning with: \r\n"
         "-ERR unknown command 'BAR', with args beginning with: '1' '2' \r\n");
  /* An unknown command's echoed name must not carry a CR/LF into the reply line. */
  expect(server, 0, "*1\r\n$5\r\nA\r\nB!\r\n", "-ERR unknown command 'A  B!', with args beginning with: \r\n");
  server->capture_bytes = 0;
  send_text(server, 0, "INFO\r\n");
  check(server->capture_bytes > 0 && server->capture[0] == '$' &&
            memmem(server->capture, server->capture_bytes, "loading:0", 9) != NULL,
        "INFO is a bulk string with loading:0");
}

static void test_binary_keys_and_large_values(void) {
  struct kv_server *server = new_server(32u << 20, 1);
  static char request[70000], reply[70000];
  uint32_t value_bytes = 60000;
  /* The key "a\0b" holds a NUL, so the header is assembled around it rather than printed. */
  const char key_part[] = "*3\r\n$3\r\nSET\r\n$3\r\na\0b\r\n";
  uint32_t len = (uint32_t)sizeof key_part - 1;
  memcpy(request, key_part, len);
  len += (uint32_t)snprintf(request + len, sizeof request - len, "$%u\r\n", value_bytes);
  for (uint32_t i = 0; i < value_bytes; i++) request[len + i] = (char)(i * 7 + (i >> 8));
  memcpy(request + len + value_bytes, "\r\n", 2);
  server->capture_bytes = 0;
  kv_conn_receive(server, 0, (const uint8_t *)request, len + value_bytes + 2);
  check(server->capture_bytes == 5 && memcmp(server->capture, "+OK\r\n", 5) == 0, "SET of a 60000-byte value");
  server->capture_bytes = 0;
  kv_conn_receive(server, 0, (const uint8_t *)"*2\r\n$3\r\nGET\r\n$3\r\na\0b\r\n", 22);
  uint32_t header = (uint32_t)snprintf(reply, sizeof reply, "$%u\r\n", value_bytes);
  check(server->capture_bytes == header + value_bytes + 2 && memcmp(server->capture, reply, header) == 0 &&
            memcmp(server->capture + header, request + len, value_bytes) == 0,
        "GET of a 60000-byte value under a binary key");
}

static void test_oversized_and_malformed(void) {
  struct kv_server *server = new_server(16u << 20, 8);
  static char big[200000];
  uint32_t len = (uint32_t)snprintf(big, sizeof big, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n");
  server->capture_bytes = 0;
  kv_conn_receive(server, 0, (const uint8_t *)big, len);
  check(server->conns[0].state == CONN_CLOSING, "a declared bulk larger than the input buffer closes the connection");
  check(server->capture_bytes > 0 && server->capture[0] == '-', "... after an error reply");

  /* A request within the bulk limit but larger than the buffer overall, arriving in pieces. */
  len = (uint32_t)snprintf(big, sizeof big, "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$40000\r\n");
  memset(big + len, 'x', 40000);
  len += 40000;
  len += (uint32_t)snprintf(big + len, sizeof big - len, "\r\n$1\r\nb\r\n$40000\r\n");
  memset(big + len, 'y', 40000);
  len += 40000;
  memcpy(big + len, "\r\n", 2);
  len += 2;
  server->capture_bytes = 0;
  for (uint32_t at = 0; at < len && server->conns[1].state == CONN_OPEN; at += 1000) {
    uint32_t piece = len - at < 1000 ? len - at : 1000;
    kv_conn_receive(server, 1, (const uint8_t *)big + at, piece);
  }
  check(server->conns[1].state == CONN_CLOSING, "a request that outgrows the input buffer closes the connection");

  memset(big, 'a', 70000);
  kv_conn_receive(server, 2, (const uint8_t *)big, 70000);
  check(server->conns[2].state == CONN_CLOSING, "an endless inline line closes the connection");

  const char *malformed[] = {"*abc\r\n", "*2\r\n$3\r\nGET\r\n:1\r\n", "*1\r\n$3\r\nGETX\r\n", "*1\r\n$-5\r\n",
                             "*99999999\r\n", "*1\r\n$99999999999999999999999\r\n", "ECHO \"open\r\n"};
  for (uint32_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
    kv_conn_open(server, 3);
    server->capture_bytes = 0;
    send_text(server, 3, malformed[i]);
    char what[96];
    snprintf(what, sizeof what, "malformed input %u gets an error and a close", i);
    check(server->conns[3].state == CONN_CLOSING && server->capture[0] == '-', what);
    send_text(server, 3, "PING\r\n");
  }
  /* The other connections (and the store) are unaffected. */
  expect(server, 4, "PING\r\n", "+PONG\r\n");
  /* QUIT discards what follows it in the same stream. */
  server->capture_bytes = 0;
  send_text(server, 5, "QUIT\r\nSET after quit\r\n");
  check(server->conns[5].state == CONN_CLOSING && server->capture_bytes == 5, "QUIT closes and ignores the rest");
  expect(server, 4, "EXISTS after\r\n", ":0\r\n");
}

static void test_connections_interleaved_and_reused(void) {
  struct kv_server *server = new_server(16u << 20, 4);
  expect(server, 1, "*3\r\n$3\r\nSET\r\n$1\r\na", "");
  expect(server, 2, "GET a\r\n", "$-1\r\n");
  expect(server, 1, "\r\n$1\r\nx\r\n", "+OK\r\n");
  expect(server, 2, "GET a\r\n", "$1\r\nx\r\n");
  /* The client on slot 1 hangs up mid-request; the next client on that slot starts clean. */
  expect(server, 1, "*2\r\n$3\r\nGET\r\n", "");
  kv_conn_closed_by_client(server, 1);
  check(server->conns[1].state == CONN_FREE && server->conns[1].input_bytes == 0, "client close frees the slot");
  kv_conn_open(server, 1);
  expect(server, 1, "GET a\r\n", "$1\r\nx\r\n");
  /* DATA on a slot that never saw OPEN opens it; a closed slot drops data until reopened. */
  kv_conn_closed_by_client(server, 3);
  expect(server, 3, "PING\r\n", "+PONG\r\n");
  send_text(server, 3, "QUIT\r\n");
  expect(server, 3, "PING\r\n", "");
  kv_conn_open(server, 3);
  expect(server, 3, "PING\r\n", "+PONG\r\n");
}

/* Setting and deleting keys of varying sizes over and over must not grow memory without bound. */
static void test_memory_reuse_and_oom(void) {
  struct kv_server *server = new_server(8u << 20, 1);
  char request[512];
  uintptr_t high_water = 0;
  for (uint32_t cycle = 0; cycle < 20; cycle++) {
    for (uint32_t i = 0; i < 2000; i++) {
      snprintf(request, sizeof request, "SET key:%u %0*u\r\n", i, (int)(1 + (i * 37 + cycle) % 300), i);
      server->capture_bytes = 0;
      send_text(server, 0, request);
    }
    for (uint32_t i = 0; i < 2000; i++) {
      snprintf(request, sizeof request, "DEL key:%u\r\n", i);
      send_text(server, 0, request);
    }
    if (cycle == 1) high_water = server->store.items.next;
  }
  check(server->store.count == 0 && server->store.bytes_in_use == 0, "all memory accounted back after deletes");
  check(server->store.items.next <= high_water + 64 * 1024, "freed items are reused rather than new memory taken");

  uint32_t sets = 0;
  int saw_oom = 0;
  for (uint32_t i = 0; i < 200000 && !saw_oom; i++) {
    snprintf(request, sizeof request, "SET fill:%u %0300u\r\n", i, i);
    server->capture_bytes = 0;
    send_text(server, 0, request);
    if (server->capture[0] == '-') saw_oom = memcmp(server->capture, "-OOM", 4) == 0;
    else sets++;
  }
  check(saw_oom, "a full store answers -OOM");
  expect(server, 0, "DEL fill:0 fill:1 fill:2\r\n", ":3\r\n");
  expect(server, 0, "SET again 1\r\n", "+OK\r\n");
  expect(server, 0, "FLUSHALL\r\n", "+OK\r\n");
  expect(server, 0, "SET again 1\r\n", "+OK\r\n");
  expect(server, 0, "DBSIZE\r\n", ":1\r\n");
  printf("  (store held %u 300-byte values before -OOM)\n", sets);
}

/* Random bytes, and random corruptions of valid streams, in random splits: the server must only
   ever answer or close, never crash (the sanitizers watch) or stop answering other clients. */
static void test_fuzz(void) {
  struct kv_server *server = new_server(16u << 20, 4);
  struct hbft_rng rng;
  hbft_rng_seed(&rng, 7);
  static uint8_t stream[4096];
  const char *valid = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nINCR n\r\nMGET a b c\r\n";
  for (uint32_t round = 0; round < 20000; round++) {
    uint32_t conn = hbft_rng_below(&rng, 3);
    uint32_t len;
    if (round % 2 == 0) {
      len = (uint32_t)strlen(valid);
      memcpy(stream, valid, len);
      for (uint32_t flips = hbft_rng_below(&rng, 4); flips > 0; flips--) stream[hbft_rng_below(&rng, len)] = (uint8_t)hbft_rng_next(&rng);
    } else {
      len = 1 + hbft_rng_below(&rng, sizeof stream - 1);
      for (uint32_t i = 0; i < len; i++) stream[i] = (uint8_t)"*$\r\n0123456789-abcSETGET \""[hbft_rng_below(&rng, 26)];
    }
    server->capture_bytes = 0;
    uint32_t at = 0;
    while (at < len) {
      uint32_t piece = 1 + hbft_rng_below(&rng, len - at);
      kv_conn_receive(server, conn, stream + at, piece);
      at += piece;
    }
    if (server->conns[conn].state != CONN_OPEN) kv_conn_open(server, conn);
  }
  expect(server, 3, "PING\r\n", "+PONG\r\n");
}

/* key_equal compares words spliced from an aligned item key with a key at any alignment: every
   length and alignment, equal and with any one byte changed. */
static void test_key_compare_alignments(void) {
  int all_ok = 1;
  static uint32_t item_words[16];
  static uint8_t probe[80];
  uint8_t *item = (uint8_t *)item_words;
  for (uint32_t len = 0; len <= 40; len++) {
    for (uint32_t i = 0; i < len; i++) item[i] = (uint8_t)(0x41 + i * 7);
    for (uint32_t offset = 0; offset < 4; offset++) {
      uint8_t *key = probe + offset;
      memcpy(key, item, len);
      if (!key_equal(item, key, len)) all_ok = 0;
      for (uint32_t i = 0; i < len; i++) {
        key[i] ^= 0x20;
        if (key_equal(item, key, len)) all_ok = 0;
        key[i] ^= 0x20;
      }
    }
  }
  check(all_ok, "key_equal: every length to 40 at every alignment, and every single-byte difference");
}

/* SET and GET of keys of every length to 40 that arrive at every alignment. */
static void test_keys_at_every_alignment(void) {
  struct kv_server *server = new_server(16u << 20, 2);
  static char buffer[256];
  char key[48], request[160], expected[96];
  int all_ok = 1;
  for (uint32_t len = 1; len <= 40; len++) {
    for (uint32_t i = 0; i < len; i++) key[i] = (char)('a' + (i * 5 + len) % 26);
    key[len] = 0;
    for (uint32_t offset = 0; offset < 4; offset++) {
      snprintf(request, sizeof request, "*3\r\n$3\r\nSET\r\n$%u\r\n%s\r\n$2\r\n%u%u\r\n", len, key, len % 10, offset);
      memcpy(buffer + offset, request, strlen(request) + 1);
      server->capture_bytes = 0;
      send_text(server, 0, buffer + offset);
      if (server->capture_bytes != 5 || memcmp(server->capture, "+OK\r\n", 5) != 0) all_ok = 0;
      snprintf(request, sizeof request, "*2\r\n$3\r\nGET\r\n$%u\r\n%s\r\n", len, key);
      memcpy(buffer + 3 - offset, request, strlen(request) + 1);
      server->capture_bytes = 0;
      send_text(server, 1, buffer + 3 - offset);
      snprintf(expected, sizeof expected, "$2\r\n%u%u\r\n", len % 10, offset);
      if (server->capture_bytes != strlen(expected) || memcmp(server->capture, expected, strlen(expected)) != 0) all_ok = 0;
    }
  }
  check(all_ok, "keys of every length to 40 at every alignment: SET, then GET from another alignment");
  check(server->store.count == 40, "... one item per key");
}

/* header_number_fast takes only what parse_header_number would parse, and to the same value and
   end: every string of up to 5 bytes from digits, CR, LF, '-', '+' and 'x'. */
static void test_header_number_fast(void) {
  static const char alphabet[] = "0123456789\r\n-+x";
  const uint32_t letters = sizeof alphabet - 1;
  uint8_t text[5];
  int all_ok = 1;
  uint32_t taken = 0;
  for (uint32_t len = 0; len <= 5; len++) {
    uint32_t combinations = 1;
    for (uint32_t i = 0; i < len; i++) combinations *= letters;
    for (uint32_t n = 0; n < combinations; n++) {
      uint32_t rest = n;
      for (uint32_t i = 0; i < len; i++) {
        text[i] = (uint8_t)alphabet[rest % letters];
        rest /= letters;
      }
      uint32_t value, next, general_next = 0;
      int64_t general_value = 0;
      if (!header_number_fast(text, len, 0, &value, &next)) continue;
      taken++;
      if (parse_header_number(text, len, 0, &general_value, &general_next) != PARSE_DONE || general_value != value ||
          general_next != next)
        all_ok = 0;
    }
  }
  check(all_ok && taken > 100, "header_number_fast agrees with parse_header_number wherever it answers");
}

int main(void) {
  test_self_test_script();
  test_pipelining_and_splits();
  test_integers();
  test_set_options_and_arity();
  test_binary_keys_and_large_values();
  test_oversized_and_malformed();
  test_connections_interleaved_and_reused();
  test_memory_reuse_and_oom();
  test_fuzz();
  test_key_compare_alignments();
  test_keys_at_every_alignment();
  test_header_number_fast();
  printf("kv host test: %d passed, %d failed\n", checks_run - checks_failed, checks_failed);
  return checks_failed == 0 ? 0 : 1;
}
