#!/bin/sh
# The image's CMD. Cloud Run mounts the in-memory data volume over /data owned by root (second-generation
# execution environment), hiding the image's own app-owned /data. Started as root, this gives the database's
# directory to the app user (uid 10001, created in the Dockerfile), drops to that user (no capabilities, no new
# privileges) and execs the server, which stays PID 1 and gets Cloud Run's SIGTERM itself. Started as another
# user already (docker run --user), it execs the server directly. test/dockerfile.test.ts runs it.
set -eu
dir="$(dirname "${DB_PATH:-/data/app.db}")"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$dir"
  chown 10001:10001 "$dir"
  exec setpriv --reuid=10001 --regid=10001 --clear-groups --no-new-privs \
    --inh-caps=-all --bounding-set=-all env HOME=/app node dist/main.js
fi
exec node dist/main.js
