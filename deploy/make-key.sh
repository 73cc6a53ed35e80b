#!/usr/bin/env bash
# Writes a fresh pre-shared replication key to deploy/secrets/hbft_key (the compose secret), unless
# one is there already. Both nodes read the same file; whoever holds it can overwrite the backup's
# state, so keep it out of git (deploy/secrets/.gitignore) and readable only by whom it must be:
# the daemons run as uid 1000 (the image's `node` user), so the file is given to that uid.
set -euo pipefail
key="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/secrets/hbft_key"
if [ -s "$key" ]; then
  echo "make-key.sh: $key exists; delete it first to make a new one (both nodes must then restart)"
  exit 0
fi
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key" && echo >>"$key")
if [ "$(id -u)" -eq 0 ]; then chown 1000:1000 "$key"; fi
echo "make-key.sh: wrote $key (mode 600$([ "$(id -u)" -eq 0 ] && echo ', owner uid 1000'))"
if [ "$(id -u)" -ne 0 ] && [ "$(id -u)" -ne 1000 ]; then
  echo "make-key.sh: the daemons run as uid 1000 and must read it: sudo chown 1000 $key" >&2
fi
