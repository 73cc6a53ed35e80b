/*
 * jbb: the business-logic class of the seed paper's workloads (SPECjbb2005), reduced to what its
 * memory does: a stream of transactions that allocate small objects (32-256 bytes), keep them in a
 * chained hash map, update some, and delete the oldest, with freed memory reused by later
 * allocations. Writes land on recently allocated objects, on reused blocks scattered across the
 * heap and on hash buckets: medium locality and less reuse than cint.
 *
 * Transaction mix (per 100, after SPECjbb's): 45 new orders (allocate, fill, insert, plus a
 * short-lived temporary object), 43 payments (update a recent order), 4 order-status queries (read
 * one order), 4 deliveries (delete the five oldest orders), 4 stock-level scans (read a run of
 * buckets). The number of live orders is held near a target set by the heap size.
 *
 * Objects are linked by 32-bit offsets rather than pointers, so a host build of this file computes
 * the same checksum as the guest.
 *
 * Arguments: mb=<heap, MiB> (16), rounds=<thousands of transactions> (900), seed=<n> (1).
 * Instructions: about 340 per transaction (~307 M by default).
 */
#include "hbft_rt.h"

#define CLASS_COUNT 8u
static const uint32_t class_bytes[CLASS_COUNT] = {32, 48, 64, 96, 128, 160, 192, 256};
#define TEMPORARY_CLASS 0u
#define TRANSACTIONS_PER_ROUND 1000u
#define NONE 0u /* offset 0 is never an object: the heap's first 32 bytes stay unused */

struct object {
  uint32_t next; /* next object in the bucket chain, or on a free list */
  uint32_t id;
  uint32_t class_index;
  uint32_t customer;
  uint32_t district;
  int32_t amount;
  uint32_t payments;
  uint32_t line_total;
  uint32_t lines[]; /* (class_bytes - 32) / 4 of them */
};

struct heap {
  uint8_t *base;
  uint32_t bytes;
  uint32_t bump; /* offset of the first never-used byte */
  uint32_t free_list[CLASS_COUNT];
};

struct order_map {
  uint32_t *buckets;
  uint32_t bucket_mask;
  uint32_t live;
  uint32_t oldest_id; /* orders [oldest_id, next_id) are all live: deletion is oldest-first */
  uint32_t next_id;
};

static inline struct object *object_at(const struct heap *heap, uint32_t offset) {
  return (struct object *)(heap->base + offset);
}

static inline uint32_t line_count(uint32_t class_index) { return (class_bytes[class_index] - 32) / 4; }

/* Pops a freed block of the class, or carves a new one; NONE when the heap is full. */
static uint32_t heap_alloc(struct heap *heap, uint32_t class_index) {
  uint32_t offset = heap->free_list[class_index];
  if (offset != NONE) {
    heap->free_list[class_index] = object_at(heap, offset)->next;
    return offset;
  }
  uint32_t bytes = class_bytes[class_index];
  if (heap->bytes - heap->bump < bytes) return NONE;
  offset = heap->bump;
  heap->bump += bytes;
  return offset;
}

static void heap_free(struct heap *heap, uint32_t offset) {
  struct object *object = object_at(heap, offset);
  object->next = heap->free_list[object->class_index];
  heap->free_list[object->class_index] = offset;
}

static inline uint32_t *bucket_of(const struct order_map *map, uint32_t id) {
  return &map->buckets[(id * 2654435761u >> 7) & map->bucket_mask];
}

static uint32_t map_find(const struct order_map *map, const struct heap *heap, uint32_t id) {
  uint32_t offset = *bucket_of(map, id);
  while (offset != NONE && object_at(heap, offset)->id != id) offset = object_at(heap, offset)->next;
  return offset;
}

/* Deletes the oldest order, returning its block to the heap. */
static void delete_oldest(struct order_map *map, struct heap *heap) {
  HBFT_ASSERT(map->live > 0);
  uint32_t id = map->oldest_id++;
  uint32_t *link = bucket_of(map, id);
  while (*link != NONE && object_at(heap, *link)->id != id) link = &object_at(heap, *link)->next;
  HBFT_ASSERT(*link != NONE);
  uint32_t offset = *link;
  *link = object_at(heap, offset)->next;
  heap_free(heap, offset);
  map->live--;
}

/* Allocates, deleting the oldest orders while the heap has no block of the class to give. */
static uint32_t alloc_or_evict(struct heap *heap, struct order_map *map, uint32_t class_index) {
  for (;;) {
    uint32_t offset = heap_alloc(heap, class_index);
    if (offset != NONE) return offset;
    if (map->live == 0) hbft_panic("jbb: the heap cannot hold a single %u-byte object", class_bytes[class_index]);
    delete_oldest(map, heap);
  }
}

/* Picks a live order, favouring recent ones as SPECjbb's payments do. */
static uint32_t pick_recent_id(const struct order_map *map, struct hbft_rng *rng) {
  return map->next_id - 1 - hbft_rng_below(rng, hbft_rng_below(rng, map->live) + 1);
}

struct totals {
  uint64_t checksum;
  uint32_t new_orders, payments, queries, deliveries, scans;
};

static void new_order(struct order_map *map, struct heap *heap, struct hbft_rng *rng, struct totals *totals,
                      uint32_t live_target) {
  uint32_t class_index = 1 + hbft_rng_below(rng, CLASS_COUNT - 1);
  uint32_t offset = alloc_or_evict(heap, map, class_index);
  struct object *order = object_at(heap, offset);
  order->id = map->next_id++;
  order->class_index = class_index;
  order->customer = hbft_rng_below(rng, 30000);
  order->district = hbft_rng_below(rng, 10);
  order->amount = 0;
  order->payments = 0;

  /* The order's lines are priced through a short-lived temporary, freed before the transaction
     ends: its block is reused at once, as a young generation's would be. */
  uint32_t temporary_offset = alloc_or_evict(heap, map, TEMPORARY_CLASS);
  struct object *temporary = object_at(heap, temporary_offset);
  temporary->class_index = TEMPORARY_CLASS;
  temporary->line_total = 0;
  uint32_t lines = line_count(class_index);
  for (uint32_t i = 0; i < lines; i++) {
    uint32_t line = hbft_rng_next(rng) & 0xffffu;
    order->lines[i] = line;
    temporary->line_total += line;
  }
  order->line_total = temporary->line_total;
  heap_free(heap, temporary_offset);

  uint32_t *bucket = bucket_of(map, order->id);
  order->next = *bucket;
  *bucket = offset;
  map->live++;
  while (map->live > live_target) delete_oldest(map, heap);
  totals->new_orders++;
}

static void payment(struct order_map *map, struct heap *heap, struct hbft_rng *rng, struct totals *totals) {
  if (map->live == 0) return;
  uint32_t offset = map_find(map, heap, pick_recent_id(map, rng));
  HBFT_ASSERT(offset != NONE);
  struct object *order = object_at(heap, offset);
  int32_t paid = (int32_t)hbft_rng_below(rng, 5000);
  order->amount += paid;
  order->payments++;
  totals->checksum = hbft_fnv1a64_u32(totals->checksum, (uint32_t)order->amount);
  totals->payments++;
}

static void order_status(struct order_map *map, struct heap *heap, struct hbft_rng *rng, struct totals *totals) {
  if (map->live == 0) return;
  uint32_t id = map->oldest_id + hbft_rng_below(rng, map->live);
  uint32_t offset = map_find(map, heap, id);
  HBFT_ASSERT(offset != NONE);
  const struct object *order = object_at(heap, offset);
  totals->checksum = hbft_fnv1a64_u32(totals->checksum, order->line_total ^ order->payments ^ order->customer);
  totals->queries++;
}

static void delivery(struct order_map *map, struct heap *heap, struct totals *totals) {
  for (uint32_t i = 0; i < 5 && map->live > 0; i++) delete_oldest(map, heap);
  totals->deliveries++;
}

static void stock_level(struct order_map *map, struct heap *heap, struct hbft_rng *rng, struct totals *totals) {
  uint32_t first = hbft_rng_below(rng, map->bucket_mask + 1);
  uint32_t low = 0;
  for (uint32_t b = 0; b < 16; b++) {
    uint32_t offset = map->buckets[(first + b) & map->bucket_mask];
    for (; offset != NONE; offset = object_at(heap, offset)->next) {
      if (object_at(heap, offset)->amount < 2500) low++;
    }
  }
  totals->checksum = hbft_fnv1a64_u32(totals->checksum, low);
  totals->scans++;
}

int main(void) {
  uint32_t mb = hbft_arg_u32("mb", 16);
  uint32_t rounds = hbft_arg_u32("rounds", 900);
  uint32_t seed = hbft_arg_u32("seed", 1);
  if (mb < 1 || mb > 1536) {
    hbft_printf("jbb: mb=%u is out of range (1..1536)\n", mb);
    return 2;
  }
  uint64_t start_ticks = hbft_mtime();

  struct hbft_arena arena;
  hbft_arena_init_heap(&arena, HBFT_STACK_RESERVE_BYTES);
  struct heap heap = {0};
  heap.bytes = mb * HBFT_MIB(1);
  heap.base = hbft_arena_alloc_or_die(&arena, heap.bytes, 4096, "jbb heap");
  heap.bump = 32; /* keeps offset 0 free to mean "none" */
  /* Live orders fill about 60% of the heap (the mean order is 160 bytes); the rest absorbs the
     per-class free lists' fragmentation. */
  uint32_t live_target = heap.bytes / 160 * 6 / 10;
  uint32_t bucket_count = 1;
  while (bucket_count < live_target / 2) bucket_count <<= 1;
  struct order_map map = {0};
  map.buckets = hbft_arena_alloc_or_die(&arena, bucket_count * 4, 4096, "jbb buckets");
  map.bucket_mask = bucket_count - 1;
  map.oldest_id = 1;
  map.next_id = 1;
  hbft_printf("jbb: mb=%u rounds=%u seed=%u live orders %u, %u buckets, %u transactions per round\n",
              mb, rounds, seed, live_target, bucket_count, TRANSACTIONS_PER_ROUND);

  struct hbft_rng rng;
  hbft_rng_seed(&rng, seed);
  struct totals totals = {HBFT_FNV1A64_INIT, 0, 0, 0, 0, 0};
  uint32_t report_every = rounds >= 4 ? rounds / 4 : 1;
  for (uint32_t round = 1; round <= rounds; round++) {
    for (uint32_t t = 0; t < TRANSACTIONS_PER_ROUND; t++) {
      uint32_t kind = hbft_rng_below(&rng, 100);
      if (kind < 45) new_order(&map, &heap, &rng, &totals, live_target);
      else if (kind < 88) payment(&map, &heap, &rng, &totals);
      else if (kind < 92) order_status(&map, &heap, &rng, &totals);
      else if (kind < 96) delivery(&map, &heap, &totals);
      else stock_level(&map, &heap, &rng, &totals);
    }
    if (round % report_every == 0 || round == rounds) {
      hbft_printf("jbb: round %u/%u live=%u heap used %u KiB\n", round, rounds, map.live, heap.bump / 1024);
    }
  }

  /* The final state: every live order, oldest first. */
  uint64_t checksum = totals.checksum;
  for (uint32_t id = map.oldest_id; id < map.next_id; id++) {
    const struct object *order = object_at(&heap, map_find(&map, &heap, id));
    checksum = hbft_fnv1a64_u32(checksum, order->id ^ (uint32_t)order->amount);
    checksum = hbft_fnv1a64_u32(checksum, order->line_total + order->payments);
  }
  hbft_printf("jbb: %u new orders, %u payments, %u queries, %u deliveries, %u scans\n", totals.new_orders,
              totals.payments, totals.queries, totals.deliveries, totals.scans);
  hbft_printf("jbb: done in %llu ticks\n", (unsigned long long)(hbft_mtime() - start_ticks));
  hbft_printf("checksum=%016llx\n", (unsigned long long)checksum);
  return 0;
}
