/* The bump allocator (see struct hbft_arena in hbft_rt.h for why it never reuses memory). */
#include "hbft_rt.h"

void hbft_arena_init(struct hbft_arena *arena, uintptr_t start, uintptr_t end) {
  HBFT_ASSERT(start <= end);
  arena->next = start;
  arena->end = end;
}

void hbft_arena_init_heap(struct hbft_arena *arena, uint32_t stack_reserve_bytes) {
  uintptr_t start, end;
  hbft_heap_bounds(stack_reserve_bytes, &start, &end);
  hbft_arena_init(arena, start, end);
}

void *hbft_arena_alloc(struct hbft_arena *arena, uint32_t bytes, uint32_t align) {
  HBFT_ASSERT(align != 0 && (align & (align - 1)) == 0);
  uintptr_t start = (arena->next + (align - 1)) & ~(uintptr_t)(align - 1);
  if (start < arena->next || start > arena->end || arena->end - start < bytes) return NULL;
  arena->next = start + bytes;
  return (void *)start;
}

void *hbft_arena_alloc_or_die(struct hbft_arena *arena, uint32_t bytes, uint32_t align, const char *what) {
  void *memory = hbft_arena_alloc(arena, bytes, align);
  if (memory == NULL) {
    hbft_printf("out of memory: %s needs %u bytes but only %u are free; give the machine more RAM "
                "or the guest a smaller working set\n",
                what, bytes, hbft_arena_free_bytes(arena));
    hbft_exit(3);
  }
  return memory;
}

uint32_t hbft_arena_free_bytes(const struct hbft_arena *arena) {
  return arena->end > arena->next ? (uint32_t)(arena->end - arena->next) : 0;
}
