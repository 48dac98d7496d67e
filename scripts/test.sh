#!/usr/bin/env bash
# Runs every check HelixRouter's CI runs, installing what is missing first:
# promtool (Debian's prometheus package), Chromium, Node.js/npm (for the browser
# test's playwright-core driver; no browser download), nats-server (the remote-worker
# tests start their own on a free loopback port) and cargo-fuzz. Only the Rust
# toolchain is assumed. Usage: scripts/test.sh   (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's wall time is printed when the next one starts (and in all at the end).
t0=$(date +%s)
last=$t0
step() {
  local now
  now=$(date +%s)
  if ((now > t0 || last > t0)); then
    echo "    (took $((now - last)) s; $((now - t0)) s in all)"
  fi
  last=$now
  echo "==> $*"
}

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "==> installing ${need_apt[*]} (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
step "tools: $(promtool --version 2>&1 | head -1); $(chromium --version 2>/dev/null); node $(node --version); nats-server $(nats-server --version 2>&1)"

step "cargo fmt --check"
cargo fmt --all -- --check
step "the house: no import circle in src/, no function in src/ over 80 lines"
python3 scripts/import-circles.py
python3 scripts/long-functions.py
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --locked -p helixrouter --no-default-features --lib -- -D warnings
step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
# The internal docs too: their links must resolve (the docs contributors read).
RUSTDOCFLAGS="-D warnings" cargo doc -p helixrouter --no-deps --locked --all-features --document-private-items
step "the router alone: default-features = false builds, pulls in no HTTP/CLI/harness crate, and runs"
cargo build --locked -p helixrouter --no-default-features --lib
heavy='^(axum|hyper|hyper-util|tower-http|prometheus|clap|tracing-subscriber|plotters|indicatif|rand_distr) '
for pkg in helixrouter helix-lean-consumer; do
  flags=(-p "$pkg" -e normal --prefix none --locked)
  [ "$pkg" = helixrouter ] && flags+=(--no-default-features)
  if cargo tree "${flags[@]}" | grep -E "$heavy"; then
    echo "FAIL: $pkg without default features depends on the crates above"; exit 1
  fi
done
cargo run --locked -p helix-lean-consumer
step "the published package: cargo publish --dry-run, then the unpacked .crate built on its own (defaults and --no-default-features)"
# --allow-dirty: generated, git-ignored files (node_modules, fuzz artifacts) may exist
# on a developer's machine; the package contents are fixed by `include` in Cargo.toml.
cargo publish --dry-run --locked -p helixrouter --allow-dirty
cargo package --locked -p helixrouter --allow-dirty --no-verify
unpacked="$(mktemp -d)"
root="$PWD"
tar -xzf target/package/helixrouter-0.1.0.crate -C "$unpacked"
(cd "$unpacked"/helixrouter-0.1.0 \
  && CARGO_TARGET_DIR="$root/target/package-check" cargo build --locked --no-default-features --lib \
  && CARGO_TARGET_DIR="$root/target/package-check" cargo build --locked)
rm -rf "$unpacked"
step "cargo test (library, binary and the helix-overload harness: unit, integration, doc; promtool and the binary run for real)"
cargo test --locked --workspace --all-targets
cargo test --locked --workspace --doc
step "the harness's remote scenario, tiny (a real nats-server and worker process; bars not held at this size)"
cargo run --locked -p helix-overload --example remote -- --secs 0.5 --no-bars --out-dir target/overload-smoke
step "feature tower: the layer (unit, doc, integration) and examples/service"
cargo clippy --locked -p helixrouter --all-targets --features tower -- -D warnings
cargo test --locked -p helixrouter --features tower --lib --test tower_layer --test service_example
cargo test --locked -p helixrouter --features tower --doc tower
step "scripts/service-bench.sh, tiny (the load test must keep running; bars not held at this size)"
scripts/service-bench.sh target/service-bench-smoke --secs 0.5 --capacity-secs 0.3 --loads 0.5,2 --no-bars
step "browser test (headless Chromium against the real binary)"
cargo build --locked --bin helixrouter
(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
HELIX_BIN=target/debug/helixrouter node tests/browser/dashboard.test.mjs
step "fuzzing (cargo-fuzz on stable, bounded time per target; a crash fails)"
scripts/fuzz.sh "${FUZZ_SECS:-20}"
step "cargo bench -- --test (benches still run)"
cargo bench --locked -- --test
step "all checks passed"
