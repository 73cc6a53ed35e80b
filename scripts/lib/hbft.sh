# shellcheck shell=bash
# Shared helpers of the deployment scripts (two-hosts.sh, kill-primary.sh, chaos.sh). Source it.
#
# Three deployments, one vocabulary. Every deployment has two node slots, `primary` and `backup`
# (the roles they start in; after a failover the slot called backup runs as primary, and a
# restarted `primary` slot rejoins as backup), and a chaos proxy on the replication link. In
# every one the kvnet guest lives at its own address on a client LAN, through a TAP of the node
# that runs it, and clients are ordinary RESP clients of that address:
#   local    the demo (`npm start`, in network namespaces): addresses and pids from
#            $HBFT_STATE_DIR/demo.json; the guest is reached through the demo's forwarder
#   netns    scripts/two-hosts.sh: network namespaces on this machine (needs root)
#   compose  docker-compose.yml: services primary, backup, chaos, client
# The functions below hide the differences: node_readyz, node_kill9, run_load, chaos_cli.

LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LIB_DIR/../.." && pwd)"
CLI="$REPO/packages/cli/bin/hbft.js"
STATE_DIR="${HBFT_STATE_DIR:-$REPO/.hbft}"
DEMO_FILE="$STATE_DIR/demo.json"
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0")}"

say() { echo "$SCRIPT_NAME: $*"; }
warn() { echo "$SCRIPT_NAME: $*" >&2; }
die() {
  echo "$SCRIPT_NAME: $*" >&2
  exit 1
}
# Prints a command, then runs it.
run() {
  echo "+ $*"
  "$@"
}
hbft() { node "$CLI" "$@"; }
json() { node "$LIB_DIR/json.mjs" "$@"; }

# ---- The two-host topology (scripts/two-hosts.sh) ----------------------------------------------
# Namespaces: $NETNS_PREFIX-{primary,backup,client,chaos} and $NETNS_PREFIX-sw, which holds the two
# switches (front: the client LAN, repl), so that nothing of the topology touches the host's own
# network. `hbft topology up|down` builds and removes them (packages/cli/src/netns/topology.ts
# holds the layout; the addresses below are its).
NETNS_PREFIX="${HBFT_NETNS_PREFIX:-hbft}"
NETNS_NODES=(primary backup client chaos)
NETNS_SWITCH="$NETNS_PREFIX-sw"
NETNS_STATE_DIR="$STATE_DIR/netns-$NETNS_PREFIX"
# front network 10.77.0.0/24 (clients, status servers); replication network 10.77.1.0/24.
declare -A FRONT_ADDRESS=([primary]=10.77.0.1 [backup]=10.77.0.2 [client]=10.77.0.3)
# The guest's own address on the client LAN, through the TAP of the node that runs it.
GUEST_ADDRESS=10.77.0.10
GUEST_TAP=hbft0
declare -A REPL_ADDRESS=([primary]=10.77.1.1 [backup]=10.77.1.2 [chaos]=10.77.1.3)
# Ports, the same in netns and compose (docker-compose.yml uses these numbers). GUEST_PORT is the
# guest's own RESP port on its address; the nodes themselves serve no clients.
GUEST_PORT=6379
REPLICATION_PORT=7000
CHAOS_REPL_PORT=7001      # chaos proxy "repl":      primary slot -> backup slot's :7000
CHAOS_REPROTECT_PORT=7002 # chaos proxy "reprotect": backup slot  -> primary slot's :7000
CHAOS_API_PORT=8474
declare -A HTTP_PORT=([primary]=9100 [backup]=9101)
# The guest's address on docker-compose.yml's client network (HBFT_GUEST_IP there).
COMPOSE_GUEST_ADDRESS=172.30.77.10

netns_name() { echo "$NETNS_PREFIX-$1"; }
netns_exists() { [ -e "/var/run/netns/$1" ]; }
require_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root: network namespaces and veth links can only be made by root (run with sudo)"
  command -v ip >/dev/null 2>&1 || die "needs the ip command (iproute2): run scripts/install-system-deps.sh"
}

# ---- Which deployment --------------------------------------------------------------------------
compose_cmd() {
  if docker compose version >/dev/null 2>&1; then
    echo "docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    echo "docker-compose"
  else
    die "neither 'docker compose' nor 'docker-compose' is installed"
  fi
}
compose() {
  local -a cmd
  read -r -a cmd <<<"$(compose_cmd)"
  "${cmd[@]}" -f "${HBFT_COMPOSE_FILE:-$REPO/docker-compose.yml}" "$@"
}

# Sets MODE from --mode, HBFT_MODE, or what is running: the demo's file, then the namespaces.
resolve_mode() {
  MODE="${1:-${HBFT_MODE:-}}"
  if [ -z "$MODE" ]; then
    if [ -f "$DEMO_FILE" ]; then
      MODE=local
    elif netns_exists "$(netns_name primary)"; then
      MODE=netns
    else
      die "nothing to act on: no $DEMO_FILE (start the demo with npm start) and no namespaces $NETNS_PREFIX-* (scripts/two-hosts.sh up && scripts/two-hosts.sh start); or pass --mode compose"
    fi
    say "mode $MODE (detected; pass --mode to choose)"
  fi
  case "$MODE" in
    local)
      [ -f "$DEMO_FILE" ] || die "--mode local reads $DEMO_FILE, which does not exist: start the demo (npm start) first"
      require_demo_running
      ;;
    netns)
      require_root
      netns_exists "$(netns_name primary)" || die "--mode netns: the namespaces $NETNS_PREFIX-* do not exist: run scripts/two-hosts.sh up && scripts/two-hosts.sh start"
      ;;
    compose) compose_cmd >/dev/null ;;
    *) die "--mode: expected local, netns or compose, got '$MODE'" ;;
  esac
}

# Whether process $1 runs and is an hbft process (a pid left in a stale file may have been reused).
hbft_process_alive() {
  local pid="$1" cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  if [ -d /proc/self ]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *hbft* ]]
  else
    kill -0 "$pid" 2>/dev/null
  fi
}

# Dies unless the demo that wrote demo.json still runs, with its chaos proxy: a file left behind by
# a demo that was killed would send the scripts to ports that nobody (or something else) serves.
require_demo_running() {
  local pid chaos_pid
  pid="$(json "$DEMO_FILE" pid)" || die "$DEMO_FILE is not JSON; remove it and start the demo again (npm start)"
  [ -n "$pid" ] || die "$DEMO_FILE names no demo process (no pid): it comes from an older hbft demo; stop that demo and start it again (npm start)"
  hbft_process_alive "$pid" || die "$DEMO_FILE is stale: the demo that wrote it (pid $pid) is not running. Remove it (rm $DEMO_FILE) and start the demo again (npm start)"
  [ "$(json "$DEMO_FILE" network)" = netns ] || die "$DEMO_FILE describes a demo on loopback ports (no \"network\": \"netns\"), which hbft no longer runs: stop that demo and start it again (npm start, as root)"
  chaos_pid="$(json "$DEMO_FILE" chaos.pid)"
  if [ -n "$chaos_pid" ] && ! hbft_process_alive "$chaos_pid"; then
    die "the demo (pid $pid) runs, but its chaos proxy (pid $chaos_pid) does not, so the replication link is gone: stop the demo (Ctrl-C) and start it again; see $STATE_DIR/logs/chaos.log"
  fi
}

# An address to connect to: a wildcard listen address means this machine.
reachable() {
  local address="$1"
  case "$address" in
    0.0.0.0:* | :*) echo "127.0.0.1:${address##*:}" ;;
    "[::]:"*) echo "[::1]:${address##*:}" ;;
    *) echo "$address" ;;
  esac
}

# The status server (HOST:PORT) of a node slot, as reached from where node_readyz asks.
node_http() {
  case "$MODE" in
    local) reachable "$(json "$DEMO_FILE" "$1.http")" ;;
    netns) echo "${FRONT_ADDRESS[$1]}:${HTTP_PORT[$1]}" ;;
    compose) echo "127.0.0.1:${HTTP_PORT[$1]}" ;;
  esac
}

# A node slot's /readyz body, or nothing when it does not answer. $2: an HTTP address to ask instead
# of the slot's current one (local mode: the demo moves its slots with the roles).
node_readyz() {
  local url
  url="http://${2:-$(node_http "$1")}/readyz"
  case "$MODE" in
    local) curl -sS --max-time 2 "$url" 2>/dev/null || true ;;
    netns) ip netns exec "$(netns_name client)" curl -sS --max-time 2 "$url" 2>/dev/null || true ;;
    compose) compose exec -T "$1" curl -sS --max-time 2 "$url" 2>/dev/null || true ;;
  esac
}

# "ROLE GENERATION PEER_CONNECTED READY" of a node slot from its /readyz, or "down". Read with sed,
# not node: the scripts poll this in loops, and starting node each time is slow on a busy machine.
node_state() {
  local body
  body="$(node_readyz "$1" "${2:-}")"
  readyz_field() { sed -n "s/.*\"$1\":\"\{0,1\}\([a-z0-9]*\).*/\1/p" <<<"$body"; }
  local role
  role="$(readyz_field role)"
  if [ -z "$role" ]; then
    echo down
    return
  fi
  echo "$role $(readyz_field generation) $(readyz_field peerConnected) $(readyz_field ready)"
}

# The pid of whatever listens on a TCP port (in namespace $2 when given), or nothing.
listener_pid() {
  local port="$1" ns="${2:-}" line
  if [ -n "$ns" ]; then
    line="$(ip netns exec "$ns" ss -ltnpH "sport = :$port" 2>/dev/null | head -n 1)"
  else
    line="$(ss -ltnpH "sport = :$port" 2>/dev/null | head -n 1)"
  fi
  sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$line" | head -n 1
}

# The pid of a node slot's daemon (local and netns; compose kills by service instead).
node_pid() {
  local port pid
  port="$(node_http "$1")"
  port="${port##*:}"
  case "$MODE" in
    local)
      local ns
      ns="$(json "$DEMO_FILE" "$1.netns")"
      if [ -n "$ns" ]; then
        # The demo in namespaces: the port on this machine is its forwarder; the node listens on
        # the same port inside its namespace.
        pid="$(listener_pid "$port" "$ns")"
      else
        pid="$(listener_pid "$port")"
      fi
      # ss shows other users' processes only to root: fall back on the demo's record.
      [ -n "$pid" ] || pid="$(json "$DEMO_FILE" "$1.pid")"
      ;;
    netns) pid="$(listener_pid "$port" "$(netns_name "$1")")" ;;
  esac
  echo "$pid"
}

# SIGKILL to a node slot's daemon.
node_kill9() {
  case "$MODE" in
    local | netns)
      local pid
      pid="$(node_pid "$1")"
      [ -n "$pid" ] || die "cannot find the process of the $1 node (nothing listens on $(node_http "$1"))"
      run kill -9 "$pid"
      ;;
    compose) die "node_kill9: in compose mode kill-primary.sh kills the container through docker itself" ;;
  esac
}

# Where clients reach the guest, from where run_load runs: its own address on the LAN (the
# same whichever node runs it), or in local mode the demo's forwarder of that address.
guest_serve() {
  case "$MODE" in
    local) reachable "$(json "$DEMO_FILE" primary.serve)" ;;
    netns) echo "$GUEST_ADDRESS:$GUEST_PORT" ;;
    compose) echo "$COMPOSE_GUEST_ADDRESS:$GUEST_PORT" ;;
  esac
}

# hbft load with plain RESP clients of the guest, from where clients are: this machine, the client
# namespace, or a one-off client container (named $LOAD_CONTAINER when set, so that it can be
# signalled through docker). A takeover keeps their connections.
run_load() {
  local servers
  servers="$(guest_serve)"
  case "$MODE" in
    local) hbft load --servers "$servers" "$@" ;;
    netns) ip netns exec "$(netns_name client)" node "$CLI" load --servers "$servers" "$@" ;;
    compose) compose run --rm --no-deps -T ${LOAD_CONTAINER:+--name "$LOAD_CONTAINER"} client hbft load --servers "$servers" "$@" ;;
  esac
}

# hbft chaos SUBCOMMAND ... against the deployment's chaos proxy API.
chaos_cli() {
  case "$MODE" in
    local) hbft chaos "$@" --api "$(reachable "$(json "$DEMO_FILE" chaos.api)")" ;;
    netns) ip netns exec "$(netns_name chaos)" node "$CLI" chaos "$@" --api "127.0.0.1:$CHAOS_API_PORT" ;;
    compose) compose exec -T chaos hbft chaos "$@" --api "127.0.0.1:$CHAOS_API_PORT" ;;
  esac
}

# The names of the proxies that carry the replication link (one per direction a takeover can turn
# it): the demo's chaos.proxies when it lists them, else every proxy the chaos API knows.
chaos_proxies() {
  local named=""
  [ "$MODE" = local ] && named="$(json "$DEMO_FILE" chaos.proxies)"
  if [ -n "$named" ]; then
    echo "$named"
  else
    chaos_cli status --json | json - '*.name' 2>/dev/null || true
  fi
}
