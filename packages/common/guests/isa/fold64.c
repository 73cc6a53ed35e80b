/*
 * 64-bit integer arithmetic checked against GCC's constant folding (see fold.h). On RV32 every
 * one of these is a multi-instruction sequence (carries through sltu, shifts across the word
 * boundary, comparisons of the high then the low word) or a libgcc routine (__udivdi3,
 * __divdi3, __umoddi3, __moddi3, __ashldi3, __ashrdi3, __lshrdi3) that runs on the emulated CPU;
 * bit counts and byte swaps are open-coded. 256 vectors.
 */
#include "fold.h"

/* The operands of the current vector as constants (the enumerations FOLD_DECLARE64 makes). */
#define A FOLD_VALUE64(a)
#define B FOLD_VALUE64(b)

#define CASE64(i)                                                                              \
  {                                                                                            \
    FOLD_DECLARE64(a, i, 1);                                                                   \
    FOLD_DECLARE64(b, i, 3);                                                                   \
    volatile uint64_t va = A, vb = B;                                                          \
    uint64_t x = va, y = vb;                                                                   \
    FOLD_CHECK(FOLD_ID(i, 1), x + y, A + B);                                                   \
    FOLD_CHECK(FOLD_ID(i, 2), x - y, A - B);                                                   \
    FOLD_CHECK(FOLD_ID(i, 3), x * y, A * B);                                                   \
    FOLD_CHECK(FOLD_ID(i, 4), x / FOLD_NONZERO64(y), A / FOLD_NONZERO64(B));                   \
    FOLD_CHECK(FOLD_ID(i, 5), x % FOLD_NONZERO64(y), A % FOLD_NONZERO64(B));                   \
    FOLD_CHECK(FOLD_ID(i, 6), (int64_t)x / FOLD_SDIV64_B(x, y),                                \
               (int64_t)A / FOLD_SDIV64_B(A, B));                                              \
    FOLD_CHECK(FOLD_ID(i, 7), (int64_t)x % FOLD_SDIV64_B(x, y),                                \
               (int64_t)A % FOLD_SDIV64_B(A, B));                                              \
    FOLD_CHECK(FOLD_ID(i, 8), x << (y & 63), A << (B & 63));                                   \
    FOLD_CHECK(FOLD_ID(i, 9), x >> (y & 63), A >> (B & 63));                                   \
    FOLD_CHECK(FOLD_ID(i, 10), (int64_t)x >> (y & 63), (int64_t)A >> (B & 63));                \
    FOLD_CHECK(FOLD_ID(i, 11), x << (B & 63), A << (B & 63));                                  \
    FOLD_CHECK(FOLD_ID(i, 12), (int64_t)x >> (B & 63), (int64_t)A >> (B & 63));                \
    FOLD_CHECK(FOLD_ID(i, 13), x < y, A < B);                                                  \
    FOLD_CHECK(FOLD_ID(i, 14), (int64_t)x < (int64_t)y, (int64_t)A < (int64_t)B);              \
    FOLD_CHECK(FOLD_ID(i, 15), (int64_t)x <= (int64_t)y, (int64_t)A <= (int64_t)B);            \
    FOLD_CHECK(FOLD_ID(i, 16), x == y, A == B);                                                \
    FOLD_CHECK(FOLD_ID(i, 17), (uint64_t)(uint32_t)x * (uint32_t)y,                            \
               (uint64_t)(uint32_t)A * (uint32_t)B);                                           \
    FOLD_CHECK(FOLD_ID(i, 18), (int64_t)(int32_t)x * (int32_t)y,                               \
               (int64_t)(int32_t)A * (int32_t)B);                                              \
    FOLD_CHECK(FOLD_ID(i, 19), 0 - x, 0 - A);                                                  \
    FOLD_CHECK(FOLD_ID(i, 20), x / FOLD_NONZERO64(B), A / FOLD_NONZERO64(B));                  \
    FOLD_CHECK(FOLD_ID(i, 21), (uint32_t)x / FOLD_NONZERO32((uint32_t)B),                      \
               (uint32_t)A / FOLD_NONZERO32((uint32_t)B));                                     \
    FOLD_CHECK(FOLD_ID(i, 22), __builtin_clz((uint32_t)x | 1), __builtin_clz((uint32_t)A | 1)); \
    FOLD_CHECK(FOLD_ID(i, 23), __builtin_ctz((uint32_t)(x >> 32) | 0x80000000u),               \
               __builtin_ctz((uint32_t)(A >> 32) | 0x80000000u));                              \
    FOLD_CHECK(FOLD_ID(i, 24), __builtin_popcountll(x), __builtin_popcountll(A));              \
    FOLD_CHECK(FOLD_ID(i, 25), __builtin_clzll(x | 1), __builtin_clzll(A | 1));                \
    FOLD_CHECK(FOLD_ID(i, 26), __builtin_bswap64(x), __builtin_bswap64(A));                    \
    FOLD_CHECK(FOLD_ID(i, 27), (x << 13) | (x >> 51), (A << 13) | (A >> 51));                  \
  }

static __attribute__((noinline)) void vectors_0(void) { FOLD_REP64(CASE64, 0) }
static __attribute__((noinline)) void vectors_64(void) { FOLD_REP64(CASE64, 64) }
static __attribute__((noinline)) void vectors_128(void) { FOLD_REP64(CASE64, 128) }
static __attribute__((noinline)) void vectors_192(void) { FOLD_REP64(CASE64, 192) }

int main(void)
{
  vectors_0();
  vectors_64();
  vectors_128();
  vectors_192();
  return 0;
}
