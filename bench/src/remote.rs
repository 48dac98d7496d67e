//! The remote scenario: what does one remote worker add when the router's machine is
//! out of cores?
//!
//! On a 2-core machine the router's process is pinned to core 0 (`cpu_parallelism`
//! 1, one Tokio worker) and one worker process ([`helixrouter::remote::Worker`],
//! parallelism 1) to core 1; the caller does the pinning ([`pin_to_core`]) and starts
//! the NATS server and the worker (`cargo run --release -p helix-overload --example
//! remote` does all of it). One seeded schedule at `load` × the *one-core* capacity
//! is run twice in one run: HelixRouter alone ([`ExecutorKind::HelixStatic`]), then
//! HelixRouter with the worker ([`ExecutorKind::HelixRemote`], every job an
//! [`OverloadTask`] through `Router::run_task`, so the router decides per job whether
//! it runs here or there).
//!
//! Goodput is counted by jobs and by **work**: the measured CPU time of the jobs that
//! finished within budget. With the standard mix the heavy class is ~88% of the CPU
//! but 10% of the jobs, so one core shedding heavy jobs keeps its job-count goodput
//! high; only on-time work shows what a second core adds. Bars ([`RemoteReport::bars`]):
//! on-time work with the worker ≥ [`WORK_RATIO_BAR`] × local-only, on-time job count
//! not lower, and no job of a class below the remote cost floor
//! ([`RemoteConfig::min_cost_ns`]) sent remote.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::executor::{ClassRt, StepShared};
use super::runner::{StepPlan, ThreadCpu, run_step, stat_cpu_ticks};
use super::sizes::{job_costs_ns, nominal_costs};
use super::stats::{Quantiles, Tally, summarize};
use super::workload::{Mix, WorkKind, execute};
use super::{Capacity, ExecutorKind, HarnessError, HintScenario, MachineInfo, Schedule};
use helixrouter::config::RouterConfig;
use helixrouter::remote::{RemoteConfig, RemoteStats, RemoteTask};
use helixrouter::types::Strategy;

/// On-time work with the worker must be at least this multiple of local-only.
pub const WORK_RATIO_BAR: f64 = 1.6;

/// One harness job as a remote task: the class's work at its nominal cost for the
/// job's seed (the same computation [`execute`] does locally).
#[derive(Debug, Serialize, Deserialize)]
pub struct OverloadTask {
    work: WorkKind,
    cost_ns: u64,
    seed: u64,
    /// The step's shared state when the task runs in the harness's own process: a
    /// job that starts after the step's cutoff returns at once without computing,
    /// as every local job does. Not sent: on a worker it is `None`.
    #[serde(skip)]
    step: Option<Arc<StepShared>>,
}

impl OverloadTask {
    /// A task doing `work` at `cost_ns` for `seed` (what a worker receives).
    pub fn new(work: WorkKind, cost_ns: u64, seed: u64) -> Self {
        OverloadTask {
            work,
            cost_ns,
            seed,
            step: None,
        }
    }

    /// The task of one harness job: `work` at the job's own `cost_ns`.
    pub(crate) fn of_item(work: WorkKind, cost_ns: u64, seed: u64, step: &Arc<StepShared>) -> Self {
        OverloadTask {
            step: Some(Arc::clone(step)),
            ..OverloadTask::new(work, cost_ns, seed)
        }
    }
}

impl RemoteTask for OverloadTask {
    const NAME: &'static str = "helix_overload_job";
    /// The work's digest; `None` when it started after the step's cutoff.
    type Output = Option<u64>;

    fn run(self) -> Option<u64> {
        if self
            .step
            .as_ref()
            .is_some_and(|s| s.abandoned().load(Ordering::Relaxed))
        {
            return None;
        }
        Some(std::hint::black_box(execute(
            self.work,
            self.cost_ns,
            self.seed,
        )))
    }
}

/// Pins the calling thread to `core`; threads it starts afterwards (a Tokio runtime,
/// the router's pool) inherit the pin, so called first thing in `main` it pins the
/// whole process.
///
/// # Errors
///
/// [`HarnessError::Affinity`] when the core does not exist or the OS refuses.
pub fn pin_to_core(core: usize) -> Result<(), HarnessError> {
    // Not looked up in `get_core_ids`: that lists the cores the *current* mask allows,
    // and a process started by a pinned parent inherits its parent's single core.
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(HarnessError::Affinity {
            core,
            reason: "sched_setaffinity refused (no such core?)".into(),
        })
    }
}

/// What the remote scenario runs.
#[derive(Debug, Clone)]
pub struct RemoteScenario {
    /// The NATS server the worker is connected to.
    pub nats_url: String,
    /// Arrival window of each of the two runs, seconds (> 0).
    pub secs: f64,
    /// Offered load as a multiple of the one-core capacity (> 0).
    pub load: f64,
    /// Seed of the schedule.
    pub seed: u64,
    /// The workload.
    pub mix: Mix,
    /// Time spent timing each class for the capacity.
    pub calibrate_per_class: Duration,
    /// Extra wait after the largest budget before unfinished jobs are abandoned.
    pub grace: Duration,
    /// Other processes whose CPU time is reported per run (`(label, pid)`: the worker,
    /// the NATS server).
    pub processes: Vec<(String, u32)>,
}

impl RemoteScenario {
    /// The scenario of the issue: 2× the one-core capacity, 4 s per run.
    pub fn new(nats_url: impl Into<String>) -> Self {
        RemoteScenario {
            nats_url: nats_url.into(),
            secs: 4.0,
            load: 2.0,
            seed: 7,
            mix: Mix::standard(),
            calibrate_per_class: Duration::from_millis(400),
            grace: Duration::from_millis(200),
            processes: Vec::new(),
        }
    }

    fn validate(&self) -> Result<(), HarnessError> {
        let bad = |field, reason: String| Err(HarnessError::InvalidConfig { field, reason });
        if !(self.secs.is_finite() && self.secs > 0.0) {
            return bad("secs", format!("must be finite and > 0, got {}", self.secs));
        }
        if !(self.load.is_finite() && self.load > 0.0) {
            return bad("load", format!("must be finite and > 0, got {}", self.load));
        }
        self.mix.validate().map_err(HarnessError::InvalidMix)
    }
}

/// One class in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteClassFigures {
    /// Class name.
    pub class: String,
    /// Measured CPU cost of one job, ns.
    pub cost_ns: u64,
    /// Outcomes.
    pub tally: Tally,
    /// Jobs the router sent to the worker.
    pub remote: u64,
    /// Latency of completed jobs, ms from the scheduled arrival.
    pub latency_ms: Quantiles,
}

/// One of the two runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteRun {
    /// Local only ([`ExecutorKind::HelixStatic`]) or with the worker
    /// ([`ExecutorKind::HelixRemote`]).
    pub executor: ExecutorKind,
    /// Outcomes over all classes.
    pub tally: Tally,
    /// CPU seconds of the jobs that finished within budget (measured cost × count).
    pub on_time_work_secs: f64,
    /// `on_time_work_secs` per second of the window: cores' worth of useful work.
    pub on_time_work_cores: f64,
    /// Jobs sent to the worker.
    pub remote_jobs: u64,
    /// `remote_jobs` / offered.
    pub remote_share: f64,
    /// Share of the offered work (CPU time) sent to the worker.
    pub remote_work_share: f64,
    /// Per class, in mix order.
    pub classes: Vec<RemoteClassFigures>,
    /// The router's remote figures at the end of the run (round trip, redelivered, …).
    pub remote_stats: Option<RemoteStats>,
    /// CPU used by this process's threads.
    pub thread_cpu: Vec<ThreadCpu>,
    /// CPU seconds each of [`RemoteScenario::processes`] used during the run.
    pub process_cpu_secs: Vec<(String, f64)>,
}

/// One bar of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteBar {
    /// What is checked.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// What it is held against.
    pub target: String,
    /// Whether it holds.
    pub met: bool,
}

/// The scenario's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteReport {
    /// Where it ran.
    pub machine: MachineInfo,
    /// One-core capacity the load is a multiple of.
    pub capacity: Capacity,
    /// Offered load (× one-core capacity).
    pub load: f64,
    /// Schedule seed.
    pub seed: u64,
    /// Arrival window per run, seconds.
    pub secs: f64,
    /// Jobs in the schedule.
    pub offered: u64,
    /// CPU seconds the schedule offers.
    pub offered_work_secs: f64,
    /// Local only, then with the worker.
    pub runs: Vec<RemoteRun>,
    /// The bars.
    pub bars: Vec<RemoteBar>,
}

/// `(label, utime + stime ticks)` of each process, from `/proc/<pid>/stat`.
fn process_ticks(processes: &[(String, u32)]) -> Vec<(String, Option<u64>)> {
    processes
        .iter()
        .map(|(label, pid)| {
            let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| stat_cpu_ticks(&s));
            (label.clone(), ticks)
        })
        .collect()
}

/// Runs the scenario: measures the one-core capacity, then the two runs on one
/// schedule. Call it from a plain thread of a process pinned to one core (see the
/// module docs) with a worker serving [`OverloadTask`] connected to `nats_url`.
///
/// # Errors
///
/// A bad setting, a runtime that cannot be built, or a router that cannot connect or
/// sees no worker within 15 s ([`HarnessError::Remote`]).
pub fn run_remote(cfg: &RemoteScenario) -> Result<RemoteReport, HarnessError> {
    cfg.validate()?;
    let capacity = Capacity::measure(&cfg.mix, 1, cfg.calibrate_per_class);
    let costs = capacity.measured_costs();
    let window = Duration::from_secs_f64(cfg.secs);
    let schedule = Schedule::generate(&cfg.mix, capacity.rate_for(cfg.load), window, cfg.seed)?;
    let hints = HintScenario::Exact.hints(&cfg.mix, &schedule);
    let work_ns = job_costs_ns(&schedule, &nominal_costs(&cfg.mix), None);
    let classes: Vec<ClassRt> = cfg.mix.classes.iter().map(ClassRt::of).collect();
    let router = RouterConfig {
        cpu_parallelism: 1,
        ..RouterConfig::default()
    };
    let offered_work_ns = schedule.demand_ns(&costs);
    let mut runs = Vec::new();
    for kind in [ExecutorKind::HelixStatic, ExecutorKind::HelixRemote] {
        let plan = StepPlan {
            kind,
            schedule: &schedule,
            mix: &cfg.mix,
            classes: &classes,
            hints: &hints,
            work_ns: &work_ns,
            cores: 1,
            router: &router,
            grace: cfg.grace,
            nats: Some(&cfg.nats_url),
        };
        let before = process_ticks(&cfg.processes);
        let run = run_step(&plan)?;
        let after = process_ticks(&cfg.processes);
        let figures = summarize(&cfg.mix, &schedule, &run.results);
        let stats = run.router.as_ref();
        let mut remote_jobs = 0;
        let mut remote_work_ns = 0u64;
        let mut on_time_work_ns = 0u64;
        let class_figures: Vec<RemoteClassFigures> = figures
            .classes
            .iter()
            .zip(&costs)
            .map(|(c, &cost_ns)| {
                let remote = stats
                    .and_then(|s| s.classes.iter().find(|x| x.name == c.class))
                    .and_then(|x| x.routed.iter().find(|r| r.strategy == Strategy::Remote))
                    .map_or(0, |r| r.routed);
                remote_jobs += remote;
                remote_work_ns += remote * cost_ns;
                on_time_work_ns += c.tally.on_time * cost_ns;
                RemoteClassFigures {
                    class: c.class.clone(),
                    cost_ns,
                    tally: c.tally,
                    remote,
                    latency_ms: c.latency_ms,
                }
            })
            .collect();
        let offered = figures.tally.offered.max(1) as f64;
        runs.push(RemoteRun {
            executor: kind,
            tally: figures.tally,
            on_time_work_secs: on_time_work_ns as f64 / 1e9,
            on_time_work_cores: on_time_work_ns as f64 / 1e9 / cfg.secs,
            remote_jobs,
            remote_share: remote_jobs as f64 / offered,
            remote_work_share: remote_work_ns as f64 / offered_work_ns.max(1) as f64,
            classes: class_figures,
            remote_stats: stats.and_then(|s| s.remote.clone()),
            thread_cpu: run.thread_cpu,
            process_cpu_secs: before
                .iter()
                .zip(&after)
                .map(|((label, b), (_, a))| {
                    let ticks = a.zip(*b).map_or(0, |(a, b)| a.saturating_sub(b));
                    (label.clone(), ticks as f64 / 100.0)
                })
                .collect(),
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    let floor = RemoteConfig::nats(&cfg.nats_url).min_cost_ns;
    let bars = bars(&runs, floor);
    Ok(RemoteReport {
        machine: MachineInfo::current(),
        capacity,
        load: cfg.load,
        seed: cfg.seed,
        secs: cfg.secs,
        offered: schedule.arrivals.len() as u64,
        offered_work_secs: offered_work_ns as f64 / 1e9,
        runs,
        bars,
    })
}

/// The scenario's bars from its two runs (local first); `floor_ns` is the cost below
/// which nothing may go remote.
fn bars(runs: &[RemoteRun], floor_ns: u64) -> Vec<RemoteBar> {
    let (Some(local), Some(remote)) = (runs.first(), runs.get(1)) else {
        return Vec::new();
    };
    let work_ratio = remote.on_time_work_secs / local.on_time_work_secs.max(f64::MIN_POSITIVE);
    let small_remote: u64 = remote
        .classes
        .iter()
        .filter(|c| c.cost_ns < floor_ns)
        .map(|c| c.remote)
        .sum();
    vec![
        RemoteBar {
            name: "on-time work, with worker / local only".into(),
            value: work_ratio,
            target: format!(">= {WORK_RATIO_BAR}"),
            met: work_ratio >= WORK_RATIO_BAR,
        },
        RemoteBar {
            name: "on-time jobs, with worker − local only".into(),
            value: remote.tally.on_time as f64 - local.tally.on_time as f64,
            target: ">= 0".into(),
            met: remote.tally.on_time >= local.tally.on_time,
        },
        RemoteBar {
            name: format!(
                "jobs of classes under {} ms sent remote",
                floor_ns / 1_000_000
            ),
            value: small_remote as f64,
            target: "0".into(),
            met: small_remote == 0,
        },
    ]
}

impl RemoteReport {
    /// Whether every bar holds.
    pub fn all_bars_met(&self) -> bool {
        !self.bars.is_empty() && self.bars.iter().all(|b| b.met)
    }

    /// Writes the report as pretty JSON.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Json`] or [`HarnessError::Io`].
    pub fn write_json(&self, path: &Path) -> Result<(), HarnessError> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json).map_err(|source| HarnessError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// The terminal table: one row per run, one per class and run, then the bars.
    pub fn render_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "machine: {} · router on 1 core, 1 worker on 1 core · {:.1}× one-core capacity ({:.0} jobs/s) · {} s per run · seed {}",
            self.machine.cpu,
            self.load,
            self.capacity.rate_for(self.load),
            self.secs,
            self.seed
        );
        let _ = writeln!(
            s,
            "offered: {} jobs, {:.2} s of CPU ({:.2} cores)\n",
            self.offered,
            self.offered_work_secs,
            self.offered_work_secs / self.secs
        );
        let _ = writeln!(
            s,
            "| run | on-time jobs | on-time work (cores) | dropped | late+unfinished | remote jobs | remote work share | round trip p50 / p99 (ms) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for r in &self.runs {
            let t = r.tally;
            let rt = r.remote_stats.as_ref().map_or("—".to_owned(), |x| {
                let ms = |v: Option<f64>| v.map_or("—".to_owned(), |u| format!("{:.2}", u / 1e3));
                format!("{} / {}", ms(x.round_trip_p50_us), ms(x.round_trip_p99_us))
            });
            let _ = writeln!(
                s,
                "| {} | {} ({:.1}%) | {:.2} | {} | {} | {} ({:.1}%) | {:.1}% | {} |",
                r.executor.label(),
                t.on_time,
                t.share(t.on_time) * 100.0,
                r.on_time_work_cores,
                t.dropped,
                t.late + t.unfinished,
                r.remote_jobs,
                r.remote_share * 100.0,
                r.remote_work_share * 100.0,
                rt
            );
        }
        let _ = writeln!(
            s,
            "\n| run | class | cost (µs) | offered | on time | dropped | remote | p99 (ms) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for r in &self.runs {
            for c in &r.classes {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} | {} | {} | {} | {} | {} |",
                    r.executor.label(),
                    c.class,
                    c.cost_ns as f64 / 1e3,
                    c.tally.offered,
                    c.tally.on_time,
                    c.tally.dropped,
                    c.remote,
                    c.latency_ms
                        .p99
                        .map_or("—".to_owned(), |v| format!("{v:.1}"))
                );
            }
        }
        if let Some(r) = self.runs.get(1) {
            if let Some(x) = &r.remote_stats {
                let _ = writeln!(
                    s,
                    "\nremote: sent {} · completed {} · timed out {} · expired {} · redelivered {} · duplicates {} · publish failed {}",
                    x.sent,
                    x.completed,
                    x.timed_out,
                    x.expired,
                    x.redelivered,
                    x.duplicates,
                    x.publish_failed
                );
            }
            for (label, secs) in &r.process_cpu_secs {
                let _ = writeln!(
                    s,
                    "{label}: {secs:.2} s of CPU during the run with the worker"
                );
            }
        }
        let _ = writeln!(s, "\nbars:");
        for b in &self.bars {
            let _ = writeln!(
                s,
                "  [{}] {}: {:.2} (target {})",
                if b.met { "met" } else { "MISSED" },
                b.name,
                b.value,
                b.target
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: ExecutorKind, on_time: u64, classes: &[(u64, u64, u64)]) -> RemoteRun {
        RemoteRun {
            executor: kind,
            tally: Tally {
                offered: 100,
                on_time,
                ..Tally::default()
            },
            on_time_work_secs: classes.iter().map(|&(c, o, _)| (c * o) as f64 / 1e9).sum(),
            on_time_work_cores: 0.0,
            remote_jobs: classes.iter().map(|c| c.2).sum(),
            remote_share: 0.0,
            remote_work_share: 0.0,
            classes: classes
                .iter()
                .map(|&(cost_ns, on_time, remote)| RemoteClassFigures {
                    class: format!("c{cost_ns}"),
                    cost_ns,
                    tally: Tally {
                        on_time,
                        ..Tally::default()
                    },
                    remote,
                    latency_ms: Quantiles::default(),
                })
                .collect(),
            remote_stats: None,
            thread_cpu: Vec::new(),
            process_cpu_secs: Vec::new(),
        }
    }

    #[test]
    fn bars_hold_only_for_more_work_as_many_jobs_and_no_small_remote_job() {
        let local = run(
            ExecutorKind::HelixStatic,
            80,
            &[(2_000, 70, 0), (5_000_000, 10, 0)],
        );
        let good = run(
            ExecutorKind::HelixRemote,
            85,
            &[(2_000, 70, 0), (5_000_000, 17, 9)],
        );
        assert!(
            bars(&[local.clone(), good], 2_000_000)
                .iter()
                .all(|b| b.met)
        );
        // Less than 1.6× the work.
        let weak = run(
            ExecutorKind::HelixRemote,
            85,
            &[(2_000, 70, 0), (5_000_000, 12, 4)],
        );
        let b = bars(&[local.clone(), weak], 2_000_000);
        assert!(!b[0].met && b[1].met && b[2].met, "{b:?}");
        // Fewer on-time jobs, and a tiny job sent remote.
        let bad = run(
            ExecutorKind::HelixRemote,
            79,
            &[(2_000, 60, 1), (5_000_000, 19, 9)],
        );
        let b = bars(&[local, bad], 2_000_000);
        assert!(b[0].met && !b[1].met && !b[2].met, "{b:?}");
        assert!(bars(&[], 1).is_empty());
    }

    #[test]
    fn task_runs_the_same_work_as_a_local_job_and_skips_after_the_cutoff() {
        let work = WorkKind::Closure;
        let t = OverloadTask::new(work, 20_000, 9);
        let wire = serde_json::to_vec(&t).unwrap();
        let back: OverloadTask = serde_json::from_slice(&wire).unwrap();
        assert!(back.step.is_none());
        assert_eq!(back.run(), Some(execute(work, 20_000, 9)));
        let step = Arc::new(StepShared::new(1));
        step.abandon();
        let class = ClassRt::of(&Mix::standard().classes[1]);
        let task = OverloadTask::of_item(class.work(), class.cost_ns(), 9, &step);
        assert_eq!(task.run(), None);
    }

    #[test]
    fn bad_settings_are_named() {
        let mut s = RemoteScenario::new("nats://127.0.0.1:1");
        s.secs = 0.0;
        assert!(s.validate().unwrap_err().to_string().contains("secs"));
        let mut s = RemoteScenario::new("nats://127.0.0.1:1");
        s.load = f64::NAN;
        assert!(s.validate().unwrap_err().to_string().contains("load"));
    }
}
