#!/usr/bin/env bash
# HTTP under load: wrk against /api/stats, /metrics and PATCH /api/config on loopback
# while the served router itself runs at ~2x overload (the binary's own live load).
#
# Usage: scripts/loadtest.sh [SECONDS_PER_ROUTE]      (default 10)
#   env: CONNECTIONS (32), THREADS (2), OVERLOAD (2), LIVE_RATE (computed), KEEP_LOGS=1
#
# What it does:
#   1. installs Debian's wrk if missing; builds the release binary;
#   2. starts it on 127.0.0.1:0 (a free port; the bound address is read from its
#      stdout) with HELIX_API_TOKEN set and HELIX_LIVE_RATE = OVERLOAD x cores / mean
#      job cost. The simulator's mix has a mean declared cost of 457 us, so on 2 cores
#      2x is ~8 750 jobs/s. The live load keeps at most 1 024 jobs outstanding;
#   3. checks that the router is really overloaded (it sheds jobs) before and after;
#   4. runs wrk for SECONDS_PER_ROUTE on each route, counting every status code with a
#      Lua response hook (PATCH sends valid sparse patches with the bearer token);
#   5. fails on any non-2xx answer (5xx included), any socket error or timeout, a
#      "panicked" in the server log, an unclean exit on SIGTERM or a shutdown that
#      abandoned in-flight jobs; prints p50/p99 per route.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-10}"
conns="${CONNECTIONS:-32}"
threads="${THREADS:-2}"
overload="${OVERLOAD:-2}"
cores="$(nproc)"
mean_cost_ns=457000
rate="${LIVE_RATE:-$(awk -v o="$overload" -v c="$cores" -v m="$mean_cost_ns" 'BEGIN { printf "%d", o * c * 1e9 / m }')}"
token="loadtest-$RANDOM-$RANDOM"

if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk (apt)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

echo "==> cargo build --release --bin helixrouter"
cargo build --release --locked --bin helixrouter

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "==> starting helixrouter: live load $rate jobs/s (${overload}x $cores cores at ${mean_cost_ns} ns mean cost)"
HELIX_HTTP_ADDR=127.0.0.1:0 HELIX_SIM_JOBS=200 HELIX_LIVE_RATE="$rate" HELIX_TICK_SECS=2 \
  HELIX_API_TOKEN="$token" HELIX_WEIGHTS_PATH="$work/weights.json" RUST_LOG=info NO_COLOR=1 \
  target/release/helixrouter >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

addr=""
for _ in $(seq 1 200); do
  addr="$(sed -n 's|.*listening on http://\([0-9.:]*\)/.*|\1|p' "$work/server.out" | head -1)"
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.out" "$work/server.err"; echo "server died"; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "server did not print its address"; exit 1; }
base="http://$addr"
echo "==> serving on $base"

stat() { curl -fsS "$base/api/stats" | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['$1'])"; }
sleep 3
d0="$(stat dropped)"; s0="$(stat submitted)"
sleep 2
d1="$(stat dropped)"; s1="$(stat submitted)"
echo "==> before wrk: $((s1 - s0)) jobs submitted and $((d1 - d0)) shed in 2 s (pressure $(stat pressure | python3 -c "import ast,sys; print(round(ast.literal_eval(sys.stdin.read())['score'], 2))"))"
if [ "$((d1 - d0))" -le 0 ]; then
  echo "FAIL: the router is not shedding, so it is not overloaded; raise LIVE_RATE"
  exit 1
fi

cat >"$work/count.lua" <<'LUA'
-- Counts status classes per thread; PATCH mode cycles valid sparse patches.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  s2, s4, s5, other = 0, 0, 0, 0
  mode = os.getenv("WRK_MODE") or "get"
  token = os.getenv("WRK_TOKEN") or ""
  n = 0
end
function request()
  if mode == "patch" then
    n = n + 1
    local body = string.format('{"batch_max_size": %d, "batch_max_delay_ms": %d}', 4 + n % 8, 5 + n % 10)
    return wrk.format("PATCH", "/api/config",
      { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
  end
  return wrk.format("GET", nil, nil, nil)
end
function response(status, headers, body)
  if status >= 200 and status < 300 then s2 = s2 + 1
  elseif status >= 400 and status < 500 then s4 = s4 + 1
  elseif status >= 500 then s5 = s5 + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local t2, t4, t5, to = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    t2 = t2 + t:get("s2"); t4 = t4 + t:get("s4"); t5 = t5 + t:get("s5"); to = to + t:get("other")
  end
  local e = summary.errors
  io.write(string.format("STATUS 2xx=%d 4xx=%d 5xx=%d other=%d\n", t2, t4, t5, to))
  io.write(string.format("ERRORS connect=%d read=%d write=%d timeout=%d status=%d\n",
    e.connect, e.read, e.write, e.timeout, e.status))
  io.write(string.format("P99_US %d\nP50_US %d\nREQS %d\n",
    latency:percentile(99), latency:percentile(50), summary.requests))
end
LUA

failed=0
results=()
run_route() {
  local name="$1" mode="$2" url="$3"
  echo "==> wrk -t$threads -c$conns -d${secs}s $name"
  WRK_MODE="$mode" WRK_TOKEN="$token" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency \
    -s "$work/count.lua" "$url" >"$work/wrk-$mode-$RANDOM.log" 2>&1 || true
  local log
  log="$(ls -t "$work"/wrk-"$mode"-*.log | head -1)"
  sed -n '/Thread Stats/,/Transfer/p' "$log"
  local st errs p99 p50 reqs
  st="$(grep '^STATUS' "$log" || echo 'STATUS missing')"
  errs="$(grep '^ERRORS' "$log" || echo 'ERRORS missing')"
  p99="$(awk '/^P99_US/ { print $2 }' "$log")"
  p50="$(awk '/^P50_US/ { print $2 }' "$log")"
  reqs="$(awk '/^REQS/ { print $2 }' "$log")"
  echo "    $st | $errs"
  if ! grep -q '^STATUS 2xx=[0-9]* 4xx=0 5xx=0 other=0$' "$log" \
    || ! grep -q '^ERRORS connect=0 read=0 write=0 timeout=0 status=0$' "$log" \
    || grep -q 'Non-2xx' "$log"; then
    echo "FAIL: $name had non-2xx answers or socket errors"
    cat "$log"
    failed=1
  fi
  results+=("$(printf '%-22s %9s req  %8.1f req/s  p50 %8.3f ms  p99 %8.3f ms' "$name" "${reqs:-?}" \
    "$(awk -v r="${reqs:-0}" -v s="$secs" 'BEGIN { print r / s }')" \
    "$(awk -v u="${p50:-0}" 'BEGIN { print u / 1000 }')" \
    "$(awk -v u="${p99:-0}" 'BEGIN { print u / 1000 }')")")
}

run_route "GET /api/stats" get "$base/api/stats"
run_route "GET /metrics" get "$base/metrics"
run_route "PATCH /api/config" patch "$base/api/config"

d2="$(stat dropped)"; s2="$(stat submitted)"
echo "==> during the wrk runs the router took $((s2 - s1)) jobs and shed $((d2 - d1))"
if [ "$((d2 - d1))" -le 0 ]; then
  echo "FAIL: the router stopped shedding during the run (not overloaded)"
  failed=1
fi

echo "==> SIGTERM"
kill -TERM "$server_pid"
code=0
wait "$server_pid" || code=$?
server_pid=""
if [ "$code" != 0 ]; then
  echo "FAIL: server exited with $code after SIGTERM"
  failed=1
fi
if grep -q "panicked" "$work/server.out" "$work/server.err"; then
  echo "FAIL: the server log has a panic"
  grep -n "panicked" "$work/server.out" "$work/server.err" | head
  failed=1
fi
grep -ho 'report=ShutdownReport {[^}]*}' "$work/server.out" "$work/server.err" | tail -1 | sed 's/^/    shutdown: /' || true
if ! grep -hq 'report=ShutdownReport { abandoned: 0, pool_stopped: true }' "$work/server.out" "$work/server.err"; then
  echo "FAIL: the router did not drain every in-flight job on SIGTERM"
  failed=1
fi

echo "==> results (${secs}s per route, $conns connections, $threads threads, live load $rate jobs/s)"
printf '  %s\n' "${results[@]}"
if [ "$failed" = 0 ]; then echo "==> loadtest: PASS"; else echo "==> loadtest: FAIL"; fi
exit "$failed"
