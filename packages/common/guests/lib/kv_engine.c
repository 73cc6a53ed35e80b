/*
 * The kv server's engine (see kv_engine.h): the store, the request parser, the commands and the
 * connection layer. Plain C with no device access, so the host harness compiles it natively.
 */
#include "kv_engine.h"


static inline uint8_t *item_key(struct kv_item *item) { return item->data; }
static inline uint8_t *item_value(struct kv_item *item) { return item->data + item->key_bytes; }

/* FNV-1a, four bytes a round (the loop's own cost was a third of the hash's). */
static uint32_t hash_key(const uint8_t *key, uint32_t len) {
  uint32_t hash = 2166136261u;
  uint32_t i = 0;
  for (; i + 4 <= len; i += 4) {
    hash = (hash ^ key[i]) * 16777619u;
    hash = (hash ^ key[i + 1]) * 16777619u;
    hash = (hash ^ key[i + 2]) * 16777619u;
    hash = (hash ^ key[i + 3]) * 16777619u;
  }
  for (; i < len; i++) hash = (hash ^ key[i]) * 16777619u;
  return hash;
}

/* Size classes grow by a quarter (rounded to 8 bytes), so an item wastes at most ~20%. */
static void store_init(struct kv_store *store, struct hbft_arena *arena, uint32_t store_bytes) {
  uint32_t bucket_count = 1024;
  /* About one bucket per 128 bytes of item space: chains stay short for items of 64 bytes and up. */
  while (bucket_count * 2 <= store_bytes / 128 && bucket_count < (1u << 26)) bucket_count <<= 1;
  store->buckets = hbft_arena_alloc_or_die(arena, bucket_count * sizeof(struct kv_item *), 4096, "kv hash table");
  store->bucket_mask = bucket_count - 1;
  store->count = 0;
  uint32_t item_bytes = store_bytes - bucket_count * (uint32_t)sizeof(struct kv_item *);
  void *items = hbft_arena_alloc_or_die(arena, item_bytes, 4096, "kv items");
  hbft_arena_init(&store->items, (uintptr_t)items, (uintptr_t)items + item_bytes);
  store->items_start = (uintptr_t)items;
  store->class_count = 0;
  uint32_t bytes = 32;
  while (store->class_count < SIZE_CLASSES_MAX) {
    store->class_bytes[store->class_count++] = bytes;
    if (bytes >= ITEM_BYTES_MAX + sizeof(struct kv_item)) break;
    bytes = ((bytes + bytes / 4) + 7u) & ~7u;
  }
  for (uint32_t c = 0; c < store->class_count; c++) store->free_lists[c] = NULL;
  store->bytes_in_use = 0;
}

/* The smallest class that holds `bytes`, or class_count when none does. */
static uint32_t size_class_for(const struct kv_store *store, uint32_t bytes) {
  uint32_t low = 0, high = store->class_count;
  while (low < high) {
    uint32_t middle = (low + high) / 2;
    if (store->class_bytes[middle] >= bytes) high = middle;
    else low = middle + 1;
  }
  return low;
}

static inline uint32_t item_capacity(const struct kv_store *store, const struct kv_item *item) {
  return store->class_bytes[item->size_class] - (uint32_t)sizeof(struct kv_item);
}

/* An uninitialised item with room for key_bytes + value_bytes, or NULL when memory is exhausted. */
static struct kv_item *item_alloc(struct kv_store *store, uint32_t key_bytes, uint32_t value_bytes) {
  uint32_t bytes = (uint32_t)sizeof(struct kv_item) + key_bytes + value_bytes;
  uint32_t size_class = size_class_for(store, bytes);
  if (size_class == store->class_count) return NULL;
  struct kv_item *item = store->free_lists[size_class];
  if (item != NULL) {
    store->free_lists[size_class] = item->next;
  } else {
    item = hbft_arena_alloc(&store->items, store->class_bytes[size_class], 8);
    if (item == NULL) return NULL;
  }
  item->size_class = size_class;
  store->bytes_in_use += store->class_bytes[size_class];
  return item;
}

static void item_free(struct kv_store *store, struct kv_item *item) {
  store->bytes_in_use -= store->class_bytes[item->size_class];
  item->next = store->free_lists[item->size_class];
  store->free_lists[item->size_class] = item;
}

/* A word of memory that may alias anything (the loads below read byte arrays a word at a time). */
typedef uint32_t __attribute__((may_alias)) kv_word;

/* Whether an item's key (word-aligned: item->data follows a header of words) equals key[0, len),
   which may have any alignment (it points into a client's request). Words are compared once key is
   aligned, the item's side then shifted together from its aligned words, so no load is misaligned
   (the machine traps on those) and a 16-byte key costs a few words, not 16 byte compares. The
   item's words read lie within round_up(len, 4) bytes of its data, inside the item. */
static inline int key_equal(const uint8_t *item_key, const uint8_t *key, uint32_t len) {
  uint32_t i = 0;
  while (i < len && ((uintptr_t)(key + i) & 3u) != 0) {
    if (item_key[i] != key[i]) return 0;
    i++;
  }
  const kv_word *item_words = (const kv_word *)(const void *)item_key;
  if (i == 0) {
    for (; i + 4 <= len; i += 4) {
      if (item_words[i / 4] != *(const kv_word *)(const void *)(key + i)) return 0;
    }
  } else {
    /* item_key + i is i bytes into item_words[0]: each word of key is two item words spliced. */
    uint32_t shift = 8u * i;
    uint32_t low = item_words[0];
    for (uint32_t w = 1; i + 4 <= len; i += 4, w++) {
      uint32_t high = item_words[w];
      if (((low >> shift) | (high << (32u - shift))) != *(const kv_word *)(const void *)(key + i)) return 0;
      low = high;
    }
  }
  for (; i < len; i++) {
    if (item_key[i] != key[i]) return 0;
  }
  return 1;
}

/* The link that points at the item with this key (so callers can unlink it), or NULL. */
static struct kv_item **store_find_link(struct kv_store *store, const uint8_t *key, uint32_t key_bytes,
                                        uint32_t hash) {
  struct kv_item **link = &store->buckets[hash & store->bucket_mask];
  for (; *link != NULL; link = &(*link)->next) {
    struct kv_item *item = *link;
    if (item->hash == hash && item->key_bytes == key_bytes && key_equal(item->data, key, key_bytes)) return link;
  }
  return NULL;
}

static struct kv_item *store_get(struct kv_store *store, const uint8_t *key, uint32_t key_bytes) {
  struct kv_item **link = store_find_link(store, key, key_bytes, hash_key(key, key_bytes));
  return link != NULL ? *link : NULL;
}

/* Sets key (whose hash is `hash`) to value, given what store_find_link returned for it, so that a
   command that looked the key up already does not look again. Returns 0, or -1 when memory is
   exhausted (the old value then stays). */
static int store_set_at(struct kv_store *store, struct kv_item **link, const uint8_t *key, uint32_t key_bytes,
                        uint32_t hash, const uint8_t *value, uint32_t value_bytes) {
  if (link != NULL && item_capacity(store, *link) >= key_bytes + value_bytes) {
    /* memmove: a value may come from this very item (SET k GET-then-set paths never do today). */
    memmove(item_value(*link), value, value_bytes);
    (*link)->value_bytes = value_bytes;
    return 0;
  }
  struct kv_item *item = item_alloc(store, key_bytes, value_bytes);
  if (item == NULL) return -1;
  item->hash = hash;
  item->key_bytes = key_bytes;
  item->value_bytes = value_bytes;
  memcpy(item_key(item), key, key_bytes);
  memcpy(item_value(item), value, value_bytes);
  if (link != NULL) {
    struct kv_item *old = *link;
    item->next = old->next;
    *link = item;
    item_free(store, old);
  } else {
    struct kv_item **bucket = &store->buckets[hash & store->bucket_mask];
    item->next = *bucket;
    *bucket = item;
    store->count++;
  }
  return 0;
}

/* Sets key to value. Returns 0, or -1 when memory is exhausted (the old value then stays). */
static int store_set(struct kv_store *store, const uint8_t *key, uint32_t key_bytes, const uint8_t *value,
                     uint32_t value_bytes) {
  uint32_t hash = hash_key(key, key_bytes);
  return store_set_at(store, store_find_link(store, key, key_bytes, hash), key, key_bytes, hash, value, value_bytes);
}

static int store_delete(struct kv_store *store, const uint8_t *key, uint32_t key_bytes) {
  struct kv_item **link = store_find_link(store, key, key_bytes, hash_key(key, key_bytes));
  if (link == NULL) return 0;
  struct kv_item *item = *link;
  *link = item->next;
  item_free(store, item);
  store->count--;
  return 1;
}

/* Empties the store. Only non-empty buckets are written, so a flush of a small store does not
   dirty the whole table; the item memory is handed back wholesale. */
static void store_flush(struct kv_store *store) {
  for (uint32_t b = 0; b <= store->bucket_mask; b++) {
    if (store->buckets[b] != NULL) store->buckets[b] = NULL;
  }
  store->items.next = store->items_start;
  for (uint32_t c = 0; c < store->class_count; c++) store->free_lists[c] = NULL;
  store->count = 0;
  store->bytes_in_use = 0;
}

/* An order-independent digest of the contents: the sum of each item's hash. */
uint64_t kv_store_checksum(struct kv_store *store) {
  uint64_t sum = store->count;
  for (uint32_t b = 0; b <= store->bucket_mask; b++) {
    for (struct kv_item *item = store->buckets[b]; item != NULL; item = item->next) {
      uint64_t hash = hbft_fnv1a64(HBFT_FNV1A64_INIT, item_key(item), item->key_bytes);
      hash = hbft_fnv1a64_u32(hash, 0xffffffffu);
      sum += hbft_fnv1a64(hash, item_value(item), item->value_bytes);
    }
  }
  return sum;
}

/* ------------------------------------------------------------------------------------------------
 * Integers, as Redis parses and prints them
 * --------------------------------------------------------------------------------------------- */

/* Strict signed 64-bit parse: optional '-', digits, no leading zeros, no spaces, no '+', no "-0".
   Up to 19 digits cannot overflow 64 unsigned bits, so the loop needs no overflow test (and no
   64-bit division, which RV32IM does in software); the first 9 digits use 32-bit arithmetic. */
static int parse_i64(const uint8_t *text, uint32_t len, int64_t *out) {
  uint32_t i = 0;
  int negative = 0;
  if (len > 0 && text[0] == '-') {
    negative = 1;
    i = 1;
  }
  uint32_t digits = len - i;
  if (digits == 0 || digits > 19) return 0;
  if (text[i] == '0' && (digits > 1 || negative)) return 0;
  uint32_t small = 0;
  uint32_t small_end = i + (digits < 9 ? digits : 9);
  for (; i < small_end; i++) {
    uint32_t digit = (uint32_t)text[i] - '0';
    if (digit > 9) return 0;
    small = small * 10 + digit;
  }
  uint64_t magnitude = small;
  for (; i < len; i++) {
    uint32_t digit = (uint32_t)text[i] - '0';
    if (digit > 9) return 0;
    magnitude = magnitude * 10 + digit;
  }
  if (negative) {
    if (magnitude > (uint64_t)INT64_MAX + 1) return 0;
    *out = (int64_t)(0 - magnitude);
  } else {
    if (magnitude > (uint64_t)INT64_MAX) return 0;
    *out = (int64_t)magnitude;
  }
  return 1;
}

/* Writes value in decimal into out (at least INTEGER_TEXT_BYTES_MAX bytes); returns the length.
   Values that fit 32 bits use 32-bit division, which RV32IM does in one instruction. */
static uint32_t format_i64(int64_t value, uint8_t *out) {
  uint8_t digits[INTEGER_TEXT_BYTES_MAX];
  uint32_t count = 0, len = 0;
  uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
  while (magnitude > UINT32_MAX) {
    digits[count++] = (uint8_t)('0' + magnitude % 10);
    magnitude /= 10;
  }
  uint32_t small = (uint32_t)magnitude;
  do {
    digits[count++] = (uint8_t)('0' + small % 10);
    small /= 10;
  } while (small != 0);
  if (value < 0) out[len++] = '-';
  while (count > 0) out[len++] = digits[--count];
  return len;
}


/* Each slot's input buffer is computed rather than stored, so that setting up thousands of slots
   writes nothing: the connection table stays zero pages until clients arrive. */
static inline uint8_t *conn_input(const struct kv_server *server, uint32_t conn) {
  uint32_t large = server->conns[conn].large;
  if (large != 0) return server->large_memory + (large - 1) * server->large_capacity;
  return server->input_memory + conn * server->input_capacity;
}

static inline uint32_t conn_capacity(const struct kv_server *server, uint32_t conn) {
  return server->conns[conn].large != 0 ? server->large_capacity : server->input_capacity;
}

/* Moves a connection's buffered input into a free large-request buffer; 0 when none is free. */
static int conn_take_large(struct kv_server *server, uint32_t conn) {
  struct kv_conn *c = &server->conns[conn];
  for (uint32_t i = 0; i < server->large_count; i++) {
    if (server->large_owner[i] != 0) continue;
    uint8_t *own = conn_input(server, conn);
    server->large_owner[i] = conn + 1;
    c->large = i + 1;
    memcpy(conn_input(server, conn), own, c->input_bytes);
    return 1;
  }
  server->large_refused++;
  return 0;
}

/* Hands a large-request buffer back once what it holds fits the connection's own buffer. */
static void conn_release_large(struct kv_server *server, uint32_t conn) {
  struct kv_conn *c = &server->conns[conn];
  if (c->large == 0 || c->input_bytes > server->input_capacity) return;
  const uint8_t *large = conn_input(server, conn);
  server->large_owner[c->large - 1] = 0;
  c->large = 0;
  memcpy(conn_input(server, conn), large, c->input_bytes);
}

static void transport_send(struct kv_server *server, uint32_t conn, const uint8_t *bytes, uint32_t len) {
  if (server->transport.send != NULL) {
    server->transport.send(server->transport.context, conn, bytes, len);
    return;
  }
  server->replies_hash = hbft_fnv1a64(server->replies_hash, bytes, len);
  uint32_t room = server->capture_capacity - server->capture_bytes;
  uint32_t copy = len < room ? len : room;
  memcpy(server->capture + server->capture_bytes, bytes, copy);
  server->capture_bytes += copy;
}

static int transport_writable(struct kv_server *server, uint32_t conn) {
  return server->transport.writable == NULL || server->transport.writable(server->transport.context, conn);
}

static void transport_close(struct kv_server *server, uint32_t conn) {
  if (server->transport.close != NULL) server->transport.close(server->transport.context, conn);
}

void kv_reply_flush(struct kv_server *server) {
  if (server->staging_bytes == 0) return;
  transport_send(server, server->staging_conn, server->staging, server->staging_bytes);
  server->staging_bytes = 0;
}

/* Room for the next len (at most REPLY_STAGING_BYTES) bytes of conn's replies in the staging
   buffer, which the caller fills: what is staged for another connection, or what would leave too
   little room, is sent first. */
static inline uint8_t *reply_reserve(struct kv_server *server, uint32_t conn, uint32_t len) {
  if (server->staging_bytes > 0 && server->staging_conn != conn) kv_reply_flush(server);
  server->staging_conn = conn;
  if (server->staging_bytes + len > REPLY_STAGING_BYTES) kv_reply_flush(server);
  uint8_t *room = server->staging + server->staging_bytes;
  server->staging_bytes += len;
  return room;
}

/* memcpy, with the few bytes of most replies copied inline (a call costs more than they do). */
static inline void copy_bytes(uint8_t *out, const uint8_t *bytes, uint32_t len) {
  if (len > 8) {
    memcpy(out, bytes, len);
    return;
  }
  for (uint32_t i = 0; i < len; i++) out[i] = bytes[i];
}

static void reply_bytes(struct kv_server *server, uint32_t conn, const void *bytes, uint32_t len) {
  if (len > REPLY_STAGING_BYTES) {
    kv_reply_flush(server);
    transport_send(server, conn, bytes, len);
    return;
  }
  copy_bytes(reply_reserve(server, conn, len), bytes, len);
}

/* (Inline, so that a literal's length is folded rather than counted by strlen.) */
static inline void reply_text(struct kv_server *server, uint32_t conn, const char *text) {
  reply_bytes(server, conn, text, (uint32_t)__builtin_strlen(text));
}

/* A "-ERR ..." line; CR and LF inside it (echoed client bytes) would break the protocol, so they
   become spaces, as Redis does. */
static void reply_error(struct kv_server *server, uint32_t conn, const char *message) {
  uint8_t line[256];
  uint32_t len = 0;
  line[len++] = '-';
  for (const char *p = message; *p != 0 && len < sizeof line - 2; p++) {
    line[len++] = (*p == '\r' || *p == '\n') ? ' ' : (uint8_t)*p;
  }
  line[len++] = '\r';
  line[len++] = '\n';
  reply_bytes(server, conn, line, len);
}

static void reply_prefixed_number(struct kv_server *server, uint32_t conn, char prefix, int64_t value) {
  uint8_t line[INTEGER_TEXT_BYTES_MAX + 3];
  line[0] = (uint8_t)prefix;
  uint32_t len = 1 + format_i64(value, line + 1);
  line[len++] = '\r';
  line[len++] = '\n';
  reply_bytes(server, conn, line, len);
}

static void reply_integer(struct kv_server *server, uint32_t conn, int64_t value) {
  reply_prefixed_number(server, conn, ':', value);
}

static void reply_array(struct kv_server *server, uint32_t conn, uint32_t count) {
  reply_prefixed_number(server, conn, '*', count);
}

/* Writes value in decimal into out (at least 10 bytes); returns the length. */
static inline uint32_t format_u32(uint32_t value, uint8_t *out) {
  uint32_t len = 1;
  for (uint32_t bound = 10; len < 10 && value >= bound; bound *= 10) len++;
  for (uint32_t i = len; i > 0; i--) {
    out[i - 1] = (uint8_t)('0' + value % 10);
    value /= 10;
  }
  return len;
}

/* "$<len>\r\n<bytes>\r\n", staged in one piece when it fits. */
static void reply_bulk(struct kv_server *server, uint32_t conn, const void *bytes, uint32_t len) {
  uint8_t head[16];
  head[0] = '$';
  uint32_t head_bytes = 1 + format_u32(len, head + 1);
  head[head_bytes++] = '\r';
  head[head_bytes++] = '\n';
  if (len <= REPLY_STAGING_BYTES - head_bytes - 2) {
    uint8_t *out = reply_reserve(server, conn, head_bytes + len + 2);
    copy_bytes(out, head, head_bytes);
    copy_bytes(out + head_bytes, (const uint8_t *)bytes, len);
    out[head_bytes + len] = '\r';
    out[head_bytes + len + 1] = '\n';
    return;
  }
  reply_bytes(server, conn, head, head_bytes);
  reply_bytes(server, conn, bytes, len);
  reply_bytes(server, conn, "\r\n", 2);
}

static void reply_null(struct kv_server *server, uint32_t conn) { reply_text(server, conn, "$-1\r\n"); }

static void reply_oom(struct kv_server *server, uint32_t conn) {
  reply_error(server, conn, "OOM command not allowed when used memory > 'maxmemory'.");
}

/* Ends the connection from the server's side: pending replies first, then the CLOSE record. */
static void conn_close(struct kv_server *server, uint32_t conn) {
  kv_reply_flush(server);
  transport_close(server, conn);
  server->conns[conn].state = CONN_CLOSING;
  server->conns[conn].input_bytes = 0;
  conn_release_large(server, conn);
}

/* ------------------------------------------------------------------------------------------------
 * The request parser: RESP arrays of bulk strings, or inline commands
 * --------------------------------------------------------------------------------------------- */

enum parse_status { PARSE_DONE, PARSE_NEED_MORE, PARSE_ERROR };

struct parse_result {
  enum parse_status status;
  uint32_t consumed;   /* PARSE_DONE: bytes of this request */
  const char *error;   /* PARSE_ERROR: the message (the stream cannot be resynchronised) */
};

/* Finds "\r\n" at or after from; returns the index of '\r', or UINT32_MAX when absent. */
static uint32_t find_crlf(const uint8_t *bytes, uint32_t len, uint32_t from) {
  for (uint32_t i = from; i + 1 < len; i++) {
    if (bytes[i] == '\r' && bytes[i + 1] == '\n') return i;
  }
  return UINT32_MAX;
}

/* Parses the number on a "*<n>\r\n" or "$<n>\r\n" header starting at `at` (after the marker).
   (Out of line: header_number_fast below takes what clients send.) */
static __attribute__((noinline)) enum parse_status parse_header_number(const uint8_t *bytes, uint32_t len, uint32_t at, int64_t *value,
                                             uint32_t *next) {
  uint32_t end = find_crlf(bytes, len, at);
  if (end == UINT32_MAX) {
    /* Bound the search: a header line is a few digits, so a long line without CRLF is garbage. */
    return len - at > INTEGER_TEXT_BYTES_MAX + 2 ? PARSE_ERROR : PARSE_NEED_MORE;
  }
  if (!parse_i64(bytes + at, end - at, value)) return PARSE_ERROR;
  *next = end + 2;
  return PARSE_DONE;
}

/* The header numbers clients send, in one pass: 1 to 9 digits without a leading zero (or "0"), then
   CRLF. Returns 0 for anything else (signs, long numbers, a line not complete yet, garbage), which
   parse_header_number then parses; for what this takes, the first CRLF follows the digits, so it
   returns what parse_header_number would. `at` <= len. */
static inline int header_number_fast(const uint8_t *bytes, uint32_t len, uint32_t at, uint32_t *value,
                                     uint32_t *next) {
  /* One or two digits (every count and length redis-benchmark sends), without the loop. */
  if (len - at >= 3) {
    uint32_t first = (uint32_t)bytes[at] - '0';
    if (first <= 9) {
      if (bytes[at + 1] == '\r') {
        if (bytes[at + 2] != '\n') return 0;
        *value = first;
        *next = at + 3;
        return 1;
      }
      uint32_t second = (uint32_t)bytes[at + 1] - '0';
      if (second <= 9 && first != 0 && len - at >= 4 && bytes[at + 2] == '\r' && bytes[at + 3] == '\n') {
        *value = first * 10 + second;
        *next = at + 4;
        return 1;
      }
    }
  }
  uint32_t i = at, small = 0;
  uint32_t digits_end = len - at > 9 ? at + 9 : len;
  for (; i < digits_end; i++) {
    uint32_t digit = (uint32_t)bytes[i] - '0';
    if (digit > 9) break;
    small = small * 10 + digit;
  }
  if (i == at || i + 1 >= len || bytes[i] != '\r' || bytes[i + 1] != '\n' || (bytes[at] == '0' && i != at + 1)) return 0;
  *value = small;
  *next = i + 2;
  return 1;
}

static struct parse_result parse_multibulk(const uint8_t *bytes, uint32_t len, uint32_t bulk_bytes_max,
                                           struct request *request) {
  struct parse_result result = {PARSE_NEED_MORE, 0, NULL};
  uint32_t count, at;
  if (!header_number_fast(bytes, len, 1, &count, &at)) {
    int64_t count64;
    enum parse_status status = parse_header_number(bytes, len, 1, &count64, &at);
    if (status != PARSE_DONE) {
      if (status == PARSE_ERROR) result.error = "Protocol error: invalid multibulk length";
      result.status = status;
      return result;
    }
    /* Negative counts ("*-1") are empty requests, like "*0". */
    count = count64 < 0 ? 0 : count64 > (int64_t)ARGS_MAX ? ARGS_MAX + 1 : (uint32_t)count64;
  }
  if (count > ARGS_MAX) {
    result.status = PARSE_ERROR;
    result.error = "Protocol error: too many arguments in one request";
    return result;
  }
  const uint8_t **argv = request->argv;
  uint32_t *arg_bytes = request->arg_bytes;
  for (uint32_t i = 0; i < count; i++) {
    if (at >= len) return result;
    if (bytes[at] != '$') {
      result.status = PARSE_ERROR;
      result.error = "Protocol error: expected '$' before an argument";
      return result;
    }
    uint32_t bulk_bytes, data;
    if (!header_number_fast(bytes, len, at + 1, &bulk_bytes, &data)) {
      int64_t bulk64;
      enum parse_status status = parse_header_number(bytes, len, at + 1, &bulk64, &data);
      if (status == PARSE_NEED_MORE) return result;
      bulk_bytes = status == PARSE_DONE && bulk64 >= 0 && bulk64 <= (int64_t)bulk_bytes_max ? (uint32_t)bulk64 : UINT32_MAX;
    }
    if (bulk_bytes > bulk_bytes_max) {
      result.status = PARSE_ERROR;
      result.error = "Protocol error: invalid bulk length";
      return result;
    }
    /* data <= len (it follows a CRLF inside the bytes), and bulk_bytes + 2 cannot wrap. */
    if (len - data < bulk_bytes + 2) return result;
    if (bytes[data + bulk_bytes] != '\r' || bytes[data + bulk_bytes + 1] != '\n') {
      result.status = PARSE_ERROR;
      result.error = "Protocol error: argument not followed by CRLF";
      return result;
    }
    argv[i] = bytes + data;
    arg_bytes[i] = bulk_bytes;
    at = data + bulk_bytes + 2;
  }
  request->argc = count;
  /* "*0" and "*-1" are empty requests: consumed, and nothing to run (as in Redis). */
  result.status = PARSE_DONE;
  result.consumed = at;
  return result;
}

static int is_inline_space(uint8_t c) { return c == ' ' || c == '\t'; }

/* An inline command: one line of space-separated words; "double quotes" group words (without
   escapes). An empty line is an empty request. */
static struct parse_result parse_inline(const uint8_t *bytes, uint32_t len, uint32_t line_bytes_max,
                                        struct request *request) {
  struct parse_result result = {PARSE_NEED_MORE, 0, NULL};
  uint32_t newline = 0;
  while (newline < len && bytes[newline] != '\n') newline++;
  if (newline == len) {
    if (len >= line_bytes_max) {
      result.status = PARSE_ERROR;
      result.error = "Protocol error: too big inline request";
    }
    return result;
  }
  uint32_t end = newline > 0 && bytes[newline - 1] == '\r' ? newline - 1 : newline;
  request->argc = 0;
  uint32_t at = 0;
  for (;;) {
    while (at < end && is_inline_space(bytes[at])) at++;
    if (at == end) break;
    if (request->argc == ARGS_MAX) {
      result.status = PARSE_ERROR;
      result.error = "Protocol error: too many arguments in one request";
      return result;
    }
    uint32_t start = at, stop;
    if (bytes[at] == '"') {
      start = at + 1;
      stop = start;
      while (stop < end && bytes[stop] != '"') stop++;
      if (stop == end) {
        result.status = PARSE_ERROR;
        result.error = "Protocol error: unbalanced quotes in request";
        return result;
      }
      at = stop + 1;
    } else {
      while (at < end && !is_inline_space(bytes[at])) at++;
      stop = at;
    }
    request->argv[request->argc] = bytes + start;
    request->arg_bytes[request->argc] = stop - start;
    request->argc++;
  }
  result.status = PARSE_DONE;
  result.consumed = newline + 1;
  return result;
}

/* Inline requests are bounded by a connection's own buffer (their end is found by scanning, so a
   long one would be scanned again for every segment); multi-bulk ones by a large-request buffer. */
static struct parse_result parse_request(const uint8_t *bytes, uint32_t len, uint32_t inline_bytes_max,
                                         uint32_t bulk_bytes_max, struct request *request) {
  if (bytes[0] == '*') return parse_multibulk(bytes, len, bulk_bytes_max, request);
  return parse_inline(bytes, len, inline_bytes_max, request);
}

/* ------------------------------------------------------------------------------------------------
 * Commands
 * --------------------------------------------------------------------------------------------- */

/* Case-insensitive comparison of an argument with a name of lower-case letters (every command,
   subcommand and option name is one): for such a name, c | 0x20 equals a name byte exactly when c
   is that letter in either case. The lengths are compared first, and inlined with a literal name
   (its length folded) a command's name costs a few instructions to tell apart from another. */
static inline int arg_is_name(const struct request *request, uint32_t index, const char *name, uint32_t name_bytes) {
  if (request->arg_bytes[index] != name_bytes) return 0;
  const uint8_t *arg = request->argv[index];
  for (uint32_t i = 0; i < name_bytes; i++) {
    if ((uint8_t)(arg[i] | 0x20u) != (uint8_t)name[i]) return 0;
  }
  return 1;
}
#define arg_is(request, index, name) arg_is_name(request, index, name, (uint32_t)__builtin_strlen(name))

static void reply_wrong_arity(struct kv_server *server, uint32_t conn, const char *name) {
  char message[96];
  hbft_snprintf(message, sizeof message, "ERR wrong number of arguments for '%s' command", name);
  reply_error(server, conn, message);
}

static void reply_unknown_command(struct kv_server *server, uint32_t conn, const struct request *request) {
  char message[256];
  uint32_t len = hbft_snprintf(message, sizeof message, "ERR unknown command '%.*s', with args beginning with: ",
                               (int)(request->arg_bytes[0] < 64 ? request->arg_bytes[0] : 64), (const char *)request->argv[0]);
  for (uint32_t i = 1; i < request->argc && len < sizeof message - 80; i++) {
    len += hbft_snprintf(message + len, sizeof message - len, "'%.*s' ",
                         (int)(request->arg_bytes[i] < 32 ? request->arg_bytes[i] : 32), (const char *)request->argv[i]);
  }
  reply_error(server, conn, message);
}

static void command_get(struct kv_server *server, uint32_t conn, const struct request *request) {
  struct kv_item *item = store_get(&server->store, request->argv[1], request->arg_bytes[1]);
  if (item == NULL) reply_null(server, conn);
  else reply_bulk(server, conn, item_value(item), item->value_bytes);
}

/* SET key value [NX | XX] [GET]; expiry options are refused because keys never expire here. */
static void command_set(struct kv_server *server, uint32_t conn, const struct request *request) {
  if (request->argc == 3) {
    /* No options: nothing depends on the old value, so the key is looked up once, by store_set. */
    if (store_set(&server->store, request->argv[1], request->arg_bytes[1], request->argv[2], request->arg_bytes[2]) != 0)
      reply_oom(server, conn);
    else
      reply_text(server, conn, "+OK\r\n");
    return;
  }
  int only_if_absent = 0, only_if_present = 0, return_old = 0;
  for (uint32_t i = 3; i < request->argc; i++) {
    if (arg_is(request, i, "nx")) only_if_absent = 1;
    else if (arg_is(request, i, "xx")) only_if_present = 1;
    else if (arg_is(request, i, "get")) return_old = 1;
    else if (arg_is(request, i, "ex") || arg_is(request, i, "px") || arg_is(request, i, "exat") ||
             arg_is(request, i, "pxat") || arg_is(request, i, "keepttl")) {
      reply_error(server, conn, "ERR SET expiry options are not supported: keys never expire on this server");
      return;
    } else {
      reply_error(server, conn, "ERR syntax error");
      return;
    }
  }
  if (only_if_absent && only_if_present) {
    reply_error(server, conn, "ERR syntax error");
    return;
  }
  struct kv_item *old = store_get(&server->store, request->argv[1], request->arg_bytes[1]);
  if (return_old) {
    /* The old value is sent before it is overwritten: the reply is staged by copying. */
    if (old == NULL) reply_null(server, conn);
    else reply_bulk(server, conn, item_value(old), old->value_bytes);
  }
  if ((only_if_absent && old != NULL) || (only_if_present && old == NULL)) {
    if (!return_old) reply_null(server, conn);
    return;
  }
  if (store_set(&server->store, request->argv[1], request->arg_bytes[1], request->argv[2], request->arg_bytes[2]) != 0) {
    if (!return_old) reply_oom(server, conn);
    return;
  }
  if (!return_old) reply_text(server, conn, "+OK\r\n");
}

/* INCR, INCRBY, DECR, DECRBY: the value must be a strict 64-bit integer; overflow is an error. */
static void command_add(struct kv_server *server, uint32_t conn, const struct request *request, int64_t delta) {
  /* The key is looked up once: its link serves the read and the write. */
  const uint8_t *key = request->argv[1];
  uint32_t key_bytes = request->arg_bytes[1];
  uint32_t hash = hash_key(key, key_bytes);
  struct kv_item **link = store_find_link(&server->store, key, key_bytes, hash);
  struct kv_item *item = link != NULL ? *link : NULL;
  int64_t value = 0;
  if (item != NULL && !parse_i64(item_value(item), item->value_bytes, &value)) {
    reply_error(server, conn, "ERR value is not an integer or out of range");
    return;
  }
  if ((delta < 0 && value < 0 && delta < INT64_MIN - value) || (delta > 0 && value > 0 && delta > INT64_MAX - value)) {
    reply_error(server, conn, "ERR increment or decrement would overflow");
    return;
  }
  value += delta;
  /* ":<value>\r\n": the value's text is stored from the middle of its reply line. */
  uint8_t line[INTEGER_TEXT_BYTES_MAX + 3];
  line[0] = ':';
  uint32_t len = format_i64(value, line + 1);
  if (store_set_at(&server->store, link, key, key_bytes, hash, line + 1, len) != 0) {
    reply_oom(server, conn);
    return;
  }
  line[len + 1] = '\r';
  line[len + 2] = '\n';
  reply_bytes(server, conn, line, len + 3);
}

static void command_incrby(struct kv_server *server, uint32_t conn, const struct request *request, int negate) {
  int64_t delta;
  if (!parse_i64(request->argv[2], request->arg_bytes[2], &delta)) {
    reply_error(server, conn, "ERR value is not an integer or out of range");
    return;
  }
  if (negate) {
    if (delta == INT64_MIN) {
      reply_error(server, conn, "ERR decrement would overflow");
      return;
    }
    delta = -delta;
  }
  command_add(server, conn, request, delta);
}

static void command_mset(struct kv_server *server, uint32_t conn, const struct request *request) {
  for (uint32_t i = 1; i + 1 < request->argc; i += 2) {
    if (store_set(&server->store, request->argv[i], request->arg_bytes[i], request->argv[i + 1],
                  request->arg_bytes[i + 1]) != 0) {
      /* Pairs before this one are set: MSET is not atomic when memory runs out. */
      reply_oom(server, conn);
      return;
    }
  }
  reply_text(server, conn, "+OK\r\n");
}

#define INFO_BYTES_MAX 2048u

static void command_info(struct kv_server *server, uint32_t conn) {
  char text[INFO_BYTES_MAX];
  uint32_t connected = 0;
  for (uint32_t c = 0; c < server->conn_count; c++) connected += server->conns[c].state == CONN_OPEN;
  uint32_t len = hbft_snprintf(
      text, sizeof text,
      "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nhbft_server:kv\r\narch_bits:32\r\n"
      "\r\n# Clients\r\nconnected_clients:%u\r\n"
      "\r\n# Memory\r\nused_memory:%llu\r\nmaxmemory:%u\r\n"
      "\r\n# Persistence\r\nloading:0\r\n"
      "\r\n# Stats\r\ntotal_commands_processed:%llu\r\n"
      "\r\n# Keyspace\r\ndb0:keys=%u,expires=0,avg_ttl=0\r\n",
      connected, (unsigned long long)server->store.bytes_in_use,
      (uint32_t)(server->store.items.end - server->store.items_start),
      (unsigned long long)server->commands_processed, server->store.count);
  if (len >= sizeof text) len = sizeof text - 1;
  if (server->transport.info != NULL && len + 4 < sizeof text) {
    text[len++] = '\r';
    text[len++] = '\n';
    uint32_t extra = server->transport.info(server->transport.context, text + len, sizeof text - len);
    len += extra < sizeof text - len ? extra : sizeof text - len - 1;
  }
  reply_bulk(server, conn, text, len);
}

/* HELLO [protover [AUTH username password] [SETNAME name]]: clients of Redis 6 and later may open
   with it. RESP2 is all this server speaks: HELLO 3 gets NOPROTO, which clients take as "stay on
   RESP2" (as from a Redis 5), and HELLO or HELLO 2 gets the server's description. */
static void command_hello(struct kv_server *server, uint32_t conn, const struct request *request) {
  if (request->argc >= 2) {
    int64_t version;
    if (!parse_i64(request->argv[1], request->arg_bytes[1], &version)) {
      reply_error(server, conn, "ERR Protocol version is not an integer or out of range");
      return;
    }
    if (version != 2) {
      reply_error(server, conn, "NOPROTO sorry, this protocol version is not supported");
      return;
    }
  }
  for (uint32_t i = 2; i < request->argc; i++) {
    if (arg_is(request, i, "auth") && i + 2 < request->argc) {
      reply_error(server, conn, "ERR AUTH called without any password configured for the default user");
      return;
    }
    if (arg_is(request, i, "setname") && i + 1 < request->argc) {
      i++;
      continue;
    }
    char message[96];
    hbft_snprintf(message, sizeof message, "ERR Syntax error in HELLO option '%.*s'",
                  (int)(request->arg_bytes[i] < 32 ? request->arg_bytes[i] : 32), (const char *)request->argv[i]);
    reply_error(server, conn, message);
    return;
  }
  reply_array(server, conn, 14);
  static const char *const fields[] = {"server", "redis", "version", "7.0.0", "proto"};
  for (uint32_t i = 0; i < 5; i++) reply_bulk(server, conn, fields[i], (uint32_t)strlen(fields[i]));
  reply_integer(server, conn, 2);
  reply_bulk(server, conn, "id", 2);
  reply_integer(server, conn, server->conns[conn].client_id);
  static const char *const more[] = {"mode", "standalone", "role", "master", "modules"};
  for (uint32_t i = 0; i < 5; i++) reply_bulk(server, conn, more[i], (uint32_t)strlen(more[i]));
  reply_array(server, conn, 0);
}

static void command_client(struct kv_server *server, uint32_t conn, const struct request *request) {
  if (request->argc >= 2 && (arg_is(request, 1, "setname") || arg_is(request, 1, "setinfo"))) {
    reply_text(server, conn, "+OK\r\n");
  } else if (request->argc == 2 && arg_is(request, 1, "id")) {
    reply_integer(server, conn, server->conns[conn].client_id);
  } else if (request->argc == 2 && arg_is(request, 1, "getname")) {
    reply_null(server, conn);
  } else {
    reply_error(server, conn, "ERR unknown or unsupported CLIENT subcommand");
  }
}

/* CONFIG GET name...: the few settings clients ask about when they connect (redis-benchmark reads
   save and appendonly), as name/value pairs like Redis; "*" names them all, anything else is
   absent (an empty answer, not an error). */
static void command_config_get(struct kv_server *server, uint32_t conn, const struct request *request) {
  static const char *const names[] = {"save", "appendonly", "databases", "timeout", "maxclients"};
  char maxclients[16];
  hbft_snprintf(maxclients, sizeof maxclients, "%u", server->conn_count);
  const char *const values[] = {"", "no", "1", "0", maxclients};
  uint32_t count = sizeof names / sizeof names[0];
  uint32_t matched[sizeof names / sizeof names[0]] = {0};
  uint32_t pairs = 0;
  for (uint32_t i = 2; i < request->argc; i++) {
    int all = request->arg_bytes[i] == 1 && request->argv[i][0] == '*';
    for (uint32_t n = 0; n < count; n++) {
      if (!matched[n] && (all || arg_is(request, i, names[n]))) {
        matched[n] = 1;
        pairs++;
      }
    }
  }
  reply_array(server, conn, 2 * pairs);
  for (uint32_t n = 0; n < count; n++) {
    if (!matched[n]) continue;
    reply_bulk(server, conn, names[n], (uint32_t)strlen(names[n]));
    reply_bulk(server, conn, values[n], (uint32_t)strlen(values[n]));
  }
}

/* Runs one request. Returns 1 when the connection must be closed afterwards (QUIT). */
static int execute(struct kv_server *server, uint32_t conn, const struct request *request) {
  uint32_t argc = request->argc;
  server->commands_processed++;
  if (arg_is(request, 0, "get")) {
    if (argc != 2) reply_wrong_arity(server, conn, "get");
    else command_get(server, conn, request);
  } else if (arg_is(request, 0, "set")) {
    if (argc < 3) reply_wrong_arity(server, conn, "set");
    else command_set(server, conn, request);
  } else if (arg_is(request, 0, "incr") || arg_is(request, 0, "decr")) {
    int decrement = arg_is(request, 0, "decr");
    if (argc != 2) reply_wrong_arity(server, conn, decrement ? "decr" : "incr");
    else command_add(server, conn, request, decrement ? -1 : 1);
  } else if (arg_is(request, 0, "incrby") || arg_is(request, 0, "decrby")) {
    int decrement = arg_is(request, 0, "decrby");
    if (argc != 3) reply_wrong_arity(server, conn, decrement ? "decrby" : "incrby");
    else command_incrby(server, conn, request, decrement);
  } else if (arg_is(request, 0, "del")) {
    if (argc < 2) {
      reply_wrong_arity(server, conn, "del");
    } else {
      int64_t deleted = 0;
      for (uint32_t i = 1; i < argc; i++) deleted += store_delete(&server->store, request->argv[i], request->arg_bytes[i]);
      reply_integer(server, conn, deleted);
    }
  } else if (arg_is(request, 0, "exists")) {
    if (argc < 2) {
      reply_wrong_arity(server, conn, "exists");
    } else {
      int64_t found = 0;
      for (uint32_t i = 1; i < argc; i++) found += store_get(&server->store, request->argv[i], request->arg_bytes[i]) != NULL;
      reply_integer(server, conn, found);
    }
  } else if (arg_is(request, 0, "mget")) {
    if (argc < 2) {
      reply_wrong_arity(server, conn, "mget");
    } else {
      reply_array(server, conn, argc - 1);
      for (uint32_t i = 1; i < argc; i++) {
        struct kv_item *item = store_get(&server->store, request->argv[i], request->arg_bytes[i]);
        if (item == NULL) reply_null(server, conn);
        else reply_bulk(server, conn, item_value(item), item->value_bytes);
      }
    }
  } else if (arg_is(request, 0, "mset")) {
    if (argc < 3 || argc % 2 == 0) reply_wrong_arity(server, conn, "mset");
    else command_mset(server, conn, request);
  } else if (arg_is(request, 0, "ping")) {
    if (argc > 2) reply_wrong_arity(server, conn, "ping");
    else if (argc == 2) reply_bulk(server, conn, request->argv[1], request->arg_bytes[1]);
    else reply_text(server, conn, "+PONG\r\n");
  } else if (arg_is(request, 0, "echo")) {
    if (argc != 2) reply_wrong_arity(server, conn, "echo");
    else reply_bulk(server, conn, request->argv[1], request->arg_bytes[1]);
  } else if (arg_is(request, 0, "dbsize")) {
    if (argc != 1) reply_wrong_arity(server, conn, "dbsize");
    else reply_integer(server, conn, server->store.count);
  } else if (arg_is(request, 0, "flushall") || arg_is(request, 0, "flushdb")) {
    if (argc > 2 || (argc == 2 && !arg_is(request, 1, "sync") && !arg_is(request, 1, "async"))) {
      reply_error(server, conn, "ERR syntax error");
    } else {
      store_flush(&server->store);
      reply_text(server, conn, "+OK\r\n");
    }
  } else if (arg_is(request, 0, "select")) {
    int64_t index;
    if (argc != 2) reply_wrong_arity(server, conn, "select");
    else if (!parse_i64(request->argv[1], request->arg_bytes[1], &index)) reply_error(server, conn, "ERR value is not an integer or out of range");
    else if (index != 0) reply_error(server, conn, "ERR DB index is out of range");
    else reply_text(server, conn, "+OK\r\n");
  } else if (arg_is(request, 0, "quit")) {
    reply_text(server, conn, "+OK\r\n");
    return 1;
  } else if (arg_is(request, 0, "command")) {
    /* Clients ask for the command table when they connect; an empty one means "nothing special". */
    if (argc == 2 && arg_is(request, 1, "count")) reply_integer(server, conn, 0);
    else reply_text(server, conn, "*0\r\n");
  } else if (arg_is(request, 0, "hello")) {
    command_hello(server, conn, request);
  } else if (arg_is(request, 0, "info")) {
    command_info(server, conn);
  } else if (arg_is(request, 0, "client")) {
    command_client(server, conn, request);
  } else if (arg_is(request, 0, "config")) {
    if (argc >= 3 && arg_is(request, 1, "get")) command_config_get(server, conn, request);
    else if (argc == 2 && arg_is(request, 1, "get")) reply_wrong_arity(server, conn, "config|get");
    else reply_error(server, conn, "ERR CONFIG is read-only on this server: only CONFIG GET is supported");
  } else {
    reply_unknown_command(server, conn, request);
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Connections: turning byte streams into requests
 * --------------------------------------------------------------------------------------------- */

/* Runs every complete request in bytes[0, len). Returns the number of bytes consumed; stops early
   at an incomplete request, and closes the connection on QUIT or a protocol error. */
static uint32_t conn_run_requests(struct kv_server *server, uint32_t conn, const uint8_t *bytes, uint32_t len) {
  uint32_t consumed = 0;
  while (consumed < len && server->conns[conn].state == CONN_OPEN) {
    /* A transport that can say "no more for now" gets each request's replies at once, and the
       rest of the input waits until it takes replies again. */
    if (server->transport.writable != NULL) {
      kv_reply_flush(server);
      if (!transport_writable(server, conn)) break;
    }
    struct parse_result parsed = parse_request(bytes + consumed, len - consumed, server->input_capacity,
                                               server->large_count > 0 ? server->large_capacity : server->input_capacity,
                                               &server->request);
    if (parsed.status == PARSE_NEED_MORE) break;
    if (parsed.status == PARSE_ERROR) {
      char message[128];
      hbft_snprintf(message, sizeof message, "ERR %s", parsed.error);
      reply_error(server, conn, message);
      conn_close(server, conn);
      return len;
    }
    consumed += parsed.consumed;
    if (server->request.argc > 0 && execute(server, conn, &server->request)) {
      conn_close(server, conn);
      return len;
    }
  }
  return consumed;
}

static void reply_request_too_large(struct kv_server *server, uint32_t conn) {
  if (server->large_count > 0 && conn_capacity(server, conn) < server->large_capacity) {
    reply_error(server, conn, "ERR request too large: every large-request buffer is in use, try again");
  } else {
    reply_error(server, conn, "ERR Protocol error: request too large for this server's input buffer");
  }
}

void kv_conn_open(struct kv_server *server, uint32_t conn) {
  struct kv_conn *c = &server->conns[conn];
  c->state = CONN_OPEN;
  c->input_bytes = 0;
  conn_release_large(server, conn);
  c->client_id = ++server->next_client_id;
}

/* New bytes from a client. When nothing is buffered, requests are parsed straight from the bytes
   (no copy); only an incomplete tail is kept in the connection's buffer. Returns how many bytes
   were taken: all of them, unless the transport stopped taking replies (then the caller keeps the
   rest and offers it again after kv_conn_resume). */
uint32_t kv_conn_receive(struct kv_server *server, uint32_t conn, const uint8_t *bytes, uint32_t len) {
  struct kv_conn *c = &server->conns[conn];
  if (c->state == CONN_CLOSING) return len;
  if (c->state == CONN_FREE) kv_conn_open(server, conn);
  uint32_t taken = 0;
  while (taken < len && c->state == CONN_OPEN) {
    if (c->input_bytes == 0) {
      taken += conn_run_requests(server, conn, bytes + taken, len - taken);
      if (taken == len || c->state != CONN_OPEN || !transport_writable(server, conn)) break;
      uint32_t rest = len - taken;
      if (rest >= server->input_capacity &&
          (server->large_count == 0 || rest >= server->large_capacity || !conn_take_large(server, conn))) {
        /* An incomplete request already as large as the buffer can never complete. */
        reply_request_too_large(server, conn);
        conn_close(server, conn);
        break;
      }
      memcpy(conn_input(server, conn), bytes + taken, rest);
      c->input_bytes = rest;
      taken = len;
      break;
    }
    uint32_t capacity = conn_capacity(server, conn);
    uint32_t room = capacity - c->input_bytes;
    uint32_t copy = len - taken < room ? len - taken : room;
    uint8_t *input = conn_input(server, conn);
    memcpy(input + c->input_bytes, bytes + taken, copy);
    c->input_bytes += copy;
    taken += copy;
    uint32_t consumed = conn_run_requests(server, conn, input, c->input_bytes);
    if (c->state != CONN_OPEN) break;
    if (consumed == 0 && c->input_bytes == capacity) {
      /* A request larger than the connection's own buffer: on to a large one, if one is free. */
      if (c->large == 0 && server->large_count > 0 && conn_take_large(server, conn)) continue;
      reply_request_too_large(server, conn);
      conn_close(server, conn);
      break;
    }
    if (consumed > 0) memmove(input, input + consumed, c->input_bytes - consumed);
    c->input_bytes -= consumed;
    conn_release_large(server, conn);
    if (!transport_writable(server, conn)) break;
  }
  kv_reply_flush(server);
  return c->state == CONN_OPEN ? taken : len;
}

void kv_conn_resume(struct kv_server *server, uint32_t conn) {
  struct kv_conn *c = &server->conns[conn];
  if (c->state != CONN_OPEN || c->input_bytes == 0) return;
  uint8_t *input = conn_input(server, conn);
  uint32_t consumed = conn_run_requests(server, conn, input, c->input_bytes);
  if (c->state == CONN_OPEN && consumed > 0) {
    memmove(input, input + consumed, c->input_bytes - consumed);
    c->input_bytes -= consumed;
    conn_release_large(server, conn);
  }
  kv_reply_flush(server);
}

/* The client hung up. A slot the server already closed needs no answer: answering could close the
   next client the device gives that slot to. */
void kv_conn_closed_by_client(struct kv_server *server, uint32_t conn) {
  struct kv_conn *c = &server->conns[conn];
  if (c->state == CONN_OPEN) {
    kv_reply_flush(server);
    transport_close(server, conn);
  }
  c->state = CONN_FREE;
  c->input_bytes = 0;
  conn_release_large(server, conn);
}

/* ------------------------------------------------------------------------------------------------
 * Set-up
 * --------------------------------------------------------------------------------------------- */

/* Carves the server's memory from the arena: connections and their buffers first (bounded), then
   the store from STORE_PERCENT_OF_RAM of what is left. */
void kv_server_init(struct kv_server *server, struct hbft_arena *arena, uint32_t conn_slots) {
  uint32_t free_bytes = hbft_arena_free_bytes(arena);
  /* Input buffers may take an eighth of memory: 64 KiB each when that allows, 4 KiB at least, and
     fewer slots are served when even that does not fit (the rest are refused at OPEN). */
  uint32_t conns_fitting = free_bytes / 8 / INPUT_BYTES_MIN;
  server->conn_count = conn_slots < CONNS_MAX ? conn_slots : CONNS_MAX;
  if (server->conn_count > conns_fitting) server->conn_count = conns_fitting > 0 ? conns_fitting : 1;
  uint32_t input_capacity = INPUT_BYTES_MAX;
  while (input_capacity > INPUT_BYTES_MIN && (uint64_t)input_capacity * server->conn_count > free_bytes / 8) {
    input_capacity /= 2;
  }
  server->input_capacity = input_capacity;
  server->conns = hbft_arena_alloc_or_die(arena, server->conn_count * sizeof(struct kv_conn), 8, "kv connections");
  server->input_memory = hbft_arena_alloc_or_die(arena, server->conn_count * input_capacity, 4096, "kv input buffers");
  /* Large-request buffers may take a sixteenth of what is left. */
  server->large_capacity = LARGE_REQUEST_BYTES_MAX;
  server->large_count = hbft_arena_free_bytes(arena) / 16 / LARGE_REQUEST_BYTES_MAX;
  if (server->large_count > LARGE_BUFFERS_MAX) server->large_count = LARGE_BUFFERS_MAX;
  if (server->large_count > 0)
    server->large_memory =
        hbft_arena_alloc_or_die(arena, server->large_count * LARGE_REQUEST_BYTES_MAX, 4096, "kv large-request buffers");
  server->request.argv = hbft_arena_alloc_or_die(arena, ARGS_MAX * sizeof(uint8_t *), 8, "kv request arguments");
  server->request.arg_bytes = hbft_arena_alloc_or_die(arena, ARGS_MAX * sizeof(uint32_t), 8, "kv argument lengths");
  server->staging = hbft_arena_alloc_or_die(arena, REPLY_STAGING_BYTES, 4096, "kv reply staging");
  server->staging_bytes = 0;
  server->replies_hash = HBFT_FNV1A64_INIT;
  uint32_t store_bytes = (uint32_t)((uint64_t)hbft_arena_free_bytes(arena) * STORE_PERCENT_OF_RAM / 100);
  store_init(&server->store, arena, store_bytes & ~4095u);
}

/* ------------------------------------------------------------------------------------------------
 * Self-test: a fixed conversation, run by kv before its load, by kvnet without a packet NIC (QEMU),
 * and by the host harness
 * --------------------------------------------------------------------------------------------- */

struct exchange {
  const char *request;
  const char *reply;
};

static const struct exchange kv_self_test_script[KV_SELF_TEST_EXCHANGES] = {
    {"PING\r\n", "+PONG\r\n"},
    {"*1\r\n$4\r\nPING\r\n", "+PONG\r\n"},
    {"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n", "$2\r\nhi\r\n"},
    {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n", "+OK\r\n"},
    {"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$5\r\nvalue\r\n"},
    {"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n", "$-1\r\n"},
    {"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", ":1\r\n"},
    {"*3\r\n$6\r\nINCRBY\r\n$1\r\nn\r\n$2\r\n41\r\n", ":42\r\n"},
    {"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n", "-ERR value is not an integer or out of range\r\n"},
    {"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$19\r\n9223372036854775807\r\n", "+OK\r\n"},
    {"*2\r\n$4\r\nINCR\r\n$3\r\nbig\r\n", "-ERR increment or decrement would overflow\r\n"},
    {"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", "+OK\r\n"},
    {"*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nx\r\n$1\r\nb\r\n", "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"},
    {"*4\r\n$6\r\nEXISTS\r\n$1\r\na\r\n$1\r\na\r\n$1\r\nx\r\n", ":2\r\n"},
    {"*1\r\n$6\r\nDBSIZE\r\n", ":5\r\n"},
    {"*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nx\r\n", ":1\r\n"},
    {"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nEX\r\n",
     "-ERR SET expiry options are not supported: keys never expire on this server\r\n"},
    {"*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n", "*0\r\n"},
    {"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", "+OK\r\n"},
    {"ECHO \"two words\"\r\n", "$9\r\ntwo words\r\n"},
    {"*1\r\n$3\r\nFOO\r\n", "-ERR unknown command 'FOO', with args beginning with: \r\n"},
    {"*1\r\n$8\r\nFLUSHALL\r\n", "+OK\r\n"},
    {"DBSIZE\r\n", ":0\r\n"},
    {"QUIT\r\n", "+OK\r\n"},
};

/* Plays the script on connection 0 with the server capturing replies; returns the number of
   exchanges whose reply differed, after printing each one. */
uint32_t kv_run_self_test(struct kv_server *server, uint8_t *capture, uint32_t capture_capacity) {
  uint32_t failures = 0;
  server->transport.send = NULL;
  server->transport.close = NULL;
  server->capture = capture;
  server->capture_capacity = capture_capacity;
  kv_conn_open(server, 0);
  for (uint32_t i = 0; i < KV_SELF_TEST_EXCHANGES; i++) {
    const struct exchange *exchange = &kv_self_test_script[i];
    server->capture_bytes = 0;
    kv_conn_receive(server, 0, (const uint8_t *)exchange->request, (uint32_t)strlen(exchange->request));
    uint32_t expected_bytes = (uint32_t)strlen(exchange->reply);
    if (server->capture_bytes != expected_bytes || memcmp(capture, exchange->reply, expected_bytes) != 0) {
      hbft_printf("kv self-test: exchange %u: got %u bytes '%.*s', expected '%s'\n", i, server->capture_bytes,
                  (int)server->capture_bytes, (const char *)capture, exchange->reply);
      failures++;
    }
  }
  if (server->conns[0].state != CONN_CLOSING) {
    hbft_printf("kv self-test: QUIT did not close the connection\n");
    failures++;
  }
  kv_conn_closed_by_client(server, 0);
  return failures;
}

