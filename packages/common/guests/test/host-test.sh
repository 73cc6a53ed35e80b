#!/usr/bin/env bash
# Host-side checks of the guest programs, for whoever changes them (the images themselves are
# checked by test/guests/images.test.ts, which needs no compiler):
#   1. the kv engine, compiled natively with AddressSanitizer and UBSan, against kv_host_test.c;
#   2. every workload (kv with the engine) compiled natively (format strings are checked there: the
#      cross build cannot) and its checksum compared with the committed rv32im image's: with small
#      arguments on rvsim (a small RV32IM machine with hbft's devices, see rvsim.c), and with the
#      defaults under QEMU when qemu-system-riscv32 is installed. The workloads are pure integer C
#      with no pointer values in their checksums, so all must agree exactly (test/guest/
#      workloads.test.ts checks the rv32imac images against the same checksums).
# Needs a host C compiler (cc); QEMU is optional.
# Usage: bash packages/common/guests/test/host-test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
HOST_CC=${HOST_CC:-cc}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
WARN=(-std=gnu11 -Wall -Wextra -Wformat=2 -Wno-format-nonliteral)
COMMON=(-Iinclude -Ilib lib/console.c lib/args.c lib/arena.c test/host_shim.c)

echo "host-test: kv engine (ASan + UBSan)"
"$HOST_CC" "${WARN[@]}" -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -DHBFT_HOST_TEST \
  test/kv_host_test.c "${COMMON[@]}" -o "$out/kv_host_test"
ASAN_OPTIONS=detect_leaks=0 "$out/kv_host_test"

"$HOST_CC" "${WARN[@]}" -O2 -Iinclude test/rvsim.c -o "$out/rvsim"

failures=0
SMALL_ARGS="mb=2 rounds=2 seed=5"
for source in src/*.c; do
  name=$(basename "$source" .c)
  extra=()
  [ "$name" = kv ] && extra=(lib/kv_engine.c)
  "$HOST_CC" "${WARN[@]}" -O2 -DHBFT_HOST_TEST "$source" "${extra[@]}" "${COMMON[@]}" -o "$out/$name"
  native_small=$(HBFT_ARGS="$SMALL_ARGS" "$out/$name" | grep '^checksum=')
  simulated=$("$out/rvsim" -m 64 -a "$SMALL_ARGS" "images/$name.elf" 2>/dev/null | grep '^checksum=' || true)
  if [ "$native_small" = "$simulated" ]; then
    echo "host-test: $name ($SMALL_ARGS): native and image on rvsim agree ($native_small)"
  else
    echo "host-test: $name ($SMALL_ARGS): native $native_small but image on rvsim ${simulated:-printed no checksum}" >&2
    failures=$((failures + 1))
  fi
  native=$(HBFT_ARGS="" "$out/$name" | grep '^checksum=')
  if command -v qemu-system-riscv32 >/dev/null 2>&1; then
    guest=$(timeout 300 qemu-system-riscv32 -machine virt -bios none -nographic -kernel "images/$name.elf" | tr -d '\r' | grep '^checksum=' || true)
    if [ "$native" = "$guest" ]; then
      echo "host-test: $name: native and guest agree ($native)"
    else
      echo "host-test: $name: native $native but guest image ${guest:-printed no checksum}" >&2
      failures=$((failures + 1))
    fi
  else
    echo "host-test: $name: native $native (qemu-system-riscv32 not installed: not compared)"
  fi
done
[ "$failures" -eq 0 ] || { echo "host-test: $failures workloads disagree" >&2; exit 1; }
echo "host-test: all passed"
