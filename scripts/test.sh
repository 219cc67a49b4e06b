#!/usr/bin/env bash
# The whole Roster test suite, in one command:  ./scripts/test.sh
#
# Works from any directory, on a fresh Debian machine with the Rust toolchain:
# what else it needs (Python venv with pinned scim2-tester, apt packages) it
# installs itself when missing.
#
# Steps:
#   CI=true only:  cargo fmt --check, cargo clippy -D warnings
#   always:        cargo build --workspace --locked
#                  scripts/e2e.sh (Chromium + chromedriver for the console e2e test)
#                  scripts/postgres.sh (a PostgreSQL server for the PostgreSQL tests)
#                  cargo test  --workspace --locked (screenshots in artifacts/e2e/)
#                  the integration suite again on PostgreSQL (ROSTER_TEST_DATABASE=postgres)
#                  scripts/upgrade.sh (the previous release's binary beside this one on a
#                  schema this one migrated: a mixed-version check, then scim2-tester)
#                  scripts/docs.sh (relative links; the docs' shell examples against a server)
#                  scripts/fuzz.sh (each cargo-fuzz target for FUZZ_SECONDS, 60 by default, on
#                  the stable toolchain; installs the pinned cargo-fuzz when missing)
#                  scripts/conformance.sh (scim2-tester against a live server, on
#                  PostgreSQL and on SQLite)
#                  scripts/schemathesis.sh (the admin API against docs/openapi.json)
#
# Environment:
#   CI=true                  also run the fmt and clippy gates
#   ROSTER_SKIP_CONFORMANCE=1  skip the conformance and schemathesis steps (local use only;
#                              ignored when CI=true)
#   ROSTER_SKIP_FUZZ=1       skip the fuzzing step (local use only; ignored when CI=true)
#   FUZZ_SECONDS             seconds per fuzz target (default 60)
#   CARGO_TARGET_DIR         honoured (shared build cache)
#   ROSTER_TEST_POSTGRES     the PostgreSQL server the tests create their databases on
#                            [postgres://postgres@127.0.0.1:5432/postgres; started when none answers]
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$ROOT"

STEP="setup"
STARTED=$SECONDS
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '\ntest.sh: FAILED in step "%s" (exit %s) after %ss\n' "$STEP" "$rc" "$((SECONDS - STARTED))" >&2
  fi
}
trap on_exit EXIT

step() {
  STEP="$1"
  section "$1"
}

timed() {
  local t0=$SECONDS
  "$@"
  log "ok: $* ($((SECONDS - t0))s)"
}

step "environment"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install the Rust toolchain (rustup) first" >&2
  exit 1
fi
# gcc builds the C parts of dependencies (bundled SQLite).
ensure_apt_packages cc gcc python3 python3
echo "repo:    $ROOT"
echo "CI:      ${CI:-false}"
echo "cargo:   $(cargo --version)"
echo "rustc:   $(rustc --version)"
echo "python3: $(python3 --version 2>&1)"
echo "target:  ${CARGO_TARGET_DIR:-<default>}"

if [ "${CI:-}" = "true" ]; then
  step "cargo fmt --check"
  timed cargo fmt --all -- --check

  step "cargo clippy"
  timed cargo clippy --workspace --all-targets --locked -- -D warnings
fi

step "cargo build"
timed cargo build --workspace --locked

step "browser for the console e2e test"
bash "$ROOT/scripts/e2e.sh"

step "PostgreSQL for the PostgreSQL tests"
ROSTER_TEST_POSTGRES="$(bash "$ROOT/scripts/postgres.sh" | tail -1)"
export ROSTER_TEST_POSTGRES

step "cargo test"
timed cargo test --workspace --locked --no-fail-fast

# Reuse the binary `cargo build --workspace` just made: `cargo build -p roster`
# alone may unify features differently and rebuild dependencies.
if [ -z "${ROSTER_BIN:-}" ]; then
  ROSTER_BIN="$(cargo_target_dir)/debug/roster"
  export ROSTER_BIN
fi

step "integration suite on PostgreSQL (the console e2e included)"
timed env ROSTER_TEST_DATABASE=postgres cargo test -p roster --test it --locked --no-fail-fast

step "rolling upgrade (the previous release's binary on this tree's PostgreSQL schema)"
timed bash "$ROOT/scripts/upgrade.sh"

step "docs (links and shell examples)"
timed bash "$ROOT/scripts/docs.sh"

if [ "${ROSTER_SKIP_FUZZ:-0}" = "1" ] && [ "${CI:-}" != "true" ]; then
  step "fuzzing (SKIPPED: ROSTER_SKIP_FUZZ=1)"
  echo "WARNING: the fuzz targets were not run on request" >&2
else
  step "fuzzing (each target ${FUZZ_SECONDS:-60}s)"
  timed bash "$ROOT/scripts/fuzz.sh"
fi

if [ "${ROSTER_SKIP_CONFORMANCE:-0}" = "1" ] && [ "${CI:-}" != "true" ]; then
  step "conformance and schemathesis (SKIPPED: ROSTER_SKIP_CONFORMANCE=1)"
  echo "WARNING: the scim2-tester and schemathesis runs were skipped on request" >&2
else
  step "conformance (scim2-tester) on PostgreSQL"
  log "all cargo and docs steps passed ($((SECONDS - STARTED))s so far)"
  ROSTER_TEST_DATABASE=postgres bash "$ROOT/scripts/conformance.sh"

  step "conformance (scim2-tester)"
  bash "$ROOT/scripts/conformance.sh"

  step "admin API contract (schemathesis)"
  bash "$ROOT/scripts/schemathesis.sh"
fi

STEP="done"
# No trailing message on success: the closing line stays the schemathesis
# summary ("schemathesis: N passed, M failed") for the CI log reader; the
# conformance summary ("conformance: N passed, M failed, K skipped") is above it.
