#!/usr/bin/env bash
# Changes the primary<->backup replication link of a running deployment.
#
#   scripts/chaos.sh latency MS [JITTER_MS]   delay each direction by MS ± JITTER ms
#   scripts/chaos.sh bandwidth RATE           limit each direction (1mbit, 128kbit, 100KB/s, ...)
#   scripts/chaos.sh loss PCT [stall|reset]   lose PCT % of packets (see below)
#   scripts/chaos.sh partition [cut|stall]    cut: connections closed and refused (default);
#                                             stall: connections stay open, no byte passes
#   scripts/chaos.sh heal                     end a partition; latency, bandwidth, loss stay
#   scripts/chaos.sh clear                    remove everything: the link is as good as new
#   scripts/chaos.sh status                   what is in force
# Options (anywhere): --mode local|netns|compose (default: the demo if .hbft/demo.json exists,
# else the two-hosts namespaces), --via proxy|netem (compose only; default proxy).
#
# How: every deployment runs a chaos proxy on the replication link (the primary replicates through
# it, and a promoted backup re-protects through it), and by default this script drives it through
# `hbft chaos` (Toxiproxy's toxics; TCP cannot lose bytes, so `loss` stalls the stream for a
# retransmission timeout at each lost segment, or with `reset` resets PCT % of connections). Each
# change applies to every proxy of the link (the demo's chaos.proxies names them; else all), and
# `status` shows every proxy.
#   local    hbft chaos ... --api <demo.json chaos.api>
#   netns    ip netns exec PREFIX-chaos hbft chaos ... --api 127.0.0.1:8474
#   compose  docker compose exec chaos hbft chaos ... --api 127.0.0.1:8474
# compose --via netem uses the kernel instead: `tc qdisc replace dev eth0 root netem ...` in the
# chaos container (NET_ADMIN), which delays or drops real packets on everything the chaos container
# sends, so each direction of the link once. This script keeps the netem settings in
# .hbft/compose-netem.env so that one change does not undo another; `clear` deletes the qdisc.
# netem needs the Docker host's kernel to have it (sch_netem); where it has none, the script says
# so and changes nothing (the proxy works everywhere). scripts/compose-engine-test.sh runs the
# proxy path under a real Docker engine; the netem path has not run (that machine's kernel has no
# netem either).
set -euo pipefail
SCRIPT_NAME=chaos.sh
# shellcheck source=scripts/lib/hbft.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/hbft.sh"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

mode=""
via=proxy
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) mode="${2:?--mode needs a value}"; shift 2 ;;
    --mode=*) mode="${1#*=}"; shift ;;
    --via) via="${2:?--via needs a value}"; shift 2 ;;
    --via=*) via="${1#*=}"; shift ;;
    -h | --help) usage 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -gt 0 ] || usage 2
action="${args[0]}"
operands=("${args[@]:1}")

number() { [[ "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "$action: $1 must be a number, got '$2'"; }
operand_count() {
  if [ ${#operands[@]} -lt "$1" ] || [ ${#operands[@]} -gt "$2" ]; then die "$action: expected $3 (see --help)"; fi
}
case "$action" in
  latency)
    operand_count 1 2 "MS [JITTER_MS]"
    number MS "${operands[0]}"
    [ ${#operands[@]} -lt 2 ] || number JITTER_MS "${operands[1]}"
    ;;
  bandwidth) operand_count 1 1 "RATE (1mbit, 128kbit, 100KB/s, 2MiB/s; a bare number is KB/s)" ;;
  loss)
    operand_count 1 2 "PCT [stall|reset]"
    number PCT "${operands[0]}"
    [ ${#operands[@]} -lt 2 ] || [[ "${operands[1]}" =~ ^(stall|reset)$ ]] || die "loss: the second operand is stall or reset, got '${operands[1]}'"
    ;;
  partition)
    operand_count 0 1 "[cut|stall]"
    [ ${#operands[@]} -eq 0 ] || [[ "${operands[0]}" =~ ^(cut|stall)$ ]] || die "partition: expected cut or stall, got '${operands[0]}'"
    ;;
  heal | clear | status) operand_count 0 0 "no operands" ;;
  *) die "unknown action '$action' (latency, bandwidth, loss, partition, heal, clear, status)" ;;
esac
case "$via" in
  proxy) ;;
  netem) [ "${mode:-${HBFT_MODE:-}}" = compose ] || die "--via netem is for --mode compose (this machine's kernel has no netem; local and netns use the proxy)" ;;
  *) die "--via: expected proxy or netem, got '$via'" ;;
esac
resolve_mode "$mode"

# ---- through the chaos proxy -------------------------------------------------------------------

via_proxy() {
  local proxies proxy
  if [ "$action" = status ]; then
    chaos_cli status
    return
  fi
  if [ "$action" = clear ] && [ "$MODE" != local ]; then
    chaos_cli clear
    say "cleared: every toxic removed and every proxy healed"
    return
  fi
  proxies="$(chaos_proxies)"
  [ -n "$proxies" ] || die "the chaos API knows no proxy"
  local -a command
  case "$action" in
    latency) command=(latency "${operands[@]}") ;;
    bandwidth) command=(bandwidth "${operands[0]}") ;;
    loss) command=(loss "${operands[0]}" ${operands[1]:+--mode "${operands[1]}"}) ;;
    partition) command=(partition ${operands[0]:+--mode "${operands[0]}"}) ;;
    heal) command=(heal) ;;
    clear) command=(clear) ;;
  esac
  for proxy in $proxies; do
    echo "+ hbft chaos ${command[*]} --proxy $proxy"
    chaos_cli "${command[@]}" --proxy "$proxy"
  done
}

# ---- compose --via netem -----------------------------------------------------------------------

NETEM_STATE="$STATE_DIR/compose-netem.env"
NETEM_DEVICE="${HBFT_NETEM_DEVICE:-eth0}"

# hbft's rate forms to tc's: tc reads "kbps" as kilobytes per second.
tc_rate() {
  local rate="$1" number unit
  number="${rate%%[!0-9.]*}"
  unit="${rate#"$number"}"
  [ -n "$number" ] || die "bandwidth: cannot read '$rate' (1mbit, 128kbit, 100KB/s, 2MiB/s, or a bare number of KB/s)"
  case "$unit" in
    "") echo "${number}kbps" ;;
    bit | kbit | mbit | gbit | bps | kbps | mbps | gbps) echo "$rate" ;;
    KB/s | kB/s) echo "${number}kbps" ;;
    MB/s) echo "${number}mbps" ;;
    KiB/s) echo "${number}kibps" ;;
    MiB/s) echo "${number}mibps" ;;
    *) die "bandwidth: cannot read '$rate' (1mbit, 128kbit, 100KB/s, 2MiB/s, or a bare number of KB/s)" ;;
  esac
}

via_netem() {
  local delay_ms=0 jitter_ms=0 loss_pct=0 rate="" partitioned=0
  # shellcheck disable=SC1090
  [ -f "$NETEM_STATE" ] && source "$NETEM_STATE"
  case "$action" in
    status)
      run compose exec -T -u root chaos tc qdisc show dev "$NETEM_DEVICE"
      return
      ;;
    latency) delay_ms="${operands[0]}" jitter_ms="${operands[1]:-0}" ;;
    bandwidth) rate="$(tc_rate "${operands[0]}")" ;;
    loss)
      [ "${operands[1]:-stall}" = stall ] || die "loss: --via netem drops packets (TCP retransmits them); it has no 'reset'"
      loss_pct="${operands[0]}"
      ;;
    partition)
      [ "${operands[0]:-stall}" = stall ] || warn "partition: --via netem drops every packet, which is a stall partition (connections stay open); there is no 'cut'"
      partitioned=1
      ;;
    heal) partitioned=0 ;;
    clear) delay_ms=0 jitter_ms=0 loss_pct=0 rate="" partitioned=0 ;;
  esac
  local -a netem=()
  [ "$delay_ms" = 0 ] || netem+=(delay "${delay_ms}ms" "${jitter_ms}ms")
  if [ "$partitioned" = 1 ]; then netem+=(loss 100%); elif [ "$loss_pct" != 0 ]; then netem+=(loss "${loss_pct}%"); fi
  [ -z "$rate" ] || netem+=(rate "$rate")
  if [ ${#netem[@]} -eq 0 ]; then
    run compose exec -T -u root chaos tc qdisc del dev "$NETEM_DEVICE" root 2>/dev/null || true
    rm -f "$NETEM_STATE"
    say "netem removed from the chaos container's $NETEM_DEVICE: the link is clean"
  else
    echo "+ compose exec -T -u root chaos tc qdisc replace dev $NETEM_DEVICE root netem ${netem[*]}"
    local out
    if ! out="$(compose exec -T -u root chaos tc qdisc replace dev "$NETEM_DEVICE" root netem "${netem[@]}" 2>&1)"; then
      [ -z "$out" ] || echo "$out" >&2
      if grep -q 'qdisc kind is unknown' <<<"$out"; then
        die "the Docker host's kernel has no netem (sch_netem; try 'modprobe sch_netem' on the host): nothing changed. Without --via netem the chaos proxy does the same: scripts/chaos.sh --mode compose $action ${operands[*]}"
      fi
      die "tc could not set netem in the chaos container (see above): nothing changed"
    fi
    say "netem on the chaos container's $NETEM_DEVICE: ${netem[*]}"
    # Kept only once in force, so that a failed change is not the base of the next one.
    mkdir -p "$STATE_DIR"
    printf 'delay_ms=%s\njitter_ms=%s\nloss_pct=%s\nrate=%s\npartitioned=%s\n' "$delay_ms" "$jitter_ms" "$loss_pct" "$rate" "$partitioned" >"$NETEM_STATE"
  fi
}

if [ "$via" = netem ]; then via_netem; else via_proxy; fi
