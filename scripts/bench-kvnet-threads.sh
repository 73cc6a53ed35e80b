#!/usr/bin/env bash
# Where a request's CPU goes in unprotected kvnet on a TAP: the per-thread CPU time of the
# `hbft run kvnet --tap` process (from /proc/PID/task/*/stat) and redis-benchmark's own (user +
# system), around measured runs of `redis-benchmark -c CLIENTS -n REQUESTS -t set,get,incr`, each
# after one unmeasured warm-up run of the same size. Prints µs of CPU per request for each thread
# that used any, the requests/s of each run and the machine's idle share. Needs root and
# redis-tools. Run it under the shared lock on shared machines:
#   flock /tmp/hbft-cluster.lock scripts/bench-kvnet-threads.sh [runs] [requests] [clients]
# HBFT_ROOT is the checkout whose hbft runs (this one unless given: another to compare with); IMAGE
# and NODE_FLAGS as in scripts/lib/kvnet-tap.sh.
# Threads by id: the main thread's id is the process's; the TAP's writer thread is created before
# its reader thread (tap.ts), so it has the lower id of the two busy workers.
set -euo pipefail
runs=${1:-2}
requests=${2:-50000}
clients=${3:-50}
# shellcheck source=scripts/lib/kvnet-tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/kvnet-tap.sh"
cd "${HBFT_ROOT:-$(dirname "${BASH_SOURCE[0]}")/..}"
kvnet_tap_start hbft-bench-threads
node_pid=$pid

# "tid utime stime comm policy" for every thread of the node process (clock ticks).
thread_times() {
  for task in /proc/"$node_pid"/task/*; do
    local tid=${task##*/}
    local stat
    stat=$(cat "$task/stat" 2>/dev/null) || continue
    local comm=${stat#*(}
    comm=${comm%%)*}
    local rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo "$tid ${12} ${13} $comm ${39}"
  done | sort -n
}
idle_ticks() { awk '/^cpu /{print $5 + $6}' /proc/stat; }
total_ticks() { awk '/^cpu /{s=0; for (i=2; i<=NF; i++) s+=$i; print s}' /proc/stat; }
hz=$(getconf CLK_TCK)

for run in $(seq "$runs"); do
  ip netns exec "$ns" timeout 300 redis-benchmark -h 10.77.0.2 -c "$clients" -n "$requests" -t set,get,incr -q >/dev/null
  before=$(thread_times)
  idle0=$(idle_ticks)
  total0=$(total_ticks)
  start=$(date +%s.%N)
  bench_out=$(mktemp)
  ip netns exec "$ns" /usr/bin/time -f '%U %S' -o "$bench_out.time" timeout 300 redis-benchmark -h 10.77.0.2 -c "$clients" -n "$requests" -t set,get,incr --csv >"$bench_out"
  end=$(date +%s.%N)
  after=$(thread_times)
  idle1=$(idle_ticks)
  total1=$(total_ticks)
  all=$((3 * requests))
  echo "run $run ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1 /proc/loadavg)): $(awk -F'"' 'NR>1{printf "%s %s/s  ", $2, $4}' "$bench_out")"
  awk -v hz="$hz" -v n="$all" -v main="$node_pid" '
    NR == FNR { u[$1] = $2; s[$1] = $3; next }
    {
      du = $2 - u[$1]; ds = $3 - s[$1]
      if (du + ds == 0) next
      printf "  tid %-7s %-8s %-7s user %6.2f  sys %6.2f  µs/request\n", $1, $4, ($5 == 3 ? "batch" : $5 == 0 ? "normal" : "policy " $5), du / hz * 1e6 / n, ds / hz * 1e6 / n
      tu += du; ts += ds
    }
    END { printf "  node process        user %6.2f  sys %6.2f  all %6.2f µs/request\n", tu / hz * 1e6 / n, ts / hz * 1e6 / n, (tu + ts) / hz * 1e6 / n }
  ' <(echo "$before") <(echo "$after")
  read -r bu bs <"$bench_out.time"
  awk -v u="$bu" -v s="$bs" -v n="$all" -v t0="$start" -v t1="$end" -v i0="$idle0" -v i1="$idle1" -v a0="$total0" -v a1="$total1" 'BEGIN {
    printf "  redis-benchmark     user %6.2f  sys %6.2f  µs/request\n", u * 1e6 / n, s * 1e6 / n
    printf "  %d requests in %.2f s: %.0f/s overall; machine idle %.0f %%\n", n, t1 - t0, n / (t1 - t0), 100 * (i1 - i0) / (a1 - a0)
  }'
  rm -f "$bench_out" "$bench_out.time"
done
kvnet_tap_stop
grep -E 'run loop|error' "$log" || true
