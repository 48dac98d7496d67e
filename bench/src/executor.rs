//! The executors compared on the same schedule, and the per-job task that drives one
//! job through one of them and records how it ended.

use std::fmt;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tower::load_shed::error::Overloaded;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use super::HarnessError;
use super::hints::{HintScenario, JobHint};
use super::remote::OverloadTask;
use super::stats::{Outcome, completed_outcome};
use super::workload::{JobClass, WorkKind, execute};
use helixrouter::config::RouterConfig;
use helixrouter::remote::RemoteConfig;
use helixrouter::router::{Rejected, Router, WorkHint};

/// An executor the harness compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    /// HelixRouter with `enable_neural = true` (the learned router may override).
    HelixLearning,
    /// HelixRouter with `enable_neural = false` (heuristic policy + admission only).
    HelixStatic,
    /// Every job in its own `tokio::spawn`ed task, on the async workers.
    Spawn,
    /// Every job through `tokio::task::spawn_blocking` (unbounded queue, up to 512 threads).
    SpawnBlocking,
    /// tower's `LoadShedLayer` over `ConcurrencyLimitLayer(cores)` over a service that
    /// runs the job with `spawn_blocking`: at most `cores` jobs run, the rest are shed.
    TowerLimitShed,
    /// HelixRouter like [`ExecutorKind::HelixLearning`] but with
    /// `enable_cost_learning = false`: every hint is used as given. Runs only in the
    /// [`HintScenario::Flat`] scenario (the control that shows what cost learning is
    /// worth when the hints are wrong), so it is not in [`ExecutorKind::ALL`].
    HelixNoCostLearning,
    /// HelixRouter (no learning) connected to remote workers over NATS, every job a
    /// [`OverloadTask`](crate::remote::OverloadTask) through `Router::run_task`: it runs
    /// only in the remote scenario ([`crate::remote`]), never in the sweep, so it is in
    /// neither [`ExecutorKind::ALL`] nor [`ExecutorKind::EVERY`].
    HelixRemote,
}

impl ExecutorKind {
    /// The executors of every scenario (HelixRouter variants run once per scenario, the
    /// baselines once per load and workload), in report order.
    pub const ALL: [ExecutorKind; 5] = [
        ExecutorKind::HelixLearning,
        ExecutorKind::HelixStatic,
        ExecutorKind::Spawn,
        ExecutorKind::SpawnBlocking,
        ExecutorKind::TowerLimitShed,
    ];

    /// [`ExecutorKind::ALL`] and the flat-hints-only
    /// [`ExecutorKind::HelixNoCostLearning`]: what the harness runs by default.
    pub const EVERY: [ExecutorKind; 6] = [
        ExecutorKind::HelixLearning,
        ExecutorKind::HelixStatic,
        ExecutorKind::Spawn,
        ExecutorKind::SpawnBlocking,
        ExecutorKind::TowerLimitShed,
        ExecutorKind::HelixNoCostLearning,
    ];

    /// The snake_case id used in JSON and on the command line.
    pub const fn id(self) -> &'static str {
        match self {
            ExecutorKind::HelixLearning => "helix_learning",
            ExecutorKind::HelixStatic => "helix_static",
            ExecutorKind::Spawn => "spawn",
            ExecutorKind::SpawnBlocking => "spawn_blocking",
            ExecutorKind::TowerLimitShed => "tower_limit_shed",
            ExecutorKind::HelixNoCostLearning => "helix_no_cost_learning",
            ExecutorKind::HelixRemote => "helix_remote",
        }
    }

    /// A human label for tables and charts.
    pub const fn label(self) -> &'static str {
        match self {
            ExecutorKind::HelixLearning => "helix (learning)",
            ExecutorKind::HelixStatic => "helix (no learning)",
            ExecutorKind::Spawn => "tokio::spawn",
            ExecutorKind::SpawnBlocking => "spawn_blocking",
            ExecutorKind::TowerLimitShed => "tower limit+shed",
            ExecutorKind::HelixNoCostLearning => "helix (cost learning off)",
            ExecutorKind::HelixRemote => "helix + remote worker",
        }
    }

    /// True for the HelixRouter variants.
    pub const fn is_helix(self) -> bool {
        matches!(
            self,
            ExecutorKind::HelixLearning
                | ExecutorKind::HelixStatic
                | ExecutorKind::HelixNoCostLearning
                | ExecutorKind::HelixRemote
        )
    }

    /// Whether this executor runs in scenario `hints` of a run of `scenarios` (in run
    /// order): HelixRouter with cost learning off only with flat hints, the other
    /// HelixRouter variants in every scenario, and the baselines (which take no hint)
    /// once per workload ([`HintScenario::workload`]), in the first scenario of the run
    /// with that workload: once on the fixed work, once more on the sized work when a
    /// sized scenario runs.
    pub fn runs_in(self, hints: HintScenario, scenarios: &[HintScenario]) -> bool {
        match self {
            ExecutorKind::HelixNoCostLearning => hints == HintScenario::Flat,
            ExecutorKind::HelixRemote => false,
            k if k.is_helix() => true,
            _ => scenarios.iter().find(|h| h.workload() == hints.workload()) == Some(&hints),
        }
    }
}

impl fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for ExecutorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExecutorKind::EVERY
            .into_iter()
            .find(|k| k.id() == s.trim())
            .ok_or_else(|| {
                let ids: Vec<&str> = ExecutorKind::EVERY.iter().map(|k| k.id()).collect();
                format!("unknown executor `{s}`; expected one of {}", ids.join(", "))
            })
    }
}

/// Outcome codes stored in a [`Slot`]; 0 means the job has not ended yet.
const PENDING: u8 = 0;

fn encode(o: Outcome) -> u8 {
    match o {
        Outcome::OnTime => 1,
        Outcome::Late => 2,
        Outcome::Dropped => 3,
        Outcome::Failed => 4,
        Outcome::Unfinished => 5,
    }
}

fn decode(code: u8) -> Outcome {
    match code {
        1 => Outcome::OnTime,
        2 => Outcome::Late,
        3 => Outcome::Dropped,
        4 => Outcome::Failed,
        // PENDING at read time: the job never ended, so it is unfinished.
        _ => Outcome::Unfinished,
    }
}

/// Where one job's result lands. Written once by its job task.
#[derive(Debug, Default)]
struct Slot {
    /// Outcome code; `Release`-stored after `latency_ns`, so a reader that sees a
    /// non-pending code (or the `done` count covering it) sees the latency too.
    outcome: AtomicU8,
    /// Latency from the scheduled arrival, ns.
    latency_ns: AtomicU64,
}

/// State shared by the generator, every job task of a step and the step's controller.
#[derive(Debug)]
pub(crate) struct StepShared {
    /// Set by the controller at the step's cutoff; work that starts after it returns at
    /// once without computing (it is already over budget), so no step leaks CPU work
    /// into the next.
    abandon: AtomicBool,
    /// Jobs that have recorded their outcome. `Release` on increment, `Acquire` on read.
    done: AtomicUsize,
    /// One slot per arrival, indexed like the schedule.
    slots: Box<[Slot]>,
}

impl StepShared {
    pub(crate) fn new(n: usize) -> Self {
        StepShared {
            abandon: AtomicBool::new(false),
            done: AtomicUsize::new(0),
            slots: (0..n).map(|_| Slot::default()).collect(),
        }
    }

    pub(crate) fn done(&self) -> usize {
        self.done.load(Ordering::Acquire)
    }

    pub(crate) fn abandoned(&self) -> &AtomicBool {
        &self.abandon
    }

    pub(crate) fn abandon(&self) {
        self.abandon.store(true, Ordering::Relaxed);
    }

    fn record(&self, idx: usize, o: Outcome, latency_ns: u64) {
        if let Some(s) = self.slots.get(idx) {
            s.latency_ns.store(latency_ns, Ordering::Relaxed);
            s.outcome.store(encode(o), Ordering::Release);
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    /// Every job's `(outcome, latency_ns)`; jobs that never ended are `Unfinished`.
    pub(crate) fn results(&self) -> Vec<(Outcome, u64)> {
        self.slots
            .iter()
            .map(|s| {
                let code = s.outcome.load(Ordering::Acquire);
                let lat = if code == PENDING {
                    0
                } else {
                    s.latency_ns.load(Ordering::Relaxed)
                };
                (decode(code), lat)
            })
            .collect()
    }
}

/// The per-class facts a job task needs, copied into it. Built once per run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassRt {
    work: WorkKind,
    cost_ns: u64,
    budget_ms: u64,
    budget_ns: u64,
}

impl ClassRt {
    pub(crate) fn work(&self) -> WorkKind {
        self.work
    }

    pub(crate) fn cost_ns(&self) -> u64 {
        self.cost_ns
    }

    pub(crate) fn of(c: &JobClass) -> Self {
        ClassRt {
            work: c.work,
            cost_ns: c.cost_ns,
            budget_ms: c.budget_ms,
            budget_ns: c.budget_ns(),
        }
    }
}

/// One job's work, movable into any executor.
#[derive(Debug)]
pub(crate) struct WorkItem {
    class: ClassRt,
    /// What HelixRouter is told (class name, cost hint, size); the baselines ignore it.
    hint: JobHint,
    /// The work it runs, ns of nominal cost (the class's, or × its size factor).
    cost_ns: u64,
    seed: u64,
    shared: Arc<StepShared>,
}

impl WorkItem {
    pub(crate) fn new(
        class: ClassRt,
        hint: JobHint,
        cost_ns: u64,
        seed: u64,
        shared: Arc<StepShared>,
    ) -> Self {
        WorkItem {
            class,
            hint,
            cost_ns,
            seed,
            shared,
        }
    }

    /// Runs the job, or returns `None` without computing once the step is abandoned.
    fn execute(&self) -> Option<u64> {
        if self.shared.abandon.load(Ordering::Relaxed) {
            return None;
        }
        Some(black_box(execute(self.class.work, self.cost_ns, self.seed)))
    }
}

type TowerService = BoxCloneService<WorkItem, Option<u64>, BoxError>;

/// A live executor; cloned into every job task (each clone is an `Arc` or, for
/// tower, a service clone sharing the same semaphore — tower's idiom).
#[derive(Clone)]
pub(crate) enum Exec {
    Helix(Router),
    /// Every job through `Router::run_task` as an [`OverloadTask`].
    HelixTask(Router),
    Spawn,
    SpawnBlocking,
    Tower(TowerService),
}

impl fmt::Debug for Exec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Exec::Helix(_) => "Exec::Helix",
            Exec::HelixTask(_) => "Exec::HelixTask",
            Exec::Spawn => "Exec::Spawn",
            Exec::SpawnBlocking => "Exec::SpawnBlocking",
            Exec::Tower(_) => "Exec::Tower",
        })
    }
}

/// What an executor did with a job.
enum Ran {
    /// It ran (`None`: it started after the abandon cutoff and did nothing).
    Done(Option<u64>),
    /// It was shed.
    Shed,
    /// It panicked or its task was lost.
    Failed,
}

impl Exec {
    /// Builds an executor. Must run on the step's runtime (the router spawns its
    /// background tasks there). `nats` is the server [`ExecutorKind::HelixRemote`]
    /// connects to (required for it, ignored by the others).
    pub(crate) async fn build(
        kind: ExecutorKind,
        cores: usize,
        base: &RouterConfig,
        nats: Option<&str>,
    ) -> Result<Exec, HarnessError> {
        Ok(match kind {
            ExecutorKind::HelixRemote => {
                let url = nats.ok_or(HarnessError::InvalidConfig {
                    field: "nats",
                    reason: "the remote executor needs a NATS server URL".into(),
                })?;
                let cfg = RouterConfig {
                    enable_neural: false,
                    ..base.clone()
                };
                let router = Router::builder(cfg)
                    .remote(RemoteConfig::nats(url))
                    .register::<OverloadTask>()
                    .build()
                    .await
                    .map_err(|e| HarnessError::Remote(e.to_string()))?;
                // The worker announces itself with heartbeats; start only once one is seen.
                let wait = std::time::Duration::from_secs(15);
                let deadline = Instant::now() + wait;
                while router.stats().remote.is_none_or(|r| r.workers.is_empty()) {
                    if Instant::now() > deadline {
                        return Err(HarnessError::Remote(format!(
                            "no worker serving `{}` sent a heartbeat within {wait:?}",
                            <OverloadTask as helixrouter::remote::RemoteTask>::NAME
                        )));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Exec::HelixTask(router)
            }
            ExecutorKind::HelixLearning
            | ExecutorKind::HelixStatic
            | ExecutorKind::HelixNoCostLearning => {
                let cfg = RouterConfig {
                    enable_neural: kind != ExecutorKind::HelixStatic,
                    enable_cost_learning: kind != ExecutorKind::HelixNoCostLearning
                        && base.enable_cost_learning,
                    ..base.clone()
                };
                Exec::Helix(Router::try_new(cfg)?)
            }
            ExecutorKind::Spawn => Exec::Spawn,
            ExecutorKind::SpawnBlocking => Exec::SpawnBlocking,
            ExecutorKind::TowerLimitShed => {
                let svc = ServiceBuilder::new()
                    .load_shed()
                    .concurrency_limit(cores.max(1))
                    .service_fn(|item: WorkItem| async move {
                        tokio::task::spawn_blocking(move || item.execute()).await
                    });
                Exec::Tower(BoxCloneService::new(svc))
            }
        })
    }

    /// The router, for the HelixRouter variants.
    pub(crate) fn router(&self) -> Option<&Router> {
        match self {
            Exec::Helix(r) | Exec::HelixTask(r) => Some(r),
            _ => None,
        }
    }

    async fn run(self, item: WorkItem, id: u64, scaling: f32) -> Ran {
        let hint = |item: &WorkItem| {
            // Every scenario names a class; the scenario decides which, the cost hint
            // and the size.
            let c = item.class;
            let mut hint = WorkHint::new(id, item.hint.cost_ns)
                .class(item.hint.class)
                .budget_ms(c.budget_ms)
                .scaling(scaling);
            if let Some(n) = item.hint.units {
                hint = hint.units(n);
            }
            // Built-in kinds carry their kind, exactly as `Router::submit` does;
            // user closures carry none.
            hint.kind = c.work.job_kind();
            hint
        };
        match self {
            Exec::Helix(router) => {
                let hint = hint(&item);
                helix_ran(router.run(hint, move || item.execute()).await)
            }
            Exec::HelixTask(router) => {
                let hint = hint(&item);
                let task =
                    OverloadTask::of_item(item.class.work(), item.cost_ns, item.seed, &item.shared);
                helix_ran(router.run_task(hint, task).await)
            }
            Exec::Spawn => match tokio::spawn(async move { item.execute() }).await {
                Ok(v) => Ran::Done(v),
                Err(_) => Ran::Failed,
            },
            Exec::SpawnBlocking => {
                match tokio::task::spawn_blocking(move || item.execute()).await {
                    Ok(v) => Ran::Done(v),
                    Err(_) => Ran::Failed,
                }
            }
            Exec::Tower(mut svc) => {
                let r = match svc.ready().await {
                    Ok(s) => s.call(item).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(v) => Ran::Done(v),
                    Err(e) if e.is::<Overloaded>() => Ran::Shed,
                    Err(_) => Ran::Failed,
                }
            }
        }
    }
}

fn helix_ran(r: Result<Option<u64>, Rejected>) -> Ran {
    match r {
        Ok(v) => Ran::Done(v),
        Err(Rejected::Panicked) => Ran::Failed,
        Err(_) => Ran::Shed,
    }
}

/// Drives one job through `exec` and records its outcome, with latency measured from
/// the *scheduled* arrival (so a late generator or a starved runtime counts against
/// the executor that caused it, not for it).
pub(crate) async fn job_task(
    exec: Exec,
    item: WorkItem,
    idx: usize,
    scaling: f32,
    scheduled: Instant,
) {
    let shared = Arc::clone(&item.shared);
    let budget_ns = item.class.budget_ns;
    let ran = exec.run(item, idx as u64, scaling).await;
    let latency_ns = scheduled.elapsed().as_nanos() as u64;
    let outcome = match ran {
        Ran::Done(Some(_)) => completed_outcome(latency_ns, budget_ns),
        Ran::Done(None) => Outcome::Unfinished,
        Ran::Shed => Outcome::Dropped,
        Ran::Failed => Outcome::Failed,
    };
    shared.record(idx, outcome, latency_ns);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for k in ExecutorKind::EVERY {
            assert_eq!(k.id().parse::<ExecutorKind>(), Ok(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.id())
            );
        }
        assert!(
            "tokio"
                .parse::<ExecutorKind>()
                .unwrap_err()
                .contains("spawn_blocking")
        );
    }

    #[test]
    fn cost_learning_off_runs_only_with_flat_hints_and_baselines_once_per_workload() {
        use HintScenario::{Exact, Flat, Noisy, OneClass, SizesExact, SizesUnits};
        let k = ExecutorKind::HelixNoCostLearning;
        assert!(k.is_helix() && !ExecutorKind::ALL.contains(&k));
        let all = [Exact, Flat, Noisy];
        assert!(k.runs_in(Flat, &all) && !k.runs_in(Exact, &all) && !k.runs_in(Noisy, &all));
        assert!(ExecutorKind::HelixStatic.runs_in(Noisy, &all));
        assert!(ExecutorKind::Spawn.runs_in(Exact, &all));
        assert!(!ExecutorKind::Spawn.runs_in(Flat, &all));
        assert!(ExecutorKind::TowerLimitShed.runs_in(Flat, &[Flat, Exact]));
        // A baseline runs in the first fixed-work and the first sized-work scenario.
        let run = [OneClass, SizesUnits, Exact, SizesExact];
        let spawn: Vec<_> = run
            .into_iter()
            .filter(|&h| ExecutorKind::Spawn.runs_in(h, &run))
            .collect();
        assert_eq!(spawn, vec![OneClass, SizesUnits]);
        assert!(ExecutorKind::HelixLearning.runs_in(SizesExact, &run));
    }

    #[test]
    fn outcome_codes_round_trip_and_pending_is_unfinished() {
        for o in [
            Outcome::OnTime,
            Outcome::Late,
            Outcome::Dropped,
            Outcome::Failed,
            Outcome::Unfinished,
        ] {
            assert_eq!(decode(encode(o)), o);
        }
        assert_eq!(decode(PENDING), Outcome::Unfinished);
        let shared = StepShared::new(2);
        shared.record(1, Outcome::Late, 7);
        assert_eq!(shared.done(), 1);
        assert_eq!(
            shared.results(),
            vec![(Outcome::Unfinished, 0), (Outcome::Late, 7)]
        );
    }
}
