#!/usr/bin/env bash
# Rolling upgrade on PostgreSQL: the previous release's binary (N-1, scripts/previous-release)
# and this tree's (N) serve one database whose schema N migrated, as during an upgrade of a
# cluster one node at a time.
#
# Usage: scripts/upgrade.sh            (from any directory)
#
# 1. Builds N-1 from its commit (git archive of this clone's history) into
#    TARGET/previous-release, seeded with this tree's compiled dependencies; kept for later runs.
# 2. Creates a new PostgreSQL database (scripts/postgres.sh's server), starts N on it (N migrates
#    it), then N-1 beside it (N-1 accepts the newer migrations only if they are expand-only).
# 3. scripts/upgrade_check.py writes through each node and reads through the other (users,
#    groups, If-Match, uniqueness, the event feed).
# 4. scim2-tester (scripts/conformance.sh) against an N-1 node on that schema, while N runs.
# The database is dropped and both servers stopped on exit.
#
# Environment:
#   ROSTER_BIN             this tree's roster binary (default: TARGET/debug/roster, built if missing)
#   ROSTER_PREVIOUS_BIN    use this N-1 binary instead of building it
#   ROSTER_TEST_POSTGRES   the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres)
#   ROSTER_SKIP_CONFORMANCE=1  skip step 4 (local use only; ignored when CI=true)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$ROOT"

read -r PREV_VERSION PREV_COMMIT < <(grep -v '^#' "$ROOT/scripts/previous-release" | grep -v '^ *$' | head -n 1)
TARGET="$(cargo_target_dir)"

section "upgrade: this tree's binary"
if [ -n "${ROSTER_BIN:-}" ]; then
  NEW_BIN="$ROSTER_BIN"
else
  cargo build --workspace --locked
  NEW_BIN="$TARGET/debug/roster"
fi
log "N:   $NEW_BIN ($("$NEW_BIN" --version))"

section "upgrade: the previous release ($PREV_VERSION, ${PREV_COMMIT:0:12})"
if [ -n "${ROSTER_PREVIOUS_BIN:-}" ]; then
  PREV_BIN="$ROSTER_PREVIOUS_BIN"
else
  PREV_DIR="$TARGET/previous-release"
  PREV_BIN="$PREV_DIR/target/debug/roster"
  if [ ! -x "$PREV_BIN" ] || [ "$(cat "$PREV_DIR/commit" 2>/dev/null)" != "$PREV_COMMIT" ]; then
    if ! git -C "$ROOT" cat-file -e "$PREV_COMMIT^{commit}" 2>/dev/null; then
      # A shallow clone: fetch the history (or that one commit) from where it came from.
      log "commit ${PREV_COMMIT:0:12} is not in this clone; fetching it"
      git -C "$ROOT" fetch --quiet --unshallow 2>/dev/null ||
        git -C "$ROOT" fetch --quiet origin "$PREV_COMMIT" 2>/dev/null || true
    fi
    if ! git -C "$ROOT" cat-file -e "$PREV_COMMIT^{commit}" 2>/dev/null; then
      echo "error: commit $PREV_COMMIT of release $PREV_VERSION is not in this clone and" \
        "could not be fetched (git fetch --unshallow, or set ROSTER_PREVIOUS_BIN)" >&2
      exit 1
    fi
    rm -rf "$PREV_DIR/src" "$PREV_DIR/commit"
    mkdir -p "$PREV_DIR/src" "$PREV_DIR/target/debug"
    git -C "$ROOT" archive "$PREV_COMMIT" | tar -x -C "$PREV_DIR/src"
    # Seed with this tree's compiled dependencies (copies, not links: nothing the old build
    # writes can reach this tree's target); only the workspace's own crates then compile.
    if [ ! -d "$PREV_DIR/target/debug/deps" ] && [ -d "$TARGET/debug/deps" ]; then
      log "seeding its target with this tree's compiled dependencies"
      mkdir -p "$PREV_DIR/target/debug/deps"
      cp -a "$TARGET/debug/build" "$TARGET/debug/.fingerprint" "$PREV_DIR/target/debug/"
      find "$TARGET/debug/deps" -maxdepth 1 -type f -name 'lib*' \
        ! -name 'libroster*' ! -name 'libscim_proto*' -exec cp -a -t "$PREV_DIR/target/debug/deps" {} +
    fi
    t0=$SECONDS
    (cd "$PREV_DIR/src" && CARGO_TARGET_DIR="$PREV_DIR/target" cargo build --workspace --locked)
    echo "$PREV_COMMIT" >"$PREV_DIR/commit"
    log "built the previous release in $((SECONDS - t0))s"
  fi
fi
log "N-1: $PREV_BIN ($("$PREV_BIN" --version))"

TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/roster-upgrade.XXXXXX")"
NEW_PID=""
stop_new() {
  if [ -n "$NEW_PID" ]; then
    kill -TERM "$NEW_PID" 2>/dev/null || true
    wait "$NEW_PID" 2>/dev/null || true
  fi
}
cleanup_on_exit stop_new

section "upgrade: N migrates a new database, N-1 joins it"
export ROSTER_TEST_DATABASE=postgres
DB_URL="$(test_database_url "$TMP_DIR")"
_PG_TEST_DB="${DB_URL##*/}"
mkdir -p "$TMP_DIR/new" "$TMP_DIR/old"
start_roster "$NEW_BIN" "$DB_URL" "$TMP_DIR/new"
NEW_PID="$ROSTER_PID" NEW_URL="$ROSTER_URL"
ROSTER_PID="" ROSTER_PORT=""
log "schema: $(psql "$DB_URL" -qAtc "SELECT count(*) || ' migrations, the last ' || max(version) FROM _roster_migrations")"
start_roster "$PREV_BIN" "$DB_URL" "$TMP_DIR/old"
OLD_URL="$ROSTER_URL"
if grep -q 'newer Roster' "$TMP_DIR/old/server.stdout" "$TMP_DIR/old/server.stderr"; then
  log "N-1 noted the newer expand-only migrations: $(grep -h -m1 'newer Roster' "$TMP_DIR/old"/server.* | cut -c1-200)"
fi

section "upgrade: mixed-version check (N-1 at $OLD_URL, N at $NEW_URL)"
TENANT_OUT="$(create_tenant "$NEW_BIN" "$DB_URL" "$NEW_URL" upgrade "$TMP_DIR/tenant.json")"
TOKEN="$(sed -n 2p <<<"$TENANT_OUT")"
# The old release's CLI on the new schema too.
ADMIN_KEY="$("$PREV_BIN" admin-key create --json --database "$DB_URL" </dev/null |
  python3 -c 'import json, sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["key"])')"
python3 "$ROOT/scripts/upgrade_check.py" --old "$OLD_URL" --new "$NEW_URL" --tenant upgrade \
  --token "$TOKEN" --admin-key "$ADMIN_KEY"
stop_roster

if [ "${ROSTER_SKIP_CONFORMANCE:-0}" = "1" ] && [ "${CI:-}" != "true" ]; then
  echo "upgrade: mixed-version check passed; scim2-tester against N-1 SKIPPED (ROSTER_SKIP_CONFORMANCE=1)"
  exit 0
fi
section "upgrade: scim2-tester against N-1 on the new schema (N still serving)"
CONFORMANCE_DATABASE_URL="$DB_URL" CONFORMANCE_TENANT=conformance-previous \
  ROSTER_BIN="$PREV_BIN" ROSTER_TEST_DATABASE=sqlite bash "$ROOT/scripts/conformance.sh"
if ! kill -0 "$NEW_PID" 2>/dev/null; then
  echo "upgrade: ERROR: node N died during the run" >&2
  exit 1
fi
echo "upgrade: N-1 ($PREV_VERSION) and N ran on one schema; the mixed-version check and scim2-tester passed"
