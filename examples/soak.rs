//! Soak: millions of mixed jobs at ~2× overload through `Router::run` and
//! `Router::submit_one`, RSS sampled every second; fails (exit 1) when memory grows
//! after warm-up or when any job is not accounted exactly once.
//!
//! ```text
//! cargo run --release --example soak -- --jobs 5000000
//! cargo run --release --example soak -- --secs 120 --overload 2
//! ```
//!
//! The mix (per 1000 arrivals, deterministic): 850 tiny closures (1 µs, inline), 50
//! tiny built-in `HashMix` jobs via `submit_one`, 60 medium closures (30 µs, spawn),
//! 25 heavy closures (500 µs, 20 ms budget, CPU pool), 10 batchable closures (300 µs,
//! scaling 0.9, batch) and 5 closures that panic (counted as failed). Closure cost is
//! spun on the clock, so it is the same in debug and release. The offered rate is
//! `overload × cores / mean cost` (2 × 2 cores / 18.2 µs ≈ 220 k jobs/s on the 2-core
//! development machine) unless `--rate` says otherwise; arrivals are paced every millisecond.
//!
//! Checks at the end: RSS at the last sample is within max(+10 %, +8 MiB) of the
//! sample taken right after warm-up; after `shutdown`, `in_flight == 0` and
//! `submitted == completed + dropped + failed`; and the router's counts equal what
//! the callers saw (`Ok` = completed, `Rejected::Panicked` = failed, other `Err` or
//! `None` = dropped).
//!
//! `tests/soak.rs` runs the same driver at test size.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Parser;
use helixrouter::config::RouterConfig;
use helixrouter::router::{Rejected, Router, RouterStats, WorkHint};
use helixrouter::types::{Job, JobKind};

/// What to run.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "soak",
    about = "Soak the router at overload and watch its memory"
)]
pub struct SoakConfig {
    /// Stop after this many arrivals (whichever of --jobs / --secs comes first).
    #[arg(long, default_value_t = 5_000_000)]
    pub jobs: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub secs: u64,
    /// Offered CPU demand as a multiple of the cores.
    #[arg(long, default_value_t = 2.0)]
    pub overload: f64,
    /// Offered arrivals per second [default: computed from --overload and the mix].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds before the reference RSS sample is taken (allocator pools and the
    /// router's fixed-size windows settle within ~10 s at 2× overload).
    #[arg(long, default_value_t = 10)]
    pub warmup_secs: u64,
    /// Allowed RSS growth after warm-up, percent (the larger of this and --growth-mib).
    #[arg(long, default_value_t = 10.0)]
    pub growth_pct: f64,
    /// Allowed RSS growth after warm-up, MiB.
    #[arg(long, default_value_t = 8.0)]
    pub growth_mib: f64,
    /// Caller tasks outstanding at most (arrivals beyond are not submitted, and counted).
    #[arg(long, default_value_t = 20_000)]
    pub max_outstanding: usize,
    /// Do not print the per-second table.
    #[arg(long)]
    pub quiet: bool,
}

/// One per-second sample.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the start.
    pub t: f64,
    /// Resident set size, bytes.
    pub rss: u64,
    /// Arrivals so far.
    pub arrivals: u64,
    /// Router counters at the sample.
    pub submitted: u64,
    /// Completed so far.
    pub completed: u64,
    /// Dropped so far.
    pub dropped: u64,
    /// Failed so far.
    pub failed: u64,
    /// In flight at the sample.
    pub in_flight: u64,
    /// Pressure score.
    pub pressure: f64,
}

/// What the callers saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// `Ok` results.
    pub ok: AtomicU64,
    /// Shed (`Err` other than `Panicked`, or `None` from `submit_one`).
    pub shed: AtomicU64,
    /// `Err(Rejected::Panicked)`.
    pub panicked: AtomicU64,
    /// Arrivals not submitted because `max_outstanding` caller tasks were running.
    pub not_submitted: AtomicU64,
}

/// The outcome of a soak.
#[derive(Debug)]
pub struct SoakReport {
    /// Per-second samples.
    pub samples: Vec<Sample>,
    /// Index in `samples` of the post-warm-up reference.
    pub warm_index: usize,
    /// Arrivals generated.
    pub arrivals: u64,
    /// Wall time of the arrival phase.
    pub elapsed: Duration,
    /// Offered rate asked for.
    pub rate: f64,
    /// What the callers saw.
    pub tally: Arc<Tally>,
    /// Router stats after `shutdown`.
    pub final_stats: RouterStats,
    /// Allowed growth, percent and bytes.
    pub growth_pct: f64,
    /// Allowed growth, bytes.
    pub growth_bytes: u64,
}

/// The planted panic's message; the panic hook stays quiet for it.
pub const PLANTED: &str = "soak: planted panic";

/// Mean cost of the mix in ns (see the module docs).
pub fn mean_cost_ns() -> f64 {
    (850.0 * 1_000.0
        + 50.0 * 1_000.0
        + 60.0 * 30_000.0
        + 25.0 * 500_000.0
        + 10.0 * 300_000.0
        + 5.0 * 1_000.0)
        / 1_000.0
}

/// Busy-waits about `ns` nanoseconds: deterministic CPU cost in any build profile.
pub fn burn(ns: u64) -> u64 {
    let start = Instant::now();
    let mut x = ns | 1;
    while start.elapsed() < Duration::from_nanos(ns) {
        for _ in 0..16 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    std::hint::black_box(x)
}

/// Resident set size of this process in bytes (VmRSS of /proc/self/status).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Silences the planted panics (there are thousands); any other panic still prints.
pub fn quiet_planted_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planted = info.payload().downcast_ref::<&str>() == Some(&PLANTED);
        if !planted {
            default(info);
        }
    }));
}

fn record<T>(tally: &Tally, r: Result<T, Rejected>) {
    match r {
        Ok(_) => tally.ok.fetch_add(1, Relaxed),
        Err(Rejected::Panicked) => tally.panicked.fetch_add(1, Relaxed),
        Err(_) => tally.shed.fetch_add(1, Relaxed),
    };
}

/// Submits arrival `i` of the mix.
async fn one_job(router: Router, i: u64, tally: Arc<Tally>) {
    let slot = i % 1_000;
    if slot < 850 {
        let hint = WorkHint::new(i, 1_000).budget_ms(10);
        record(&tally, router.run(hint, || burn(1_000)).await);
    } else if slot < 900 {
        let job = Job {
            id: i,
            kind: JobKind::HashMix,
            inputs: vec![i, i >> 3, 7, 11],
            compute_cost: 1_000,
            scaling_potential: 0.1,
            latency_budget_ms: 10,
        };
        match router.submit_one(job).await {
            Some(_) => tally.ok.fetch_add(1, Relaxed),
            None => tally.shed.fetch_add(1, Relaxed),
        };
    } else if slot < 960 {
        let hint = WorkHint::new(i, 30_000).budget_ms(20);
        record(&tally, router.run(hint, || burn(30_000)).await);
    } else if slot < 985 {
        let hint = WorkHint::new(i, 500_000).budget_ms(20).scaling(0.2);
        record(&tally, router.run(hint, || burn(500_000)).await);
    } else if slot < 995 {
        let hint = WorkHint::new(i, 300_000).budget_ms(100).scaling(0.9);
        record(&tally, router.run(hint, || burn(300_000)).await);
    } else {
        let hint = WorkHint::new(i, 1_000).budget_ms(10);
        record(
            &tally,
            router
                .run(hint, || -> u64 { std::panic::panic_any(PLANTED) })
                .await,
        );
    }
}

fn sample(start: Instant, arrivals: u64, s: &RouterStats) -> Sample {
    Sample {
        t: start.elapsed().as_secs_f64(),
        rss: rss_bytes(),
        arrivals,
        submitted: s.submitted,
        completed: s.completed,
        dropped: s.dropped,
        failed: s.failed,
        in_flight: s.in_flight,
        pressure: s.pressure.score,
    }
}

fn print_sample(s: &Sample) {
    println!(
        "{:>6.1} {:>11} {:>11} {:>11} {:>9} {:>7} {:>9.1} {:>6.2}",
        s.t,
        s.arrivals,
        s.completed,
        s.dropped,
        s.failed,
        s.in_flight,
        s.rss as f64 / 1_048_576.0,
        s.pressure
    );
}

/// Runs the soak on the current (multi-thread) runtime.
pub async fn run(cfg: &SoakConfig) -> SoakReport {
    let cores = helixrouter::config::available_cores();
    let rate = cfg
        .rate
        .unwrap_or(cfg.overload * cores as f64 * 1e9 / mean_cost_ns());
    let router = Router::new(RouterConfig::default());
    let tally = Arc::new(Tally::default());
    let permits = Arc::new(tokio::sync::Semaphore::new(cfg.max_outstanding));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(cfg.secs);
    let warmup = Duration::from_secs(cfg.warmup_secs);
    let mut samples = Vec::new();
    let mut warm_index = None;
    let mut next_sample = start + Duration::from_secs(1);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    if !cfg.quiet {
        println!(
            "soak: {} jobs or {} s, offered {:.0} jobs/s ({:.1}× {cores} cores at {:.1} µs mean cost)",
            cfg.jobs,
            cfg.secs,
            rate,
            cfg.overload,
            mean_cost_ns() / 1e3
        );
        println!(
            "{:>6} {:>11} {:>11} {:>11} {:>9} {:>7} {:>9} {:>6}",
            "t(s)", "arrivals", "completed", "dropped", "failed", "inflt", "rss(MiB)", "press"
        );
    }
    let mut arrivals = 0u64;
    while arrivals < cfg.jobs {
        tick.tick().await;
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Open loop: catch up to where the schedule says we should be (bounded burst).
        let due = ((now - start).as_secs_f64() * rate) as u64;
        let burst = due.saturating_sub(arrivals).min(cfg.jobs - arrivals).min(
            (rate / 100.0).max(1.0) as u64, // at most 10 ms worth per tick
        );
        for _ in 0..burst {
            let i = arrivals;
            arrivals += 1;
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tally.not_submitted.fetch_add(1, Relaxed);
                continue;
            };
            let r = router.clone();
            let t = tally.clone();
            tokio::spawn(async move {
                one_job(r, i, t).await;
                drop(permit);
            });
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            let s = sample(start, arrivals, &router.stats());
            if warm_index.is_none() && now - start >= warmup {
                warm_index = Some(samples.len());
            }
            if !cfg.quiet {
                print_sample(&s);
            }
            samples.push(s);
        }
    }
    let elapsed = start.elapsed();
    // Every caller task ends (shed, done or failed) before shutdown is asked for.
    let all = u32::try_from(cfg.max_outstanding).unwrap_or(u32::MAX);
    let _drained = permits.acquire_many(all).await;
    let _report = router.shutdown().await;
    let final_stats = router.stats();
    samples.push(sample(start, arrivals, &final_stats));
    if !cfg.quiet {
        print_sample(samples.last().expect("just pushed"));
    }
    let warm_index = warm_index.unwrap_or(samples.len().saturating_sub(1).min(1));
    let warm_rss = samples.get(warm_index).map_or(0, |s| s.rss);
    SoakReport {
        samples,
        warm_index,
        arrivals,
        elapsed,
        rate,
        tally,
        final_stats,
        growth_pct: cfg.growth_pct,
        growth_bytes: ((warm_rss as f64 * cfg.growth_pct / 100.0).max(cfg.growth_mib * 1_048_576.0))
            as u64,
    }
}

impl SoakReport {
    /// The post-warm-up reference RSS and the last RSS, bytes.
    pub fn rss_warm_last(&self) -> (u64, u64) {
        let warm = self.samples.get(self.warm_index).map_or(0, |s| s.rss);
        let last = self.samples.last().map_or(0, |s| s.rss);
        (warm, last)
    }

    /// Least-squares slope of RSS after warm-up, bytes per second.
    pub fn rss_slope(&self) -> f64 {
        let pts: Vec<(f64, f64)> = self.samples[self.warm_index..]
            .iter()
            .map(|s| (s.t, s.rss as f64))
            .collect();
        let n = pts.len() as f64;
        if pts.len() < 2 {
            return 0.0;
        }
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        if sxx == 0.0 { 0.0 } else { sxy / sxx }
    }

    /// A human summary.
    pub fn summary(&self) -> String {
        let s = &self.final_stats;
        let (warm, last) = self.rss_warm_last();
        let max = self.samples.iter().map(|s| s.rss).max().unwrap_or(0);
        let mib = |b: u64| b as f64 / 1_048_576.0;
        format!(
            "arrivals {} in {:.1} s ({:.0}/s offered {:.0}/s); not submitted {}\n\
             router: submitted {} completed {} dropped {} failed {} in_flight {} late {}\n\
             callers: ok {} shed {} panicked {}\n\
             rss: warm (t={:.0}s) {:.1} MiB, last {:.1} MiB, max {:.1} MiB, growth {:+.1} MiB \
             (allowed {:.1} MiB), slope after warm-up {:+.1} KiB/s",
            self.arrivals,
            self.elapsed.as_secs_f64(),
            self.arrivals as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.rate,
            self.tally.not_submitted.load(Relaxed),
            s.submitted,
            s.completed,
            s.dropped,
            s.failed,
            s.in_flight,
            s.late,
            self.tally.ok.load(Relaxed),
            self.tally.shed.load(Relaxed),
            self.tally.panicked.load(Relaxed),
            self.samples.get(self.warm_index).map_or(0.0, |s| s.t),
            mib(warm),
            mib(last),
            mib(max),
            (last as f64 - warm as f64) / 1_048_576.0,
            mib(self.growth_bytes),
            self.rss_slope() / 1024.0,
        )
    }

    /// Every failed check, empty when the soak passed.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        let s = &self.final_stats;
        let t = &self.tally;
        if s.in_flight != 0 {
            f.push(format!("in_flight is {} after shutdown", s.in_flight));
        }
        if s.submitted != s.completed + s.dropped + s.failed {
            f.push(format!(
                "conservation broken: submitted {} != completed {} + dropped {} + failed {}",
                s.submitted, s.completed, s.dropped, s.failed
            ));
        }
        let submitted = self.arrivals - t.not_submitted.load(Relaxed);
        if s.submitted != submitted {
            f.push(format!(
                "router counted {} submitted, callers submitted {submitted}",
                s.submitted
            ));
        }
        let pairs = [
            ("completed", s.completed, t.ok.load(Relaxed)),
            ("dropped", s.dropped, t.shed.load(Relaxed)),
            ("failed", s.failed, t.panicked.load(Relaxed)),
        ];
        for (what, router, callers) in pairs {
            if router != callers {
                f.push(format!("router {what} {router} != callers' {callers}"));
            }
        }
        if t.panicked.load(Relaxed) == 0 {
            f.push("no planted panic was counted as failed".into());
        }
        let (warm, last) = self.rss_warm_last();
        if warm == 0 || last == 0 {
            f.push("could not read RSS from /proc/self/status".into());
        } else if last > warm + self.growth_bytes {
            f.push(format!(
                "RSS grew after warm-up: {:.1} MiB -> {:.1} MiB (allowed +{:.1} MiB)",
                warm as f64 / 1_048_576.0,
                last as f64 / 1_048_576.0,
                self.growth_bytes as f64 / 1_048_576.0
            ));
        }
        f
    }
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let cfg = SoakConfig::parse();
    quiet_planted_panics();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: cannot build the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let report = rt.block_on(run(&cfg));
    println!("{}", report.summary());
    let failures = report.failures();
    if failures.is_empty() {
        println!("soak: PASS");
        std::process::ExitCode::SUCCESS
    } else {
        for f in &failures {
            println!("soak: FAIL: {f}");
        }
        std::process::ExitCode::FAILURE
    }
}
