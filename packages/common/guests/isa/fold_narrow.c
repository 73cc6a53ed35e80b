/*
 * Byte and halfword data checked against GCC's constant folding (see fold.h): sign and zero
 * extension by lb/lh/lbu/lhu and by shift pairs, truncation by sb/sh, little-endian layout of
 * words seen as bytes and halfwords, and byte/halfword stores into a word leaving the other
 * bytes alone. 256 vectors.
 */
#include "fold.h"

/* The operands of the current vector as constants (the enumerations FOLD_DECLARE makes). */
#define A FOLD_VALUE(a)
#define B FOLD_VALUE(b)

/* Byte k (0..7) and halfword k (0..3) of the little-endian pair of words (lo, hi). */
#define BYTE_OF(lo, hi, k) \
  ((k) < 4 ? ((lo) >> (8 * (k))) & 0xffu : ((hi) >> (8 * ((k) - 4))) & 0xffu)
#define HALF_OF(lo, hi, k) \
  ((k) < 2 ? ((lo) >> (16 * (k))) & 0xffffu : ((hi) >> (16 * ((k) - 2))) & 0xffffu)
/* Word `lo` with byte k (0..3) replaced by v, and with halfword k (0..1) replaced by v. */
#define WITH_BYTE(lo, k, v) (((lo) & ~(0xffu << (8 * (k)))) | (((v) & 0xffu) << (8 * (k))))
#define WITH_HALF(lo, k, v) (((lo) & ~(0xffffu << (16 * (k)))) | (((v) & 0xffffu) << (16 * (k))))

/* Hides where a pointer points, so that GCC must load through it (with lb/lh for signed
   types) instead of forwarding what it knows was stored there. */
#define LAUNDER(ptr)                                                                           \
  ({                                                                                           \
    __typeof__(ptr) laundered_ = (ptr);                                                        \
    __asm__("" : "+r"(laundered_) : : "memory");                                               \
    laundered_;                                                                                \
  })

union pair {
  uint32_t word[2];
  uint16_t half[4];
  uint8_t byte[8];
};

#define CASE_NARROW(i)                                                                         \
  {                                                                                            \
    FOLD_DECLARE(a, i, 1);                                                                     \
    FOLD_DECLARE(b, i, 2);                                                                     \
    volatile int8_t s8 = (int8_t)A;                                                            \
    volatile uint8_t u8 = (uint8_t)A;                                                          \
    volatile int16_t s16 = (int16_t)B;                                                         \
    volatile uint16_t u16 = (uint16_t)B;                                                       \
    volatile uint32_t w = A;                                                                   \
    volatile union pair p;                                                                     \
    uint32_t x = w;                                                                            \
    FOLD_CHECK(FOLD_ID(i, 1), (int32_t)s8, (int32_t)(int8_t)A);                                \
    FOLD_CHECK(FOLD_ID(i, 2), (uint32_t)u8, (uint32_t)(uint8_t)A);                             \
    FOLD_CHECK(FOLD_ID(i, 3), (int32_t)s16, (int32_t)(int16_t)B);                              \
    FOLD_CHECK(FOLD_ID(i, 4), (uint32_t)u16, (uint32_t)(uint16_t)B);                           \
    FOLD_CHECK(FOLD_ID(i, 5), (int32_t)(int8_t)x, (int32_t)(int8_t)A);                         \
    FOLD_CHECK(FOLD_ID(i, 6), (int32_t)(int16_t)(x >> 7), (int32_t)(int16_t)(A >> 7));         \
    FOLD_CHECK(FOLD_ID(i, 7), (uint32_t)(uint8_t)(x >> 13), (uint32_t)(uint8_t)(A >> 13));     \
    FOLD_CHECK(FOLD_ID(i, 8), (uint32_t)((int32_t)s8 * (int32_t)s16),                          \
               (uint32_t)((int32_t)(int8_t)A * (int32_t)(int16_t)B));                          \
    FOLD_CHECK(FOLD_ID(i, 9), (uint32_t)u8 * u16 + (uint32_t)s8,                               \
               (uint32_t)(uint8_t)A * (uint16_t)B + (uint32_t)(int32_t)(int8_t)A);             \
    p.word[0] = A;                                                                             \
    p.word[1] = B;                                                                             \
    FOLD_CHECK(FOLD_ID(i, 10), p.byte[(i) % 8], BYTE_OF(A, B, (i) % 8));                       \
    FOLD_CHECK(FOLD_ID(i, 11), p.byte[((i) + 3) % 8], BYTE_OF(A, B, ((i) + 3) % 8));           \
    FOLD_CHECK(FOLD_ID(i, 12), p.half[(i) % 4], HALF_OF(A, B, (i) % 4));                       \
    FOLD_CHECK(FOLD_ID(i, 13), (int32_t)(int8_t)p.byte[((i) + 5) % 8],                         \
               (int32_t)(int8_t)BYTE_OF(A, B, ((i) + 5) % 8));                                 \
    FOLD_CHECK(FOLD_ID(i, 14), (int32_t)(int16_t)p.half[((i) + 1) % 4],                        \
               (int32_t)(int16_t)HALF_OF(A, B, ((i) + 1) % 4));                                \
    p.byte[(i) % 4] = (uint8_t)B;                                                              \
    FOLD_CHECK(FOLD_ID(i, 15), p.word[0], WITH_BYTE(A, (i) % 4, B));                           \
    FOLD_CHECK(FOLD_ID(i, 16), p.word[1], B);                                                  \
    p.half[((i) / 4) % 2 + 2] = (uint16_t)A;                                                   \
    FOLD_CHECK(FOLD_ID(i, 17), p.word[1], WITH_HALF(B, ((i) / 4) % 2, A));                     \
    FOLD_CHECK(FOLD_ID(i, 18), p.word[0], WITH_BYTE(A, (i) % 4, B));                           \
    union pair q = {.word = {A, B}};                                                           \
    const int8_t *q8 = LAUNDER((const int8_t *)q.byte);                                        \
    const int16_t *q16 = LAUNDER((const int16_t *)q.half);                                     \
    const uint8_t *qu8 = LAUNDER((const uint8_t *)q.byte);                                     \
    const uint16_t *qu16 = LAUNDER((const uint16_t *)q.half);                                  \
    FOLD_CHECK(FOLD_ID(i, 19), (int32_t)q8[((i) + 6) % 8],                                     \
               (int32_t)(int8_t)BYTE_OF(A, B, ((i) + 6) % 8));                                 \
    FOLD_CHECK(FOLD_ID(i, 20), (int32_t)q16[((i) + 3) % 4],                                    \
               (int32_t)(int16_t)HALF_OF(A, B, ((i) + 3) % 4));                                \
    FOLD_CHECK(FOLD_ID(i, 21), (uint32_t)qu8[((i) + 7) % 8], BYTE_OF(A, B, ((i) + 7) % 8));    \
    FOLD_CHECK(FOLD_ID(i, 22), (uint32_t)qu16[((i) + 2) % 4], HALF_OF(A, B, ((i) + 2) % 4));   \
  }

static __attribute__((noinline)) void vectors_0(void) { FOLD_REP64(CASE_NARROW, 0) }
static __attribute__((noinline)) void vectors_64(void) { FOLD_REP64(CASE_NARROW, 64) }
static __attribute__((noinline)) void vectors_128(void) { FOLD_REP64(CASE_NARROW, 128) }
static __attribute__((noinline)) void vectors_192(void) { FOLD_REP64(CASE_NARROW, 192) }

int main(void)
{
  vectors_0();
  vectors_64();
  vectors_128();
  vectors_192();
  return 0;
}
