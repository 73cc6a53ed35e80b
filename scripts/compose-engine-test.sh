#!/usr/bin/env bash
# Runs docker-compose.yml under a real Docker engine on this machine, as a user would, and checks
# what the README promises: the guest answers at its own address on the client network, an open
# redis-cli connection keeps its answers through `scripts/kill-primary.sh --mode compose` (twice,
# so both slots are killed once and each rejoins), `scripts/chaos.sh --mode compose` changes the
# replication link, the client service's load ends with the checker's OK, and the nodes stop
# cleanly. Slow (a few minutes) and root only: `npm run test:soak` runs it
# (test/deploy/composeEngine.test.ts), `npm test` does not.
#
#   scripts/compose-engine-test.sh [--fresh] [--keep-engine-data]
#
#   --fresh   delete the engine's data (images, build cache) first: the base image is made again
#
# What it needs, it installs from Debian (docker.io, docker-compose, debootstrap, redis-tools,
# iptables, curl). It starts a dockerd of its own (socket and state under /run/hbft-compose-engine,
# images under /var/lib/hbft-compose-engine, kept between runs so that the second run builds from
# cache) and stops it at the end, with every container and network of the run.
#
# The engine runs with --iptables=false --ip6tables=false --bridge=none, so it leaves the host's
# firewall as it found it (the script compares iptables-save, ip6tables-save and the nft ruleset
# before and after) and sets no FORWARD policy that would cut the tests' namespaces off. Networking
# then works as follows: containers on one compose network reach each other through that network's
# Linux bridge (plain L2, no NAT), the host reaches them as the bridge's gateway address (the
# README's `redis-cli -h 172.30.77.10`), and published ports on 127.0.0.1 go through docker-proxy.
# Containers have no way out, so the image is built with the host's network (build.network: host,
# from an override file of this script's; docker-compose.yml itself is unchanged).
#
# Base image: node:20-bookworm-slim is pulled when the engine can reach Docker Hub. Where it cannot
# (this machine reaches only Debian's mirror and the npm registry), a stand-in is made once: a
# Debian bookworm minbase (debootstrap, from the mirror apt uses here, or HBFT_DEBIAN_MIRROR) with
# this machine's Node 20 and npm in /usr/local, a `node` user (uid 1000) and the official image's
# entrypoint behaviour. Where this machine's TLS goes through a proxy with its own CA
# (NODE_EXTRA_CA_CERTS is set), the stand-in carries that bundle so that npm in the build trusts it.
#
# Other engineers run benchmarks on this machine: with HBFT_CLUSTER_LOCK=/tmp/hbft-cluster.lock the
# demo part (not the build) runs holding that lock.
#
# Exit status 0 when every check passed; the last line counts them ("N passed, M failed").
set -euo pipefail
SCRIPT_NAME=compose-engine-test.sh
# shellcheck source=scripts/lib/hbft.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/hbft.sh"

fresh=false
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=true; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "needs root: it starts a Docker engine (run with sudo)"

ENGINE_RUN=/run/hbft-compose-engine
ENGINE_DATA="${HBFT_ENGINE_DATA_ROOT:-/var/lib/hbft-compose-engine}"
export DOCKER_HOST="unix://$ENGINE_RUN/docker.sock"
export COMPOSE_PROJECT_NAME=hbft-engine-test
export HBFT_LOAD_SECONDS="${HBFT_LOAD_SECONDS:-10}"
BASE_IMAGE=node:20-bookworm-slim
CLIENT_SUBNET=172.30.77.0/24
GUEST="$COMPOSE_GUEST_ADDRESS"

passed=0 failed=0
check() { # check DESCRIPTION COMMAND...: one counted check
  local what="$1"
  shift
  if "$@"; then
    passed=$((passed + 1))
    say "ok: $what"
  else
    failed=$((failed + 1))
    warn "FAILED: $what"
  fi
}

# ---- what it needs ----
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then need+=(docker-compose); fi
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v iptables-save >/dev/null 2>&1 || need+=(iptables)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  say "installing from Debian: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; } ||
    die "could not install ${need[*]} with apt-get"
fi
read -r -a COMPOSE <<<"$(compose_cmd)"
say "engine client: $(docker --version); compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || echo '?'))"

# Nothing of ours may already sit on the client network's addresses or the published ports.
[ -z "$(ip -4 route show "$CLIENT_SUBNET" 2>/dev/null)" ] ||
  die "this machine already routes $CLIENT_SUBNET (another compose demo running?): $(ip -4 route show "$CLIENT_SUBNET")"
for port in 9100 9101; do
  [ -z "$(ss -ltnH "sport = :$port" 2>/dev/null)" ] || die "127.0.0.1:$port is taken (docker-compose.yml publishes the status servers there): $(ss -ltnpH "sport = :$port")"
done

work="$(mktemp -d "${TMPDIR:-/tmp}/hbft-compose-engine.XXXXXX")"
export HBFT_STATE_DIR="$work/state"
firewall() {
  # Counters change with traffic; the rules themselves must not.
  {
    iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    if command -v nft >/dev/null 2>&1; then nft list ruleset 2>/dev/null | sed 's/counter packets [0-9]* bytes [0-9]*/counter/'; fi
  } || true
}
firewall >"$work/firewall.before"

# ---- the engine ----
engine_pid=""
cli_pid=""
# dockerd leaves its default network namespace mounted in its exec root.
unmount_under() { awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n 1 umount -l 2>/dev/null || true; }
cleanup() {
  local status=$?
  set +e
  [ -z "$cli_pid" ] || kill "$cli_pid" 2>/dev/null
  if [ -n "$engine_pid" ]; then
    say "cleaning up: the demo's containers and networks, then the engine"
    "${COMPOSE[@]}" -f "$REPO/docker-compose.yml" down --volumes --remove-orphans --timeout 15 >"$work/down.log" 2>&1 ||
      warn "compose down failed: $(tail -n 3 "$work/down.log")"
    local leftover
    leftover="$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" 2>/dev/null)"
    # shellcheck disable=SC2086 # ids
    [ -z "$leftover" ] || docker rm -f $leftover >/dev/null 2>&1
    kill -TERM "$engine_pid" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$engine_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$engine_pid" 2>/dev/null; then
      warn "dockerd (pid $engine_pid) did not stop within 30 s: killing it"
      kill -KILL "$engine_pid" 2>/dev/null
    fi
    unmount_under "$ENGINE_RUN"
    rm -rf "$ENGINE_RUN"
  fi
  firewall >"$work/firewall.after"
  if ! diff -u "$work/firewall.before" "$work/firewall.after" >"$work/firewall.diff"; then
    warn "the firewall rules changed during the run:"
    cat "$work/firewall.diff" >&2
    [ "$status" -ne 0 ] || status=1
  fi
  if ip -4 route show "$CLIENT_SUBNET" 2>/dev/null | grep -q .; then
    warn "a route to $CLIENT_SUBNET is left behind: $(ip -4 route show "$CLIENT_SUBNET")"
    [ "$status" -ne 0 ] || status=1
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -S "$ENGINE_RUN/docker.sock" ] && [ -f "$ENGINE_RUN/dockerd.pid" ]; then
  old="$(cat "$ENGINE_RUN/dockerd.pid")"
  if kill -0 "$old" 2>/dev/null && tr '\0' ' ' <"/proc/$old/cmdline" | grep -q dockerd; then
    say "stopping the engine a previous run left behind (pid $old)"
    kill -TERM "$old"
    for _ in $(seq 150); do kill -0 "$old" 2>/dev/null || break; sleep 0.2; done
  fi
fi
unmount_under "$ENGINE_RUN"
rm -rf "$ENGINE_RUN"
if $fresh; then
  say "--fresh: removing $ENGINE_DATA"
  rm -rf "$ENGINE_DATA"
fi
mkdir -p "$ENGINE_RUN" "$ENGINE_DATA"
say "starting dockerd (socket $ENGINE_RUN/docker.sock, data $ENGINE_DATA; no iptables, no default bridge)"
setsid dockerd --host "$DOCKER_HOST" --data-root "$ENGINE_DATA" --exec-root "$ENGINE_RUN/exec" \
  --pidfile "$ENGINE_RUN/dockerd.pid" --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
  >"$work/dockerd.log" 2>&1 </dev/null &
engine_pid=$!
for _ in $(seq 300); do
  docker info >/dev/null 2>&1 && break
  kill -0 "$engine_pid" 2>/dev/null || {
    tail -n 20 "$work/dockerd.log" >&2
    die "dockerd exited while starting (log above)"
  }
  sleep 0.2
done
docker info >/dev/null 2>&1 || die "dockerd did not answer within 60 s: $(tail -n 5 "$work/dockerd.log")"
say "engine: Docker $(docker version -f '{{.Server.Version}}'), storage $(docker info -f '{{.Driver}}')"

# ---- the base image ----
make_standin() {
  local rootfs="$work/rootfs" mirror="${HBFT_DEBIAN_MIRROR:-}" node_bin npm_dir node_major
  command -v debootstrap >/dev/null 2>&1 || {
    say "installing debootstrap"
    apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 ||
      { apt-get update >/dev/null && apt-get install -y --no-install-recommends debootstrap >/dev/null; } ||
      die "could not install debootstrap"
  }
  if [ -z "$mirror" ]; then
    mirror="$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)"
    [ -n "$mirror" ] || mirror="$(sed -n 's/^deb  *\(\[[^]]*\]  *\)\{0,1\}\([^ ]*\) *bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n 1)"
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  fi
  node_bin="$(readlink -f "$(command -v node)")"
  node_major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"
  [ "$node_major" = 20 ] || warn "this machine's node is $("$node_bin" --version), not 20: the stand-in for $BASE_IMAGE carries it all the same"
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  [ -f "$npm_dir/bin/npm-cli.js" ] || die "cannot find npm's directory (from $(command -v npm))"
  say "making a stand-in for $BASE_IMAGE: debootstrap --variant=minbase bookworm from $mirror (about a minute), with node $("$node_bin" --version) and npm $(npm --version)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed: $(tail -n 5 "$work/debootstrap.log")"
  chroot "$rootfs" sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node && apt-get clean && rm -rf /var/lib/apt/lists/*'
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules"
  cp "$node_bin" "$rootfs/usr/local/bin/node"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  if [ -d "$(dirname "$npm_dir")/corepack" ]; then
    cp -a "$(dirname "$npm_dir")/corepack" "$rootfs/usr/local/lib/node_modules/corepack"
    ln -s ../lib/node_modules/corepack/dist/corepack.js "$rootfs/usr/local/bin/corepack"
  fi
  # What the official image's entrypoint does: the command given, or node with it when the first
  # argument is an option or not a command.
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  local -a changes=(
    --change "ENV NODE_VERSION=$("$node_bin" -p process.versions.node)"
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]'
    --change 'CMD ["node"]'
  )
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    mkdir -p "$rootfs/etc/hbft-standin"
    cp "$NODE_EXTRA_CA_CERTS" "$rootfs/etc/hbft-standin/ca.crt"
    changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/hbft-standin/ca.crt')
  fi
  env -u NODE_EXTRA_CA_CERTS chroot "$rootfs" node -e 'process.exit(0)' || die "the stand-in's node does not run (its libraries?)"
  tar -C "$rootfs" -c . | docker import "${changes[@]}" - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  say "stand-in $BASE_IMAGE imported ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }'))"
}
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  say "$BASE_IMAGE is there (labels: $(docker image inspect -f '{{.Comment}}' "$BASE_IMAGE" | head -c 60)); not made again"
elif timeout 120 docker pull "$BASE_IMAGE" >"$work/pull.log" 2>&1; then
  say "pulled $BASE_IMAGE"
else
  say "cannot pull $BASE_IMAGE ($(tail -n 1 "$work/pull.log" | cut -c1-120))"
  make_standin
fi

# ---- the build (outside the cluster lock) ----
key="$work/hbft_key"
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key" && echo >>"$key")
chown 1000:1000 "$key"
export HBFT_KEY_SECRET_FILE="$key"
# Containers of this engine have no way out (no NAT): the build uses the host's network.
cat >"$work/build-host-network.yml" <<'EOF'
services:
  chaos: { build: { context: ., network: host } }
  backup: { build: { context: ., network: host } }
  primary: { build: { context: ., network: host } }
  client: { build: { context: ., network: host } }
EOF
say "building the image: ${COMPOSE[*]} -f docker-compose.yml -f <build.network: host> build"
build_started=$SECONDS
(cd "$REPO" && "${COMPOSE[@]}" -f docker-compose.yml -f "$work/build-host-network.yml" --project-directory "$REPO" build) >"$work/build.log" 2>&1 || {
  tail -n 30 "$work/build.log" >&2
  die "the image build failed (log above)"
}
say "image hbft:latest built in $((SECONDS - build_started)) s"

# ---- the demo (under the cluster lock when asked) ----
if [ -n "${HBFT_CLUSTER_LOCK:-}" ]; then
  exec 9>"$HBFT_CLUSTER_LOCK"
  say "waiting for $HBFT_CLUSTER_LOCK"
  flock 9
fi
say "+ ${COMPOSE[*]} up -d   (HBFT_LOAD_SECONDS=$HBFT_LOAD_SECONDS)"
up_started=$SECONDS
compose up -d >"$work/up.log" 2>&1 || {
  cat "$work/up.log" >&2
  compose logs --tail 30 >&2 || true
  die "compose up failed"
}
say "compose up returned after $((SECONDS - up_started)) s"

readyz() { curl -sS --max-time 2 "http://127.0.0.1:$1/readyz" 2>/dev/null || true; }
protected_pair() { # the primary (either slot) protected and its backup ready
  local a b
  a="$(readyz 9100)" b="$(readyz 9101)"
  { [[ "$a" == *'"role":"primary"'* && "$a" == *'"protection":"protected"'* && "$b" == *'"role":"backup"'* && "$b" == *'"ready":true'* ]] ||
    [[ "$b" == *'"role":"primary"'* && "$b" == *'"protection":"protected"'* && "$a" == *'"role":"backup"'* && "$a" == *'"ready":true'* ]]; }
}
wait_protected() {
  local deadline=$((SECONDS + ${1:-90}))
  until protected_pair; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
check "the pair is protected (primary protected, backup ready), status servers on 127.0.0.1:9100/9101" wait_protected 90
say "primary slot: $(readyz 9100 | cut -c1-110)"
say "backup slot:  $(readyz 9101 | cut -c1-110)"

# The client LAN as the README describes it: the guest at its own address, the host the gateway.
say "+ ip -4 addr (the host on the client network): $(ip -o -4 addr show | awk '$4 ~ /^172\.30\.77\./ { print $2, $4 }')"
ping_reply="$(timeout 10 redis-cli -h "$GUEST" PING 2>&1 || true)"
say "+ redis-cli -h $GUEST PING -> $ping_reply"
check "redis-cli from the Docker host reaches the guest at $GUEST" test "$ping_reply" = PONG
set_reply="$(timeout 10 redis-cli -h "$GUEST" SET compose-engine-test "$COMPOSE_PROJECT_NAME" 2>&1 || true)"
get_reply="$(timeout 10 redis-cli -h "$GUEST" GET compose-engine-test 2>&1 || true)"
say "+ redis-cli -h $GUEST SET/GET compose-engine-test -> $set_reply / $get_reply"
check "SET then GET on the guest" test "$set_reply/$get_reply" = "OK/$COMPOSE_PROJECT_NAME"
say "the guest's MAC as the host sees it: $(ip neigh show "$GUEST" | head -n 1)"

# The client service: HBFT_LOAD_SECONDS of plain RESP load, then the checker's verdict.
client_id="$(compose ps -q client)"
client_exit="$(timeout $((HBFT_LOAD_SECONDS + 60)) docker wait "$client_id" 2>/dev/null || echo timeout)"
compose logs --no-color client 2>/dev/null | sed -n 's/^[^|]*| //p' | grep -E '^(operations|stall|verdict)' | sed 's/^/  client: /' || true
check "the client service's load ends with exit 0 (the checker's verdict; got $client_exit)" test "$client_exit" = 0
client_verdict_ok() { compose logs --no-color client 2>/dev/null | grep -q 'verdict: OK'; }
check "the client service's verdict is OK" client_verdict_ok

# ---- one redis-cli connection kept open through two kills ----
coproc CLI { exec redis-cli -h "$GUEST" 2>&1; }
# shellcheck disable=SC2153 # coproc sets CLI_PID
cli_pid=$CLI_PID
ask() { # ask COMMAND: one line to the kept redis-cli, its one-line reply into $reply
  echo "$1" >&"${CLI[1]}"
  reply="(no reply within 30 s)"
  IFS= read -r -t 30 reply <&"${CLI[0]}" || true
  say "kept redis-cli> $1 -> $reply"
}
connection() { ss -tnpH "dst $GUEST" 2>/dev/null | grep "pid=$cli_pid," | awk '{ print $4 " -> " $5 }'; }
ask "INCR compose-engine-kept"
first="$reply"
kept="$(connection)"
say "kept connection: $kept"
answers_number() { [[ -n "$kept" && "$first" =~ ^[0-9]+$ ]]; }
check "the kept connection answers INCR with a number" answers_number
expected=1
! answers_number || expected=$((first + 1))

kill_and_ask() {
  local round="$1" out="$work/kill-$1.out" status=0
  say "---- kill $round: scripts/kill-primary.sh --mode compose --seconds 8"
  "$REPO/scripts/kill-primary.sh" --mode compose --seconds 8 >"$out" 2>&1 || status=$?
  grep -vE '^(Creating|Starting|Killing|Stopping) ' "$out" | sed 's/^/  | /'
  check "kill $round: kill-primary.sh exits 0 (got $status)" test "$status" -eq 0
  check "kill $round: the survivor took over" grep -q 'node took over: primary ' "$out"
  check "kill $round: the clients saw the takeover and the checker found nothing wrong" \
    grep -q 'verdict: OK' "$out"
  check "kill $round: the killed node rejoined as the backup" grep -qE ': backup [0-9]+ true true; ' "$out"
  # The clients' gap spanning the kill. Under 50 ms would mean the mark reached the load only after
  # the takeover (a survivor waits 90 ms after the primary's connections close, longer without).
  local gap survivor
  gap="$(sed -n 's/.*failover time: \([0-9.]*\) ms.*/\1/p' "$out")"
  check "kill $round: the clients' gap across the kill (${gap:-none} ms) is that of a takeover (≥ 50 ms)" \
    awk -v g="${gap:-0}" 'BEGIN { exit !(g >= 50) }'
  survivor="$(sed -n 's/.*: the \([a-z]*\) node took over: .*/\1/p' "$out")"
  if [ -n "$survivor" ]; then
    say "kill $round: the $survivor service's log of the takeover:"
    compose logs --no-color --tail 200 "$survivor" 2>/dev/null | sed -n 's/^[^|]*| //p' |
      grep -E 'taken over in|PRIMARY FAILED|announced the guest' | tail -n 3 | cut -c1-400 | sed 's/^/  | /'
  fi
  ask "INCR compose-engine-kept"
  check "kill $round: the kept connection's next INCR is $expected" test "$reply" = "$expected"
  check "kill $round: on the same connection ($kept)" test "$(connection)" = "$kept"
  expected=$((expected + 1))
}
kill_and_ask 1
kill_and_ask 2

# ---- the chaos proxy on the replication link ----
say "---- scripts/chaos.sh --mode compose latency 20 5; status; clear"
"$REPO/scripts/chaos.sh" --mode compose latency 20 5 2>&1 | sed 's/^/  | /'
chaos_status="$("$REPO/scripts/chaos.sh" --mode compose status 2>&1 || true)"
sed 's/^/  | /' <<<"$chaos_status"
check "chaos.sh: latency 20 ms on both replication proxies" test "$(grep -c 'latency 20 ms' <<<"$chaos_status")" -ge 2
ask "INCR compose-engine-kept"
check "the kept connection answers under latency ($expected)" test "$reply" = "$expected"
expected=$((expected + 1))
"$REPO/scripts/chaos.sh" --mode compose clear 2>&1 | sed 's/^/  | /'
no_toxics() { [ "$("$REPO/scripts/chaos.sh" --mode compose status 2>&1 | grep -c 'no toxics')" -eq 2 ]; }
check "chaos.sh clear: no toxics left on either proxy" no_toxics
# --via netem: the kernel's netem in the chaos container where the Docker host has it; where it has
# not, a clear error and nothing recorded as in force.
netem_out="$("$REPO/scripts/chaos.sh" --mode compose --via netem latency 20 5 2>&1)" && netem_status=0 || netem_status=$?
sed 's/^/  | /' <<<"$netem_out"
if [ "$netem_status" -eq 0 ]; then
  netem_cleared() { "$REPO/scripts/chaos.sh" --mode compose --via netem clear >/dev/null 2>&1; }
  check "chaos.sh --via netem latency then clear" netem_cleared
else
  netem_refused() { grep -q "kernel has no netem" <<<"$netem_out" && [ ! -e "$HBFT_STATE_DIR/compose-netem.env" ]; }
  check "chaos.sh --via netem on a kernel without netem: a clear error (exit $netem_status), nothing recorded" netem_refused
fi
check "the pair is protected again after the chaos" wait_protected 60

# ---- a clean stop ----
kill "$cli_pid" 2>/dev/null || true
cli_pid=""
say "+ ${COMPOSE[*]} stop   (SIGTERM through the init to the daemons)"
compose stop --timeout 15 >"$work/stop.log" 2>&1 || warn "compose stop: $(tail -n 2 "$work/stop.log")"
for service in primary backup chaos; do
  code="$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q "$service")" 2>/dev/null || echo '?')"
  check "$service stops cleanly on SIGTERM (exit $code)" test "$code" = 0
done
init_forwarded() { ! compose logs --no-color 2>/dev/null | grep -q 'FATAL tini'; }
check "no init failed to forward a signal (FATAL tini)" init_forwarded

[ -z "${HBFT_CLUSTER_LOCK:-}" ] || flock -u 9
echo
say "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
