# shellcheck shell=bash
# Helpers shared by scripts/test.sh, scripts/conformance.sh and bench/run.sh.
# Source it; it defines functions and a few variables, and runs nothing else.
#
#   ROOT            the repository root (absolute)
#   section TITLE   print a visible section header
#   ensure_apt_packages CMD PKG [CMD PKG ...]
#                   apt-get install PKG for each CMD that is not on PATH
#   ensure_venv     create/refresh .venv/ from scripts/requirements-conformance.txt
#   VENV_PY         the venv's python (set by ensure_venv)
#   cargo_target_dir
#                   print cargo's target directory (honours CARGO_TARGET_DIR and
#                   .cargo/config), absolute
#   start_roster BIN DB_URL LOGDIR
#                   start `BIN serve --listen 127.0.0.1:0`; sets ROSTER_PID,
#                   ROSTER_PORT, ROSTER_URL; waits (bounded) for /healthz
#   stop_roster     SIGTERM the server, wait (bounded), SIGKILL if needed
#   cleanup_on_exit [HOOK]
#                   on exit (also on Ctrl-C or TERM): stop the server, run HOOK (a
#                   function, e.g. to keep files) and remove $TMP_DIR; exit status kept

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Seconds to wait for the server to print its port and answer /healthz.
: "${ROSTER_START_TIMEOUT:=30}"

section() {
  printf '\n========== %s ==========\n' "$*"
}

log() {
  printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"
}

# ---------------------------------------------------------------- apt ------
_APT_UPDATED=0

_apt() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo -n)
    else
      echo "error: need root (or sudo) to apt-get install: $*" >&2
      return 1
    fi
  fi
  if [ "$_APT_UPDATED" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq </dev/null
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
    --no-install-recommends "$@" </dev/null
}

# ensure_apt_packages CMD PKG [CMD PKG ...]: install PKG only when CMD is missing.
ensure_apt_packages() {
  local missing=()
  while [ "$#" -ge 2 ]; do
    if ! command -v "$1" >/dev/null 2>&1; then
      missing+=("$2")
    fi
    shift 2
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "error: missing ${missing[*]} and no apt-get to install it" >&2
      return 1
    fi
    log "installing with apt-get: ${missing[*]}"
    _apt "${missing[@]}"
  fi
}

# --------------------------------------------------------------- python ----
VENV_DIR="${ROSTER_VENV:-$ROOT/.venv}"
REQUIREMENTS="$ROOT/scripts/requirements-conformance.txt"
VENV_PY="$VENV_DIR/bin/python"

ensure_venv() {
  ensure_apt_packages python3 python3
  # Debian's python3 needs python3-venv for `-m venv` (ensurepip).
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    log "python3 lacks venv/ensurepip; installing python3-venv"
    _apt python3-venv
  fi
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "error: python3 >= 3.10 is needed for scim2-tester; found $(python3 --version 2>&1)" >&2
    return 1
  fi

  local want have=""
  want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) $(python3 --version 2>&1)"
  if [ -f "$VENV_DIR/.requirements.stamp" ]; then
    have="$(cat "$VENV_DIR/.requirements.stamp")"
  fi
  if [ -x "$VENV_PY" ] && [ "$want" = "$have" ]; then
    return 0
  fi
  log "setting up $VENV_DIR from ${REQUIREMENTS#"$ROOT"/}"
  rm -rf "$VENV_DIR"
  python3 -m venv "$VENV_DIR"
  "$VENV_PY" -m pip install --quiet --disable-pip-version-check --no-input \
    --require-virtualenv -r "$REQUIREMENTS"
  "$VENV_PY" -m pip check
  printf '%s\n' "$want" >"$VENV_DIR/.requirements.stamp"
}

# ---------------------------------------------------------------- cargo ----
cargo_target_dir() {
  (cd "$ROOT" && cargo metadata --format-version 1 --no-deps --locked) |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# ---------------------------------------------------------------- server ---
ROSTER_PID=""
ROSTER_PORT=""
ROSTER_URL=""
ROSTER_LOG_OUT=""
ROSTER_LOG_ERR=""

_http_status() {
  # Print the HTTP status of GET $1, or 000 if no answer (stdlib only: curl
  # may be missing on a fresh machine).
  python3 - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
try:
    with opener.open(sys.argv[1], timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}

start_roster() {
  local bin="$1" db_url="$2" logdir="$3"
  shift 3
  ROSTER_LOG_OUT="$logdir/server.stdout"
  ROSTER_LOG_ERR="$logdir/server.stderr"
  log "starting: $bin serve --listen 127.0.0.1:0 --database $db_url $*"
  "$bin" serve --listen 127.0.0.1:0 --database "$db_url" "$@" \
    >"$ROSTER_LOG_OUT" 2>"$ROSTER_LOG_ERR" </dev/null &
  ROSTER_PID=$!

  local deadline=$((SECONDS + ROSTER_START_TIMEOUT)) line=""
  while [ -z "$ROSTER_PORT" ]; do
    if ! kill -0 "$ROSTER_PID" 2>/dev/null; then
      echo "error: roster serve exited before printing its port" >&2
      dump_roster_logs
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "error: roster serve printed no 'listening on http://127.0.0.1:PORT' line within ${ROSTER_START_TIMEOUT}s" >&2
      dump_roster_logs
      return 1
    fi
    line="$(grep -m1 -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$ROSTER_LOG_OUT" 2>/dev/null || true)"
    if [ -n "$line" ]; then
      ROSTER_PORT="${line##*:}"
    else
      sleep 0.2
    fi
  done
  ROSTER_URL="http://127.0.0.1:$ROSTER_PORT"
  log "server pid $ROSTER_PID listening on $ROSTER_URL"

  local status=""
  while :; do
    status="$(_http_status "$ROSTER_URL/healthz")"
    [ "$status" = "200" ] && break
    if ! kill -0 "$ROSTER_PID" 2>/dev/null; then
      echo "error: roster serve exited while waiting for /healthz" >&2
      dump_roster_logs
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "error: $ROSTER_URL/healthz not 200 within ${ROSTER_START_TIMEOUT}s (last status: $status)" >&2
      dump_roster_logs
      return 1
    fi
    sleep 0.2
  done
  log "healthz: 200"
}

dump_roster_logs() {
  local f
  for f in "$ROSTER_LOG_OUT" "$ROSTER_LOG_ERR"; do
    if [ -n "$f" ] && [ -s "$f" ]; then
      echo "----- last 60 lines of $(basename "$f") -----" >&2
      tail -n 60 "$f" >&2
    fi
  done
}

# stop_roster: graceful stop; returns 0 even when the server had to be killed,
# but prints a warning (ROSTER_STOP_GRACEFUL=0/1 tells which).
ROSTER_STOP_GRACEFUL=""
stop_roster() {
  [ -n "$ROSTER_PID" ] || return 0
  if kill -0 "$ROSTER_PID" 2>/dev/null; then
    kill -TERM "$ROSTER_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$ROSTER_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.1
    done
    if kill -0 "$ROSTER_PID" 2>/dev/null; then
      echo "warning: roster (pid $ROSTER_PID) ignored SIGTERM for 10s; sending SIGKILL" >&2
      kill -KILL "$ROSTER_PID" 2>/dev/null || true
      ROSTER_STOP_GRACEFUL=0
    else
      ROSTER_STOP_GRACEFUL=1
    fi
  fi
  wait "$ROSTER_PID" 2>/dev/null || true
  ROSTER_PID=""
}

# create_tenant BIN DB_URL PUBLIC_URL NAME OUTFILE: run `roster tenant create`
# and leave its JSON in OUTFILE; prints scim_base_url and token on two lines.
create_tenant() {
  local bin="$1" db_url="$2" public_url="$3" name="$4" out="$5"
  if ! "$bin" tenant create "$name" --json --database "$db_url" --public-url "$public_url" \
    >"$out" </dev/null; then
    echo "error: '$bin tenant create $name --json ...' failed" >&2
    return 1
  fi
  python3 - "$out" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
try:
    obj = json.loads(text)
except ValueError:
    # Be lenient about log lines around the object: take the last JSON line.
    lines = [l for l in text.splitlines() if l.strip().startswith("{")]
    if not lines:
        sys.exit(f"error: tenant create printed no JSON object: {text[:500]!r}")
    obj = json.loads(lines[-1])
for key in ("scim_base_url", "token"):
    if not obj.get(key):
        sys.exit(f"error: tenant create JSON lacks {key!r}: keys are {sorted(obj)}")
print(obj["scim_base_url"].rstrip("/"))
print(obj["token"])
PY
}

# ----------------------------------------------------------- database ------
# test_database_url DIR: the database a script's server runs on. With
# ROSTER_TEST_DATABASE=postgres, a new PostgreSQL database on the server
# ROSTER_TEST_POSTGRES names (default the local one), dropped on exit; otherwise a
# SQLite file in DIR.
_PG_TEST_DB=""

test_database_url() {
  if [ "${ROSTER_TEST_DATABASE:-sqlite}" = "postgres" ]; then
    local admin="${ROSTER_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
    _PG_TEST_DB="roster_script_$$_$RANDOM"
    psql "$admin" -qAtc "CREATE DATABASE $_PG_TEST_DB" >/dev/null || return 1
    echo "${admin%/*}/$_PG_TEST_DB"
  else
    echo "sqlite://$1/roster.db"
  fi
}

_drop_test_database() {
  if [ -n "$_PG_TEST_DB" ]; then
    psql "${ROSTER_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}" -qAtc \
      "DROP DATABASE IF EXISTS $_PG_TEST_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}

# ------------------------------------------------------------ cleanup ------
_CLEANUP_HOOK=""

_cleanup() {
  local rc=$?
  stop_roster
  _drop_test_database
  if [ -n "$_CLEANUP_HOOK" ]; then
    "$_CLEANUP_HOOK" || true
  fi
  if [ -n "${TMP_DIR:-}" ] && [ -d "$TMP_DIR" ]; then
    rm -rf "$TMP_DIR"
  fi
  exit "$rc"
}

cleanup_on_exit() {
  _CLEANUP_HOOK="${1:-}"
  trap _cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
