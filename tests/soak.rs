//! Test-sized soak: the `examples/soak.rs` driver (included below, so the two cannot
//! drift apart) at ~2× overload for 8 s of arrivals (about 1.7 M mixed jobs at the
//! mix's ~220 k/s on two cores; at least 300 k required). Asserts that RSS stays flat after warm-up and that every job ends exactly
//! once: `submitted == completed + dropped + failed`, `in_flight == 0` after shutdown,
//! and the router's counts equal what the callers saw.
//!
//! The long soak: `cargo run --release --example soak -- --jobs 5000000`.

#[allow(dead_code)]
#[path = "../examples/soak.rs"]
mod soak;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

#[test]
fn soak_at_2x_overload_keeps_memory_flat_and_accounts_every_job() {
    soak::quiet_planted_panics();
    let cfg = soak::SoakConfig {
        jobs: 3_000_000,
        secs: 8,
        overload: 2.0,
        rate: None,
        warmup_secs: 2,
        // Generous for a debug build and a short run, but real: a leak of a few bytes
        // per job (400 k jobs) or an unbounded queue shows up well above this.
        growth_pct: 25.0,
        growth_mib: 16.0,
        max_outstanding: 20_000,
        quiet: true,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let report = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(45), soak::run(&cfg))
            .await
            .expect("the soak (arrivals ≤ 8 s + drain) finished within 45 s")
    });
    let took = started.elapsed();
    println!("{}\n(took {:.1} s)", report.summary(), took.as_secs_f64());

    // Real load happened, with every outcome represented.
    let s = &report.final_stats;
    assert!(
        report.arrivals >= 300_000,
        "too few arrivals: {}",
        report.arrivals
    );
    assert!(
        s.completed > 0 && s.dropped > 0,
        "overload must both complete and shed: {s:?}"
    );
    assert!(
        report.tally.panicked.load(Relaxed) > 0,
        "planted panics must be counted"
    );
    assert!(
        report.samples.len() >= 6,
        "expected a sample per second, got {}",
        report.samples.len()
    );
    let failures = report.failures();
    assert!(failures.is_empty(), "soak failed:\n{}", failures.join("\n"));
}
