/*
 * cfp: the floating-point class of the seed paper's workloads (SPEC CFP2006), reduced to what
 * matters for dirty-page tracking: dense sweeps over large arrays in which nearly every page is
 * written on every pass, in long sequential runs.
 *
 * It is a Jacobi relaxation of the heat equation on a grid of Q16.16 fixed-point numbers (the
 * machine has no floating point): each sweep reads grid A and writes every interior cell of grid
 * B, then the two swap. A grid row is 1024 cells, exactly one 4 KiB page, so a sweep writes pages
 * in strictly increasing order, and an epoch's dirty pages form one long run per grid.
 *
 * Arguments: mb=<both grids together, MiB> (16), rounds=<sweeps> (5), seed=<n> (1).
 * Instructions: about 26 per cell and sweep, ~55 M per sweep at mb=16 (~345 M by default).
 */
#include "hbft_rt.h"

#define COLS 1024u                       /* one page per row */
#define ROW_BYTES (COLS * sizeof(int32_t))
#define ONE_Q16 65536
#define HOT_EDGE_Q16 (100 * ONE_Q16)     /* the top edge is held at 100 degrees */
#define COLD_EDGE_Q16 0
#define FIFTH_Q16 13107                  /* 0.2: each new cell is the mean of five */

struct grid {
  int32_t *cells; /* rows * COLS */
  uint32_t rows;
};

static inline int32_t *row_of(const struct grid *grid, uint32_t row) { return grid->cells + row * COLS; }

/* Fixed boundary conditions and a pseudo-random interior, written into both grids so the edges
   (which the sweeps never write) agree. */
static void initialise(struct grid *a, struct grid *b, struct hbft_rng *rng) {
  for (uint32_t row = 0; row < a->rows; row++) {
    int32_t *ra = row_of(a, row);
    int32_t *rb = row_of(b, row);
    for (uint32_t col = 0; col < COLS; col++) {
      int32_t value;
      if (row == 0) value = HOT_EDGE_Q16;
      else if (row == a->rows - 1) value = COLD_EDGE_Q16;
      else if (col == 0 || col == COLS - 1) value = (int32_t)((a->rows - row) * (HOT_EDGE_Q16 / a->rows));
      else value = (int32_t)hbft_rng_below(rng, HOT_EDGE_Q16);
      ra[col] = value;
      rb[col] = value;
    }
  }
}

/* One Jacobi sweep from src into dst; returns the sum of |dst - src| over the interior (the
   residual, in Q16.16, which falls as the grid converges). */
static uint64_t sweep(const struct grid *src, struct grid *dst) {
  uint64_t residual = 0;
  for (uint32_t row = 1; row + 1 < src->rows; row++) {
    const int32_t *above = row_of(src, row - 1);
    const int32_t *here = row_of(src, row);
    const int32_t *below = row_of(src, row + 1);
    int32_t *out = row_of(dst, row);
    uint32_t row_residual = 0;
    int32_t left = here[0], centre = here[1];
    for (uint32_t col = 1; col + 1 < COLS; col++) {
      int32_t right = here[col + 1];
      int32_t sum = left + centre + right + above[col] + below[col];
      /* A 32x32->64 multiply, as a floating-point multiply-add would be in the real benchmark. */
      int32_t value = (int32_t)(((int64_t)sum * FIFTH_Q16) >> 16);
      out[col] = value;
      int32_t delta = value - centre;
      row_residual += (uint32_t)(delta < 0 ? -delta : delta);
      left = centre;
      centre = right;
    }
    residual += row_residual;
  }
  return residual;
}

static uint64_t grid_checksum(const struct grid *grid) {
  uint64_t hash = HBFT_FNV1A64_INIT;
  uint32_t cells = grid->rows * COLS;
  for (uint32_t i = 0; i < cells; i++) hash = hbft_fnv1a64_u32(hash, (uint32_t)grid->cells[i]);
  return hash;
}

int main(void) {
  uint32_t mb = hbft_arg_u32("mb", 16);
  uint32_t rounds = hbft_arg_u32("rounds", 5);
  uint32_t seed = hbft_arg_u32("seed", 1);
  if (mb < 1 || mb > 1536) {
    hbft_printf("cfp: mb=%u is out of range (1..1536)\n", mb);
    return 2;
  }

  uint64_t start_ticks = hbft_mtime();

  struct hbft_arena arena;
  hbft_arena_init_heap(&arena, HBFT_STACK_RESERVE_BYTES);
  uint32_t grid_bytes = mb * HBFT_MIB(1) / 2;
  struct grid a = {hbft_arena_alloc_or_die(&arena, grid_bytes, 4096, "cfp grid A"), grid_bytes / ROW_BYTES};
  struct grid b = {hbft_arena_alloc_or_die(&arena, grid_bytes, 4096, "cfp grid B"), grid_bytes / ROW_BYTES};
  hbft_printf("cfp: mb=%u rounds=%u seed=%u grid=%ux%u cells (two grids of %u KiB)\n", mb, rounds,
              seed, a.rows, COLS, grid_bytes / 1024);

  struct hbft_rng rng;
  hbft_rng_seed(&rng, seed);
  initialise(&a, &b, &rng);

  struct grid *src = &a, *dst = &b;
  uint64_t residual_hash = HBFT_FNV1A64_INIT;
  uint32_t report_every = rounds >= 4 ? rounds / 4 : 1;
  for (uint32_t round = 1; round <= rounds; round++) {
    uint64_t residual = sweep(src, dst);
    residual_hash = hbft_fnv1a64_u64(residual_hash, residual);
    if (round % report_every == 0 || round == rounds) {
      hbft_printf("cfp: sweep %u/%u residual=%llu\n", round, rounds, (unsigned long long)(residual >> 16));
    }
    struct grid *swap = src;
    src = dst;
    dst = swap;
  }

  uint64_t checksum = hbft_fnv1a64_u64(grid_checksum(src), residual_hash);
  hbft_printf("cfp: done in %llu ticks\n", (unsigned long long)(hbft_mtime() - start_ticks));
  hbft_printf("checksum=%016llx\n", (unsigned long long)checksum);
  return 0;
}
