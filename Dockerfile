# One image for every hbft service: primary, backup, the chaos proxy and the load client.
#   docker compose build            (or: docker build -t hbft .)
# The guest images are committed (packages/common/guests/images), so no cross compiler is needed,
# and the TypeScript sources run through tsx, so there is no build step either.
FROM node:20-bookworm-slim

# curl: the healthchecks and the deployment scripts' status probes; iproute2: `tc` for netem in
# the chaos container (scripts/chaos.sh --mode compose --via netem), and the bridge and TAP that
# deploy/guest-network.sh makes in the node containers (setpriv, from util-linux, drops to `node`).
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl iproute2 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV NODE_ENV=production

# Dependencies first, so that a source change does not reinstall them.
COPY package.json package-lock.json ./
COPY packages/common/package.json packages/common/
COPY packages/primary/package.json packages/primary/
COPY packages/backup/package.json packages/backup/
COPY packages/cli/package.json packages/cli/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY packages packages
COPY deploy/hbft-node.sh deploy/hbft-node.sh
COPY deploy/guest-network.sh deploy/guest-network.sh
RUN ln -s /app/packages/cli/bin/hbft.js /usr/local/bin/hbft \
 && ln -s /app/deploy/hbft-node.sh /usr/local/bin/hbft-node \
 && hbft --help >/dev/null

# Daemons run unprivileged: the node services start as root only for deploy/guest-network.sh,
# which drops to `node`; `docker compose exec -u root chaos tc ...` is the other root command.
USER node
EXPOSE 6379 7000 9100 9101
# Exec form: the daemon itself receives SIGTERM (compose adds an init as PID 1 with `init: true`).
CMD ["hbft", "--help"]
