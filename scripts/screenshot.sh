#!/usr/bin/env bash
# Screenshots of the live dashboard, for a person to look at.
#
# Usage: scripts/screenshot.sh [OUT_DIR]        (default OUT_DIR: the current directory)
#
# Builds the binary (cargo build) unless HELIX_BIN names one, starts it on a free
# 127.0.0.1 port with HELIX_SIM_JOBS=0 and a live simulated load of HELIX_LIVE_RATE
# jobs/s (default 200), waits SHOT_WAIT_MS ms (default 6000) for the panels to fill,
# and writes with headless Chromium (/usr/bin/chromium, via playwright-core):
#   OUT_DIR/dashboard.png        1280×800
#   OUT_DIR/dashboard-phone.png  390×844
#   OUT_DIR/dashboard-full.png   the whole page, 1280 px wide
# Needs node and Debian's chromium (apt-get install -y chromium); installs the
# test's npm packages (tests/browser, no browser download) when missing.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)"

command -v chromium >/dev/null 2>&1 || { echo "chromium missing: apt-get install -y chromium" >&2; exit 1; }
if [ -z "${HELIX_BIN:-}" ]; then
  (cd "$repo" && cargo build --quiet)
  export HELIX_BIN="$repo/target/debug/helixrouter"
fi
if [ ! -d "$repo/tests/browser/node_modules/playwright-core" ]; then
  (cd "$repo/tests/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
exec node "$repo/tests/browser/screenshot.mjs" "$out"
