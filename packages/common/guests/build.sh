#!/usr/bin/env bash
# Builds every hbft guest image from source and writes images/manifest.json.
#
#   src/<name>.c       -> images/<name>.elf       (with lib/: crt0, runtime, link.ld)
#   isa/<name>.S       -> images/isa/<name>.elf   (stands alone, linked with isa/link.ld)
#   isa/<name>.c       -> images/isa/<name>.elf   (linked together with isa/crt.S)
#   netsrc/<name>.c    -> images/<name>.elf       (with lib/, net/ and lwIP: see "Network guests")
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

# ---- Network guests (issue 11): programs on lwIP, from Debian's source package ------------------
# netsrc/<name>.c -> images/<name>.elf, linked with lib/, net/ (lwIP's port for hbft: lwipopts.h,
# arch/cc.h, and hbft_netif.c, the packet NIC's driver) and lwIP's IPv4 TCP core. lwIP's sources
# come from Debian's source package at the version net/lwip.version names: apt-get source checks
# every file against the archive's signed index (and so the .dsc's checksums), and the upstream
# tarball is checked once more against the sha256 recorded there. Nothing is downloaded from
# anywhere else. net/lwip.version is an input of each network guest, so the image-hash test ties
# the images to that lwIP version.

# lwIP's sources that a NO_SYS, IPv4-only, TCP-over-Ethernet stack needs (Filelists.mk's COREFILES
# and CORE4FILES without what lwipopts.h turns off), in a fixed order for reproducible links.
LWIP_SOURCES=(
  src/core/init.c src/core/def.c src/core/inet_chksum.c src/core/ip.c src/core/mem.c src/core/memp.c
  src/core/netif.c src/core/pbuf.c src/core/stats.c src/core/sys.c src/core/tcp.c src/core/tcp_in.c
  src/core/tcp_out.c src/core/timeouts.c src/core/ipv4/etharp.c src/core/ipv4/icmp.c src/core/ipv4/ip4.c
  src/core/ipv4/ip4_addr.c src/netif/ethernet.c
)

# Network guests are built for instructions per request, what the benchmark against redis-server
# pays for (issue 11): -O3, and link-time optimisation over the engine, kvnet, the driver and lwIP
# together, so lwIP's small per-packet functions (pbuf headers, byte order, lookups) are inlined
# into their callers: about 15 % fewer instructions per request than -O2 file by file.
# -flto-partition=one: one link-time unit, no parallel jobs whose split could vary.
NET_OPT_FLAGS=(-O3 -flto -flto-partition=one)

# Prints one key of net/lwip.version.
lwip_version_field() {
  local value
  value=$(sed -n "s/^$1=//p" net/lwip.version)
  if [ -z "$value" ]; then
    echo "build.sh: net/lwip.version has no '$1='" >&2
    exit 1
  fi
  echo "$value"
}

# apt-get source needs a deb-src entry; adds one beside the system's deb entries when none serves
# the package (needs root, as apt-get install does).
lwip_ensure_deb_src() {
  local package=$1 version=$2
  if apt-cache showsrc "$package" 2>/dev/null | grep -qx "Version: $version"; then return 0; fi
  local list=/etc/apt/sources.list.d/hbft-deb-src.sources
  if [ "$(id -u)" != 0 ]; then
    echo "build.sh: no deb-src entry serves $package $version; add one (as root) and run apt-get update" >&2
    exit 1
  fi
  echo "build.sh: adding deb-src entries ($list) for apt-get source $package" >&2
  {
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources
    fi
    if [ -f /etc/apt/sources.list ]; then
      grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /Types: deb-src\nURIs: /' || true
    fi
  } > "$list.tmp"
  if [ -f /etc/apt/sources.list ] && grep -qE '^deb ' /etc/apt/sources.list; then
    # One-line entries are copied as one-line deb-src entries instead.
    rm -f "$list.tmp"
    list=/etc/apt/sources.list.d/hbft-deb-src.list
    grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' > "$list.tmp"
  fi
  mv "$list.tmp" "$list"
  apt-get update -q >&2
  if ! apt-cache showsrc "$package" 2>/dev/null | grep -qx "Version: $version"; then
    echo "build.sh: the archive has no source package $package $version" >&2
    exit 1
  fi
}

# Fetches and unpacks lwIP into $workdir/lwip and prints the source tree's path.
lwip_fetch() {
  local package version orig orig_sha256
  package=$(lwip_version_field package)
  version=$(lwip_version_field version)
  orig=$(lwip_version_field orig)
  orig_sha256=$(lwip_version_field orig_sha256)
  lwip_ensure_deb_src "$package" "$version"
  mkdir -p "$workdir/lwip"
  chmod 0777 "$workdir" "$workdir/lwip" # apt's download sandbox user must be able to write there
  (cd "$workdir/lwip" && apt-get source -q "$package=$version" >&2)
  local actual
  actual=$(sha256sum "$workdir/lwip/$orig" | cut -d' ' -f1)
  if [ "$actual" != "$orig_sha256" ]; then
    echo "build.sh: $orig has sha256 $actual, net/lwip.version records $orig_sha256" >&2
    exit 1
  fi
  local tree
  tree=$(find "$workdir/lwip" -mindepth 1 -maxdepth 1 -type d -name "$package-*" | head -n 1)
  if [ -z "$tree" ] || [ ! -f "$tree/src/include/lwip/init.h" ]; then
    echo "build.sh: apt-get source $package=$version unpacked no lwIP tree" >&2
    exit 1
  fi
  echo "$tree"
}

# Compiles lwIP's sources into $workdir/lwip-obj and prints the objects, in LWIP_SOURCES's order.
lwip_compile() {
  local tree=$1
  local flags=(
    "${ARCH_FLAGS[@]}" "${REPRO_FLAGS[@]}" -ffile-prefix-map="$tree"=lwip
    "${NET_OPT_FLAGS[@]}" -ffreestanding -nostdlib -ffunction-sections -fdata-sections
    -w -Inet -Inet/libc -Iinclude -Ilib -I"$tree/src/include"
  )
  mkdir -p "$workdir/lwip-obj"
  local source object
  for source in "${LWIP_SOURCES[@]}"; do
    object="$workdir/lwip-obj/$(basename "${source%.c}").o"
    "$CC" "${flags[@]}" -c "$tree/$source" -o "$object"
    echo "$object"
  done
}

build_network_guests() {
  mapfile -t NET_SOURCES < <(files_in netsrc '*.c')
  [ "${#NET_SOURCES[@]}" -gt 0 ] || return 0
  mapfile -t NET_FILES < <(find net -type f | sort)
  mapfile -t NET_C < <(files_in net '*.c')
  local tree
  tree=$(lwip_fetch)
  lwip_compile "$tree" > "$workdir/lwip-objects" # not in <(...): a failed compile must stop the build
  mapfile -t LWIP_OBJECTS < "$workdir/lwip-objects"
  local source name crt0
  for source in "${NET_SOURCES[@]}"; do
    name=$(basename "$source" .c)
    crt0=$(assemble "$name" lib/crt0.S "${GUEST_FLAGS[@]}")
    "$CC" "${GUEST_FLAGS[@]}" "${NET_OPT_FLAGS[@]}" -ffile-prefix-map="$tree"=lwip -Inet -Inet/libc -I"$tree/src/include" \
      "$crt0" "${LIB_C[@]}" "${NET_C[@]}" "$source" "${LWIP_OBJECTS[@]}" -lgcc -o "$workdir/$name.elf"
    install_image "$workdir/$name.elf" "$name.elf"
    add_to_manifest "$name.elf" build.sh "${LIB_FILES[@]}" "${INCLUDE_FILES[@]}" "${NET_FILES[@]}" "$source"
    built_names+=("$name.elf")
  done
}
build_network_guests
# ---- end of network guests -------------------------------------------------------------------

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
