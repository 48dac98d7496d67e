//! The overload harness: what do you gain over `tokio::spawn`, `spawn_blocking` or a
//! tower concurrency limit when the machine is overloaded?
//!
//! It is the workspace member `bench/` (crate `helix-overload`, not published), so the
//! `helixrouter` library does not depend on it, and it uses only helixrouter's public
//! API. Run it with `cargo run --release -p helix-overload --example overload -- --quick`
//! (see the example's `--help`).
//!
//! # Method
//!
//! 1. **Capacity.** Each job class's kernel is timed on one idle core
//!    ([`Capacity::measure`]); load 1× is the arrival rate that offers exactly `cores`
//!    seconds of CPU per second for the mix's mean measured cost.
//! 2. **Schedule.** For each offered load (e.g. 0.5×, 1×, 2×, 4×) one seeded open-loop
//!    schedule is drawn ([`Schedule::generate`]: Poisson arrivals, classes by weight).
//!    Every executor is driven by that same schedule, one after the other, each on a
//!    fresh multi-threaded Tokio runtime with `cores` workers.
//! 3. **Generator.** A dedicated thread issues each arrival at its planned time with
//!    `Runtime::spawn`, whatever the executor does, and records how late it issued it
//!    (its lag). It asks for `SCHED_FIFO` priority (else the highest nice level, else
//!    nothing; see [`GeneratorPriority`]) so that it keeps time while the executor
//!    saturates the cores; the priority it got is in the report. A job's latency runs
//!    from its *planned* arrival, so nothing an executor causes (a starved runtime, a
//!    burst) is hidden by the generator.
//! 4. **Outcomes.** Each job ends exactly once: on time, late, dropped (shed), failed,
//!    or unfinished (still not done at the cutoff = end of the arrival window + the
//!    largest budget + a grace period; such a job is over budget whatever happens, so
//!    it is abandoned to keep the next step clean). Goodput is on-time jobs.
//! 5. **Starvation.** A task on the same runtime sleeps 1 ms in a loop and records how
//!    late it wakes ([`PROBE_PERIOD`]); the same probe on an idle runtime is the
//!    reference (Tokio's timer ticks in whole milliseconds, so idle lateness is not 0).
//! 6. **Limit.** From the schedule and the measured costs, [`bound::goodput_bound`]
//!    gives an upper bound on the on-time jobs any executor could reach on these cores,
//!    and a feasible count a clairvoyant scheduler does reach (see [`bound`]).
//!
//! # Executors
//!
//! See [`ExecutorKind`]: HelixRouter with learning on and off (through
//! [`Router::run`](helixrouter::router::Router::run); built-in classes carry their
//! [`JobKind`](helixrouter::types::JobKind) exactly as `Router::submit` would, and every
//! job names its work class with the mix's class name), everything `tokio::spawn`,
//! everything `spawn_blocking`, and tower's `LoadShedLayer` over
//! `ConcurrencyLimitLayer(cores)` over a `spawn_blocking` service.
//!
//! # Hint scenarios
//!
//! [`HarnessConfig::hints`] lists what the callers tell HelixRouter about each job's
//! cost ([`HintScenario`]: exact, flat, unknown, noisy; see [`hints`]). At each load the
//! HelixRouter variants run once per scenario on the same schedule (the class is named
//! in every scenario, so only the hint differs), the baselines, which take no hint,
//! once; HelixRouter with cost learning off
//! ([`ExecutorKind::HelixNoCostLearning`]) runs in the flat scenario only. With more
//! than the exact scenario, HelixRouter's labels carry the scenario
//! (`helix (learning) [flat]`) and the bars include the hint bars
//! ([`report::OFFERED_BAR`], [`report::HINT_GAP_BAR`]).
//!
//! # Examples
//!
//! ```no_run
//! use helix_overload::{HarnessConfig, run};
//! let cfg = HarnessConfig { loads: vec![1.0, 4.0], secs_per_step: 1.0, ..HarnessConfig::default() };
//! let report = run(&cfg)?;
//! println!("{}", report.render_table());
//! # Ok::<(), helix_overload::HarnessError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod bound;
pub mod capacity;
pub mod chart;
mod error;
mod executor;
pub mod hints;
pub mod remote;
pub mod report;
mod runner;
pub mod schedule;
pub mod stats;
pub mod workload;

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub use bound::{Bound, BoundJob, goodput_bound};
pub use capacity::{Capacity, ClassCost};
pub use error::HarnessError;
pub use executor::ExecutorKind;
pub use hints::HintScenario;
pub use report::{BarCheck, ExecutorFigures, LoadStep, MachineInfo, OverloadReport};
pub use runner::{GeneratorPriority, PROBE_PERIOD, ThreadCpu};
pub use schedule::{Arrival, Schedule};
pub use stats::{ClassFigures, Outcome, Quantiles, Tally};
pub use workload::{JobClass, Mix, WorkKind};

use executor::ClassRt;
use helixrouter::config::{RouterConfig, available_cores};
use runner::{StepPlan, idle_lateness, run_step};

/// Everything a harness run needs. [`HarnessConfig::default`] is the full run of the
/// issue: 2 s per step at 0.5×, 1×, 2×, 4× with every executor and exact hints.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    /// Arrival window per (load, executor) step, seconds (> 0).
    pub secs_per_step: f64,
    /// Offered loads as multiples of capacity (each > 0).
    pub loads: Vec<f64>,
    /// Base seed; load step `i` uses a seed derived from it.
    pub seed: u64,
    /// Executors to compare, in run order (at least one);
    /// [`ExecutorKind::HelixNoCostLearning`] runs only when `hints` has flat.
    pub executors: Vec<ExecutorKind>,
    /// Hint scenarios HelixRouter runs in, in run order (at least one, no repeats):
    /// each HelixRouter variant runs once per scenario, the baselines once per load
    /// (in the first scenario, whose hints they ignore).
    pub hints: Vec<HintScenario>,
    /// Cores: Tokio workers per step, the tower limit, the bound's cores and the
    /// capacity's multiplier (>= 1).
    pub cores: usize,
    /// The workload.
    pub mix: Mix,
    /// Time spent timing each class for the capacity; zero uses the nominal costs.
    pub calibrate_per_class: Duration,
    /// Time the starvation probe runs alone on an idle runtime for the reference.
    pub idle_probe: Duration,
    /// Extra wait after the largest budget before unfinished jobs are abandoned.
    pub grace: Duration,
    /// The HelixRouter config (its `enable_neural` is set per variant).
    pub router: RouterConfig,
    /// Draw an indicatif progress bar on stderr.
    pub progress: bool,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        let cores = available_cores();
        HarnessConfig {
            secs_per_step: 2.0,
            loads: vec![0.5, 1.0, 2.0, 4.0],
            seed: 7,
            executors: ExecutorKind::EVERY.to_vec(),
            hints: vec![HintScenario::Exact],
            cores,
            mix: Mix::standard(),
            calibrate_per_class: Duration::from_millis(150),
            idle_probe: Duration::from_secs(1),
            grace: Duration::from_millis(200),
            router: RouterConfig {
                cpu_parallelism: cores,
                ..RouterConfig::default()
            },
            progress: true,
        }
    }
}

impl HarnessConfig {
    /// A short run for a quick look: 0.5 s per step at 1× and 4×.
    pub fn quick() -> Self {
        HarnessConfig {
            secs_per_step: 0.5,
            loads: vec![1.0, 4.0],
            calibrate_per_class: Duration::from_millis(50),
            idle_probe: Duration::from_millis(300),
            ..HarnessConfig::default()
        }
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// [`HarnessError::InvalidConfig`] naming the first bad setting,
    /// [`HarnessError::InvalidMix`] for a bad mix, [`HarnessError::Router`] for a
    /// router config that fails validation.
    pub fn validate(&self) -> Result<(), HarnessError> {
        let bad = |field, reason: String| Err(HarnessError::InvalidConfig { field, reason });
        if !(self.secs_per_step.is_finite() && self.secs_per_step > 0.0) {
            return bad(
                "secs_per_step",
                format!("must be finite and > 0, got {}", self.secs_per_step),
            );
        }
        if self.loads.is_empty() {
            return bad("loads", "needs at least one load, e.g. 0.5,1,2,4".into());
        }
        if let Some(l) = self.loads.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
            return bad(
                "loads",
                format!("every load must be finite and > 0, got {l}"),
            );
        }
        if self.executors.is_empty() {
            return bad("executors", "needs at least one executor".into());
        }
        if self.hints.is_empty() {
            return bad(
                "hints",
                "needs at least one hint scenario, e.g. exact,flat,unknown,noisy".into(),
            );
        }
        if let Some((i, h)) = self
            .hints
            .iter()
            .enumerate()
            .find(|(i, h)| self.hints[..*i].contains(h))
        {
            return bad("hints", format!("`{h}` is listed twice (at {i})"));
        }
        if self.runs().is_empty() {
            return bad(
                "executors",
                "nothing runs: helix_no_cost_learning runs only with the flat hints".into(),
            );
        }
        if self.cores == 0 {
            return bad("cores", "must be >= 1".into());
        }
        self.mix.validate().map_err(HarnessError::InvalidMix)?;
        self.router.validate()?;
        Ok(())
    }
}

impl HarnessConfig {
    /// The runs of one load step, in order: for each hint scenario, each executor that
    /// runs in it ([`ExecutorKind::runs_in`]), with the scenario it reports (`None`
    /// for a baseline) and the scenario whose hints it gets.
    fn runs(&self) -> Vec<(ExecutorKind, Option<HintScenario>, HintScenario)> {
        let Some(&first) = self.hints.first() else {
            return Vec::new();
        };
        self.hints
            .iter()
            .flat_map(|&h| {
                self.executors
                    .iter()
                    .filter(move |k| k.runs_in(h, first))
                    .map(move |&k| (k, k.is_helix().then_some(h), h))
            })
            .collect()
    }
}

/// Seed of load step `i`.
fn step_seed(base: u64, i: usize) -> u64 {
    base ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn progress_bar(show: bool, len: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Runs the whole sweep and returns the report (it writes no file: see
/// [`OverloadReport::write_json`] and [`chart::write_svg`]).
///
/// Blocking: builds its own runtimes, so call it from a plain thread, not from inside
/// a Tokio runtime.
///
/// # Errors
///
/// A bad setting (see [`HarnessConfig::validate`]) or a runtime that cannot be built.
pub fn run(cfg: &HarnessConfig) -> Result<OverloadReport, HarnessError> {
    cfg.validate()?;
    let runs = cfg.runs();
    let steps_total = (cfg.loads.len() * runs.len()) as u64;
    let pb = progress_bar(cfg.progress, steps_total);
    pb.set_message("measuring capacity");
    let capacity = if cfg.calibrate_per_class.is_zero() {
        Capacity::nominal(&cfg.mix, cfg.cores)
    } else {
        Capacity::measure(&cfg.mix, cfg.cores, cfg.calibrate_per_class)
    };
    pb.set_message("probing an idle runtime");
    let mut idle = idle_lateness(cfg.cores, cfg.idle_probe)?;
    let idle_starvation_ms = Quantiles::of_ns(&mut idle, 1e6);
    let costs = capacity.measured_costs();
    let window = Duration::from_secs_f64(cfg.secs_per_step);
    // Each class's name is leaked at most once per process, here.
    let classes: Vec<ClassRt> = cfg.mix.classes.iter().map(ClassRt::of).collect();

    let mut steps = Vec::with_capacity(cfg.loads.len());
    for (i, &load) in cfg.loads.iter().enumerate() {
        let seed = step_seed(cfg.seed, i);
        let schedule = Schedule::generate(&cfg.mix, capacity.rate_for(load), window, seed)?;
        let jobs: Vec<BoundJob> = schedule
            .arrivals
            .iter()
            .map(|a| {
                let c = usize::from(a.class);
                BoundJob {
                    release_ns: a.at_ns,
                    cost_ns: costs.get(c).copied().unwrap_or(0),
                    deadline_ns: a.at_ns + cfg.mix.classes.get(c).map_or(0, JobClass::budget_ns),
                }
            })
            .collect();
        let bound = goodput_bound(&jobs, cfg.cores);
        let offered = schedule.arrivals.len() as u64;
        let window_secs = window.as_secs_f64();
        let hints: Vec<(HintScenario, Vec<u64>)> = cfg
            .hints
            .iter()
            .map(|&h| (h, h.hints(&cfg.mix, &schedule)))
            .collect();
        let mut executors = Vec::with_capacity(runs.len());
        for &(kind, reported, given) in &runs {
            pb.set_message(format!("load {load}× · {} [{given}]", kind.label()));
            let step_hints = hints
                .iter()
                .find(|(h, _)| *h == given)
                .map_or(&[][..], |(_, v)| v.as_slice());
            let plan = StepPlan {
                kind,
                schedule: &schedule,
                mix: &cfg.mix,
                classes: &classes,
                hints: step_hints,
                cores: cfg.cores,
                router: &cfg.router,
                grace: cfg.grace,
                nats: None,
            };
            let mut run = run_step(&plan)?;
            let f = stats::summarize(&cfg.mix, &schedule, &run.results);
            let t = f.tally;
            executors.push(ExecutorFigures {
                executor: kind,
                hints: reported,
                tally: t,
                goodput_share: t.share(t.on_time),
                goodput_per_sec: t.on_time as f64 / window_secs,
                share_of_bound: if bound.upper == 0 {
                    0.0
                } else {
                    t.on_time as f64 / bound.upper as f64
                },
                drop_share: t.share(t.dropped),
                late_share: t.share(t.late + t.unfinished),
                latency_ms: f.latency_ms,
                classes: f.classes,
                starvation_ms: Quantiles::of_ns(&mut run.lateness_ns, 1e6),
                generator_lag_us: Quantiles::of_ns(&mut run.lag_ns, 1e3),
                generator_priority: run.generator_priority,
                thread_cpu: run.thread_cpu,
                foreign_cpu_secs: run.foreign_cpu_secs,
                wall_secs: run.wall.as_secs_f64(),
                router: run.router,
            });
            pb.inc(1);
            // Let the previous step's threads wind down before the next one starts.
            std::thread::sleep(Duration::from_millis(50));
        }
        steps.push(LoadStep {
            load,
            rate_per_sec: schedule.rate_per_sec,
            seed,
            window_secs,
            offered,
            realised_load: schedule.demand_ns(&costs) as f64
                / (cfg.cores as f64 * window_secs * 1e9),
            bound,
            bound_share: if offered == 0 {
                0.0
            } else {
                bound.upper as f64 / offered as f64
            },
            executors,
        });
    }
    pb.finish_and_clear();
    let bars = OverloadReport::check_bars(&steps, &idle_starvation_ms);
    Ok(OverloadReport {
        machine: report::MachineInfo::current(),
        seed: cfg.seed,
        secs_per_step: cfg.secs_per_step,
        mix: cfg.mix.clone(),
        hints: cfg.hints.clone(),
        capacity,
        idle_starvation_ms,
        steps,
        bars,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_quick_configs_are_valid() {
        assert!(HarnessConfig::default().validate().is_ok());
        assert!(HarnessConfig::quick().validate().is_ok());
    }

    #[test]
    fn bad_settings_name_the_field() {
        let bad = |f: fn(&mut HarnessConfig)| {
            let mut c = HarnessConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.loads.clear()).contains("loads"));
        assert!(bad(|c| c.loads = vec![1.0, -2.0]).contains("loads"));
        assert!(bad(|c| c.secs_per_step = 0.0).contains("secs_per_step"));
        assert!(bad(|c| c.executors.clear()).contains("executors"));
        assert!(bad(|c| c.cores = 0).contains("cores"));
        assert!(bad(|c| c.hints.clear()).contains("hints"));
        assert!(bad(|c| c.hints = vec![HintScenario::Flat, HintScenario::Flat]).contains("twice"));
        assert!(
            bad(|c| c.executors = vec![ExecutorKind::HelixNoCostLearning]).contains("executors")
        );
    }

    #[test]
    fn runs_are_per_scenario_with_baselines_once() {
        let exact = HarnessConfig::default();
        let r = exact.runs();
        // Exact hints only: every executor of `ALL` once, in order, as before.
        assert_eq!(
            r.iter().map(|x| x.0).collect::<Vec<_>>(),
            ExecutorKind::ALL.to_vec()
        );
        let cfg = HarnessConfig {
            hints: HintScenario::ALL.to_vec(),
            ..HarnessConfig::default()
        };
        let r = cfg.runs();
        // 5 in exact, 2 helix + cost learning off in flat, 2 helix each in unknown and noisy.
        assert_eq!(r.len(), 5 + 3 + 2 + 2);
        assert!(r.iter().all(|(k, rep, given)| if k.is_helix() {
            *rep == Some(*given)
        } else {
            rep.is_none() && *given == HintScenario::Exact
        }));
        let off: Vec<_> = r
            .iter()
            .filter(|x| x.0 == ExecutorKind::HelixNoCostLearning)
            .collect();
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].1, Some(HintScenario::Flat));
    }

    #[test]
    fn step_seeds_differ_per_load() {
        assert_ne!(step_seed(7, 0), step_seed(7, 1));
        assert_eq!(step_seed(7, 2), step_seed(7, 2));
    }
}
