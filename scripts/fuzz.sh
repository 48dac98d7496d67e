#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time on the STABLE toolchain; any crash,
# assertion failure, timeout or OOM fails the script (exit 1), and the reproducer is
# left in fuzz/artifacts/<target>/.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET defaults to $FUZZ_SECS or 25; targets default to all of them.
#
# How it works on stable: `cargo fuzz run -s none` builds with stable -C flags only
# (sanitizer coverage instrumentation through -Cpasses/-Cllvm-args, `--cfg fuzzing`);
# no -Z flag is passed, so neither nightly nor RUSTC_BOOTSTRAP is needed. No sanitizer
# is used: the crate is `#![forbid(unsafe_code)]`, so ASan would have nothing to find
# that a panic does not already report. The committed seed corpus in
# fuzz/corpus/<target>/ is read-only here: new inputs go to a temporary directory, so
# a run does not dirty the work tree.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-${FUZZ_SECS:-25}}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(config_json telemetry_body patch_body http)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
echo "==> $(cargo fuzz --version); $(rustc --version)"

echo "==> building fuzz targets (release, instrumented, -s none)"
(cd fuzz && cargo fuzz build -s none)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  log="$work/$t.log"
  echo "==> fuzzing $t for ${secs}s"
  # First corpus dir is where libFuzzer writes new inputs; the seeds are read only.
  if (cd fuzz && cargo fuzz run -s none "$t" "$work/$t" "corpus/$t" -- \
    -max_total_time="$secs" -dict=json.dict -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1) >"$log" 2>&1; then
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
    summary+=("$t: ${runs:-?} execs (${rate:-?}/s), ${cov:-cov ?}, no crash")
  else
    failed=1
    summary+=("$t: FAILED (see fuzz/artifacts/$t/)")
    echo "---- last lines of the $t run ----"
    tail -n 60 "$log"
  fi
done

echo "==> fuzz summary (${secs}s per target)"
printf '  %s\n' "${summary[@]}"
exit "$failed"
