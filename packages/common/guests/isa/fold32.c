/*
 * 32-bit integer arithmetic checked against GCC's constant folding (see fold.h): for 256 operand
 * pairs, every RV32IM register-register and register-immediate operation as GCC emits it from
 * C (add, sub, logic, shifts by register and by immediate, signed and unsigned comparisons, mul,
 * the three high-half products, division and remainder both signed and unsigned), with operands
 * that went through a store and a load.
 */
#include "fold.h"

/* The operands of the current vector as constants (the enumerations FOLD_DECLARE makes). */
#define A FOLD_VALUE(a)
#define B FOLD_VALUE(b)

/* The low 12 bits of v as a sign-extended I-type immediate. */
#define IMM12(v) ((int32_t)(((uint32_t)(v) & 0xfff) ^ 0x800) - 0x800)

#define CASE32(i)                                                                              \
  {                                                                                            \
    FOLD_DECLARE(a, i, 1);                                                                     \
    FOLD_DECLARE(b, i, 2);                                                                     \
    volatile uint32_t va = A, vb = B;                                                          \
    uint32_t x = va, y = vb;                                                                   \
    FOLD_CHECK(FOLD_ID(i, 1), x + y, A + B);                                                   \
    FOLD_CHECK(FOLD_ID(i, 2), x - y, A - B);                                                   \
    FOLD_CHECK(FOLD_ID(i, 3), x & y, A & B);                                                   \
    FOLD_CHECK(FOLD_ID(i, 4), x | y, A | B);                                                   \
    FOLD_CHECK(FOLD_ID(i, 5), x ^ y, A ^ B);                                                   \
    FOLD_CHECK(FOLD_ID(i, 6), x << (y & 31), A << (B & 31));                                   \
    FOLD_CHECK(FOLD_ID(i, 7), x >> (y & 31), A >> (B & 31));                                   \
    FOLD_CHECK(FOLD_ID(i, 8), (uint32_t)((int32_t)x >> (y & 31)),                              \
               (uint32_t)((int32_t)A >> (B & 31)));                                            \
    FOLD_CHECK(FOLD_ID(i, 9), (int32_t)x < (int32_t)y, (int32_t)A < (int32_t)B);               \
    FOLD_CHECK(FOLD_ID(i, 10), x < y, A < B);                                                  \
    FOLD_CHECK(FOLD_ID(i, 11), x * y, A * B);                                                  \
    FOLD_CHECK(FOLD_ID(i, 12), (uint32_t)(((int64_t)(int32_t)x * (int32_t)y) >> 32),           \
               (uint32_t)(((int64_t)(int32_t)A * (int32_t)B) >> 32));                          \
    FOLD_CHECK(FOLD_ID(i, 13), (uint32_t)(((uint64_t)x * y) >> 32),                            \
               (uint32_t)(((uint64_t)A * B) >> 32));                                           \
    FOLD_CHECK(FOLD_ID(i, 14), (uint32_t)(((int64_t)(int32_t)x * (int64_t)(uint64_t)y) >> 32), \
               (uint32_t)(((int64_t)(int32_t)A * (int64_t)(uint64_t)B) >> 32));                \
    FOLD_CHECK(FOLD_ID(i, 15), x / FOLD_NONZERO32(y), A / FOLD_NONZERO32(B));                  \
    FOLD_CHECK(FOLD_ID(i, 16), x % FOLD_NONZERO32(y), A % FOLD_NONZERO32(B));                  \
    FOLD_CHECK(FOLD_ID(i, 17), (uint32_t)((int32_t)x / FOLD_SDIV32_B(x, y)),                   \
               (uint32_t)((int32_t)A / FOLD_SDIV32_B(A, B)));                                  \
    FOLD_CHECK(FOLD_ID(i, 18), (uint32_t)((int32_t)x % FOLD_SDIV32_B(x, y)),                   \
               (uint32_t)((int32_t)A % FOLD_SDIV32_B(A, B)));                                  \
    FOLD_CHECK(FOLD_ID(i, 19), x == y, A == B);                                                \
    FOLD_CHECK(FOLD_ID(i, 20), (int32_t)x >= (int32_t)y ? x - y : y - x,                       \
               (int32_t)A >= (int32_t)B ? A - B : B - A);                                      \
    /* Immediate forms: the second operand is a constant GCC places in the instruction. */     \
    FOLD_CHECK(FOLD_ID(i, 21), x + IMM12(B), A + IMM12(B));                                    \
    FOLD_CHECK(FOLD_ID(i, 22), x & IMM12(B), A & IMM12(B));                                    \
    FOLD_CHECK(FOLD_ID(i, 23), x | IMM12(B), A | IMM12(B));                                    \
    FOLD_CHECK(FOLD_ID(i, 24), x ^ IMM12(B), A ^ IMM12(B));                                    \
    FOLD_CHECK(FOLD_ID(i, 25), (int32_t)x < IMM12(B), (int32_t)A < IMM12(B));                  \
    FOLD_CHECK(FOLD_ID(i, 26), x < (uint32_t)IMM12(B), A < (uint32_t)IMM12(B));                \
    FOLD_CHECK(FOLD_ID(i, 27), x << (B & 31), A << (B & 31));                                  \
    FOLD_CHECK(FOLD_ID(i, 28), x >> (B & 31), A >> (B & 31));                                  \
    FOLD_CHECK(FOLD_ID(i, 29), (uint32_t)((int32_t)x >> (B & 31)),                             \
               (uint32_t)((int32_t)A >> (B & 31)));                                            \
    FOLD_CHECK(FOLD_ID(i, 30), x * 7u + (y >> 3), A * 7u + (B >> 3));                          \
  }

static __attribute__((noinline)) void vectors_0(void) { FOLD_REP64(CASE32, 0) }
static __attribute__((noinline)) void vectors_64(void) { FOLD_REP64(CASE32, 64) }
static __attribute__((noinline)) void vectors_128(void) { FOLD_REP64(CASE32, 128) }
static __attribute__((noinline)) void vectors_192(void) { FOLD_REP64(CASE32, 192) }

int main(void)
{
  vectors_0();
  vectors_64();
  vectors_128();
  vectors_192();
  return 0;
}
