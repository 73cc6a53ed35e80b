/*
 * web: the web-server class of the seed paper's workloads (SPECweb2005, the one with poor spatial
 * locality): many small, independent requests, each touching a few fields of one session record
 * picked at random from a large table and appending an entry to a small access log.
 *
 * A request reads 256 bytes of "static content" (read-only after start-up), renders a small response
 * from a template into a reused buffer and hashes it, then updates its session. Over an epoch the
 * dirty pages are the hot log and response pages plus one isolated page per request scattered
 * across the session table: write strides of length one, as in the paper's Fig. 5.
 *
 * Arguments: mb=<sessions + content, MiB> (64), rounds=<thousands of requests> (120),
 * seed=<n> (1). Memory: 7/8 of mb for 256-byte sessions, 1/8 for content, 64 KiB of log.
 * Instructions: about 2,300 per request (~290 M by default).
 */
#include "hbft_rt.h"

#define REQUESTS_PER_ROUND 1000u
#define CONTENT_SLICE_BYTES 256u
#define LOG_BYTES HBFT_KIB(64)
#define RESPONSE_BYTES_MAX 512u
#define CART_ITEMS 16u
#define HISTORY_ITEMS 8u

struct session {
  uint32_t id; /* 0: never used (RAM is zero at boot) */
  uint32_t user;
  uint32_t last_seen;
  uint32_t hits;
  uint32_t bytes_sent;
  uint32_t cart_count;
  uint32_t cart_total;
  uint32_t checkouts;
  uint32_t cart[CART_ITEMS];
  uint32_t history[HISTORY_ITEMS];
  uint8_t token[32];
  uint8_t preferences[96];
};
_Static_assert(sizeof(struct session) == 256, "a session record is 256 bytes, 16 to a page");

struct log_entry {
  uint32_t clock;
  uint32_t session;
  uint32_t kind;
  uint32_t value;
  uint32_t response_hash;
  uint32_t reserved[3];
};
_Static_assert(sizeof(struct log_entry) == 32, "log entries are 32 bytes");

struct server {
  struct session *sessions;
  uint32_t session_count;
  const uint32_t *content; /* content_words words */
  uint32_t content_words;
  struct log_entry *log;
  uint32_t log_next;
  char *response;
  uint32_t clock;
  uint64_t checksum;
};

enum request_kind { VIEW, ADD_TO_CART, CHECKOUT, LOGOUT };

/* Appends a decimal number; the renderer's equivalent of a template placeholder. */
static char *put_u32(char *out, uint32_t value) {
  char digits[10];
  int count = 0;
  do {
    digits[count++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (count > 0) *out++ = digits[--count];
  return out;
}

static char *put_text(char *out, const char *text) {
  while (*text != 0) *out++ = *text++;
  return out;
}

static void open_session(struct server *server, struct session *session, uint32_t index, struct hbft_rng *rng) {
  session->id = index + 1;
  session->user = hbft_rng_next(rng);
  session->hits = 0;
  session->bytes_sent = 0;
  session->cart_count = 0;
  session->cart_total = 0;
  session->checkouts = 0;
  for (uint32_t i = 0; i < 8; i++) ((uint32_t *)session->token)[i] = hbft_rng_next(rng);
  session->last_seen = server->clock;
}

/* Reads a slice of content and renders the page into the response buffer; returns its length. */
static uint32_t render_page(struct server *server, const struct session *session, uint32_t page,
                            uint32_t *content_hash) {
  uint32_t first = (page * (CONTENT_SLICE_BYTES / 4)) % (server->content_words - CONTENT_SLICE_BYTES / 4);
  uint32_t hash = 2166136261u;
  for (uint32_t i = 0; i < CONTENT_SLICE_BYTES / 4; i++) hash = (hash ^ server->content[first + i]) * 16777619u;
  *content_hash = hash;

  char *out = server->response;
  out = put_text(out, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Session: ");
  out = put_u32(out, session->id);
  out = put_text(out, "\r\nX-User: ");
  out = put_u32(out, session->user);
  out = put_text(out, "\r\n\r\n<html><body><h1>Page ");
  out = put_u32(out, page);
  out = put_text(out, "</h1><p>Visits: ");
  out = put_u32(out, session->hits);
  out = put_text(out, "</p><p>Cart: ");
  out = put_u32(out, session->cart_count);
  out = put_text(out, " items, total ");
  out = put_u32(out, session->cart_total);
  out = put_text(out, "</p><p>Content ");
  out = put_u32(out, hash);
  out = put_text(out, "</p></body></html>\r\n");
  return (uint32_t)(out - server->response);
}

/* FNV-1a a word at a time over the response, zero-padded to a whole word (the buffer is
   word-aligned, so the loads are too). */
static uint32_t hash_response(char *response, uint32_t length) {
  uint32_t padded = (length + 3) & ~3u;
  for (uint32_t i = length; i < padded; i++) response[i] = 0;
  uint32_t hash = 2166136261u;
  for (uint32_t i = 0; i < padded; i += 4) hash = (hash ^ *(const uint32_t *)(response + i)) * 16777619u;
  return hash;
}

static void append_log(struct server *server, uint32_t session_index, uint32_t kind, uint32_t value,
                       uint32_t response_hash) {
  struct log_entry *entry = &server->log[server->log_next];
  server->log_next = (server->log_next + 1) % (LOG_BYTES / sizeof(struct log_entry));
  entry->clock = server->clock;
  entry->session = session_index;
  entry->kind = kind;
  entry->value = value;
  entry->response_hash = response_hash;
}

static void handle_request(struct server *server, struct hbft_rng *rng) {
  server->clock++;
  uint32_t index = hbft_rng_below(rng, server->session_count);
  struct session *session = &server->sessions[index];
  if (session->id != index + 1) open_session(server, session, index, rng);

  uint32_t draw = hbft_rng_below(rng, 100);
  enum request_kind kind = draw < 70 ? VIEW : draw < 90 ? ADD_TO_CART : draw < 97 ? CHECKOUT : LOGOUT;
  uint32_t value = 0;
  switch (kind) {
    case VIEW:
      value = hbft_rng_below(rng, 1u << 20);
      session->history[session->hits % HISTORY_ITEMS] = value;
      break;
    case ADD_TO_CART:
      value = 100 + hbft_rng_below(rng, 9900);
      session->cart[session->cart_count % CART_ITEMS] = value;
      session->cart_count++;
      session->cart_total += value;
      break;
    case CHECKOUT:
      value = session->cart_total;
      session->cart_count = 0;
      session->cart_total = 0;
      session->checkouts++;
      break;
    case LOGOUT:
      value = session->hits;
      session->id = 0;
      break;
  }

  uint32_t content_hash;
  uint32_t length = render_page(server, session, value, &content_hash);
  uint32_t response_hash = hash_response(server->response, length);
  if (kind != LOGOUT) {
    session->hits++;
    session->bytes_sent += length;
    session->last_seen = server->clock;
  }
  append_log(server, index, kind, value, response_hash);
  server->checksum = hbft_fnv1a64_u32(server->checksum, response_hash ^ content_hash);
}

int main(void) {
  uint32_t mb = hbft_arg_u32("mb", 64);
  uint32_t rounds = hbft_arg_u32("rounds", 120);
  uint32_t seed = hbft_arg_u32("seed", 1);
  if (mb < 1 || mb > 1536) {
    hbft_printf("web: mb=%u is out of range (1..1536)\n", mb);
    return 2;
  }
  uint64_t start_ticks = hbft_mtime();

  struct hbft_arena arena;
  hbft_arena_init_heap(&arena, HBFT_STACK_RESERVE_BYTES);
  struct server server = {0};
  uint32_t session_bytes = mb * HBFT_MIB(1) / 8 * 7;
  uint32_t content_bytes = mb * HBFT_MIB(1) / 8;
  server.session_count = session_bytes / sizeof(struct session);
  server.sessions = hbft_arena_alloc_or_die(&arena, session_bytes, 4096, "web sessions");
  uint32_t *content = hbft_arena_alloc_or_die(&arena, content_bytes, 4096, "web content");
  server.content = content;
  server.content_words = content_bytes / 4;
  server.log = hbft_arena_alloc_or_die(&arena, LOG_BYTES, 4096, "web log");
  server.response = hbft_arena_alloc_or_die(&arena, RESPONSE_BYTES_MAX, 64, "web response buffer");
  server.checksum = HBFT_FNV1A64_INIT;
  hbft_printf("web: mb=%u rounds=%u seed=%u sessions=%u content=%u KiB, %u requests per round\n", mb,
              rounds, seed, server.session_count, content_bytes / 1024, REQUESTS_PER_ROUND);

  struct hbft_rng rng;
  hbft_rng_seed(&rng, seed);
  for (uint32_t i = 0; i < server.content_words; i++) content[i] = hbft_rng_next(&rng);

  uint32_t report_every = rounds >= 4 ? rounds / 4 : 1;
  for (uint32_t round = 1; round <= rounds; round++) {
    for (uint32_t r = 0; r < REQUESTS_PER_ROUND; r++) handle_request(&server, &rng);
    if (round % report_every == 0 || round == rounds) {
      hbft_printf("web: round %u/%u requests=%u\n", round, rounds, server.clock);
    }
  }

  uint64_t checksum = server.checksum;
  for (uint32_t i = 0; i < server.session_count; i++) {
    const struct session *session = &server.sessions[i];
    if (session->id != 0) checksum = hbft_fnv1a64_u32(checksum, session->id ^ session->hits ^ session->cart_total);
  }
  hbft_printf("web: done in %llu ticks\n", (unsigned long long)(hbft_mtime() - start_ticks));
  hbft_printf("checksum=%016llx\n", (unsigned long long)checksum);
  return 0;
}
