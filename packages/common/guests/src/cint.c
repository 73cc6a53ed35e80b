/*
 * cint: the integer class of the seed paper's workloads (SPEC CINT2006, whose large writable
 * working set made it the worst case for log-dirty tracking), shaped as compression and sorting:
 * good but not perfect write locality.
 *
 * Each round
 *   1. edits the generated text in scattered places (short copies within the text),
 *   2. compresses it block by block with an LZ77 coder (LZ4-like format) into a packed buffer
 *      (sequential writes) using a 64 K-entry hash table of recent positions (scattered writes in
 *      256 KiB),
 *   3. decompresses every block into a small scratch buffer and checks it against the text,
 *   4. derives 32-bit keys from the text and sorts them with an LSD radix sort, whose passes write
 *      256 interleaved sequential streams.
 *
 * Arguments: mb=<working set, MiB> (8), rounds=<n> (2), seed=<n> (1).
 * Memory: text 3/8 of mb, packed text about as much again, keys and their sort buffer 1/8 each,
 * plus 320 KiB of tables. Instructions: about 60 per text byte and round (coder, decoder, check)
 * and 40 per key for the sort: ~185 M per round at mb=8 (~370 M by default).
 */
#include "hbft_rt.h"

#define BLOCK_BYTES HBFT_KIB(64)
#define HASH_BITS 16u
#define MATCH_BYTES_MIN 4u
#define OFFSET_MAX 65535u
#define DICTIONARY_WORDS 4096u

struct text {
  uint8_t *bytes;
  uint32_t length;
};

/* ---- generating compressible text ---- */

/* A dictionary of pseudo-words, then text that picks them with a skewed distribution (a few words
   are very common), which gives the coder real repetitions to find. */
static void generate_text(struct text *text, struct hbft_arena *arena, struct hbft_rng *rng) {
  static const char letters[] = "etaoinshrdlucmfwypvbgkjqxz";
  uint8_t *pool = hbft_arena_alloc_or_die(arena, DICTIONARY_WORDS * 12, 4, "cint dictionary");
  uint32_t *word_start = hbft_arena_alloc_or_die(arena, DICTIONARY_WORDS * 4, 4, "cint dictionary index");
  uint8_t *word_length = hbft_arena_alloc_or_die(arena, DICTIONARY_WORDS, 4, "cint dictionary lengths");
  uint32_t used = 0;
  for (uint32_t w = 0; w < DICTIONARY_WORDS; w++) {
    uint32_t length = 2 + hbft_rng_below(rng, 9);
    word_start[w] = used;
    word_length[w] = (uint8_t)length;
    for (uint32_t i = 0; i < length; i++) {
      /* Squaring the draw favours the frequent letters at the front of the alphabet string. */
      uint32_t r = hbft_rng_below(rng, 26);
      pool[used++] = (uint8_t)letters[(r * r) / 26];
    }
  }

  uint32_t position = 0;
  while (position < text->length) {
    uint32_t w = hbft_rng_below(rng, hbft_rng_below(rng, DICTIONARY_WORDS) + 1);
    for (uint32_t i = 0; i < word_length[w] && position < text->length; i++) {
      text->bytes[position++] = pool[word_start[w] + i];
    }
    if (position < text->length) {
      uint32_t r = hbft_rng_below(rng, 64);
      text->bytes[position++] = r == 0 ? '\n' : r == 1 ? '.' : r == 2 ? ',' : ' ';
    }
  }
}

/* Short copies from one place in the text to another, one per 4 KiB on average, so every round
   compresses slightly different data and the edits dirty pages all over the text. */
static void edit_text(struct text *text, struct hbft_rng *rng) {
  uint32_t edits = text->length / 4096;
  for (uint32_t e = 0; e < edits; e++) {
    uint32_t length = 4 + hbft_rng_below(rng, 61);
    uint32_t from = hbft_rng_below(rng, text->length - length);
    uint32_t to = hbft_rng_below(rng, text->length - length);
    memmove(text->bytes + to, text->bytes + from, length);
  }
}

/* ---- LZ77 coder ---- */

/* A sequence is: token (literal count in the high nibble, match length - 4 in the low one; 15
   means more length bytes follow, each adding up to 255), the literals, then a 2-byte little-endian
   offset. The block's last sequence has literals only. */
static uint8_t *put_length(uint8_t *out, uint32_t extra) {
  while (extra >= 255) {
    *out++ = 255;
    extra -= 255;
  }
  *out++ = (uint8_t)extra;
  return out;
}

static uint8_t *put_sequence(uint8_t *out, const uint8_t *literals, uint32_t literal_count,
                             uint32_t match_length, uint32_t offset) {
  uint32_t match_code = match_length ? match_length - MATCH_BYTES_MIN : 0;
  uint8_t *token = out++;
  *token = (uint8_t)(((literal_count < 15 ? literal_count : 15) << 4) | (match_code < 15 ? match_code : 15));
  if (literal_count >= 15) out = put_length(out, literal_count - 15);
  memcpy(out, literals, literal_count);
  out += literal_count;
  if (match_length != 0) {
    *out++ = (uint8_t)offset;
    *out++ = (uint8_t)(offset >> 8);
    if (match_code >= 15) out = put_length(out, match_code - 15);
  }
  return out;
}

static inline uint32_t load_u32_bytes(const uint8_t *p) {
  /* Byte loads: positions are arbitrary and the machine traps on misaligned words. */
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint32_t hash_sequence(uint32_t sequence) { return (sequence * 2654435761u) >> (32 - HASH_BITS); }

/* Compresses text[start, start + length) into out; returns the packed size. heads[] holds the last
   text position (+1, so that 0 from boot means empty) seen for each hash; entries from earlier
   blocks or rounds are simply rejected when they fall outside this block. */
static uint32_t compress_block(const uint8_t *text, uint32_t start, uint32_t length, uint32_t *heads,
                               uint8_t *out) {
  uint8_t *out_start = out;
  uint32_t end = start + length;
  uint32_t anchor = start;
  uint32_t position = start;
  while (position + MATCH_BYTES_MIN <= end) {
    uint32_t sequence = load_u32_bytes(text + position);
    uint32_t slot = hash_sequence(sequence);
    uint32_t candidate = heads[slot] - 1;
    heads[slot] = position + 1;
    if (candidate >= start && candidate < position && position - candidate <= OFFSET_MAX &&
        load_u32_bytes(text + candidate) == sequence) {
      uint32_t match_length = MATCH_BYTES_MIN;
      while (position + match_length < end && text[candidate + match_length] == text[position + match_length]) {
        match_length++;
      }
      out = put_sequence(out, text + anchor, position - anchor, match_length, position - candidate);
      position += match_length;
      anchor = position;
    } else {
      position++;
    }
  }
  out = put_sequence(out, text + anchor, end - anchor, 0, 0);
  return (uint32_t)(out - out_start);
}

static const uint8_t *get_length(const uint8_t *in, const uint8_t *in_end, uint32_t *length) {
  uint8_t byte;
  do {
    if (in >= in_end) return NULL;
    byte = *in++;
    *length += byte;
  } while (byte == 255);
  return in;
}

/* Decodes one block; returns the number of bytes produced, or UINT32_MAX for corrupt input. */
static uint32_t decompress_block(const uint8_t *in, uint32_t in_length, uint8_t *out, uint32_t out_capacity) {
  const uint8_t *in_end = in + in_length;
  uint32_t produced = 0;
  while (in < in_end) {
    uint8_t token = *in++;
    uint32_t literal_count = token >> 4;
    if (literal_count == 15 && (in = get_length(in, in_end, &literal_count)) == NULL) return UINT32_MAX;
    if (literal_count > (uint32_t)(in_end - in) || literal_count > out_capacity - produced) return UINT32_MAX;
    memcpy(out + produced, in, literal_count);
    in += literal_count;
    produced += literal_count;
    if (in == in_end) break; /* the last sequence has no match */
    if (in_end - in < 2) return UINT32_MAX;
    uint32_t offset = (uint32_t)in[0] | ((uint32_t)in[1] << 8);
    in += 2;
    uint32_t match_length = token & 15u;
    if (match_length == 15 && (in = get_length(in, in_end, &match_length)) == NULL) return UINT32_MAX;
    match_length += MATCH_BYTES_MIN;
    if (offset == 0 || offset > produced || match_length > out_capacity - produced) return UINT32_MAX;
    /* Byte by byte: a match may overlap the bytes it is producing. */
    const uint8_t *from = out + produced - offset;
    for (uint32_t i = 0; i < match_length; i++) out[produced + i] = from[i];
    produced += match_length;
  }
  return produced;
}

/* ---- radix sort ---- */

static void fill_keys(uint32_t *keys, uint32_t count, const struct text *text, uint32_t round) {
  uint32_t stride = (text->length - 4) / count;
  for (uint32_t i = 0; i < count; i++) {
    keys[i] = load_u32_bytes(text->bytes + i * stride) ^ (i * 0x9e3779b9u) ^ round;
  }
}

/* Four 8-bit LSD passes from keys to scratch and back; the result is in keys. */
static void radix_sort(uint32_t *keys, uint32_t *scratch, uint32_t count) {
  uint32_t *from = keys, *to = scratch;
  for (uint32_t shift = 0; shift < 32; shift += 8) {
    uint32_t offsets[256];
    for (uint32_t d = 0; d < 256; d++) offsets[d] = 0;
    for (uint32_t i = 0; i < count; i++) offsets[(from[i] >> shift) & 255u]++;
    uint32_t sum = 0;
    for (uint32_t d = 0; d < 256; d++) {
      uint32_t n = offsets[d];
      offsets[d] = sum;
      sum += n;
    }
    for (uint32_t i = 0; i < count; i++) to[offsets[(from[i] >> shift) & 255u]++] = from[i];
    uint32_t *swap = from;
    from = to;
    to = swap;
  }
}

int main(void) {
  uint32_t mb = hbft_arg_u32("mb", 8);
  uint32_t rounds = hbft_arg_u32("rounds", 2);
  uint32_t seed = hbft_arg_u32("seed", 1);
  if (mb < 1 || mb > 1536) {
    hbft_printf("cint: mb=%u is out of range (1..1536)\n", mb);
    return 2;
  }
  uint64_t start_ticks = hbft_mtime();

  struct hbft_arena arena;
  hbft_arena_init_heap(&arena, HBFT_STACK_RESERVE_BYTES);
  struct text text;
  text.length = (mb * HBFT_MIB(1) / 8 * 3) / BLOCK_BYTES * BLOCK_BYTES;
  text.bytes = hbft_arena_alloc_or_die(&arena, text.length, 4096, "cint text");
  uint32_t blocks = text.length / BLOCK_BYTES;
  /* Worst case: every byte a literal, one length byte per 255 literals, one token per block. */
  uint32_t packed_capacity = text.length + text.length / 255 + blocks * 16;
  uint8_t *packed = hbft_arena_alloc_or_die(&arena, packed_capacity, 4096, "cint packed text");
  uint32_t *packed_length = hbft_arena_alloc_or_die(&arena, blocks * 4, 4, "cint block sizes");
  uint32_t *heads = hbft_arena_alloc_or_die(&arena, (1u << HASH_BITS) * 4, 4096, "cint hash table");
  uint8_t *scratch = hbft_arena_alloc_or_die(&arena, BLOCK_BYTES, 4096, "cint scratch block");
  uint32_t key_count = mb * HBFT_MIB(1) / 8 / 4;
  uint32_t *keys = hbft_arena_alloc_or_die(&arena, key_count * 4, 4096, "cint keys");
  uint32_t *keys_scratch = hbft_arena_alloc_or_die(&arena, key_count * 4, 4096, "cint sort buffer");
  hbft_printf("cint: mb=%u rounds=%u seed=%u text=%u KiB in %u blocks, %u keys\n", mb, rounds, seed,
              text.length / 1024, blocks, key_count);

  struct hbft_rng rng;
  hbft_rng_seed(&rng, seed);
  generate_text(&text, &arena, &rng);

  uint64_t checksum = HBFT_FNV1A64_INIT;
  uint32_t report_every = rounds >= 4 ? rounds / 4 : 1;
  for (uint32_t round = 1; round <= rounds; round++) {
    edit_text(&text, &rng);

    uint8_t *out = packed;
    for (uint32_t b = 0; b < blocks; b++) {
      packed_length[b] = compress_block(text.bytes, b * BLOCK_BYTES, BLOCK_BYTES, heads, out);
      out += packed_length[b];
    }
    uint32_t packed_total = (uint32_t)(out - packed);

    const uint8_t *in = packed;
    for (uint32_t b = 0; b < blocks; b++) {
      uint32_t produced = decompress_block(in, packed_length[b], scratch, BLOCK_BYTES);
      if (produced != BLOCK_BYTES || memcmp(scratch, text.bytes + b * BLOCK_BYTES, BLOCK_BYTES) != 0) {
        hbft_panic("cint: block %u of round %u does not decompress to the original", b, round);
      }
      in += packed_length[b];
      checksum = hbft_fnv1a64_u32(checksum, packed_length[b]);
    }
    /* Folding a word at a time; the tail beyond a multiple of 4 is covered by the sizes above. */
    for (uint32_t i = 0; i + 4 <= packed_total; i += 4) checksum = hbft_fnv1a64_u32(checksum, load_u32_bytes(packed + i));

    fill_keys(keys, key_count, &text, round);
    radix_sort(keys, keys_scratch, key_count);
    for (uint32_t i = 1; i < key_count; i++) {
      if (keys[i - 1] > keys[i]) hbft_panic("cint: keys %u and %u are out of order after the sort", i - 1, i);
    }
    for (uint32_t i = 0; i < key_count; i += 64) checksum = hbft_fnv1a64_u32(checksum, keys[i]);

    if (round % report_every == 0 || round == rounds) {
      hbft_printf("cint: round %u/%u packed %u KiB into %u KiB\n", round, rounds, text.length / 1024,
                  packed_total / 1024);
    }
  }

  hbft_printf("cint: done in %llu ticks\n", (unsigned long long)(hbft_mtime() - start_ticks));
  hbft_printf("checksum=%016llx\n", (unsigned long long)checksum);
  return 0;
}
