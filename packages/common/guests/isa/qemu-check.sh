#!/usr/bin/env bash
# Cross-checks the ISA tests against QEMU, an implementation independent of hbft: builds each test
# with -DISA_QEMU=1 (which leaves out the few checks where QEMU 7.2 departs from the manuals; see
# test_macros.h) and runs it on QEMU's virt board with the hart stripped to RV32IM and a clock
# that counts instructions. Run it after writing or changing a test, before trusting it on hbft.
#
# Not run: machine.S (facts about hbft, not the ISA) and trap_data_misaligned.S (QEMU performs
# misaligned loads and stores instead of trapping).
#
# Usage: bash packages/common/guests/isa/qemu-check.sh [NAME...]    (needs qemu-system-riscv32)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CC=${HBFT_GUEST_CC:-riscv64-unknown-elf-gcc}
QEMU=${QEMU:-qemu-system-riscv32}
# The default rv32 hart less every extension hbft lacks (so that C-less alignment rules apply and
# A, F, S, bit-manipulation encodings are illegal).
CPU=rv32,c=false,a=false,f=false,d=false,s=false,u=false,h=false,v=false
CPU+=,zba=false,zbb=false,zbc=false,zbs=false
SKIP=" machine trap_data_misaligned "
# As build.sh builds the images, plus ISA_QEMU.
FLAGS=(-march=rv32im -misa-spec=2.2 -mabi=ilp32 -nostdlib -nostartfiles -static)
FLAGS+=(-T isa/link.ld -I isa -I include -DISA_QEMU=1)

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

if [ $# -gt 0 ]; then
  names=("$@")
else
  mapfile -t names < <(find isa -maxdepth 1 \( -name '*.S' -o -name '*.c' \) ! -name crt.S -printf '%f\n' |
    sed 's/\.[Sc]$//' | sort)
fi

failed=0
for name in "${names[@]}"; do
  if [[ $SKIP == *" $name "* ]]; then
    echo "qemu-check: $name skipped"
    continue
  fi
  if [ -f "isa/$name.S" ]; then
    "$CC" "${FLAGS[@]}" "isa/$name.S" -o "$workdir/$name.elf"
  else
    "$CC" "${FLAGS[@]}" -O2 isa/crt.S "isa/$name.c" -lgcc -o "$workdir/$name.elf"
  fi
  # The finisher makes QEMU exit 0 on a pass; a failure exits with the test number (mod 256) and
  # the guest has printed which test failed.
  if output=$(timeout 60 "$QEMU" -machine virt -bios none -nographic -display none -cpu "$CPU" \
    -icount shift=0,sleep=off -kernel "$workdir/$name.elf" 2>&1); then
    echo "qemu-check: $name passed"
  else
    echo "qemu-check: $name FAILED: $output"
    failed=1
  fi
done
exit $failed
