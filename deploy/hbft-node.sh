#!/usr/bin/env bash
# Starts one hbft node in the role it should have now, then becomes that daemon (exec, so signals
# reach it directly).
#
#   hbft-node.sh primary|backup [EXTRA HBFT FLAGS...]
#
# The role given is the node's preferred role. Before starting, the node asks its peer's status
# server (HBFT_PEER_HTTP, HOST:PORT) what the peer is:
#   - the peer runs as primary                 -> start as its backup (a restarted primary rejoins
#                                                 as the new backup; the peer's --reprotect finds it)
#   - the peer is a backup that holds a checkpoint but lost its primary
#                                              -> wait for it to take over, then start as its backup
#                                                 (starting a fresh primary now would make it resync
#                                                 from an empty guest and throw the replica away)
#   - the peer is a backup with no primary and no state, or cannot be reached
#                                              -> the preferred role
#   - the peer is a backup fed by another primary -> refuse (exit 1): two primaries is split brain
# Every other setting comes from HBFT_* variables (HBFT_LISTEN, HBFT_BACKUP, HBFT_REPROTECT,
# HBFT_HTTP, HBFT_KEY_FILE, HBFT_MEMORY, HBFT_GUEST, HBFT_TAP...); each daemon ignores the ones it has no flag
# for, so one environment serves both roles.
#
# HBFT_NODE_ROLE=primary|backup skips the probe and forces the role. With --dry-run among the flags
# the probe is skipped too and the preferred (or forced) role's configuration is printed.
# HBFT_NODE_WAIT_S (default 15) bounds the wait for a peer that is taking over.
set -euo pipefail

here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
cli="$here/../packages/cli/bin/hbft.js"
say() { echo "hbft-node: $*" >&2; }

preferred="${1:-}"
case "$preferred" in
  primary | backup) shift ;;
  *)
    echo "usage: hbft-node.sh primary|backup [HBFT FLAGS...]   (see the comment at the top of $0)" >&2
    exit 2
    ;;
esac

dry_run=false
for arg in "$@"; do [ "$arg" = "--dry-run" ] && dry_run=true; done

# The peer's /readyz as one line: "ROLE MODE PEER_CONNECTED GENERATION", or "unreachable".
# shellcheck disable=SC2016 # the $ in the JavaScript is JavaScript's
probe_peer() {
  node -e '
    const [address] = process.argv.slice(1);
    fetch(`http://${address}/readyz`, { signal: AbortSignal.timeout(2000) })
      .then((response) => response.json())
      .then((r) => console.log([r.role, r.mode ?? r.protection ?? "-", r.peerConnected, r.generation].join(" ")))
      .catch(() => console.log("unreachable"));
  ' "$1"
}

choose_role() {
  local peer="${HBFT_PEER_HTTP:-}"
  if [ -n "${HBFT_NODE_ROLE:-}" ]; then
    say "role forced by HBFT_NODE_ROLE: $HBFT_NODE_ROLE"
    role="$HBFT_NODE_ROLE"
    return
  fi
  if $dry_run || [ -z "$peer" ]; then
    role="$preferred"
    return
  fi
  local deadline=$((SECONDS + ${HBFT_NODE_WAIT_S:-15})) answer peer_role mode connected generation
  while :; do
    answer="$(probe_peer "$peer")"
    read -r peer_role mode connected generation <<<"$answer"
    if [ "$peer_role" = unreachable ]; then
      say "peer $peer does not answer: starting as $preferred"
      role="$preferred"
      return
    fi
    if [ "$peer_role" = primary ]; then
      say "peer $peer runs as primary (generation $generation): joining as its backup"
      role=backup
      return
    fi
    if [ "$connected" = true ]; then
      say "peer $peer is a backup already fed by a primary (generation $generation); a second primary would be split brain"
      exit 1
    fi
    if [ "$mode" != protecting ]; then
      say "peer $peer is a backup without a primary or a checkpoint ($mode): starting as $preferred"
      role="$preferred"
      return
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "peer $peer holds a checkpoint but has not taken over within ${HBFT_NODE_WAIT_S:-15} s; not starting (it would be overwritten)"
      exit 1
    fi
    say "peer $peer holds a checkpoint and lost its primary: waiting for it to take over"
    sleep 0.5
  done
}

role=""
choose_role
say "exec hbft $role $*"
exec node "$cli" "$role" "$@"
