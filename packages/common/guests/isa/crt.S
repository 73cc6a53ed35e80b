/*
 * Start-up for the C ISA tests: the environment of test_macros.h (trap vector, parked timer,
 * cleared .bss, stack, tohost and finisher), then main(). main returning 0 is a pass; returning
 * n, or calling isa_fail_test(n), fails test n.
 */
#include "test_macros.h"

TEST_BEGIN
  call main
  beqz a0, pass
  mv TESTNUM, a0
  j fail

  .globl isa_fail_test
isa_fail_test:
  mv TESTNUM, a0
  j fail
TEST_END
