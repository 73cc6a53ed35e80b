#!/usr/bin/env bash
# Builds every hbft guest image from source and writes images/manifest.json.
#
#   src/<name>.c       -> images/<name>.elf       (with lib/: crt0, runtime, link.ld)
#   isa/<name>.S       -> images/isa/<name>.elf   (stands alone, linked with isa/link.ld)
#   isa/<name>.c       -> images/isa/<name>.elf   (linked together with isa/crt.S)
#
# The images are committed, so installing the project needs no cross compiler; this script is for
# whoever changes a guest. Builds are reproducible: the same sources and compiler give
# byte-identical ELFs wherever the tree is checked out (inputs are passed as relative paths in a
# fixed order, no debug info, no build id, and nothing that records a time or a directory).
#
# manifest.json records, per image, the inputs it was built from, their combined sourceHash,
# the image's sha256 and the compiler. sourceHash is the sha256 of what
#   sha256sum <inputs, relative to this directory, sorted bytewise>
# prints; test/guests/images.test.ts recomputes it to catch an image that is stale.
#
# Usage: bash packages/common/guests/build.sh        (from anywhere)
# Then: bash packages/common/guests/test/host-test.sh (host-side checks of the same sources)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")"

CC=${HBFT_GUEST_CC:-riscv64-unknown-elf-gcc}
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "build.sh: $CC not found. Install the RISC-V cross compiler with:" >&2
  echo "    apt-get install gcc-riscv64-unknown-elf" >&2
  exit 1
fi
COMPILER_VERSION=$("$CC" --version | head -n 1)

# -misa-spec=2.2: this binutils defaults to the 2019 ISA spec, in which CSR instructions
# (csrr/csrw, needed in machine mode) belong to the separate Zicsr extension that plain
# "rv32im" rejects. Spec 2.2 counts them in I, and unlike -march=rv32im_zicsr it keeps gcc on the
# rv32im/ilp32 multilib, so -lgcc is the right libgcc. Generated code is the same RV32IM.
ARCH_FLAGS=(-march=rv32im -misa-spec=2.2 -mabi=ilp32)
# -Wl,--strip-debug: libgcc.a brings DWARF from Debian's build; the symbol table stays.
REPRO_FLAGS=(-ffile-prefix-map="$PWD"=. -Wl,--build-id=none -Wl,--strip-debug)
GUEST_FLAGS=(
  "${ARCH_FLAGS[@]}" "${REPRO_FLAGS[@]}"
  -O2 -ffreestanding -nostdlib -static
  -ffunction-sections -fdata-sections -Wl,--gc-sections
  # -Wno-format: uint32_t is "long" on this target, so every %u of a uint32_t would warn although
  # int and long are the same size here. The host build in test/ keeps the check on the same code.
  -Wall -Wextra -Wno-format
  -Iinclude -Ilib -T lib/link.ld
)
ISA_FLAGS=(
  "${ARCH_FLAGS[@]}" "${REPRO_FLAGS[@]}"
  -nostdlib -nostartfiles -static
  -T isa/link.ld -I isa -I include
)

# Files directly inside a directory matching a pattern, sorted; nothing when none match.
files_in() {
  local dir=$1 pattern=$2
  [ -d "$dir" ] || return 0
  find "$dir" -maxdepth 1 -type f -name "$pattern" | sed 's|^\./||' | sort
}

mkdir -p images images/isa
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

mapfile -t LIB_FILES < <(files_in lib '*')
mapfile -t LIB_C < <(files_in lib '*.c')
mapfile -t INCLUDE_FILES < <(files_in include '*')
mapfile -t ISA_SHARED < <( { files_in isa 'link.ld'; files_in isa '*.h'; files_in isa 'crt.S'; } | sort)

manifest_entries=()

# Records one image in the manifest: its inputs, their sourceHash, its sha256.
add_to_manifest() {
  local image=$1
  shift
  local inputs
  inputs=$(printf '%s\n' "$@" | sort)
  local source_hash image_hash inputs_json
  source_hash=$(sha256sum $inputs | sha256sum | cut -d' ' -f1)
  image_hash=$(sha256sum "images/$image" | cut -d' ' -f1)
  inputs_json=$(printf '"%s", ' $inputs)
  manifest_entries+=("    \"$image\": {
      \"sourceHash\": \"$source_hash\",
      \"sha256\": \"$image_hash\",
      \"compiler\": \"$COMPILER_VERSION\",
      \"inputs\": [${inputs_json%, }]
    }")
}

# Replaces images/<image> only when the bytes changed, so an unchanged image keeps its mtime.
install_image() {
  local built=$1 image=$2
  if ! cmp -s "$built" "images/$image"; then
    cp "$built" "images/$image"
    echo "build.sh: images/$image (updated)"
  else
    echo "build.sh: images/$image (unchanged)"
  fi
}

# Assembles a .S file into $workdir/<stem>/<file>.o and prints the object's path. Assembly is kept
# out of the one-command compile-and-link: a .S file without a .file directive would otherwise be
# named in the symbol table after gcc's random temporary object, making builds differ.
assemble() {
  local stem=$1 source=$2
  shift 2
  mkdir -p "$workdir/$stem"
  local object="$workdir/$stem/$(basename "${source%.S}").o"
  "$CC" "$@" -c "$source" -o "$object"
  echo "$object"
}

# Guest programs.
mapfile -t GUEST_SOURCES < <(files_in src '*.c')
built_names=()
for source in "${GUEST_SOURCES[@]}"; do
  name=$(basename "$source" .c)
  crt0=$(assemble "$name" lib/crt0.S "${GUEST_FLAGS[@]}")
  "$CC" "${GUEST_FLAGS[@]}" "$crt0" "${LIB_C[@]}" "$source" -lgcc -o "$workdir/$name.elf"
  install_image "$workdir/$name.elf" "$name.elf"
  add_to_manifest "$name.elf" build.sh "${LIB_FILES[@]}" "${INCLUDE_FILES[@]}" "$source"
  built_names+=("$name.elf")
done

# Every guest image must be plain RV32IM plus the machine-mode system instructions (CSR access,
# wfi, mret, fence): no compressed, atomic or floating-point instruction may slip in.
ALLOWED_INSTRUCTIONS='^(lui|auipc|jal|jalr|beq|bne|blt|bge|bltu|bgeu|lb|lh|lw|lbu|lhu|sb|sh|sw|addi|slti|sltiu|xori|ori|andi|slli|srli|srai|add|sub|sll|slt|sltu|xor|srl|sra|or|and|fence|fence\.i|ecall|ebreak|mret|wfi|csrrw|csrrs|csrrc|csrrwi|csrrsi|csrrci|mul|mulh|mulhsu|mulhu|div|divu|rem|remu)$'
OBJDUMP=${CC%gcc}objdump
for name in "${built_names[@]}"; do
  unexpected=$("$OBJDUMP" -d -M no-aliases "images/$name" |
    awk -F'\t' '/^ *[0-9a-f]+:\t/ { split($3, words, " "); print words[1] }' |
    grep -Ev "$ALLOWED_INSTRUCTIONS" | sort -u | tr '\n' ' ' || true)
  if [ -n "$unexpected" ]; then
    echo "build.sh: images/$name contains instructions outside RV32IM: $unexpected" >&2
    exit 1
  fi
done

# The same guests built for rv32imac, as standard toolchains and most embedded code target (the
# hart implements C and A): images/<name>.rv32imac.elf. Same inputs, same checksums; gcc may
# use any RV32IMAC instruction, and the A instructions only where the source asks for atomics.
RVC_GUEST_FLAGS=(-march=rv32imac "${GUEST_FLAGS[@]:1}")
RVC_ALLOWED_INSTRUCTIONS='^(c\.[a-z0-9]+|lr\.w|sc\.w|amo(swap|add|xor|and|or|min|max|minu|maxu)\.w)(\.aq|\.rl|\.aqrl)?$'
for source in "${GUEST_SOURCES[@]}"; do
  name=$(basename "$source" .c)
  crt0=$(assemble "$name.rv32imac" lib/crt0.S "${RVC_GUEST_FLAGS[@]}")
  "$CC" "${RVC_GUEST_FLAGS[@]}" "$crt0" "${LIB_C[@]}" "$source" -lgcc -o "$workdir/$name.rv32imac.elf"
  install_image "$workdir/$name.rv32imac.elf" "$name.rv32imac.elf"
  add_to_manifest "$name.rv32imac.elf" build.sh "${LIB_FILES[@]}" "${INCLUDE_FILES[@]}" "$source"
  built_names+=("$name.rv32imac.elf")
  unexpected=$("$OBJDUMP" -d -M no-aliases "images/$name.rv32imac.elf" |
    awk -F'\t' '/^ *[0-9a-f]+:\t/ { split($3, words, " "); print words[1] }' |
    grep -Ev "$ALLOWED_INSTRUCTIONS" | grep -Ev "$RVC_ALLOWED_INSTRUCTIONS" | sort -u | tr '\n' ' ' || true)
  if [ -n "$unexpected" ]; then
    echo "build.sh: images/$name.rv32imac.elf contains instructions outside RV32IMAC: $unexpected" >&2
    exit 1
  fi
done

# ISA conformance tests (written separately; build whatever is there). crt.S is their shared
# start-up code, not a test.
mapfile -t ISA_SOURCES < <( { files_in isa '*.S'; files_in isa '*.c'; } | grep -v '^isa/crt\.S$' | sort || true)
for source in "${ISA_SOURCES[@]}"; do
  name=$(basename "${source%.*}")
  case "$source" in
    *.S)
      object=$(assemble "isa-$name" "$source" "${ISA_FLAGS[@]}")
      "$CC" "${ISA_FLAGS[@]}" "$object" -o "$workdir/isa-$name.elf"
      ;;
    *.c)
      crt=$(assemble "isa-$name" isa/crt.S "${ISA_FLAGS[@]}")
      "$CC" "${ISA_FLAGS[@]}" -O2 "$crt" "$source" -lgcc -o "$workdir/isa-$name.elf"
      ;;
  esac
  install_image "$workdir/isa-$name.elf" "isa/$name.elf"
  add_to_manifest "isa/$name.elf" build.sh "${INCLUDE_FILES[@]}" "${ISA_SHARED[@]}" "$source"
  built_names+=("isa/$name.elf")
done

# Images whose source is gone are removed, so the directory holds exactly what the sources make.
while IFS= read -r stale; do
  relative=${stale#images/}
  if ! printf '%s\n' "${built_names[@]}" | grep -qxF "$relative"; then
    rm -f "$stale"
    echo "build.sh: removed $stale (no source)"
  fi
done < <(find images -name '*.elf' -type f | sort)

{
  echo "{"
  echo "  \"compiler\": \"$COMPILER_VERSION\","
  echo "  \"sourceHashRule\": \"sha256 of the output of 'sha256sum' over the inputs, paths relative to packages/common/guests, sorted bytewise\","
  echo "  \"images\": {"
  for i in "${!manifest_entries[@]}"; do
    if [ "$i" -gt 0 ]; then echo ","; fi
    printf '%s' "${manifest_entries[$i]}"
  done
  echo ""
  echo "  }"
  echo "}"
} > images/manifest.json
echo "build.sh: wrote images/manifest.json (${#manifest_entries[@]} images)"
