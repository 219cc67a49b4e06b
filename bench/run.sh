#!/usr/bin/env bash
# Roster benchmark: bench/run.sh   (from any directory; see docs/performance.md)
#
# Builds roster in release mode, starts it on a fresh temporary SQLite database
# on 127.0.0.1, loads BENCH_USERS users + one group holding all of them + one
# 10-member group, then drives each scenario with wrk for BENCH_DURATION and
# prints requests/s, p50/p99 latency, error counts and the server's memory.
# Traffic goes to 127.0.0.1 only; every wait is bounded; the server and the
# temporary directory are removed on exit.
#
# Environment (defaults in brackets):
#   BENCH_USERS [100000]       users loaded, all members of the big group
#   BENCH_SPARE [1000]         extra users in no group (for the membership scenarios)
#   BENCH_BATCH [1000]         members per PATCH while filling the big group
#   BENCH_LOAD_CONCURRENCY [32] concurrent POSTs while loading
#   BENCH_LOAD_TIMEOUT [1200]  seconds the whole load may take
#   BENCH_DURATION [10s]       wrk duration per scenario
#   BENCH_THREADS [2]          wrk threads
#   BENCH_CONNECTIONS [16]     wrk connections (total)
#   BENCH_CHURN [100]          spare users per wrk thread in the membership scenarios
#   BENCH_SCENARIOS [all]      space-separated subset of: filter get create patch_active
#                              patch_big_group patch_small_group console_scim console_users
#                              console_user console_group console_log
#   BENCH_ROSTER_BIN           use this binary instead of building target/release/roster
#   BENCH_OUT [artifacts/bench/<UTC time>]  where results are kept
#   BENCH_TMPDIR [$TMPDIR or /tmp]  where the temporary database lives
#   RUST_LOG [warn]            server log level during the bench
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"
cd "$ROOT"

: "${BENCH_USERS:=100000}"
: "${BENCH_SPARE:=1000}"
: "${BENCH_BATCH:=1000}"
: "${BENCH_LOAD_CONCURRENCY:=32}"
: "${BENCH_LOAD_TIMEOUT:=1200}"
: "${BENCH_DURATION:=10s}"
: "${BENCH_THREADS:=2}"
: "${BENCH_CONNECTIONS:=16}"
: "${BENCH_CHURN:=100}"
: "${BENCH_SCENARIOS:=filter get create patch_active patch_big_group patch_small_group console_scim console_users console_user console_group console_log}"
: "${BENCH_OUT:=$ROOT/artifacts/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
export RUST_LOG="${RUST_LOG:-warn}"

if [ $((BENCH_THREADS * BENCH_CHURN)) -gt "$BENCH_SPARE" ]; then
  echo "error: BENCH_THREADS*BENCH_CHURN ($((BENCH_THREADS * BENCH_CHURN))) > BENCH_SPARE ($BENCH_SPARE)" >&2
  exit 2
fi
if ! [[ "$BENCH_DURATION" =~ ^[0-9]+[smh]?$ ]]; then
  echo "error: BENCH_DURATION must look like 10s, 2m or 1h" >&2
  exit 2
fi
if [ "$BENCH_USERS" -lt 10 ]; then
  echo "error: BENCH_USERS must be at least 10" >&2
  exit 2
fi

TMP_DIR=""
cleanup() {
  local rc=$?
  stop_roster
  if [ -n "$TMP_DIR" ] && [ -d "$TMP_DIR" ]; then
    rm -rf "$TMP_DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

section "bench: tools"
ensure_apt_packages wrk wrk
ensure_venv
mkdir -p "$BENCH_OUT"
echo "results: $BENCH_OUT"

section "bench: build (release)"
if [ -n "${BENCH_ROSTER_BIN:-}" ]; then
  BIN="$BENCH_ROSTER_BIN"
  log "using BENCH_ROSTER_BIN=$BIN"
else
  cargo build --release -p roster --locked
  BIN="$(cargo_target_dir)/release/roster"
fi
[ -x "$BIN" ] || { echo "error: no executable roster binary at $BIN" >&2; exit 1; }

section "bench: start server"
TMP_DIR="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/roster-bench.XXXXXX")"
DB_URL="sqlite://$TMP_DIR/roster.db"
start_roster "$BIN" "$DB_URL" "$TMP_DIR"
TENANT_OUT="$(create_tenant "$BIN" "$DB_URL" "$ROSTER_URL" bench "$TMP_DIR/tenant.json")"
SCIM_BASE_URL="$(sed -n 1p <<<"$TENANT_OUT")"
export BENCH_TOKEN
BENCH_TOKEN="$(sed -n 2p <<<"$TENANT_OUT")"
case "$SCIM_BASE_URL" in
  http://127.0.0.1:*/* | http://localhost:*/*) ;;
  *) echo "error: scim_base_url $SCIM_BASE_URL is not on loopback" >&2; exit 1 ;;
esac
export BENCH_BASE_PATH
BENCH_BASE_PATH="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).path.rstrip("/"))' "$SCIM_BASE_URL")"
log "tenant 'bench' at $SCIM_BASE_URL"

mem_kib() { # mem_kib FIELD -> value in KiB from /proc/PID/status
  awk -v f="$1:" '$1 == f { print $2 }' "/proc/$ROSTER_PID/status" 2>/dev/null || echo 0
}
mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
db_size_mib() {
  local total=0 f s
  for f in "$TMP_DIR"/roster.db*; do
    [ -f "$f" ] || continue
    s="$(stat -c %s "$f")"
    total=$((total + s))
  done
  awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }'
}

section "bench: load ($BENCH_USERS users, $BENCH_SPARE spare, big group, small group)"
export BENCH_DATA="$TMP_DIR/data"
set +e
timeout --kill-after=10 "$BENCH_LOAD_TIMEOUT" "$VENV_PY" -u "$BENCH_DIR/load.py" \
  --url "$SCIM_BASE_URL" --out "$BENCH_DATA" --users "$BENCH_USERS" --spare "$BENCH_SPARE" \
  --batch "$BENCH_BATCH" --concurrency "$BENCH_LOAD_CONCURRENCY" </dev/null | tee "$BENCH_OUT/load.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && echo "error: load did not finish within ${BENCH_LOAD_TIMEOUT}s" >&2
  dump_roster_logs
  exit 1
fi
RSS_AFTER_LOAD="$(mem_kib VmRSS)"
log "after load: RSS $(mib "$RSS_AFTER_LOAD") MiB, database $(db_size_mib) MiB"

# A console session for the console_* scenarios: an admin key signs in like a browser does
# (the sign-in page's pre-session cookie and CSRF field, then the key form).
export BENCH_CONSOLE_SESSION
KEY="$("$BIN" admin-key create --json --database "$DB_URL" </dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')"
BENCH_CONSOLE_SESSION="$(python3 - "$ROSTER_URL" "$KEY" <<'PY'
import re, sys, urllib.parse, urllib.request
url, key = sys.argv[1], sys.argv[2]
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
with opener.open(f"{url}/console/sign-in", timeout=30) as r:
    pre = r.headers["Set-Cookie"].split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.read().decode()).group(1)
body = urllib.parse.urlencode({"key": key, "csrf": csrf}).encode()
req = urllib.request.Request(f"{url}/console/sign-in/key", data=body, headers={"Cookie": pre})
try:
    opener.open(req, timeout=30)
    sys.exit("error: console sign-in did not redirect")
except urllib.error.HTTPError as e:
    if e.code != 303:
        sys.exit(f"error: console sign-in answered {e.code}")
    print(e.headers["Set-Cookie"].split(";")[0].split("=", 1)[1])
PY
)"

export BENCH_DIR BENCH_USERS BENCH_CHURN
export BENCH_RUN_ID
BENCH_RUN_ID="$(date +%s)-$$"

duration_seconds() { # wrk duration (10, 10s, 2m, 1h) -> seconds
  local d="$1" n="${1//[!0-9]/}"
  case "$d" in
    *h) echo $((n * 3600)) ;;
    *m) echo $((n * 60)) ;;
    *) echo "$n" ;;
  esac
}

# Before each scenario: let the previous one's in-flight work drain, so that
# it does not pollute the next figures. One serial write (PATCH active=true on
# user0) waits behind any queued write; bounded to 120 s.
settle() {
  sleep "${BENCH_SETTLE:-2}"
  "$VENV_PY" - "$SCIM_BASE_URL" "$(head -n1 "$BENCH_DATA/user_ids.txt")" <<'PY'
import json, os, sys, time, urllib.request
base, uid = sys.argv[1], sys.argv[2]
body = json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "active", "value": True}]}).encode()
req = urllib.request.Request(f"{base}/Users/{uid}", data=body, method="PATCH", headers={
    "Authorization": "Bearer " + os.environ["BENCH_TOKEN"], "Content-Type": "application/scim+json"})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
t0 = time.monotonic()
try:
    with opener.open(req, timeout=120) as r:
        status = r.status
except urllib.error.HTTPError as e:
    status = e.code
except Exception as e:  # noqa: BLE001
    status = f"error {e}"
print(f"settle: serial write answered {status} in {1000 * (time.monotonic() - t0):.1f} ms", flush=True)
PY
}

declare -a ROWS=()
run_scenario() { # run_scenario NAME LUA [extra env assignments...]
  local name="$1" script="$2"
  shift 2
  section "bench: $name ($BENCH_DURATION, $BENCH_THREADS threads, $BENCH_CONNECTIONS connections)"
  settle
  local out="$BENCH_OUT/wrk-$name.txt"
  set +e
  env BENCH_SCENARIO="$name" "$@" timeout --kill-after=10 "$(($(duration_seconds "$BENCH_DURATION") + 60))" \
    wrk --latency --timeout 30s -t "$BENCH_THREADS" -c "$BENCH_CONNECTIONS" -d "$BENCH_DURATION" \
    -s "$BENCH_DIR/$script" "$ROSTER_URL" </dev/null >"$out" 2>&1
  local rc=$?
  set -e
  cat "$out"
  if [ "$rc" -ne 0 ]; then
    echo "error: wrk failed for $name (exit $rc)" >&2
    ROWS+=("| $name | wrk failed (exit $rc) | | | | | |")
    return 0
  fi
  if ! kill -0 "$ROSTER_PID" 2>/dev/null; then
    echo "error: the server died during $name" >&2
    dump_roster_logs
    exit 1
  fi
  local line
  line="$(grep -m1 '^RESULT ' "$out" || true)"
  if [ -z "$line" ]; then
    ROWS+=("| $name | no RESULT line | | | | | |")
    return 0
  fi
  kv() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$line"; }
  if [ "$(kv requests)" = "0" ]; then
    ROWS+=("| $name | 0 requests completed | | | 0 | $(kv non2xx) | | |")
    return 0
  fi
  local sock=$(($(kv connect_errors) + $(kv read_errors) + $(kv write_errors) + $(kv timeouts)))
  ROWS+=("| $name | $(kv rps) | $(kv p50_ms) | $(kv p99_ms) | $(kv requests) | $(kv non2xx) | $sock | $(mib "$(mem_kib VmRSS)") |")
}

for s in $BENCH_SCENARIOS; do
  case "$s" in
    filter) run_scenario filter filter_username.lua ;;
    get) run_scenario get get_user.lua ;;
    create) run_scenario create create_user.lua ;;
    patch_active) run_scenario patch_active patch_active.lua ;;
    patch_big_group) run_scenario patch_big_group patch_members.lua BENCH_GROUP_FILE="$BENCH_DATA/big_group_id.txt" ;;
    patch_small_group) run_scenario patch_small_group patch_members.lua BENCH_GROUP_FILE="$BENCH_DATA/small_group_id.txt" ;;
    console_scim) run_scenario console_scim console.lua BENCH_CONSOLE_PAGE=scim ;;
    console_users) run_scenario console_users console.lua BENCH_CONSOLE_PAGE=users ;;
    console_user) run_scenario console_user console.lua BENCH_CONSOLE_PAGE=user ;;
    console_group) run_scenario console_group console.lua BENCH_CONSOLE_PAGE=group ;;
    console_log) run_scenario console_log console.lua BENCH_CONSOLE_PAGE=log ;;
    *) echo "error: unknown scenario '$s'" >&2; exit 2 ;;
  esac
done

PEAK_KIB="$(mem_kib VmHWM)"
DB_MIB="$(db_size_mib)"
stop_roster
GRACEFUL="$([ "$ROSTER_STOP_GRACEFUL" = "1" ] && echo yes || echo "NO (killed)")"

section "bench: summary"
{
  echo "# Roster benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
  echo "- data: $BENCH_USERS users (+$BENCH_SPARE spare), group of $BENCH_USERS members, group of 10 members"
  echo "- wrk: $BENCH_DURATION per scenario, $BENCH_THREADS threads, $BENCH_CONNECTIONS connections, loopback"
  echo
  grep '^LOAD ' "$BENCH_OUT/load.log" | sed 's/^LOAD /- load: /'
  echo
  echo "| scenario | req/s | p50 ms | p99 ms | requests | non-2xx | socket errors | RSS after (MiB) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "- server RSS after load: $(mib "$RSS_AFTER_LOAD") MiB; peak RSS (VmHWM): $(mib "$PEAK_KIB") MiB"
  echo "- database size at the end: $DB_MIB MiB"
  echo "- graceful exit on SIGTERM: $GRACEFUL"
} | tee "$BENCH_OUT/summary.md"
echo
echo "raw wrk output and summary.md: $BENCH_OUT"
