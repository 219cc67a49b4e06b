#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for the tests: ./scripts/postgres.sh
#
# The PostgreSQL tests (the store conformance suite on PostgreSQL, the integration suite
# against `roster serve --database postgres://…`) create a database of their own on the server
# that ROSTER_TEST_POSTGRES names (default postgres://postgres@127.0.0.1:5432/postgres, the
# project machines' local server with trust auth) and drop it afterwards.
#
# When nothing answers there, this script starts one: it installs Debian's `postgresql`
# package if initdb is missing, then runs a private cluster (trust auth, owner `postgres`) in
# target/pgdata on 127.0.0.1:5432, left running for later runs. Prints the URL to use.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

URL="${ROSTER_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"

answers() {
  command -v psql >/dev/null 2>&1 && psql "$URL" -qAtc 'SELECT 1' >/dev/null 2>&1
}

if answers; then
  log "PostgreSQL answers at $URL"
  echo "$URL"
  exit 0
fi
if [ -n "${ROSTER_TEST_POSTGRES:-}" ]; then
  echo "error: nothing answers at ROSTER_TEST_POSTGRES=$URL" >&2
  exit 1
fi

log "no PostgreSQL at $URL: starting one"
bindir() { find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1; }
if [ -z "$(bindir)" ] || ! command -v psql >/dev/null 2>&1; then
  _apt postgresql postgresql-client
fi
BIN="$(bindir)"
[ -n "$BIN" ] || { echo "error: no PostgreSQL binaries under /usr/lib/postgresql" >&2; exit 1; }

# A cluster installed by the package (Debian starts it on 5432 unless told not to).
if command -v pg_ctlcluster >/dev/null 2>&1 && pg_lsclusters -h 2>/dev/null | grep -q .; then
  while read -r ver name port status _; do
    if [ "$port" = "5432" ] && [ "$status" != "online" ]; then
      pg_ctlcluster "$ver" "$name" start || true
    fi
  done < <(pg_lsclusters -h)
  sleep 1
  if answers; then
    log "started the packaged cluster"
    echo "$URL"
    exit 0
  fi
fi

# A private cluster with trust auth. initdb refuses to run as root: run it as `postgres`.
DATA="$ROOT/target/pgdata"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
  as_owner=(runuser -u postgres --)
  mkdir -p "$DATA"
  chown postgres "$DATA"
fi
if [ ! -f "$DATA/PG_VERSION" ]; then
  "${as_owner[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
fi
"${as_owner[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p 5432 -k /tmp" start >/dev/null
answers || { echo "error: the private cluster in $DATA does not answer at $URL" >&2; exit 1; }
log "started a private cluster in $DATA"
echo "$URL"
