#!/usr/bin/env bash
# Docs that are tested: every relative link in README.md and docs/ resolves, and the shell
# examples of the README, docs/integrating.md, docs/events.md and docs/idp/*.md run — extracted
# from the Markdown by scripts/doctest.py, each file against a fresh `roster serve` with an
# empty database, with `roster` on PATH. A block that cannot run is fenced ```sh norun: WHY.
#
# Usage: scripts/docs.sh            (from any directory)
#
# Environment:
#   ROSTER_BIN             the roster binary to use (default: build target/debug/roster)
#   DOCS_FILES             the Markdown files whose examples run (default: the list above)
#   DOCS_TIMEOUT           seconds one file's examples may take (default 180)
#   ROSTER_START_TIMEOUT   seconds to wait for each server (default 30)
#   DOCS_VERBOSE=1         print the output of examples that passed too
#
# The last line is always
#   docs: N passed, M failed, K skipped
# counted in files (passed, failed) and norun blocks (skipped).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$ROOT"

: "${DOCS_TIMEOUT:=180}"
: "${DOCS_FILES:=README.md docs/integrating.md docs/events.md $(echo docs/idp/*.md)}"

TMP_DIR=""
cleanup_on_exit

fail_setup() {
  echo "docs: ERROR: $*" >&2
  echo "docs: 0 passed, 1 failed, 0 skipped"
  exit 1
}

section "docs: tools"
# The examples use curl and jq, as the README tells a reader to install.
ensure_apt_packages curl curl jq jq python3 python3 || fail_setup "could not install curl and jq"

section "docs: relative links"
links_ok=1
# shellcheck disable=SC2046
python3 "$ROOT/scripts/doctest.py" links README.md $(find docs -name '*.md' | sort) || links_ok=0

section "docs: roster binary"
if [ -n "${ROSTER_BIN:-}" ]; then
  BIN="$ROSTER_BIN"
  log "using ROSTER_BIN=$BIN"
else
  cargo build -p roster --locked || fail_setup "cargo build -p roster failed"
  BIN="$(cargo_target_dir)/debug/roster"
fi
[ -x "$BIN" ] || fail_setup "no executable roster binary at $BIN"
TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/roster-docs.XXXXXX")"
mkdir -p "$TMP_DIR/bin"
ln -s "$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")" "$TMP_DIR/bin/roster"

passed=0
failed=0
skipped=0
for doc in $DOCS_FILES; do
  section "docs: $doc"
  name="$(echo "$doc" | tr '/.' '__')"
  work="$TMP_DIR/$name"
  mkdir -p "$work/cwd"
  # A file without examples to run needs no server (its links were checked above).
  if out="$(python3 "$ROOT/scripts/doctest.py" extract "$doc" "$work/doc.sh" "127.0.0.1:8080")" &&
    grep -q ': 0 blocks to run' <<<"$out"; then
    echo "$out"
    skipped=$((skipped + $(grep -c '^docs: skip ' <<<"$out" || true)))
    passed=$((passed + 1))
    continue
  fi
  # A fresh server and database per file. Webhooks the examples add point at made-up hosts:
  # every proxy variable points at a closed loopback port, so no delivery leaves the machine.
  DEAD_PROXY="http://127.0.0.1:9"
  ROSTER_PORT=""
  HTTP_PROXY="$DEAD_PROXY" HTTPS_PROXY="$DEAD_PROXY" ALL_PROXY="$DEAD_PROXY" \
    http_proxy="$DEAD_PROXY" https_proxy="$DEAD_PROXY" all_proxy="$DEAD_PROXY" \
    NO_PROXY="" no_proxy="" \
    start_roster "$BIN" "sqlite://$work/roster.db" "$work" || fail_setup "the server for $doc did not start"
  out="$(python3 "$ROOT/scripts/doctest.py" extract "$doc" "$work/doc.sh" "127.0.0.1:$ROSTER_PORT")" || {
    echo "$out"
    failed=$((failed + 1))
    stop_roster
    continue
  }
  echo "$out"
  skipped=$((skipped + $(grep -c '^docs: skip ' <<<"$out" || true)))
  t0=$SECONDS
  set +e
  (
    cd "$work/cwd"
    export PATH="$TMP_DIR/bin:$PATH"
    export ROSTER_DATABASE_URL="sqlite://$work/roster.db"
    export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
    unset ROSTER_PUBLIC_URL ROSTER_CONFIG ROSTER_DATABASE_URL_FILE ROSTER_ADMIN_KEY
    timeout --kill-after=10 "$DOCS_TIMEOUT" bash "$work/doc.sh" </dev/null
  ) >"$work/doc.out" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    [ "${DOCS_VERBOSE:-0}" = "1" ] && cat "$work/doc.out"
    log "ok: $doc ($((SECONDS - t0))s)"
  else
    failed=$((failed + 1))
    [ "$rc" -eq 124 ] && echo "docs: $doc did not finish within ${DOCS_TIMEOUT}s" >&2
    echo "----- output of $doc's examples (last 80 lines) -----" >&2
    tail -n 80 "$work/doc.out" >&2
    dump_roster_logs
    log "FAILED: $doc (exit $rc)"
  fi
  stop_roster
done

[ "$links_ok" -eq 1 ] || failed=$((failed + 1))
echo "docs: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
