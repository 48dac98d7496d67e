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
//!    (its lag). It wakes at most once per [`GENERATOR_TICK`] (200 µs) and issues every
//!    arrival then due, so an arrival is issued up to a tick late: at 10× (35,000
//!    arrivals a second) one wake-up per arrival cost the generator and the runtime it
//!    wakes about 0.4 of the 2 cores, for every executor alike; ticks cost 0.1. It asks for `SCHED_FIFO` priority (else the highest nice level, else
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
//! 6. **Work.** Each run reports its on-time work in cores (the measured cost of its
//!    on-time jobs over the arrival window: [`ExecutorFigures::on_time_work_cores`])
//!    and where the step's core-seconds went ([`CoreSeconds`]: on-time and late work,
//!    the rest of the process, the generator, other processes, idle), from `/proc` and
//!    the jobs' outcomes; HelixRouter's runs carry the router's own run-time ledger.
//! 7. **Limit.** From the schedule and the measured costs (per job: × the job's size
//!    factor in the sized workload), [`bound::goodput_bound`] gives an upper bound on
//!    the on-time jobs any executor could reach on these cores, and a feasible count a
//!    clairvoyant scheduler does reach (see [`bound`]).
//!
//! # Executors
//!
//! See [`ExecutorKind`]: HelixRouter with learning on and off (through
//! [`Router::run`](helixrouter::router::Router::run); built-in classes carry their
//! [`JobKind`](helixrouter::types::JobKind) exactly as `Router::submit` would, and every
//! job names its work class: the mix's class name, except in the one-class scenario),
//! everything `tokio::spawn`, everything `spawn_blocking`, and tower's `LoadShedLayer`
//! over `ConcurrencyLimitLayer(cores)` over a `spawn_blocking` service.
//!
//! # Scenarios
//!
//! [`HarnessConfig::hints`] lists the scenarios ([`HintScenario`], see [`hints`]):
//!
//! - the *hint scenarios* (exact, flat, unknown, noisy): what the callers tell
//!   HelixRouter about each job's cost, on the fixed work (each job its class's
//!   nominal cost), each job naming its mix class, so only the hint differs;
//! - the *cost-model scenarios*: `one_class` (exact hints, every job naming the one
//!   class `mixed`), and on the *sized* work ([`sizes`]: each job's work is its
//!   class's nominal cost × a per-job factor over a 64× range, mean 1)
//!   `sizes_exact` (each job hinted its own work) and `sizes_units` (no cost hint, the
//!   job's size as `WorkHint::units`).
//!
//! At each load the HelixRouter variants run once per scenario on the same schedule;
//! HelixRouter with cost learning off ([`ExecutorKind::HelixNoCostLearning`]) runs in
//! the flat scenario only. The baselines take no hint, so they run once per
//! *workload* ([`Workload`]): once on the fixed work (in the run's first fixed-work
//! scenario), and, when a sized scenario runs, once more on the sized work (in the
//! first sized scenario, labelled `[sized]`), so that each HelixRouter run is compared
//! with baselines that did the same work. With more than the exact scenario,
//! HelixRouter's labels carry the scenario (`helix (learning) [flat]`) and the bars
//! include the hint bars ([`report::OFFERED_BAR`], [`report::HINT_GAP_BAR`]); with a
//! cost-model scenario the report also has the cost-model bars
//! ([`report::CostModelBar`]: within [`report::COST_MODEL_GAP_BAR`] of exact at every
//! load, one class >= [`report::LOW_LOAD_BAR`] at 0.5×).
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
pub mod sizes;
pub mod stats;
mod sweep;
pub mod workload;

use std::time::Duration;

pub use bound::{Bound, BoundJob, goodput_bound};
pub use capacity::{Capacity, ClassCost};
pub use error::HarnessError;
pub use executor::ExecutorKind;
pub use hints::{HintScenario, JobHint};
pub use report::{
    BarCheck, CoreSeconds, CostModelBar, ExecutorFigures, LoadStep, MachineInfo, OverloadReport,
    SizedLoad,
};
pub use runner::{
    GENERATOR_GROUP, GENERATOR_TICK, GeneratorPriority, MachineCpu, PROBE_PERIOD, ThreadCpu,
};
pub use schedule::{Arrival, Schedule};
pub use sizes::Workload;
pub use stats::{ClassFigures, Outcome, Quantiles, Tally};
pub use sweep::run;
pub use workload::{JobClass, Mix, WorkKind};

use helixrouter::config::{RouterConfig, available_cores};

/// Everything a harness run needs. [`HarnessConfig::default`] is the full run of the
/// issue: 2 s per step at 0.5×, 1×, 2×, 4×, 6× and 10× with every executor and exact
/// hints.
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
    /// Scenarios HelixRouter runs in (hint and cost-model scenarios), in run order (at
    /// least one, no repeats): each HelixRouter variant runs once per scenario, the
    /// baselines once per load and workload (in the first scenario of each workload
    /// listed, whose hints they ignore: see [`ExecutorKind::runs_in`]).
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
            loads: vec![0.5, 1.0, 2.0, 4.0, 6.0, 10.0],
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
                "needs at least one scenario, e.g. exact,flat,unknown,noisy,one_class,sizes_exact,sizes_units".into(),
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
    /// The runs of one load step, in order: for each scenario, each executor that runs
    /// in it ([`ExecutorKind::runs_in`]), with the scenario it reports (`None` for a
    /// baseline) and the scenario whose hints (and workload) it gets.
    pub(crate) fn runs(&self) -> Vec<(ExecutorKind, Option<HintScenario>, HintScenario)> {
        let hints = &self.hints;
        hints
            .iter()
            .flat_map(|&h| {
                self.executors
                    .iter()
                    .filter(move |k| k.runs_in(h, hints))
                    .map(move |&k| (k, k.is_helix().then_some(h), h))
            })
            .collect()
    }
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
            hints: HintScenario::HINTS.to_vec(),
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
        // Every scenario: the baselines once more, on the sized work, in sizes_exact
        // (the first sized scenario); 2 helix each in the three cost-model scenarios.
        let cfg = HarnessConfig {
            hints: HintScenario::ALL.to_vec(),
            ..HarnessConfig::default()
        };
        let r = cfg.runs();
        assert_eq!(r.len(), 5 + 3 + 2 + 2 + 2 + 5 + 2);
        let baselines: Vec<HintScenario> = r
            .iter()
            .filter(|x| x.0 == ExecutorKind::Spawn)
            .map(|x| x.2)
            .collect();
        assert_eq!(
            baselines,
            vec![HintScenario::Exact, HintScenario::SizesExact]
        );
        assert!(
            r.iter()
                .all(|(k, rep, given)| k.is_helix() == (*rep == Some(*given)))
        );
        let off: Vec<_> = r
            .iter()
            .filter(|x| x.0 == ExecutorKind::HelixNoCostLearning)
            .collect();
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].1, Some(HintScenario::Flat));
    }
}
