#!/usr/bin/env bash
# Roster benchmark: bench/run.sh [--ceiling DIR | --no-ceiling] [--database postgres://…] [--nodes 2]
# (from any directory; see docs/performance.md)
#
# Builds roster in release mode, measures this machine's ceiling with the reference prototype
# (when found), starts roster on a fresh temporary SQLite database (or, with --database
# postgres://USER@HOST:PORT/DB, a new database on that PostgreSQL server, dropped on exit, and
# the prototype's PostgreSQL ceiling, `run.sh bench-pg`) on 127.0.0.1, loads
# BENCH_USERS users + one group holding all of them + one 10-member group, then drives each
# scenario with wrk for BENCH_DURATION and prints requests/s, p50/p99 latency, error counts,
# the server's memory, and each figure as a ratio to the ceiling with issue 10's target and
# whether it is met. Traffic goes to 127.0.0.1 only; every wait is bounded; the servers and the
# temporary directory are removed on exit.
#
# The ceiling: the reference prototype's `run.sh bench` (a minimal axum + rusqlite server doing
# the least work per request) with the same users, wrk threads, connections and duration, run
# in this same run before roster starts. Looked for in --ceiling DIR, else $BENCH_CEILING,
# else ../shared/limits beside the checkout. --no-ceiling (or BENCH_CEILING=none) skips it;
# without it the bench prints absolute figures only.
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
#   BENCH_SCENARIOS [all but the two long ones]  space-separated subset of: filter get
#                              login_decision create patch_active put_user patch_big_group
#                              patch_small_group get_big_group console_scim console_users
#                              console_user console_group console_log entra_initial million
#                              custom_filter (opt-in: a custom attribute filtered in memory,
#                              then indexed; BENCH_CUSTOM_REQUESTS [200] sequential filters)
#   BENCH_PROFILE [none]       space-separated scenarios to sample with perf record -g while
#                              wrk runs; the report goes to perf-NAME.txt beside the results
#   BENCH_PERF_CALLGRAPH [dwarf,16384]  perf --call-graph mode (fp needs frame pointers)
#   BENCH_BIG_GROUP_GETS [5]   sequential GETs of the big group (get_big_group)
#   BENCH_ENTRA=1              add entra_initial: `roster simulate --idp entra --initial
#                              --concurrency N` into a new tenant (takes minutes at full size)
#   BENCH_ENTRA_USERS [100000] BENCH_ENTRA_GROUPS [1000] BENCH_ENTRA_MEMBERS [200] (members per
#                              group: 200,000 memberships) BENCH_ENTRA_CONCURRENCY [16]
#                              BENCH_ENTRA_TIMEOUT [1800] seconds
#   BENCH_MILLION=1            add million: load users up to BENCH_MILLION_USERS [1000000],
#                              restart the server on that database, run filter and get, and
#                              report its RSS (loading takes long: BENCH_MILLION_TIMEOUT [7200])
#   BENCH_CEILING              the prototype's folder, or `none`
#   BENCH_DATABASE             what --database sets: a PostgreSQL server and admin database
#   BENCH_NODES [1]            what --nodes sets: with 2 (PostgreSQL only), a second node
#                              joins the database after the load, and each scenario of
#                              BENCH_TWO_NODE_SCENARIOS [filter get login_decision create
#                              patch_active put_user] runs again as NAME_2nodes, its connections
#                              split between the two nodes (one wrk per node, as a round-robin
#                              balancer would spread them), judged against the one-node run
#   LIMITS_WORK                where the prototype builds itself and keeps its data (its own
#                              default: $TMPDIR/roster-limits)
#   BENCH_ROSTER_BIN           use this binary instead of building target/release/roster
#   BENCH_OUT [artifacts/bench/<UTC time>]  where results are kept: summary.md, results.json,
#                              performance-snippet.md, ceiling.json, raw wrk output
#   BENCH_TMPDIR [$TMPDIR or /tmp]  where the temporary database lives
#   RUST_LOG [warn]            server log level during the bench
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"

CEILING_DIR="${BENCH_CEILING:-}"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --ceiling)
      [ "$#" -ge 2 ] || { echo "error: --ceiling needs a directory" >&2; exit 2; }
      CEILING_DIR="$2"
      shift 2
      ;;
    --ceiling=*) CEILING_DIR="${1#--ceiling=}"; shift ;;
    --no-ceiling) CEILING_DIR=none; shift ;;
    --database)
      [ "$#" -ge 2 ] || { echo "error: --database needs a postgres:// URL" >&2; exit 2; }
      BENCH_DATABASE="$2"
      shift 2
      ;;
    --database=*) BENCH_DATABASE="${1#--database=}"; shift ;;
    --nodes)
      [ "$#" -ge 2 ] || { echo "error: --nodes needs 1 or 2" >&2; exit 2; }
      BENCH_NODES="$2"
      shift 2
      ;;
    --nodes=*) BENCH_NODES="${1#--nodes=}"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (bench/run.sh --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$CEILING_DIR" ] && [ -x "$ROOT/../shared/limits/run.sh" ]; then
  CEILING_DIR="$(cd "$ROOT/../shared/limits" && pwd)"
fi
case "$CEILING_DIR" in
  "" | none | off) CEILING_DIR="" ;;
  *)
    if [ ! -x "$CEILING_DIR/run.sh" ]; then
      echo "error: no executable run.sh in the ceiling folder $CEILING_DIR" >&2
      exit 2
    fi
    CEILING_DIR="$(cd "$CEILING_DIR" && pwd)" # before cd: relative to where we were started
    ;;
esac
cd "$ROOT"

: "${BENCH_DATABASE:=}"
case "$BENCH_DATABASE" in
  "") ;;
  postgres://* | postgresql://*)
    # The run's own database on that server (scripts/lib.sh: created now, dropped on exit).
    export ROSTER_TEST_DATABASE=postgres ROSTER_TEST_POSTGRES="$BENCH_DATABASE"
    ;;
  *) echo "error: --database takes a postgres:// URL (SQLite is the default)" >&2; exit 2 ;;
esac

: "${BENCH_NODES:=1}"
case "$BENCH_NODES" in
  1) ;;
  2) [ -n "$BENCH_DATABASE" ] || { echo "error: --nodes 2 needs --database postgres://…" >&2; exit 2; } ;;
  *) echo "error: --nodes takes 1 or 2" >&2; exit 2 ;;
esac
: "${BENCH_TWO_NODE_SCENARIOS:=filter get login_decision create patch_active put_user}"
: "${BENCH_USERS:=100000}"
: "${BENCH_SPARE:=1000}"
: "${BENCH_BATCH:=1000}"
: "${BENCH_LOAD_CONCURRENCY:=32}"
: "${BENCH_LOAD_TIMEOUT:=1200}"
: "${BENCH_DURATION:=10s}"
: "${BENCH_THREADS:=2}"
: "${BENCH_CONNECTIONS:=16}"
: "${BENCH_CHURN:=100}"
: "${BENCH_SCENARIOS:=filter get login_decision create patch_active put_user patch_big_group patch_small_group get_big_group console_scim console_users console_user console_group console_log}"
: "${BENCH_BIG_GROUP_GETS:=5}"
: "${BENCH_ENTRA_USERS:=100000}"
: "${BENCH_ENTRA_GROUPS:=1000}"
: "${BENCH_ENTRA_MEMBERS:=200}"
: "${BENCH_ENTRA_CONCURRENCY:=16}"
: "${BENCH_ENTRA_TIMEOUT:=1800}"
: "${BENCH_MILLION_USERS:=1000000}"
: "${BENCH_MILLION_TIMEOUT:=7200}"
[ "${BENCH_ENTRA:-0}" = "1" ] && BENCH_SCENARIOS="$BENCH_SCENARIOS entra_initial"
[ "${BENCH_MILLION:-0}" = "1" ] && BENCH_SCENARIOS="$BENCH_SCENARIOS million"
: "${BENCH_OUT:=$ROOT/artifacts/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
export RUST_LOG="${RUST_LOG:-warn}"
if [ -n "$BENCH_DATABASE" ] && [[ "$RUST_LOG" != *roster_store::sql_stats* ]]; then
  # The store's cumulative statement counts, once a second while they move: sql_mark reads
  # them before and after each scenario (statements per request).
  RUST_LOG="$RUST_LOG,roster_store::sql_stats=debug"
fi

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

duration_seconds() { # wrk duration (10, 10s, 2m, 1h) -> seconds
  local d="$1" n="${1//[!0-9]/}"
  case "$d" in
    *h) echo $((n * 3600)) ;;
    *m) echo $((n * 60)) ;;
    *) echo "$n" ;;
  esac
}

# json_field FILE KEY: a top-level string of the JSON object in FILE (the CLI's --json output;
# lenient about log lines around it, as create_tenant is)
json_field() {
  python3 - "$1" "$2" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
try:
    obj = json.loads(text)
except ValueError:
    obj = [json.loads(l) for l in text.splitlines() if l.strip().startswith("{")][-1]
print(obj[sys.argv[2]])
PY
}

TMP_DIR=""
NODE2_PID=""
# The server's log, kept with the results (RUST_LOG chooses what it holds); the second node
# stopped.
keep_server_log() {
  if [ -n "$NODE2_PID" ]; then
    kill -TERM "$NODE2_PID" 2>/dev/null || true
    wait "$NODE2_PID" 2>/dev/null || true
  fi
  if [ -n "$TMP_DIR" ] && [ -f "$TMP_DIR/server.stderr" ]; then
    cp "$TMP_DIR/server.stderr" "$BENCH_OUT/server.log" 2>/dev/null || true
  fi
}
cleanup_on_exit keep_server_log

section "bench: tools"
ensure_apt_packages wrk wrk
ensure_venv
mkdir -p "$BENCH_OUT"
echo "results: $BENCH_OUT"

section "bench: build (release)"
# Rate limiting stays on (every request takes from its token's and tenant's budgets, as in
# production), with budgets a single benchmark client cannot spend: the bench measures the
# request path, not the limit.
SERVE_FLAGS=(--rate-limit-per-token 1000000/s --rate-limit-per-tenant 1000000/s --rate-limit-admin-key 1000000/s)

if [ -n "${BENCH_ROSTER_BIN:-}" ]; then
  BIN="$BENCH_ROSTER_BIN"
  log "using BENCH_ROSTER_BIN=$BIN"
else
  cargo build --release -p roster --locked
  BIN="$(cargo_target_dir)/release/roster"
fi
[ -x "$BIN" ] || { echo "error: no executable roster binary at $BIN" >&2; exit 1; }

# The ceiling first, while roster is not running: the same users, wrk threads, connections and
# duration as roster's scenarios. A failure leaves absolute figures only.
CEILING_JSON=""
if [ -n "$CEILING_DIR" ]; then
  ceiling_cmd=(bench)
  [ -n "$BENCH_DATABASE" ] && ceiling_cmd=(bench-pg --url "$BENCH_DATABASE")
  section "bench: ceiling ($CEILING_DIR/run.sh ${ceiling_cmd[*]})"
  set +e
  timeout --kill-after=10 "${BENCH_CEILING_TIMEOUT:-3600}" "$CEILING_DIR/run.sh" "${ceiling_cmd[@]}" \
    --users "$BENCH_USERS" --duration "$(duration_seconds "$BENCH_DURATION")" \
    --threads "$BENCH_THREADS" --connections "$BENCH_CONNECTIONS" \
    --json "$BENCH_OUT/ceiling.json" </dev/null 2>&1 | tee "$BENCH_OUT/ceiling.log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -eq 0 ] && [ -n "$BENCH_DATABASE" ] && [ -s "$BENCH_OUT/ceiling.json" ]; then
    # The PostgreSQL ceiling's durable insert (one INSERT per request) stands where the
    # SQLite one's group-commit insert does.
    python3 - "$BENCH_OUT/ceiling.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
if "insert" in c and "insert_group_commit" not in c:
    c["insert_group_commit"] = c.pop("insert")
json.dump(c, open(p, "w"))
PY
  fi
  if [ "$rc" -eq 0 ] && [ -s "$BENCH_OUT/ceiling.json" ]; then
    CEILING_JSON="$BENCH_OUT/ceiling.json"
  else
    echo "warning: the ceiling failed (exit $rc, see $BENCH_OUT/ceiling.log); absolute figures only" >&2
  fi
else
  log "no ceiling (--ceiling DIR, BENCH_CEILING, or ../shared/limits beside the checkout): absolute figures only"
fi

section "bench: start server"
TMP_DIR="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/roster-bench.XXXXXX")"
DB_URL="$(test_database_url "$TMP_DIR")"
# test_database_url ran in a subshell: tell the cleanup which database to drop on exit.
if [ -n "$BENCH_DATABASE" ]; then _PG_TEST_DB="${DB_URL##*/}"; fi
log "database: $DB_URL"
start_roster "$BIN" "$DB_URL" "$TMP_DIR" "${SERVE_FLAGS[@]}"
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
  if [ -n "$BENCH_DATABASE" ]; then
    psql "$DB_URL" -qAtc "SELECT pg_database_size(current_database())" |
      awk '{ printf "%.1f", $1 / 1048576 }'
    return
  fi
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
if [ -n "$BENCH_DATABASE" ]; then
  # What autovacuum leaves after a load, at once: the measured minutes see current statistics.
  psql "$DB_URL" -qAtc "ANALYZE" >/dev/null
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

# The login decision is asked with the same operator key, for the bench tenant; one request
# first shows that it finds the users (a decision for an unknown tenant would be cheaper).
export BENCH_ADMIN_KEY="$KEY" BENCH_TENANT
BENCH_TENANT="$(json_field "$TMP_DIR/tenant.json" tenant)"
python3 - "$ROSTER_URL" "$BENCH_TENANT" <<'PY' || echo "warning: the login decision check failed" >&2
import json, os, sys, urllib.request
url, tenant = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"{url}/api/v1/tenants/{tenant}/login-decision",
                             data=json.dumps({"email": "user0@bench.example"}).encode(),
                             headers={"Authorization": "Bearer " + os.environ["BENCH_ADMIN_KEY"],
                                      "Content-Type": "application/json"})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(req, timeout=30) as r:
    d = json.load(r)
print(f"login decision for user0: allowed={d.get('allowed')} reason={d.get('reason')}")
if d.get("reason") != "active":
    sys.exit(1)
PY

# The deprovisioning guard still admits every deactivation of patch_active (its count is
# written in the same transaction, as in production) but never trips: at a small BENCH_USERS
# a few seconds of patch_active deactivate more than 20% of the users, and a tripped guard
# answers 503 at once, which would measure refusals instead of writes.
python3 - "$ROSTER_URL" "$BENCH_TENANT" <<'PY' || { echo "error: setting the bench tenant's guard failed" >&2; exit 1; }
import json, os, sys, urllib.request
url, tenant = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"{url}/api/v1/tenants/{tenant}/settings", method="PATCH",
                             data=json.dumps({"deprovision_guard": {"max_percent": 100}}).encode(),
                             headers={"Authorization": "Bearer " + os.environ["BENCH_ADMIN_KEY"],
                                      "Content-Type": "application/json"})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(req, timeout=30) as r:
    json.load(r)
PY

NODE2_URL=""
if [ "$BENCH_NODES" = "2" ]; then
  section "bench: a second node on the same database"
  mkdir -p "$TMP_DIR/node2"
  saved=("$ROSTER_PID" "$ROSTER_PORT" "$ROSTER_URL" "$ROSTER_LOG_OUT" "$ROSTER_LOG_ERR")
  ROSTER_PID="" ROSTER_PORT=""
  start_roster "$BIN" "$DB_URL" "$TMP_DIR/node2" "${SERVE_FLAGS[@]}"
  NODE2_PID="$ROSTER_PID" NODE2_URL="$ROSTER_URL"
  ROSTER_PID="${saved[0]}" ROSTER_PORT="${saved[1]}" ROSTER_URL="${saved[2]}"
  ROSTER_LOG_OUT="${saved[3]}" ROSTER_LOG_ERR="${saved[4]}"
  log "node 1 at $ROSTER_URL, node 2 at $NODE2_URL"
fi

export BENCH_DIR BENCH_USERS BENCH_CHURN
export BENCH_RUN_ID
BENCH_RUN_ID="$(date +%s)-$$"

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

# sql_mark: the server's cumulative PostgreSQL counts ("statements round_trips batches
# writers"), once they include everything sent so far: the store reports them every second.
sql_mark() {
  [ -n "$BENCH_DATABASE" ] || return 0
  sleep 1.2
  grep -a 'roster_store::sql_stats' "$TMP_DIR/server.stderr" 2>/dev/null | tail -n1 |
    sed -nE 's/.*statements=([0-9]+) round_trips=([0-9]+) batches=([0-9]+) batched_writers=([0-9]+).*/\1 \2 \3 \4/p' ||
    true
}

# sql_per_request BEFORE AFTER REQUESTS: key=value figures for the RESULT line. Everything the
# process sent counts, background work included (the provisioning log's writer, the auth and
# webhook polls: about a hundred statements a second in all, a few percent of a scenario's).
sql_per_request() {
  [ -n "$1" ] && [ -n "$2" ] && [ "${3:-0}" -gt 0 ] || return 0
  python3 - "$1" "$2" "$3" <<'PY' || true
import sys
a, b, n = [int(x) for x in sys.argv[1].split()], [int(x) for x in sys.argv[2].split()], int(sys.argv[3])
st, rt, batches, writers = (y - x for x, y in zip(a, b))
wpc = f"{writers / batches:.1f}" if batches else "—"
print(f"stmts_per_req={st / n:.2f} rtt_per_req={rt / n:.2f} writers_per_commit={wpc}")
PY
}

RESULTS="$BENCH_OUT/results.txt"
: >"$RESULTS"
declare -a ROWS=()
# result LINE: keep a RESULT line (scenario=NAME key=value ...) for bench/summary.py
result() { echo "$*" >>"$RESULTS"; }
run_scenario() { # run_scenario NAME LUA [extra env assignments...]
  local name="$1" script="$2"
  shift 2
  section "bench: $name ($BENCH_DURATION, $BENCH_THREADS threads, $BENCH_CONNECTIONS connections)"
  settle
  local sql_before
  sql_before="$(sql_mark)"
  local out="$BENCH_OUT/wrk-$name.txt"
  local perf_pid=""
  if [[ " ${BENCH_PROFILE:-} " == *" $name "* ]]; then
    # Sample the server's stacks while wrk runs (perf stops itself with the duration).
    perf record --call-graph "${BENCH_PERF_CALLGRAPH:-dwarf,16384}" -F 499 -p "$ROSTER_PID" -o "$BENCH_OUT/perf-$name.data" -- \
      sleep "$(duration_seconds "$BENCH_DURATION")" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  set +e
  env BENCH_SCENARIO="$name" "$@" timeout --kill-after=10 "$(($(duration_seconds "$BENCH_DURATION") + 60))" \
    wrk --latency --timeout 30s -t "$BENCH_THREADS" -c "$BENCH_CONNECTIONS" -d "$BENCH_DURATION" \
    -s "$BENCH_DIR/$script" "$ROSTER_URL" </dev/null >"$out" 2>&1
  local rc=$?
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid"
    perf report -i "$BENCH_OUT/perf-$name.data" --stdio --no-children --percent-limit 1 \
      >"$BENCH_OUT/perf-$name.txt" 2>/dev/null
    echo "profile: $BENCH_OUT/perf-$name.txt"
  fi
  set -e
  cat "$out"
  if [ "$rc" -ne 0 ]; then
    echo "error: wrk failed for $name (exit $rc)" >&2
    ROWS+=("| $name | wrk failed (exit $rc) | | | | | |")
    result "RESULT scenario=$name failed=wrk_exit_$rc"
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
    result "RESULT scenario=$name failed=no_RESULT_line"
    return 0
  fi
  kv() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$line"; }
  if [ "$(kv requests)" = "0" ]; then
    ROWS+=("| $name | 0 requests completed | | | 0 | $(kv non2xx) | | |")
    result "RESULT scenario=$name failed=0_requests_completed"
    return 0
  fi
  local sock=$(($(kv connect_errors) + $(kv read_errors) + $(kv write_errors) + $(kv timeouts)))
  local rss
  rss="$(mib "$(mem_kib VmRSS)")"
  local sql=""
  if [ -n "$BENCH_DATABASE" ]; then
    sql="$(sql_per_request "$sql_before" "$(sql_mark)" "$(kv requests)")"
    [ -n "$sql" ] && echo "PostgreSQL: $sql"
  fi
  ROWS+=("| $name | $(kv rps) | $(kv p50_ms) | $(kv p99_ms) | $(kv requests) | $(kv non2xx) | $sock | $rss |")
  result "$line socket_errors=$sock rss_mib=$rss${sql:+ $sql}"
  if [ "$BENCH_NODES" = "2" ] && [[ " $BENCH_TWO_NODE_SCENARIOS " == *" $name "* ]]; then
    run_two_nodes "$name" "$script" "$@"
  fi
}

# run_two_nodes NAME LUA [env...]: the scenario again as NAME_2nodes, half the wrk threads and
# connections on each node at once (BENCH_TID_OFFSET keeps their spare users apart); requests
# and req/s are the sums, latencies the slower node's.
run_two_nodes() {
  local name="$1_2nodes" script="$2"
  shift 2
  local threads=$(((BENCH_THREADS + 1) / 2)) conns=$(((BENCH_CONNECTIONS + 1) / 2))
  section "bench: $name ($BENCH_DURATION, $threads threads and $conns connections on each of 2 nodes)"
  settle
  local out="$BENCH_OUT/wrk-$name.txt" i pids=() url
  for i in 1 2; do
    url="$ROSTER_URL"
    [ "$i" = 2 ] && url="$NODE2_URL"
    env BENCH_SCENARIO="$name" BENCH_TID_OFFSET=$(((i - 1) * threads)) "$@" \
      timeout --kill-after=10 "$(($(duration_seconds "$BENCH_DURATION") + 60))" \
      wrk --latency --timeout 30s -t "$threads" -c "$conns" -d "$BENCH_DURATION" \
      -s "$BENCH_DIR/$script" "$url" </dev/null >"$out.$i" 2>&1 &
    pids+=($!)
  done
  local rc=0
  for i in "${pids[@]}"; do wait "$i" || rc=$?; done
  cat "$out.1" "$out.2" >"$out"
  cat "$out"
  if ! kill -0 "$ROSTER_PID" 2>/dev/null || ! kill -0 "$NODE2_PID" 2>/dev/null; then
    echo "error: a node died during $name" >&2
    exit 1
  fi
  local line
  line="$(python3 - "$out.1" "$out.2" "$name" <<'PY'
import re, sys
kvs = []
for path in sys.argv[1:3]:
    m = [l for l in open(path, encoding="utf-8") if l.startswith("RESULT ")]
    if not m:
        print(f"RESULT scenario={sys.argv[3]} failed=no_RESULT_line")
        sys.exit()
    kvs.append(dict(kv.split("=", 1) for kv in m[0].split()[1:]))
out = {"scenario": sys.argv[3]}
for k in ("requests", "non2xx", "connect_errors", "read_errors", "write_errors", "timeouts"):
    out[k] = sum(int(kv[k]) for kv in kvs)
out["seconds"] = max(float(kv["seconds"]) for kv in kvs)
out["rps"] = f"{sum(float(kv['rps']) for kv in kvs):.1f}"
for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
    out[k] = max(float(kv[k]) for kv in kvs)
print("RESULT " + " ".join(f"{k}={v}" for k, v in out.items()))
PY
)"
  [ "$rc" -eq 0 ] || line="$line failed=wrk_exit_$rc"
  echo "$line"
  kv() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$line"; }
  local sock=$(($(kv connect_errors) + $(kv read_errors) + $(kv write_errors) + $(kv timeouts)))
  ROWS+=("| $name | $(kv rps) | $(kv p50_ms) | $(kv p99_ms) | $(kv requests) | $(kv non2xx) | $sock | |")
  result "$line socket_errors=$sock"
}

# get_big_group: a few sequential GETs of the big group with every member, timed, with the
# server's RSS sampled before, during and after.
run_big_group() {
  local name=get_big_group
  section "bench: $name ($BENCH_BIG_GROUP_GETS sequential requests, $BENCH_USERS members)"
  settle
  local out="$BENCH_OUT/$name.txt"
  set +e
  timeout --kill-after=10 "$((BENCH_BIG_GROUP_GETS * 130 + 10))" python3 "$BENCH_DIR/big_group.py" \
    --url "$SCIM_BASE_URL" --group "$(head -n1 "$BENCH_DATA/big_group_id.txt")" --pid "$ROSTER_PID" \
    --min-members "$BENCH_USERS" --requests "$BENCH_BIG_GROUP_GETS" </dev/null >"$out" 2>&1
  local rc=$?
  set -e
  cat "$out"
  local line
  line="$(grep -m1 '^RESULT ' "$out" || true)"
  if [ -z "$line" ]; then
    ROWS+=("| $name | failed (exit $rc) | | | | | |")
    result "RESULT scenario=$name failed=exit_$rc"
    return 0
  fi
  [ "$rc" -eq 0 ] || line="$line failed=exit_$rc"
  kv() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$line"; }
  ROWS+=("| $name | $(kv rps) | $(kv p50_ms) | $(kv p99_ms) | $(kv requests) | $(kv non2xx) | 0 | $(kv rss_after_mib) |")
  result "$line"
}

# custom_filter: a filter on a custom attribute of every loaded user, evaluated in memory and
# then by its index (declared afterwards and built online); last, as it changes the users.
run_custom_filter() {
  local name=custom_filter
  section "bench: $name (${BENCH_CUSTOM_REQUESTS:-200} sequential filters, without and with the index)"
  settle
  local out="$BENCH_OUT/$name.txt"
  set +e
  BENCH_ADMIN_KEY="$KEY" timeout --kill-after=10 900 python3 "$BENCH_DIR/custom_index.py" \
    --url "$SCIM_BASE_URL" --api "$ROSTER_URL/api/v1" --tenant bench \
    --ids "$BENCH_DATA/user_ids.txt" --requests "${BENCH_CUSTOM_REQUESTS:-200}" </dev/null >"$out" 2>&1
  local rc=$?
  set -e
  cat "$out"
  local line
  line="$(grep -m1 '^RESULT ' "$out" || true)"
  if [ -z "$line" ]; then
    result "RESULT scenario=$name failed=exit_$rc"
    return 0
  fi
  kv() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$line"; }
  ROWS+=("| $name (in memory) | $(kv memory_rps) | $(kv memory_p50_ms) | | ${BENCH_CUSTOM_REQUESTS:-200} | 0 | 0 | |")
  ROWS+=("| $name (indexed, built in $(kv build_s) s) | $(kv indexed_rps) | $(kv indexed_p50_ms) | | ${BENCH_CUSTOM_REQUESTS:-200} | 0 | 0 | |")
  result "$line"
}

# entra_initial: the initial cycle of an Entra-shaped tenant through `roster simulate
# --concurrency N`, into a tenant of its own (set to idp entra), timed by simulate itself.
run_entra_initial() {
  local name=entra_initial
  local memberships=$((BENCH_ENTRA_GROUPS * BENCH_ENTRA_MEMBERS))
  section "bench: $name ($BENCH_ENTRA_USERS users, $BENCH_ENTRA_GROUPS groups, $memberships memberships, concurrency $BENCH_ENTRA_CONCURRENCY)"
  settle
  local tj="$TMP_DIR/entra-tenant.json" out="$BENCH_OUT/entra-initial.json"
  if ! "$BIN" tenant create bench-entra --idp entra --json --database "$DB_URL" \
    --public-url "$ROSTER_URL" >"$tj" </dev/null; then
    result "RESULT scenario=$name failed=tenant_create"
    return 0
  fi
  local base token
  base="$(json_field "$tj" scim_base_url)"
  token="$(json_field "$tj" token)"
  set +e
  ROSTER_SIMULATE_TOKEN="$token" timeout --kill-after=10 "$BENCH_ENTRA_TIMEOUT" "$BIN" simulate \
    --idp entra --initial --concurrency "$BENCH_ENTRA_CONCURRENCY" --users "$BENCH_ENTRA_USERS" \
    --groups "$BENCH_ENTRA_GROUPS" --members-per-group "$BENCH_ENTRA_MEMBERS" \
    --target "$base" --json </dev/null >"$out" 2>"$BENCH_OUT/entra-initial.stderr"
  local rc=$?
  set -e
  local line
  line="$(python3 - "$out" "$name" "$rc" <<'PY'
import json, sys
path, name, rc = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = json.load(open(path, encoding="utf-8"))
except (OSError, ValueError):
    print(f"RESULT scenario={name} failed=simulate_exit_{rc}_no_report")
    sys.exit()
secs = r["elapsed_ms"] / 1000
members = r["groups"] * min(r["members_per_group"], r["users"])
failed = "" if r["ok"] else f" failed=step_{r['steps_run']}_of_{r['steps_total']}"
print(f"RESULT scenario={name} users={r['users']} groups={r['groups']} memberships={members} "
      f"requests={r['requests']} seconds={secs:.1f} rps={r['requests'] / max(secs, 1e-9):.1f} "
      f"users_per_s={r['users'] / max(secs, 1e-9):.0f} concurrency={r['concurrency']} "
      f"ok={str(r['ok']).lower()}{failed}")
for s in r["steps"]:
    print(f"  {s['wall_ms'] / 1000:8.1f} s  {s['requests']:>7} x {s['method']:<6} {s['name'][:70]}"
          f"{'' if s['ok'] else '  FAILED: ' + '; '.join(s['failures'][:3])}", file=sys.stderr)
PY
)"
  echo "$line"
  kv() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$line"; }
  ROWS+=("| $name | $(kv rps) | | | $(kv requests) | | | $(mib "$(mem_kib VmRSS)") |")
  result "$line"
}

# million: users up to BENCH_MILLION_USERS, then a restarted server (so that the load's
# allocations do not count) serves filter and id lookups over all of them.
run_million() {
  local extra=$((BENCH_MILLION_USERS - BENCH_USERS))
  local mdata="$TMP_DIR/million"
  section "bench: million ($BENCH_MILLION_USERS users: loading $extra more)"
  mkdir -p "$mdata"
  if [ "$extra" -gt 0 ]; then
    set +e
    timeout --kill-after=10 "$BENCH_MILLION_TIMEOUT" "$VENV_PY" -u "$BENCH_DIR/load.py" \
      --url "$SCIM_BASE_URL" --out "$mdata" --users "$extra" --first "$BENCH_USERS" --users-only \
      --concurrency "$BENCH_LOAD_CONCURRENCY" </dev/null | tee "$BENCH_OUT/load-million.log"
    local rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ]; then
      result "RESULT scenario=million_rss failed=load_exit_$rc"
      return 0
    fi
    cat "$BENCH_DATA/user_ids.txt" "$mdata/user_ids.txt" >"$mdata/all_ids.txt"
    mv "$mdata/all_ids.txt" "$mdata/user_ids.txt"
  else
    cp "$BENCH_DATA/user_ids.txt" "$mdata/user_ids.txt"
  fi
  stop_roster
  ROSTER_PORT=""
  start_roster "$BIN" "$DB_URL" "$TMP_DIR" "${SERVE_FLAGS[@]}"
  SCIM_BASE_URL="$ROSTER_URL$BENCH_BASE_PATH"
  local start_kib
  start_kib="$(mem_kib VmRSS)"
  local users
  users="$(wc -l <"$mdata/user_ids.txt")"
  run_scenario million_filter filter_username.lua BENCH_USERS="$users"
  run_scenario million_get get_user.lua BENCH_DATA="$mdata"
  result "RESULT scenario=million_rss users=$users rss_start_mib=$(mib "$start_kib") rss_after_mib=$(mib "$(mem_kib VmRSS)") rss_peak_mib=$(mib "$(mem_kib VmHWM)")"
  ROWS+=("| million_rss | | | | | | | $(mib "$(mem_kib VmHWM)") (peak) |")
}

# The two long scenarios run last, entra_initial (it adds a tenant) before million (it restarts
# the server), wherever they are listed.
RUN_ENTRA=0
RUN_MILLION=0
RUN_CUSTOM=0
for s in $BENCH_SCENARIOS; do
  case "$s" in
    filter) run_scenario filter filter_username.lua ;;
    get) run_scenario get get_user.lua ;;
    login_decision) run_scenario login_decision login_decision.lua ;;
    create) run_scenario create create_user.lua ;;
    patch_active) run_scenario patch_active patch_active.lua ;;
    put_user) run_scenario put_user put_user.lua ;;
    get_big_group) run_big_group ;;
    entra_initial) RUN_ENTRA=1 ;;
    million) RUN_MILLION=1 ;;
    custom_filter) RUN_CUSTOM=1 ;;
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
[ "$RUN_ENTRA" = "1" ] && run_entra_initial
[ "$RUN_MILLION" = "1" ] && run_million
[ "$RUN_CUSTOM" = "1" ] && run_custom_filter

PEAK_KIB="$(mem_kib VmHWM)"
DB_MIB="$(db_size_mib)"
stop_roster
GRACEFUL="$([ "$ROSTER_STOP_GRACEFUL" = "1" ] && echo yes || echo "NO (killed)")"

section "bench: summary"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')"
CONTEXT=(
  "commit: $COMMIT, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
  "data: $BENCH_USERS users (+$BENCH_SPARE spare), group of $BENCH_USERS members, group of 10 members"
  "wrk: $BENCH_DURATION per scenario, $BENCH_THREADS threads, $BENCH_CONNECTIONS connections, loopback"
  "nodes: $BENCH_NODES$(if [ "$BENCH_NODES" = 2 ]; then echo " (NAME_2nodes: the same connections split between two nodes on one database)"; fi)"
)
SUMMARY_ARGS=(--results "$RESULTS" --json "$BENCH_OUT/results.json" --snippet "$BENCH_OUT/performance-snippet.md")
[ -n "$CEILING_JSON" ] && SUMMARY_ARGS+=(--ceiling "$CEILING_JSON")
for c in "${CONTEXT[@]}"; do SUMMARY_ARGS+=(--context "$c"); done
{
  echo "# Roster benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  printf -- '- %s\n' "${CONTEXT[@]}"
  echo
  grep '^LOAD ' "$BENCH_OUT/load.log" | sed 's/^LOAD /- load: /'
  echo
  echo "## Targets (issue 10)"
  echo
  python3 "$BENCH_DIR/summary.py" "${SUMMARY_ARGS[@]}"
  echo
  echo "## Every figure"
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
echo "summary.md, results.json, performance-snippet.md and raw output: $BENCH_OUT"
