#!/usr/bin/env bash
# kvnet (unprotected: no backup, no output commit) on a TAP device in a throwaway network namespace
# with a bridge, measured with Debian's redis-benchmark through the kernel's TCP stack. Needs root
# and redis-tools (scripts/install-system-deps.sh). Run it under the shared lock on shared machines:
#   flock /tmp/hbft-cluster.lock scripts/bench-kvnet-tap.sh [runs] [requests] [clients]
# HBFT_ROOT is the checkout whose hbft runs (this one unless given: another to compare with).
# IMAGE is the guest (kvnet unless given: a name or an ELF path).
# NODE_FLAGS are passed to the guest's node, e.g. NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
# for a CPU profile of the unprotected path (written when the guest stops at the end).
set -euo pipefail
runs=${1:-2}
requests=${2:-20000}
clients=${3:-50}
cd "${HBFT_ROOT:-$(dirname "${BASH_SOURCE[0]}")/..}"
ns=hbft-bench-kvnet-$$
log=$(mktemp)
ip netns add "$ns"
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  ip netns del "$ns" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" addr add 10.77.0.1/24 dev br0
ip -n "$ns" link set br0 up
HBFT_TAP_LOOP_STATS=1 ip netns exec "$ns" node ${NODE_FLAGS:-} packages/cli/bin/hbft.js run "${IMAGE:-kvnet}" --tap hbft0 --guest-ip 10.77.0.2/24 --memory 256MiB >"$log" 2>&1 &
pid=$!
# (A loaded machine may take long to start node and compile the TypeScript.)
for _ in $(seq 600); do ip -n "$ns" link show hbft0 >/dev/null 2>&1 && break; sleep 0.1; done
ip -n "$ns" link set hbft0 master br0 up
for _ in $(seq 150); do ip netns exec "$ns" redis-cli -h 10.77.0.2 PING >/dev/null 2>&1 && break; sleep 0.2; done
for run in $(seq "$runs"); do
  echo "run $run: redis-benchmark -c $clients -n $requests -t set,get,incr"
  ip netns exec "$ns" timeout 300 redis-benchmark -h 10.77.0.2 -c "$clients" -n "$requests" -t set,get,incr --csv
done
kill -INT "$pid"
wait "$pid" || true
pid=
cat "$log"
