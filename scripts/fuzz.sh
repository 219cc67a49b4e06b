#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ for a bounded time each, on the stable toolchain.
#
# Usage: scripts/fuzz.sh [TARGET ...]     (from any directory; default: every target)
#
# Stable is enough: with `--sanitizer none`, cargo-fuzz builds with `-C` flags only (the
# sanitizer-coverage pass that feeds libFuzzer), none of them nightly's. Roster forbids
# `unsafe`, so AddressSanitizer would find nothing the fuzzer's panics do not; what is
# fuzzed is panics (debug assertions and overflow checks on), the targets' assertions,
# inputs slower than FUZZ_INPUT_TIMEOUT and memory above 2 GiB.
#
# Each target starts from its committed seeds (fuzz/corpus/TARGET/, read only) and writes what
# it finds to artifacts/fuzz/corpus/TARGET/ (kept for the next run on this machine, never
# committed). A crash fails the script; the input that crashed, its fuzzer log and the command
# that reproduces it are in artifacts/fuzz/.
#
# Environment:
#   FUZZ_SECONDS         seconds per target (default 60)
#   FUZZ_INPUT_TIMEOUT   seconds one input may take before it counts as a failure (default 10)
#   CARGO_TARGET_DIR     honoured: the fuzz build goes to its fuzz/ subdirectory
#
# The last line is always
#   fuzz: N passed, M failed
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$ROOT"

# Pinned: a new cargo-fuzz may change its flags; bump it on purpose.
CARGO_FUZZ_VERSION="0.13.2"
: "${FUZZ_SECONDS:=60}"
: "${FUZZ_INPUT_TIMEOUT:=10}"
ARTIFACTS="$ROOT/artifacts/fuzz"

case "$FUZZ_SECONDS" in
  '' | *[!0-9]*) echo "error: FUZZ_SECONDS must be a number of seconds, got '$FUZZ_SECONDS'" >&2; exit 2 ;;
esac
if [ "$FUZZ_SECONDS" -lt 1 ] || [ "$FUZZ_SECONDS" -gt 86400 ]; then
  echo "error: FUZZ_SECONDS must be 1..86400, got $FUZZ_SECONDS" >&2
  exit 2
fi

fail_setup() {
  echo "fuzz: ERROR: $*" >&2
  echo "fuzz: 0 passed, 1 failed"
  exit 1
}

section "fuzz: cargo-fuzz $CARGO_FUZZ_VERSION"
# libFuzzer itself is C++, built by libfuzzer-sys.
ensure_apt_packages c++ g++ || fail_setup "no C++ compiler for libFuzzer"
have="$(cargo fuzz --version 2>/dev/null || true)"
if [ "$have" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION (found: ${have:-none})"
  # Its own temporary target directory, not the workspace's (CARGO_TARGET_DIR).
  env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --force ||
    fail_setup "cargo install cargo-fuzz failed"
fi
cargo fuzz --version

TARGET_DIR="$(cargo_target_dir)/fuzz"
if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cd fuzz && cargo fuzz list)
fi
[ "${#TARGETS[@]}" -gt 0 ] || fail_setup "cargo fuzz list found no target"
log "targets: ${TARGETS[*]}; ${FUZZ_SECONDS}s each; build in $TARGET_DIR"

section "fuzz: build"
t0=$SECONDS
(cd fuzz && cargo fuzz build --sanitizer none --debug-assertions --target-dir "$TARGET_DIR") ||
  fail_setup "cargo fuzz build failed"
log "built in $((SECONDS - t0))s"

passed=0
failed=0
summary=()
for target in "${TARGETS[@]}"; do
  section "fuzz: $target (${FUZZ_SECONDS}s)"
  seeds="$ROOT/fuzz/corpus/$target"
  [ -d "$seeds" ] || fail_setup "no seed corpus at fuzz/corpus/$target"
  corpus="$ARTIFACTS/corpus/$target"
  crashes="$ARTIFACTS/$target"
  logfile="$ARTIFACTS/$target.log"
  mkdir -p "$corpus" "$crashes"
  rc=0
  # The first directory receives what the fuzzer finds; the seeds are only read.
  (cd fuzz && cargo fuzz run --sanitizer none --debug-assertions --target-dir "$TARGET_DIR" \
    "$target" "$corpus" "$seeds" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_INPUT_TIMEOUT" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/") >"$logfile" 2>&1 || rc=$?
  # The coverage at the start (after the seeds) and at the end, and the speed.
  start_cov="$(grep -m1 -E '^#[0-9]+[[:space:]]+INITED' "$logfile" | grep -oE 'cov: [0-9]+' || true)"
  end_line="$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$logfile" | tail -1 || true)"
  end_cov="$(grep -oE 'cov: [0-9]+' <<<"$end_line" || true)"
  runs="$(grep -oE 'stat::number_of_executed_units:[[:space:]]+[0-9]+' "$logfile" | grep -oE '[0-9]+$' || echo '?')"
  speed="$(grep -oE 'stat::average_exec_per_sec:[[:space:]]+[0-9]+' "$logfile" | grep -oE '[0-9]+$' || echo '?')"
  found="$(find "$corpus" -type f | wc -l | tr -d ' ')"
  line="$target: ${runs} runs, ${speed} exec/s, ${start_cov:-cov: ?} after the seeds -> ${end_cov:-cov: ?}, corpus ${found} (artifacts/fuzz/corpus/$target)"
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    log "ok: $line"
  else
    failed=$((failed + 1))
    echo "----- last 60 lines of artifacts/fuzz/$target.log -----" >&2
    tail -n 60 "$logfile" >&2
    echo "FAILED (exit $rc): $line" >&2
    echo "  inputs kept in artifacts/fuzz/$target/:" >&2
    ls -l "$crashes" >&2 || true
    for f in "$crashes"/*; do
      [ -f "$f" ] || continue
      echo "  reproduce: (cd fuzz && cargo fuzz run --sanitizer none --debug-assertions $target $f)" >&2
    done
    line="FAILED $line"
  fi
  summary+=("$line")
done

section "fuzz: summary"
printf '%s\n' "${summary[@]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
