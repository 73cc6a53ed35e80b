#!/usr/bin/env bash
# Installs the Debian packages that tests and demos use, when they are missing. Idempotent.
# Needs root (or passwordless sudo) only when something has to be installed.
set -euo pipefail

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need ip iproute2
# The deployment tests and scripts: docker-compose.yml is validated with Debian's docker-compose
# (its dependency python3-yaml reads the resolved config), curl probes the nodes' status servers,
# ss (iproute2) finds a node's process by its port.
need docker-compose docker-compose
need curl curl
# The dashboard's browser test drives Debian's Chromium (playwright cannot download browsers here).
need chromium chromium
# The packet NIC's TAP test drives the guest with Debian's own Redis clients.
need redis-cli redis-tools
need redis-benchmark redis-tools
# hbft bench network measures kv beside Debian's own redis-server (its smoke test runs in npm test).
need redis-server redis-server

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: nothing to install"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-system-deps: missing ${missing[*]} and not root; install them or run as root" >&2
    exit 1
  fi
fi
echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
