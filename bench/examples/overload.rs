//! Overload harness: HelixRouter vs `tokio::spawn`, `spawn_blocking` and a tower
//! concurrency limit + load shed, on the same seeded open-loop schedule at a sweep of
//! offered loads. Prints a table, writes `overload.json` and `overload.svg`.
//!
//! ```text
//! cargo run --release -p helix-overload --example overload -- --secs-per-step 2 --loads 0.5,1,2,4 --out-dir target/overload
//! cargo run --release -p helix-overload --example overload -- --quick
//! cargo run --release -p helix-overload --example overload -- --loads 2,4 --secs-per-step 1 --hints exact,flat,unknown,noisy --out-dir target/overload-hints
//! cargo run --release -p helix-overload --example overload -- --loads 0.5,2,4 --hints exact,flat,unknown,noisy,one_class,sizes_exact,sizes_units --out-dir docs/overload/cost-model
//! ```
//!
//! `--hints` (alias `--scenarios`) lists the scenarios HelixRouter runs in, side by side
//! on each load's schedule. The hint scenarios (`exact`, `flat`, `unknown`, `noisy`)
//! vary only the cost hint; the cost-model scenarios are `one_class` (exact hints,
//! every job naming the one class `mixed`), `sizes_exact` and `sizes_units` (each job's
//! work is its class's nominal cost × a per-job factor log-uniform over 64×, mean 1;
//! hinted its own work, or given no cost and its size as units). The baselines take no
//! hint: they run once on the fixed work and, when a `sizes_*` scenario is listed, once
//! more on the sized work (labelled `[sized]`). The cost-model bars compare each
//! cost-model run with the same variant's `exact` run, so list `exact` too.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use helix_overload::{ExecutorKind, HarnessConfig, HintScenario, chart, run};

/// Drive every executor with the same Poisson schedule at each offered load.
#[derive(Debug, Parser)]
#[command(name = "overload", about)]
struct Args {
    /// Arrival window per (load, executor) step, seconds [default: 2, or 0.5 with --quick].
    #[arg(long)]
    secs_per_step: Option<f64>,
    /// Offered loads as multiples of the measured capacity [default: 0.5,1,2,4,6,10, or
    /// 1,4 with --quick].
    #[arg(long, value_delimiter = ',')]
    loads: Option<Vec<f64>>,
    /// Base seed of the arrival schedules.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where overload.json and overload.svg are written.
    #[arg(long, default_value = "target/overload")]
    out_dir: PathBuf,
    /// Short run: 0.5 s per step at 1× and 4×, shorter calibration.
    #[arg(long)]
    quick: bool,
    /// Executors to run, comma-separated [default: all]: helix_learning, helix_static,
    /// spawn, spawn_blocking, tower_limit_shed, helix_no_cost_learning (HelixRouter with
    /// cost learning off; runs only with the flat hints).
    #[arg(long, value_delimiter = ',')]
    executors: Option<Vec<ExecutorKind>>,
    /// Scenarios HelixRouter runs in, comma-separated. Hint scenarios (fixed work, each
    /// job naming its class): exact (each job its class's nominal cost), flat (the mix's
    /// weighted mean cost), unknown (no cost), noisy (the nominal cost off by a per-job
    /// factor log-uniform in [1/4, 4]). Cost-model scenarios: one_class (exact hints,
    /// every job naming the one class `mixed`), sizes_exact (sized work: each job's work
    /// its class's cost × a factor log-uniform over 64×, mean 1; hinted its own work),
    /// sizes_units (sized work, no cost hint, units = round(factor × 1024)); they are
    /// checked against exact, so list it too. Baselines take no hint and run once per
    /// load on the fixed work, and once more on the sized work with a sizes_* scenario.
    #[arg(
        long,
        visible_alias = "scenarios",
        value_delimiter = ',',
        default_value = "exact"
    )]
    hints: Vec<HintScenario>,
    /// Cores to use (Tokio workers, router pool, tower limit, capacity) [default: all].
    #[arg(long)]
    cores: Option<usize>,
    /// Niceness (0..=19) of the router's CPU pool threads [default: the router's].
    #[arg(long)]
    pool_nice: Option<u8>,
    /// Use the classes' nominal costs instead of timing them.
    #[arg(long)]
    no_calibrate: bool,
    /// Do not draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut cfg = if args.quick {
        HarnessConfig::quick()
    } else {
        HarnessConfig::default()
    };
    if let Some(s) = args.secs_per_step {
        cfg.secs_per_step = s;
    }
    if let Some(l) = args.loads {
        cfg.loads = l;
    }
    if let Some(e) = args.executors {
        cfg.executors = e;
    }
    if let Some(c) = args.cores {
        cfg.cores = c;
        cfg.router.cpu_parallelism = c;
    }
    if let Some(n) = args.pool_nice {
        cfg.router.cpu_pool_nice = n;
    }
    if args.no_calibrate {
        cfg.calibrate_per_class = Duration::ZERO;
    }
    cfg.hints = args.hints;
    cfg.seed = args.seed;
    cfg.progress = !args.no_progress;

    let report = match run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("overload: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.render_table());
    if let Err(e) = std::fs::create_dir_all(&args.out_dir) {
        eprintln!("overload: creating {}: {e}", args.out_dir.display());
        return ExitCode::FAILURE;
    }
    let json = args.out_dir.join("overload.json");
    let svg = args.out_dir.join("overload.svg");
    if let Err(e) = report.write_json(&json) {
        eprintln!("overload: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = chart::write_svg(&report, &svg) {
        eprintln!("overload: {e}");
        return ExitCode::FAILURE;
    }
    println!("\nwrote {} and {}", json.display(), svg.display());
    ExitCode::SUCCESS
}
