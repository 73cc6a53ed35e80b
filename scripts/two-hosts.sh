#!/usr/bin/env bash
# Two hosts on one machine: network namespaces wired like real hosts, so the primary and the backup
# each have their own host address, clients reach them and the guest over a client LAN, and the
# replication link is a separate network that can be cut. Needs root.
#
#   scripts/two-hosts.sh up                  make the namespaces, bridges, links and TAPs (idempotent)
#   scripts/two-hosts.sh start               start the chaos proxy, the backup and the primary in
#                                            their namespaces (or restart any that died: a dead
#                                            primary slot rejoins as the new backup)
#   scripts/two-hosts.sh status              links, addresses and what each node reports
#   scripts/two-hosts.sh exec NODE CMD...    run CMD inside NODE's namespace
#   scripts/two-hosts.sh cut [NODE]          take NODE's replication link down (default: primary)
#   scripts/two-hosts.sh restore [NODE]      bring NODE's links up again (default: every node's)
#   scripts/two-hosts.sh stop                stop the daemons that start started
#   scripts/two-hosts.sh down                stop everything in the namespaces and delete them
#
# Layout (NODE is primary, backup, client or chaos; namespaces are $HBFT_NETNS_PREFIX-NODE, default
# prefix "hbft", plus $HBFT_NETNS_PREFIX-sw holding the switches; nothing touches the host's
# network). `hbft topology up|down` builds it (packages/cli/src/netns/topology.ts, also used by
# `npm start`):
#
#   client LAN 10.77.0.0/24   primary 10.77.0.1   backup 10.77.0.2   client 10.77.0.3
#                             the guest 10.77.0.10, on the TAP hbft0 of the node that runs it
#   replication 10.77.1.0/24  primary 10.77.1.1   backup 10.77.1.2   chaos  10.77.1.3
#
#   A node host: bridge front0 holds its host address; its ports are uplink0 (to the LAN switch)
#   and hbft0, the guest's persistent TAP, which keeps its bridge port when the node restarts.
#
#   the guest (kvnet) 10.77.0.10:6379 (clients, plain RESP), on whichever node runs it
#   primary :9100 (status)    backup :9101 (status)
#   both :7000 (replication listen, when running as backup)
#   chaos proxy (hbft chaos proxy, API 127.0.0.1:8474 inside the chaos namespace):
#     repl      10.77.1.3:7001 -> backup  10.77.1.2:7000   (the primary replicates through it)
#     reprotect 10.77.1.3:7002 -> primary 10.77.1.1:7000   (the backup re-protects through it)
#
# Environment: HBFT_NETNS_PREFIX (namespace names; give each concurrent run its own),
# HBFT_STATE_DIR (default .hbft; logs, pids, key and settings under netns-PREFIX/); for the first
# start: HBFT_MEMORY (64MiB), HBFT_EPOCH_MS (20), HBFT_HEARTBEAT_MS (30), HBFT_FAILOVER_TIMEOUT_MS
# (300), HBFT_LOG_LEVEL (info).
set -euo pipefail
SCRIPT_NAME=two-hosts.sh
# shellcheck source=scripts/lib/hbft.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/hbft.sh"

# Settings both nodes must share (memory must match; timing should), fixed by the first start and
# kept in the state dir so that a node restarted later runs with the same ones. The failover
# timeout is longer than hbft's default of 100 ms because these nodes share the machine's CPUs with
# whatever else runs here: an event-loop stall longer than the timeout is a false takeover.
SETTINGS=(HBFT_MEMORY=64MiB HBFT_EPOCH_MS=20 HBFT_HEARTBEAT_MS=30 HBFT_FAILOVER_TIMEOUT_MS=300 HBFT_LOG_LEVEL=info)
settings_file() { echo "$NETNS_STATE_DIR/settings.env"; }
load_settings() {
  local file setting name value
  file="$(settings_file)"
  if [ ! -s "$file" ]; then
    for setting in "${SETTINGS[@]}"; do
      name="${setting%%=*}"
      echo "$name=${!name:-${setting#*=}}"
    done >"$file"
    say "settings (from the environment or defaults) kept in $file: $(paste -sd' ' "$file")"
  fi
  while IFS='=' read -r name value; do
    if [ -n "${!name:-}" ] && [ "${!name}" != "$value" ]; then
      warn "$name=${!name} ignored: this topology's nodes run with $value (down and up to change it)"
    fi
  done <"$file"
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

check_node() {
  case "$1" in
    primary | backup | client | chaos) ;;
    *) die "unknown node '$1': expected primary, backup, client or chaos" ;;
  esac
  netns_exists "$(netns_name "$1")" || die "no namespace $(netns_name "$1"): run $0 up"
}

# ---- up / down ---------------------------------------------------------------------------------

cmd_up() {
  require_root
  run hbft topology up --prefix "$NETNS_PREFIX"
  mkdir -p "$NETNS_STATE_DIR"
}

cmd_down() {
  require_root
  cmd_stop
  run hbft topology down --prefix "$NETNS_PREFIX"
  rm -rf "$NETNS_STATE_DIR"
}

# ---- daemons -----------------------------------------------------------------------------------

pid_file() { echo "$NETNS_STATE_DIR/$1.pid"; }

# The pid of a daemon that start started, if it still runs.
daemon_pid() {
  local file pid
  file="$(pid_file "$1")"
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q hbft "/proc/$pid/cmdline" 2>/dev/null; then echo "$pid"; fi
}

# Starts CMD in NODE's namespace in the background (own session, log in the state dir).
start_daemon() {
  local node="$1"
  shift
  local log="$NETNS_STATE_DIR/$node.log"
  if [ -n "$(daemon_pid "$node")" ]; then
    say "$node: already running (pid $(daemon_pid "$node"))"
    return
  fi
  echo "+ ip netns exec $(netns_name "$node") $* >>$log"
  ip netns exec "$(netns_name "$node")" setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$node")"
  say "$node: started (pid $!, log $log)"
}

wait_http() {
  local ns="$1" url="$2" what="$3" log="$4" pidnode="$5" deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ip netns exec "$ns" curl -fsS --max-time 1 -o /dev/null "$url" 2>/dev/null; then return 0; fi
    if [ -z "$(daemon_pid "$pidnode")" ]; then
      tail -n 20 "$log" >&2 || true
      die "$what exited while starting (log $log)"
    fi
    sleep 0.1
  done
  tail -n 20 "$log" >&2 || true
  die "$what did not answer $url within 60 s (log $log)"
}

# The environment of a node slot's daemon: both roles' settings (see deploy/hbft-node.sh), and
# nothing else of the caller's (a stray HBFT_KEY would clash with HBFT_KEY_FILE).
node_env() {
  local node="$1" peer
  [ "$node" = primary ] && peer=backup || peer=primary
  local reprotect_port=$CHAOS_REPROTECT_PORT
  [ "$node" = primary ] && reprotect_port=$CHAOS_REPL_PORT
  echo "PATH=$PATH"
  echo "HOME=${HOME:-/root}"
  echo "HBFT_PEER_HTTP=${FRONT_ADDRESS[$peer]}:${HTTP_PORT[$peer]}"
  echo "HBFT_BACKUP=${REPL_ADDRESS[chaos]}:$CHAOS_REPL_PORT"
  echo "HBFT_LISTEN=${REPL_ADDRESS[$node]}:$REPLICATION_PORT"
  echo "HBFT_REPROTECT=${REPL_ADDRESS[chaos]}:$reprotect_port"
  echo "HBFT_HTTP=${FRONT_ADDRESS[$node]}:${HTTP_PORT[$node]}"
  echo "HBFT_KEY_FILE=$NETNS_STATE_DIR/key"
  # The kvnet guest's NIC on this node's persistent TAP, at the guest's own address on the client LAN.
  echo "HBFT_GUEST=kvnet"
  echo "HBFT_TAP=$GUEST_TAP"
  echo "HBFT_GUEST_IP=$GUEST_ADDRESS/24"
  cat "$(settings_file)"
}

# Whether a running daemon answers on URL; waits while it is alive but silent (starting, or a
# deposed node shutting down), so that start neither starts a second one nor trusts a dying one.
running_and_answering() {
  local node="$1" ns="$2" url="$3" deadline=$((SECONDS + 30))
  while [ -n "$(daemon_pid "$node")" ]; do
    if ip netns exec "$ns" curl -fsS --max-time 1 -o /dev/null "$url" 2>/dev/null; then return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || die "the $node node (pid $(daemon_pid "$node")) runs but does not answer $url (log $NETNS_STATE_DIR/$node.log)"
    sleep 0.2
  done
  return 1
}

start_node() {
  local node="$1" ns log url
  ns="$(netns_name client)"
  log="$NETNS_STATE_DIR/$node.log"
  url="http://${FRONT_ADDRESS[$node]}:${HTTP_PORT[$node]}/healthz"
  if running_and_answering "$node" "$ns" "$url"; then
    say "$node: already running (pid $(daemon_pid "$node"))"
    return
  fi
  local -a environment
  mapfile -t environment < <(node_env "$node")
  start_daemon "$node" env -i "${environment[@]}" "$REPO/deploy/hbft-node.sh" "$node"
  wait_http "$ns" "$url" "the $node node" "$log" "$node"
}

# Until one node runs as primary with its backup attached and the backup holds a checkpoint.
wait_protected() {
  local primary_state backup_state deadline=$((SECONDS + 60))
  MODE=netns
  while [ "$SECONDS" -lt "$deadline" ]; do
    primary_state="$(node_state primary)"
    backup_state="$(node_state backup)"
    case "$primary_state|$backup_state" in
      "primary "*" true true|backup "*" true" | "backup "*" true true|primary "*" true true")
        say "protected: primary slot: $primary_state; backup slot: $backup_state (role generation peerConnected ready)"
        return 0
        ;;
    esac
    sleep 0.1
  done
  die "the pair is not protected after 60 s: primary slot: $primary_state; backup slot: $backup_state (logs in $NETNS_STATE_DIR)"
}

cmd_start() {
  require_root
  netns_exists "$(netns_name primary)" || cmd_up
  mkdir -p "$NETNS_STATE_DIR"
  local key="$NETNS_STATE_DIR/key"
  if [ ! -s "$key" ]; then
    (umask 077 && node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("hex") + "\n")' >"$key")
    say "replication key written to $key"
  fi
  load_settings
  local chaos_ns log
  chaos_ns="$(netns_name chaos)"
  log="$NETNS_STATE_DIR/chaos.log"
  start_daemon chaos node "$CLI" chaos proxy --api "127.0.0.1:$CHAOS_API_PORT" \
    --proxy "repl=${REPL_ADDRESS[chaos]}:$CHAOS_REPL_PORT>${REPL_ADDRESS[backup]}:$REPLICATION_PORT" \
    --proxy "reprotect=${REPL_ADDRESS[chaos]}:$CHAOS_REPROTECT_PORT>${REPL_ADDRESS[primary]}:$REPLICATION_PORT"
  wait_http "$chaos_ns" "http://127.0.0.1:$CHAOS_API_PORT/version" "the chaos proxy" "$log" chaos
  start_node backup
  start_node primary
  wait_protected
}

stop_daemon() {
  local node="$1" pid i
  pid="$(daemon_pid "$node")"
  rm -f "$(pid_file "$node")"
  [ -n "$pid" ] || return 0
  run kill -TERM "$pid"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  run kill -KILL "$pid" 2>/dev/null || true
}

cmd_stop() {
  [ -d "$NETNS_STATE_DIR" ] || return 0
  local node
  for node in primary backup chaos; do stop_daemon "$node"; done
}

# ---- status / exec / cut / restore -------------------------------------------------------------

cmd_status() {
  require_root
  local node ns
  for node in "${NETNS_NODES[@]}"; do
    ns="$(netns_name "$node")"
    if ! netns_exists "$ns"; then
      echo "$node: no namespace $ns (run: $0 up)"
      continue
    fi
    local links
    links="$(ip -n "$ns" -br -4 addr show | awk '$1 != "lo" { sub(/@.*/, "", $1); printf "%s %s %s  ", $1, $2, $3 }')"
    echo "$node ($ns): ${links:-no links}"
    if [ "$node" = primary ] || [ "$node" = backup ]; then
      local tap
      tap="$(ip -n "$ns" -o link show "$GUEST_TAP" 2>/dev/null || true)"
      if [ -z "$tap" ]; then
        echo "  guest TAP $GUEST_TAP: missing (run: $0 up)"
      elif [[ "$tap" == *NO-CARRIER* ]]; then
        echo "  guest TAP $GUEST_TAP: $(sed -n 's/.*\(master [^ ]*\).*/\1/p' <<<"$tap"), no node attached"
      else
        echo "  guest TAP $GUEST_TAP: $(sed -n 's/.*\(master [^ ]*\).*/\1/p' <<<"$tap"), attached by the node (the guest is $GUEST_ADDRESS)"
      fi
    fi
  done
  netns_exists "$(netns_name client)" || return 0
  MODE=netns
  for node in primary backup; do
    local pid
    pid="$(daemon_pid "$node")"
    echo "$node daemon: ${pid:+pid $pid, }$(node_state "$node") (role generation peerConnected ready)"
  done
  if [ -n "$(daemon_pid chaos)" ]; then
    echo "chaos proxy (pid $(daemon_pid chaos)):"
    ip netns exec "$(netns_name chaos)" node "$CLI" chaos status --api "127.0.0.1:$CHAOS_API_PORT" | sed 's/^/  /'
  else
    echo "chaos proxy: not running"
  fi
}

cmd_exec() {
  require_root
  [ $# -ge 2 ] || die "usage: $0 exec NODE CMD..."
  local node="$1"
  shift
  check_node "$node"
  exec ip netns exec "$(netns_name "$node")" "$@"
}

cmd_cut() {
  require_root
  local node="${1:-primary}"
  check_node "$node"
  [ "$node" != client ] || die "the client has no replication link (cut primary, backup or chaos)"
  run ip -n "$(netns_name "$node")" link set repl0 down
  say "cut: $node's replication link is down (restore with: $0 restore)"
}

cmd_restore() {
  require_root
  local nodes=("$@") node ns iface
  [ ${#nodes[@]} -gt 0 ] || nodes=("${NETNS_NODES[@]}")
  for node in "${nodes[@]}"; do
    check_node "$node"
    ns="$(netns_name "$node")"
    for iface in front0 uplink0 repl0; do
      if ip -n "$ns" link show "$iface" >/dev/null 2>&1; then run ip -n "$ns" link set "$iface" up; fi
    done
  done
  say "restore: links of ${nodes[*]} are up"
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  up) cmd_up ;;
  down) cmd_down ;;
  start) cmd_start ;;
  stop) require_root && cmd_stop && say "stopped" ;;
  status) cmd_status ;;
  exec) cmd_exec "$@" ;;
  cut) cmd_cut "$@" ;;
  restore) cmd_restore "$@" ;;
  -h | --help | help) usage 0 ;;
  *) usage 2 ;;
esac
