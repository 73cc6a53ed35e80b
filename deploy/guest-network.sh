#!/usr/bin/env bash
# Puts the guest's TAP on the client network inside a node container, then runs the command given
# (the node's daemon), as HBFT_DAEMON_USER when set.
#
#   guest-network.sh COMMAND [ARGS...]
#
# Like a real host with a bridged NIC: the container's interface on the client network (the one
# whose address is in HBFT_CLIENT_SUBNET) becomes a port of a bridge br0, which takes over its
# address and routes, and a persistent TAP (HBFT_TAP, default hbft0) owned by the daemon's user is
# the bridge's other port. The guest's MAC and address (HBFT_GUEST_IP) then live on the client
# network itself, so after a takeover the other node's gratuitous ARP moves them there, and a
# restarted daemon attaches to the same bridge port. Needs NET_ADMIN and /dev/net/tun; run as root
# (the daemon itself runs unprivileged when HBFT_DAEMON_USER is set, which needs SETUID/SETGID).
# Idempotent: a container restart finds the bridge and the TAP in place.
set -euo pipefail
say() { echo "guest-network: $*" >&2; }
die() {
  say "$*"
  exit 1
}
[ $# -gt 0 ] || die "usage: guest-network.sh COMMAND [ARGS...]"
subnet="${HBFT_CLIENT_SUBNET:?HBFT_CLIENT_SUBNET (the client network, e.g. 172.30.77.0/24) is not set}"
tap="${HBFT_TAP:-hbft0}"
bridge=br0
user="${HBFT_DAEMON_USER:-}"
[ "$(id -u)" -eq 0 ] || die "needs root inside the container (user: root in the service), with cap_add NET_ADMIN"
[ -c /dev/net/tun ] || die "/dev/net/tun is missing: give the service devices: [/dev/net/tun]"

# The interface (or, after a restart, the bridge) that holds an address in the client subnet.
prefix="${subnet%/*}"
prefix="${prefix%.*}."
iface="$(ip -o -4 addr show | awk -v p="$prefix" 'index($4, p) == 1 { print $2; exit }')"
[ -n "$iface" ] || die "no interface has an address in $subnet (is the service on the client network?)"
if [ "$iface" != "$bridge" ]; then
  address="$(ip -o -4 addr show dev "$iface" | awk -v p="$prefix" 'index($4, p) == 1 { print $4; exit }')"
  routes="$(ip -4 route show dev "$iface" | grep -v 'proto kernel' || true)"
  ip link add "$bridge" type bridge 2>/dev/null || true
  # The bridge keeps the interface's MAC, so neighbours' ARP caches stay right.
  ip link set "$bridge" address "$(cat "/sys/class/net/$iface/address")"
  ip addr del "$address" dev "$iface"
  ip link set "$iface" master "$bridge"
  ip link set "$bridge" up
  ip addr replace "$address" dev "$bridge"
  while read -r route; do
    [ -n "$route" ] || continue
    # shellcheck disable=SC2086 # a route is words
    ip route replace $route dev "$bridge" 2>/dev/null || say "could not move the route '$route' to $bridge"
  done <<<"$routes"
  say "$iface is a port of $bridge, which holds $address"
fi
if ! ip link show "$tap" >/dev/null 2>&1; then
  ip tuntap add dev "$tap" mode tap ${user:+user "$(id -u "$user")"}
fi
ip link set "$tap" master "$bridge" up
say "TAP $tap on $bridge for the guest ${HBFT_GUEST_IP:-(HBFT_GUEST_IP not set)}"

if [ -n "$user" ]; then
  # An ordinary user opens the TUN device only if its mode lets it; the TAP is the user's.
  chmod 0666 /dev/net/tun
  exec setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups --inh-caps=-all --bounding-set=-all -- "$@"
fi
exec "$@"
