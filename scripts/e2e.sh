#!/usr/bin/env bash
# Prepares the browser for the web console's end-to-end tests (crates/roster/tests/it/console.rs):
# installs Debian's `chromium` and `chromium-driver` when missing. The tests themselves run in
# `cargo test` (scripts/test.sh calls this script first); they drive Chromium through
# chromedriver and save screenshots to artifacts/e2e/.
#
# Without a browser the e2e test FAILS when CI=true and skips loudly otherwise, so a failed
# install here is reported but does not stop a local run.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

if ! ensure_apt_packages chromium chromium chromedriver chromium-driver; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: could not install chromium and chromium-driver (needed by the console e2e test)" >&2
    exit 1
  fi
  echo "WARNING: chromium / chromium-driver could not be installed; the console e2e test will skip" >&2
fi
if command -v chromium >/dev/null 2>&1; then
  echo "chromium:     $(chromium --version 2>/dev/null || echo '?')"
fi
if command -v chromedriver >/dev/null 2>&1; then
  echo "chromedriver: $(chromedriver --version 2>/dev/null || echo '?')"
fi
# axe-core (pinned in scripts/axe/package-lock.json), injected into every page the browser tests
# screenshot: no serious or critical accessibility violation may remain.
if [ ! -f "$ROOT/scripts/axe/node_modules/axe-core/axe.min.js" ]; then
  ensure_apt_packages npm npm || true
  if ! (cd "$ROOT/scripts/axe" && npm ci --no-audit --no-fund); then
    if [ "${CI:-}" = "true" ]; then
      echo "error: could not install axe-core (needed by the console e2e tests)" >&2
      exit 1
    fi
    echo "WARNING: axe-core could not be installed; the console e2e tests will skip its checks" >&2
  fi
fi
mkdir -p "$ROOT/artifacts/e2e"
