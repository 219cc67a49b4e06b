#!/usr/bin/env bash
# The "fast at scale" scenario of issue 14, through HTTP: 1,000 tenants and 1,000,000
# provisioning-log rows (seeded directly through the store by the health_bench example, as the
# log's writer appends them), then the real `roster serve` on that database, and the console's
# tenants list (health columns, every page of 50) and tenants' SCIM pages (with the 7-day
# chart) timed as a signed-in operator: p50/p99 per page, target under 100 ms.
#
#   bench/console_health.sh                      # release build; 1,000 tenants, 1,000,000 rows
#   BENCH_PROFILE=debug bench/console_health.sh  # a debug build (slower; say so with figures)
#   HEALTH_BENCH_ROWS=200000 bench/console_health.sh
#   HEALTH_BENCH_DB=/tmp/h.db bench/console_health.sh   # keep the database; a second run reuses it
#   BENCH_ROUNDS=3 (passes over the pages; the first, a warm-up, is not counted)
#
# Everything runs on 127.0.0.1; the server is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${BENCH_PROFILE:-release}"
ROUNDS="${BENCH_ROUNDS:-3}"
FLAG=()
[ "$PROFILE" = release ] && FLAG=(--release)
TARGET="${CARGO_TARGET_DIR:-target}"
WORK="$(mktemp -d)"
DB="${HEALTH_BENCH_DB:-$WORK/health.db}"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

cargo build "${FLAG[@]}" -p roster --locked
echo "== seeding $DB (health_bench) =="
HEALTH_BENCH_DB="$DB" cargo run "${FLAG[@]}" -p roster-store --example health_bench
BIN="$TARGET/$PROFILE/roster"
URL_FILE="$WORK/url"
RUST_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --database "sqlite://$DB" \
  --webhook-poll-ms 60000 >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  ADDR="$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$WORK/serve.log" | head -1 || true)"
  [ -n "$ADDR" ] && break
  sleep 0.2
done
[ -n "${ADDR:-}" ] || { cat "$WORK/serve.log"; echo "the server did not start" >&2; exit 1; }
echo "$ADDR" >"$URL_FILE"
KEY="$("$BIN" admin-key create --json --database "sqlite://$DB" </dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')"

python3 - "$ADDR" "$KEY" "$ROUNDS" <<'PY'
import re, sys, time, urllib.parse, urllib.request
url, key, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
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
    session = e.headers["Set-Cookie"].split(";")[0]

def get(path):
    t = time.perf_counter()
    with opener.open(urllib.request.Request(url + path, headers={"Cookie": session}), timeout=60) as r:
        body = r.read()
        assert r.status == 200, (path, r.status)
    return (time.perf_counter() - t) * 1000, body

_, first = get("/console/tenants")
pages = int(re.search(rb"Page 1 of (\d+)", first).group(1))
assert b"failed</a>" in first, "the seeded tenants have failures"
tenants = [f"tenant-{i:04d}" for i in range(0, 1000, 20)]
lists, scims = [], []
for rnd in range(rounds):
    for p in range(1, pages + 1):
        ms, _ = get(f"/console/tenants?page={p}")
        if rnd:
            lists.append(ms)
    for t in tenants:
        ms, body = get(f"/console/t/{t}")
        assert b'id="chart"' in body
        if rnd:
            scims.append(ms)

def report(label, xs):
    xs = sorted(xs)
    q = lambda f: xs[min(len(xs) - 1, round((len(xs) - 1) * f))]
    print(f"{label}: n={len(xs)} p50={q(0.5):.1f} ms p99={q(0.99):.1f} ms max={xs[-1]:.1f} ms")

print(f"== {url}: {pages} pages of tenants, {len(tenants)} SCIM pages, {rounds - 1} counted passes ==")
report("GET /console/tenants?page=N (50 tenants with health)", lists)
report("GET /console/t/{tenant} (SCIM page with the 7-day chart)", scims)
PY
