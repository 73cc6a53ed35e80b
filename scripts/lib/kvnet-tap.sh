# shellcheck shell=bash
# Shared by the benches of unprotected kvnet on a TAP (bench-kvnet-tap.sh, bench-kvnet-threads.sh).
# Source it after `set -euo pipefail` and after cd-ing into the checkout whose hbft runs, then call
# kvnet_tap_start NAME: a throwaway network namespace NAME-$$ with a bridge at 10.77.0.1/24, and
# `hbft run` of the guest on the TAP hbft0 at 10.77.0.2/24 (256 MiB), answering PING. It sets
#   ns    the namespace (run clients with `ip netns exec "$ns" ...` against 10.77.0.2)
#   pid   the guest's node process (ip netns exec execs node, so it is node itself)
#   log   the guest's output (HBFT_TAP_LOOP_STATS=1: the run loop's figures when it stops)
# and an EXIT trap that stops the guest and removes the namespace and the log. kvnet_tap_stop
# stops the guest at the end of a run. IMAGE is the guest (kvnet unless given: a name or an ELF
# path); NODE_FLAGS are passed to its node (e.g. --cpu-prof).
pid=
kvnet_tap_cleanup() {
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  ip netns del "$ns" 2>/dev/null || true
  rm -f "$log"
}

kvnet_tap_start() {
  ns=$1-$$
  log=$(mktemp)
  ip netns add "$ns"
  trap kvnet_tap_cleanup EXIT
  ip -n "$ns" link set lo up
  ip -n "$ns" link add br0 type bridge
  ip -n "$ns" addr add 10.77.0.1/24 dev br0
  ip -n "$ns" link set br0 up
  # shellcheck disable=SC2086
  HBFT_TAP_LOOP_STATS=1 ip netns exec "$ns" node ${NODE_FLAGS:-} packages/cli/bin/hbft.js run "${IMAGE:-kvnet}" --tap hbft0 --guest-ip 10.77.0.2/24 --memory 256MiB >"$log" 2>&1 &
  pid=$!
  # (A loaded machine may take long to start node and compile the TypeScript.)
  for _ in $(seq 600); do ip -n "$ns" link show hbft0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n "$ns" link set hbft0 master br0 up
  for _ in $(seq 150); do ip netns exec "$ns" redis-cli -h 10.77.0.2 PING >/dev/null 2>&1 && break; sleep 0.2; done
}

kvnet_tap_stop() {
  kill -INT "$pid"
  wait "$pid" || true
  pid=
}
