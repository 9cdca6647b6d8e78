#!/usr/bin/env bash
# Installs the external tools the replication tests run for real, with `go install`, unless the right version is
# already there: litestream at the version pinned in .litestream-version (the Dockerfile builds the same one),
# and fake-gcs-server (a GCS JSON/XML API emulator). They land in $(go env GOBIN) or $(go env GOPATH)/bin;
# put that directory on PATH: it is the one line this script prints on stdout (progress goes to stderr).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FAKE_GCS_VERSION=v1.56.1
LITESTREAM_VERSION="$(tr -d '[:space:]' < .litestream-version)"

command -v go >/dev/null || { echo "go is required (https://go.dev/dl/) to install litestream and fake-gcs-server" >&2; exit 1; }
BIN="$(go env GOBIN)"
[ -n "$BIN" ] || BIN="$(go env GOPATH)/bin"

# Module version a Go binary was built from (`go version -m`), or nothing.
built_version() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m { print $3 }'; }

have="$(built_version "$BIN/litestream" github.com/benbjohnson/litestream || true)"
if [ "$have" = "$LITESTREAM_VERSION" ]; then
  echo "litestream $have already in $BIN" >&2
else
  echo "installing litestream $LITESTREAM_VERSION into $BIN (had: ${have:-none})" >&2
  go install "github.com/benbjohnson/litestream/cmd/litestream@$LITESTREAM_VERSION"
fi

have="$(built_version "$BIN/fake-gcs-server" github.com/fsouza/fake-gcs-server || true)"
if [ "$have" = "$FAKE_GCS_VERSION" ]; then
  echo "fake-gcs-server $have already in $BIN" >&2
else
  echo "installing fake-gcs-server $FAKE_GCS_VERSION into $BIN (had: ${have:-none})" >&2
  go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
fi

echo "litestream version: $("$BIN/litestream" version)" >&2
echo "$BIN"
