#!/usr/bin/env bash
# Kills the primary with SIGKILL in the middle of a load run and reports what the clients saw:
# the failover time and the checker's verdict (no acknowledged write lost, none applied twice).
# The load is plain RESP clients of the guest's own address (`hbft load`): the guest moves
# to the backup with its address, and the clients keep their connections.
#
#   scripts/kill-primary.sh [--mode local|netns|compose] [--seconds N] [--clients N] [--no-rejoin]
#
#   --mode      local: the demo (npm start, in namespaces; reads .hbft/demo.json, clients go
#               through its forwarder); netns: scripts/two-hosts.sh; compose: docker-compose.yml
#               (docker compose, or docker-compose). Default: the demo if .hbft/demo.json exists,
#               else the namespaces if they exist.
#   --seconds   length of the load run (default 8); the kill comes halfway through
#   --clients   load clients (default 4)
#   --no-rejoin leave the killed node dead. By default, netns and compose restart it afterwards,
#               it rejoins as the new backup, and the script waits until the pair is protected
#               again, so the script can be run again and again. (local: the demo owns its
#               processes, so the survivor stays unprotected unless the demo brings a backup back.)
#
# Whichever node runs as primary now is the one killed (after a failover that is the other one).
# Refuses to start when the pair is not protected: a kill then would only take the service down.
# Exit status: 0 when the checker finds nothing wrong and the clients saw the takeover, 3 on a
# violation (the history is kept for `hbft load --check`), 1 on any other failure.
set -euo pipefail
SCRIPT_NAME=kill-primary.sh
# shellcheck source=scripts/lib/hbft.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/hbft.sh"

mode=""
seconds=8
clients=4
rejoin=true
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) mode="${2:?--mode needs a value}"; shift 2 ;;
    --mode=*) mode="${1#*=}"; shift ;;
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    --clients) clients="${2:?--clients needs a value}"; shift 2 ;;
    --clients=*) clients="${1#*=}"; shift ;;
    --no-rejoin) rejoin=false; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 2 ]] || die "--seconds: expected a whole number ≥ 2, got '$seconds'"
[[ "$clients" =~ ^[0-9]+$ && "$clients" -ge 1 ]] || die "--clients: expected a whole number ≥ 1, got '$clients'"
resolve_mode "$mode"

# ---- who is primary now ----
primary_state="$(node_state primary)"
backup_state="$(node_state backup)"
say "primary slot: $primary_state; backup slot: $backup_state (role generation peerConnected ready)"
read -r primary_role primary_generation _ _ <<<"$primary_state"
read -r backup_role backup_generation _ backup_ready <<<"$backup_state"
if [ "$primary_role" = primary ] && [ "$backup_role" = backup ]; then
  victim=primary survivor=backup generation="$primary_generation" survivor_ready="$backup_ready"
elif [ "$backup_role" = primary ] && [ "$primary_role" = backup ]; then
  victim=backup survivor=primary generation="$backup_generation" survivor_ready="$(read -r _ _ _ r <<<"$primary_state"; echo "$r")"
else
  die "no protected pair to test: need one node running as primary and the other as its backup (primary slot: $primary_state; backup slot: $backup_state)"
fi
[ "$survivor_ready" = true ] || die "the $survivor node is a backup without a checkpoint yet (not ready): killing the primary now would lose the service; wait and try again"
say "the $victim node runs as primary (generation $generation); the $survivor node is its backup"

# ---- load, kill, verdict ----
work="$(mktemp -d "${TMPDIR:-/tmp}/hbft-kill-primary.XXXXXX")"
load_pid=""
# compose: the load runs in a one-off container of the client service, named so that the script can
# signal it and remove it (docker compose run --name; docker-compose v1 has the same flag).
load_container="" victim_container=""
if [ "$MODE" = compose ]; then
  load_container="hbft-kill-primary-load-$$"
  victim_container="$(compose ps -q "$victim")"
  [ -n "$victim_container" ] || die "the $victim service has no container (compose ps -q $victim)"
  command -v docker >/dev/null 2>&1 || die "--mode compose needs the docker client too (to signal the load and the victim's container)"
fi
cleanup() {
  if [ -n "$load_pid" ] && kill -0 "$load_pid" 2>/dev/null; then kill -TERM "$load_pid" 2>/dev/null || true; fi
  if [ -n "$load_container" ]; then docker rm -f "$load_container" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# SIGUSR2 to the load process itself: $load_pid is the subshell that runs run_load, whose child
# (possibly through `ip netns exec`, which execs) is the hbft load process. In compose that child is
# the compose client, whose default action on SIGUSR2 is to die (and take the load's verdict with
# it): the signal goes to the load's container instead, whose init (init: true) passes it on.
mark_load() {
  local child
  if [ -n "$load_container" ]; then
    docker kill --signal USR2 "$load_container" >/dev/null || warn "could not mark the kill in the load (docker kill --signal USR2 $load_container)"
    return
  fi
  for child in $(pgrep -P "$load_pid" || true); do
    if tr '\0' ' ' <"/proc/$child/cmdline" 2>/dev/null | grep -q 'hbft.* load '; then kill -USR2 "$child"; fi
  done
}

history_args=()
# The history file is written by the load process; in compose it runs in a container.
[ "$MODE" != compose ] && history_args=(--history "$work/history.jsonl")
say "load: $clients plain RESP clients for $seconds s against the guest at $(guest_serve)"
LOAD_CONTAINER="$load_container" run_load --clients "$clients" --duration-s "$seconds" "${history_args[@]}" >"$work/load.out" 2>"$work/load.err" &
load_pid=$!

# The kill comes halfway through the load's own clock (its progress lines on stderr), once the
# clients have had answers from the current primary: starting the load takes a while on a busy
# machine, and a kill before the first answer would measure nothing.
half_s="$(awk "BEGIN { print $seconds / 2 }")"
deadline=$((SECONDS + seconds + 60))
while :; do
  if ! kill -0 "$load_pid" 2>/dev/null; then
    cat "$work/load.err" "$work/load.out" >&2
    die "the load run ended before the kill"
  fi
  [ "$SECONDS" -lt "$deadline" ] || die "the load run shows no progress (log: $(tail -n 3 "$work/load.err"))"
  progress="$(grep '^hbft load: [0-9.]* s ' "$work/load.err" | tail -n 1 || true)"
  elapsed="$(sed -n 's/^hbft load: \([0-9.]*\) s .*/\1/p' <<<"$progress")"
  answered="$(sed -n 's/.* ok \([0-9]*\) .*/\1/p' <<<"$progress")"
  if [ -n "$elapsed" ] && [ "${answered:-0}" -gt 0 ] && awk "BEGIN { exit !($elapsed >= $half_s) }"; then break; fi
  sleep 0.1
done
say "kill -9 of the $victim node (primary, generation $generation), $elapsed s into the run ($answered operations answered)"
# The demo rewrites demo.json when a node exits (its slots follow the roles), so in local mode the
# survivor is watched at the address it has now.
survivor_http=""
[ "$MODE" = local ] && survivor_http="$(node_http "$survivor")"
# Plain clients cannot see a takeover in their replies (the guest's address is the same whichever
# node runs it): the load marks the kill's instant instead and reports how long its clients went
# without a reply across it.
if [ -n "$victim_container" ]; then
  # compose: the docker client, not the compose one, which needs a second or more to start
  # (docker-compose v1 is Python). `docker kill` answers only once the container is gone and its
  # network torn down, by when the survivor may have taken over already, so the mark goes out
  # while it runs, not after. Like `compose kill`, it leaves the container stopped (restart:
  # unless-stopped does not bring it back); `compose start` below does.
  echo "+ docker kill --signal KILL $victim_container   (the $victim service)"
  kill_started_ms="$(date +%s%3N)"
  docker kill --signal KILL "$victim_container" >/dev/null &
  kill_pid=$!
  mark_load
  wait "$kill_pid" || die "docker kill --signal KILL $victim_container (the $victim service) failed"
  say "docker kill returned after $(($(date +%s%3N) - kill_started_ms)) ms (the engine waits for the container to be gone)"
else
  node_kill9 "$victim"
  mark_load
fi

# The takeover as the survivor's status server reports it.
expected="primary $((generation + 1))"
took_over=false
deadline=$((SECONDS + 10))
while [ "$SECONDS" -lt "$deadline" ]; do
  state="$(node_state "$survivor" "$survivor_http")"
  if [[ "$state" == "$expected "* ]]; then
    took_over=true
    break
  fi
  sleep 0.1
done
if $took_over; then
  say "the $survivor node took over: $state (role generation peerConnected ready)"
else
  warn "the $survivor node did not report taking over within 10 s after the kill (it says: $state)"
fi

load_status=0
wait "$load_pid" || load_status=$?
load_pid=""
grep -v '^hbft load: [0-9.]* s ' "$work/load.err" >&2 || true
cat "$work/load.out"

failover_line="$(grep -m1 '^stall across mark' "$work/load.out" || true)"
verdict_line="$(grep -m1 '^verdict:' "$work/load.out" || true)"
echo
say "---- result ----"
if [ -n "$failover_line" ]; then
  gap_ms="$(sed -n 's/.*gap spanning it p50 [0-9.]* ms, max \([0-9.]*\) ms.*/\1/p' <<<"$failover_line")"
  gap_p50_ms="$(sed -n 's/.*gap spanning it p50 \([0-9.]*\) ms.*/\1/p' <<<"$failover_line")"
  say "failover time: $gap_ms ms without a response, as the clients saw it (generation $generation → $((generation + 1))); p50 over the clients $gap_p50_ms ms, on the same connections"
else
  say "failover time: not seen by the clients"
fi
say "${verdict_line:-verdict: none (the load run failed, exit $load_status)}"

status=0
if [ "$load_status" -eq 3 ]; then
  status=3
elif [ "$load_status" -ne 0 ]; then
  say "the load run failed (exit $load_status)"
  status=1
elif [ -z "$failover_line" ] || ! $took_over; then
  say "FAILED: the takeover was not observed"
  status=1
fi
if [ "$status" -ne 0 ] && [ -f "$work/history.jsonl" ]; then
  kept="$STATE_DIR/kill-primary-history-$(date +%Y%m%d-%H%M%S).jsonl"
  mkdir -p "$STATE_DIR" && cp "$work/history.jsonl" "$kept"
  say "history kept in $kept (judge it again with: hbft load --check $kept)"
fi

# ---- put the pair back together ----
if $rejoin; then
  case "$MODE" in
    netns)
      say "restarting the $victim node: it rejoins as the backup of the $survivor node"
      "$REPO/scripts/two-hosts.sh" start | sed 's/^/  /'
      ;;
    compose)
      say "restarting the $victim service: it rejoins as the backup of the $survivor service"
      run compose start "$victim"
      deadline=$((SECONDS + 60))
      while [ "$SECONDS" -lt "$deadline" ]; do
        [[ "$(node_state "$victim")" == "backup "*" true" ]] && break
        sleep 0.1
      done
      say "$victim: $(node_state "$victim"); $survivor: $(node_state "$survivor")"
      ;;
    local)
      say "local mode: the demo owns its processes; the $survivor node runs unprotected until the demo brings a backup back"
      ;;
  esac
fi
say "done in $SECONDS s"
exit "$status"
