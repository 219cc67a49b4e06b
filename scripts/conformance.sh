#!/usr/bin/env bash
# External SCIM 2.0 conformance run: scim2-tester against a real `roster serve`.
#
# Usage: scripts/conformance.sh            (from any directory)
#
# Environment:
#   ROSTER_BIN               use this roster binary instead of building target/debug/roster
#   ROSTER_START_TIMEOUT     seconds to wait for the server to be ready (default 30)
#   CONFORMANCE_TIMEOUT      seconds the whole scim2-tester run may take (default 600)
#   CONFORMANCE_SKIPS        skip list file (default scripts/conformance-skips.txt)
#   CONFORMANCE_REPORT       write every result as JSON to this file (optional)
#   CONFORMANCE_VERBOSE=1    print the debug data of passing checks too
#   ROSTER_TEST_DATABASE=postgres  run the server on a new PostgreSQL database (see
#                            scripts/postgres.sh), dropped afterwards; default SQLite
#   CONFORMANCE_DATABASE_URL run the server on this existing database instead (left as it is
#                            afterwards; scripts/upgrade.sh uses it for a schema that a newer
#                            release migrated)
#   CONFORMANCE_TENANT       the tenant the run creates and uses (default conformance)
#
# Exits 0 only when no check failed. The last line is always
#   conformance: N passed, M failed, K skipped
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$ROOT"

: "${CONFORMANCE_TIMEOUT:=600}"
: "${CONFORMANCE_SKIPS:=$ROOT/scripts/conformance-skips.txt}"
: "${CONFORMANCE_TENANT:=conformance}"

TMP_DIR=""
cleanup_on_exit

fail_setup() {
  echo "conformance: ERROR: $*" >&2
  # Keep the summary-line contract: a run that could not happen is a failure.
  echo "conformance: 0 passed, 1 failed, 0 skipped"
  exit 1
}

section "conformance: Python tools (.venv)"
ensure_venv || fail_setup "could not set up the Python venv"
"$VENV_PY" -c 'import scim2_tester' || fail_setup "scim2_tester not importable from $VENV_PY"

section "conformance: roster binary"
if [ -n "${ROSTER_BIN:-}" ]; then
  BIN="$ROSTER_BIN"
  log "using ROSTER_BIN=$BIN"
else
  cargo build -p roster --locked || fail_setup "cargo build -p roster failed"
  BIN="$(cargo_target_dir)/debug/roster"
fi
[ -x "$BIN" ] || fail_setup "no executable roster binary at $BIN"

section "conformance: start server"
TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/roster-conformance.XXXXXX")"
if [ -n "${CONFORMANCE_DATABASE_URL:-}" ]; then
  DB_URL="$CONFORMANCE_DATABASE_URL"
else
  DB_URL="$(test_database_url "$TMP_DIR")" || fail_setup "could not create the test database"
  # test_database_url ran in a subshell: tell the cleanup which database to drop on exit (CI
  # runs left theirs behind).
  if [ "${ROSTER_TEST_DATABASE:-sqlite}" = "postgres" ]; then _PG_TEST_DB="${DB_URL##*/}"; fi
fi
start_roster "$BIN" "$DB_URL" "$TMP_DIR" || fail_setup "the server did not start"

TENANT_OUT="$(create_tenant "$BIN" "$DB_URL" "$ROSTER_URL" "$CONFORMANCE_TENANT" "$TMP_DIR/tenant.json")" ||
  fail_setup "could not create the tenant $CONFORMANCE_TENANT"
SCIM_BASE_URL="$(sed -n 1p <<<"$TENANT_OUT")"
export ROSTER_CONFORMANCE_TOKEN
ROSTER_CONFORMANCE_TOKEN="$(sed -n 2p <<<"$TENANT_OUT")"
log "tenant '$CONFORMANCE_TENANT' at $SCIM_BASE_URL"
case "$SCIM_BASE_URL" in
  "$ROSTER_URL"/*) ;;
  *) fail_setup "scim_base_url $SCIM_BASE_URL is not under $ROSTER_URL (check --public-url handling)" ;;
esac

section "conformance: scim2-tester"
args=(--url "$SCIM_BASE_URL" --skips "$CONFORMANCE_SKIPS")
[ -n "${CONFORMANCE_REPORT:-}" ] && args+=(--report "$CONFORMANCE_REPORT")
[ "${CONFORMANCE_VERBOSE:-0}" = "1" ] && args+=(--verbose)
set +e
timeout --kill-after=10 "$CONFORMANCE_TIMEOUT" \
  "$VENV_PY" -u "$ROOT/scripts/scim_conformance.py" "${args[@]}" </dev/null |
  tee "$TMP_DIR/driver.out"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "conformance: ERROR: scim2-tester did not finish within ${CONFORMANCE_TIMEOUT}s" >&2
  dump_roster_logs
  echo "conformance: 0 passed, 1 failed, 0 skipped"
  exit 1
fi
if ! kill -0 "$ROSTER_PID" 2>/dev/null; then
  echo "conformance: ERROR: the server died during the run" >&2
  [ "$rc" -eq 0 ] && rc=1
fi
if [ "$rc" -ne 0 ]; then
  # The server log helps with 5xx answers; then repeat the summary so that it
  # stays the closing line of the run.
  dump_roster_logs 2>&1
  summary="$(grep -E '^conformance: [0-9]+ passed, [0-9]+ failed' "$TMP_DIR/driver.out" | tail -n 1 || true)"
  echo "${summary:-conformance: 0 passed, 1 failed, 0 skipped}"
  exit 1
fi
exit 0
