#!/usr/bin/env bash
# Open-loop load test of examples/service in its four modes (HelixRouter's tower layer,
# spawn_blocking, tower's ConcurrencyLimit + LoadShed per route and around the whole
# router) at 0.5x, 1x, 2x and 4x of the measured capacity. Writes a table (.md), the
# figures (.json) and a chart (.svg). Needs only the Rust toolchain.
#   scripts/service-bench.sh [OUT_DIR] [extra service_bench flags, e.g. --secs 1 --loads 0.5,2 --no-bars]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/service-bench}"
shift || true
cargo build --locked --release --features tower --example service --example service_bench
target/release/examples/service_bench --out-dir "$out" "$@"
