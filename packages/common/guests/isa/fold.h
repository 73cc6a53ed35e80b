/*
 * Helpers for the C ISA tests, which use the compiler as an independent oracle: every check
 * computes an expression twice, once at run time on operands read back from `volatile`
 * variables (so the emulated CPU does the work, through the instructions GCC picks and through
 * libgcc for 64-bit division and friends), and once at compile time on the same operands as
 * constants. The compile-time value initialises a `static const` object, which C requires to be
 * a constant expression, so it can only have been computed by GCC on the build host.
 *
 * Operands come from a hash of the vector number, computed by the preprocessor and compiler as
 * well: a quarter are edge values (0, ±1, INT_MIN, INT_MAX, powers of two, ...), the rest are
 * random-looking numbers of every magnitude and sign, so that division and shifts see small
 * and large quotients alike.
 *
 * crt.S runs main(); a C test returns 0 for a pass, or calls fold_fail() which does not return.
 */
#ifndef ISA_FOLD_H
#define ISA_FOLD_H

/* Fixed-width types from the compiler itself: the tests are freestanding and need no libc. */
typedef __UINT32_TYPE__ uint32_t;
typedef __INT32_TYPE__ int32_t;
typedef __UINT64_TYPE__ uint64_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __INT16_TYPE__ int16_t;
typedef __UINT8_TYPE__ uint8_t;
typedef __INT8_TYPE__ int8_t;

/* From test_macros.h's environment (crt.S). The console helpers clobber caller-saved
   registers only, so they are ordinary C functions. */
void isa_puts(const char *s);
void isa_puthex(uint32_t value);
void isa_putc(int c);
__attribute__((noreturn)) void isa_fail_test(uint32_t test);

/* Reports a mismatch on the console and fails test `id`. */
static __attribute__((noinline, noreturn)) void fold_fail(uint32_t id, uint64_t got, uint64_t want)
{
  isa_puts("fold: check ");
  isa_puthex(id);
  isa_puts(" got ");
  isa_puthex((uint32_t)(got >> 32));
  isa_putc(':');
  isa_puthex((uint32_t)got);
  isa_puts(" want ");
  isa_puthex((uint32_t)(want >> 32));
  isa_putc(':');
  isa_puthex((uint32_t)want);
  isa_putc('\n');
  isa_fail_test(id);
}

/* A 32-bit mixing function (xorshift-multiply, twice), usable in constant expressions. */
#define FOLD_MIX(x) ((((uint32_t)(x)) ^ (((uint32_t)(x)) >> 16)) * 0x45d9f3bu)
#define FOLD_HASH(i, salt) \
  FOLD_MIX(FOLD_MIX((uint32_t)(i) * 0x9e3779b9u + (uint32_t)(salt) * 0x85ebca6bu))

/* Sixteen edge values. */
#define FOLD_EDGE(k)                                                                           \
  ((k) == 0 ? 0x00000000u : (k) == 1 ? 0x00000001u : (k) == 2 ? 0xffffffffu :                  \
   (k) == 3 ? 0x80000000u : (k) == 4 ? 0x7fffffffu : (k) == 5 ? 0x80000001u :                  \
   (k) == 6 ? 0xfffffffeu : (k) == 7 ? 0x00000002u : (k) == 8 ? 0x0000ffffu :                  \
   (k) == 9 ? 0xffff0000u : (k) == 10 ? 0x00010000u : (k) == 11 ? 0x00008000u :                \
   (k) == 12 ? 0xffff8000u : (k) == 13 ? 0x55555555u : (k) == 14 ? 0xaaaaaaaau : 0x00000003u)

/*
 * Operand `salt` of vector `i`, declared as block-scope enumeration constants named after
 * `name` (enumeration constants are constant expressions, and naming the hashes once keeps the
 * preprocessed source small). Its value, FOLD_VALUE(name), is an edge value, a full-width random
 * value, or a random value of random magnitude, positive or negative.
 */
#define FOLD_DECLARE(name, i, salt)                                                            \
  enum {                                                                                       \
    name##_kind = (int)(FOLD_HASH(i, (salt) + 100) >> 30),                                     \
    name##_edge = (int)(FOLD_HASH(i, (salt) + 200) >> 28),                                     \
    name##_shift = (int)(FOLD_HASH(i, (salt) + 300) >> 27),                                    \
    name##_hi = (int)(FOLD_HASH(i, salt) >> 16),                                               \
    name##_lo = (int)(FOLD_HASH(i, salt) & 0xffff),                                            \
  };                                                                                           \
  enum {                                                                                       \
    name##_value_hi = (int)(FOLD_PICK(name) >> 16),                                            \
    name##_value_lo = (int)(FOLD_PICK(name) & 0xffff),                                         \
  }
#define FOLD_RANDOM(name) (((uint32_t)name##_hi << 16) | (uint32_t)name##_lo)
#define FOLD_PICK(name)                                                                        \
  (name##_kind == 0 ? FOLD_EDGE(name##_edge) :                                                 \
   name##_kind == 1 ? FOLD_RANDOM(name) :                                                      \
   name##_kind == 2 ? FOLD_RANDOM(name) >> name##_shift :                                      \
   (uint32_t)0 - (FOLD_RANDOM(name) >> name##_shift))
#define FOLD_VALUE(name) (((uint32_t)name##_value_hi << 16) | (uint32_t)name##_value_lo)

/* A 64-bit operand: two 32-bit ones, a third of the time narrowed to a random magnitude. */
#define FOLD_DECLARE64(name, i, salt)                                                          \
  FOLD_DECLARE(name##_h, i, salt);                                                             \
  FOLD_DECLARE(name##_l, i, (salt) + 1);                                                       \
  enum {                                                                                       \
    name##_narrow = (int)(FOLD_HASH(i, (salt) + 400) % 3 == 0),                                \
    name##_narrow_shift = (int)(FOLD_HASH(i, (salt) + 500) >> 26),                             \
  }
#define FOLD_VALUE64(name)                                                                     \
  ((((uint64_t)FOLD_VALUE(name##_h) << 32) | FOLD_VALUE(name##_l)) >>                          \
   (name##_narrow ? name##_narrow_shift : 0))

/* Division operands that keep C defined: no zero divisor, no INT_MIN / -1. */
#define FOLD_NONZERO32(b) ((uint32_t)(b) == 0 ? 1u : (uint32_t)(b))
#define FOLD_SDIV32_B(a, b)                                                                    \
  ((uint32_t)(b) == 0 || ((uint32_t)(a) == 0x80000000u && (uint32_t)(b) == 0xffffffffu)        \
     ? 1 : (int32_t)(uint32_t)(b))
#define FOLD_NONZERO64(b) ((uint64_t)(b) == 0 ? (uint64_t)1 : (uint64_t)(b))
#define FOLD_SDIV64_B(a, b)                                                                    \
  ((uint64_t)(b) == 0 ||                                                                       \
       ((uint64_t)(a) == 0x8000000000000000ull && (uint64_t)(b) == 0xffffffffffffffffull)      \
     ? (int64_t)1 : (int64_t)(uint64_t)(b))

/* Compares a run-time value with a compile-time constant; `id` names the check. */
#define FOLD_CHECK(id, runtime, folded)                                                        \
  do {                                                                                         \
    static const uint64_t want_ = (uint64_t)(folded);                                          \
    uint64_t got_ = (uint64_t)(runtime);                                                       \
    if (got_ != want_) fold_fail((id), got_, want_);                                           \
  } while (0)

/* Repeats M(i) for 64 consecutive vectors from `b`. */
#define FOLD_REP4(M, b) M((b)) M((b) + 1) M((b) + 2) M((b) + 3)
#define FOLD_REP16(M, b) \
  FOLD_REP4(M, b) FOLD_REP4(M, (b) + 4) FOLD_REP4(M, (b) + 8) FOLD_REP4(M, (b) + 12)
#define FOLD_REP64(M, b) \
  FOLD_REP16(M, b) FOLD_REP16(M, (b) + 16) FOLD_REP16(M, (b) + 32) FOLD_REP16(M, (b) + 48)

/* Check ids: vector i owns ids 32 i + 1 .. 32 i + 31, so the failing test names both. */
#define FOLD_ID(i, k) ((uint32_t)(i) * 32u + (k))

#endif /* ISA_FOLD_H */
