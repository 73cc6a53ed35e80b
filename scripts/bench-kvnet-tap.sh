#!/usr/bin/env bash
# kvnet (unprotected: no backup, no output commit) on a TAP device in a throwaway network namespace
# with a bridge, measured with Debian's redis-benchmark through the kernel's TCP stack. Needs root
# and redis-tools (scripts/install-system-deps.sh). Run it under the shared lock on shared machines:
#   flock /tmp/hbft-cluster.lock scripts/bench-kvnet-tap.sh [runs] [requests] [clients]
# HBFT_ROOT is the checkout whose hbft runs (this one unless given: another to compare with).
# IMAGE is the guest (kvnet unless given: a name or an ELF path), and NODE_FLAGS are passed to the
# guest's node (scripts/lib/kvnet-tap.sh), e.g. NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
# for a CPU profile of the unprotected path (written when the guest stops at the end).
set -euo pipefail
runs=${1:-2}
requests=${2:-20000}
clients=${3:-50}
# shellcheck source=scripts/lib/kvnet-tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/kvnet-tap.sh"
cd "${HBFT_ROOT:-$(dirname "${BASH_SOURCE[0]}")/..}"
kvnet_tap_start hbft-bench-kvnet
for run in $(seq "$runs"); do
  echo "run $run: redis-benchmark -c $clients -n $requests -t set,get,incr"
  ip netns exec "$ns" timeout 300 redis-benchmark -h 10.77.0.2 -c "$clients" -n "$requests" -t set,get,incr --csv
done
kvnet_tap_stop
cat "$log"
