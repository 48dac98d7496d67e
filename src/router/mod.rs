//! The router: a cheap-to-clone handle over shared state that decides, dispatches and
//! records every unit of work.
//!
//! Per job: one config load (`arc_swap`), the pure policy, optional learned override,
//! budget-aware admission, execution, and relaxed-atomic bookkeeping. Background tasks
//! (batch flusher, pressure ticker, learner) hold weak references and stop with the
//! router.

pub mod admission;
mod batch;
mod control;
mod cpu_pool;
mod decision_log;
mod error;
mod learning;
mod policy;
mod stats;
mod stripes;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::{broadcast, oneshot};

use crate::config::{ConfigError, RouterConfig};
use crate::metrics::PressureTracker;
use crate::neural_router::{Context, NeuralRouter, NeuralSnapshot, Outcome, WeightsError};
use crate::strategies::execute_job;
use crate::types::{DecisionSource, Job, JobKind, JobProfile, Output, RoutingDecision, Strategy};

use batch::{BatchEntry, Batcher};
use cpu_pool::{CpuPool, PoolReject, PoolTask};
use learning::Learning;
use stripes::{STRIPES, Stripe, stripe_index};

pub use control::{MAX_ADAPTIVE_FACTOR, ShutdownReport, autoscaler_config};
pub use error::Rejected;
pub use learning::{SAMPLE_CHANNEL_CAP, neural_config, warm_learner};
pub use policy::{
    BATCH_HEAVY, BATCH_UNDER_PRESSURE, batch_fits_budget, choose_for_profile, choose_strategy,
    cost_rank,
};
pub use stats::{RouterStats, StrategyStats};

/// Capacity of the decision broadcast; a subscriber lagging further skips ahead.
pub const DECISION_CHANNEL_CAP: usize = 1_024;
/// Outstanding spawned work (estimated ns, summed) above which `Spawn` decisions are
/// sent to the CPU pool instead, so medium jobs cannot starve the async executor.
pub const SPAWN_BACKLOG_LIMIT_NS: u64 = 500_000;
/// How often the pressure ticker folds counters into the pressure score.
pub const PRESSURE_TICK: Duration = Duration::from_millis(50);

/// What a caller says about a closure submitted through [`Router::run`].
///
/// # Examples
///
/// ```
/// use helixrouter::router::WorkHint;
/// let hint = WorkHint::new(7, 250_000).budget_ms(50).scaling(0.2);
/// assert_eq!(hint.compute_cost, 250_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkHint {
    /// Caller-chosen id, echoed in the decision feed.
    pub id: u64,
    /// Estimated CPU time in nanoseconds.
    pub compute_cost: u64,
    /// How well the work amortises in a batch, in [0, 1].
    pub scaling_potential: f32,
    /// End-to-end latency budget in milliseconds.
    pub latency_budget_ms: u64,
    /// A built-in kind, if the work is one (used for per-kind batching and learning).
    pub kind: Option<JobKind>,
}

impl WorkHint {
    /// A hint with a 100 ms budget and no batching potential.
    pub fn new(id: u64, compute_cost: u64) -> Self {
        Self {
            id,
            compute_cost,
            scaling_potential: 0.0,
            latency_budget_ms: 100,
            kind: None,
        }
    }

    /// Sets the latency budget (ms).
    pub fn budget_ms(mut self, ms: u64) -> Self {
        self.latency_budget_ms = ms;
        self
    }

    /// Sets the scaling potential.
    pub fn scaling(mut self, s: f32) -> Self {
        self.scaling_potential = s;
        self
    }

    fn profile(&self) -> JobProfile {
        JobProfile {
            compute_cost: self.compute_cost,
            scaling_potential: self.scaling_potential,
            latency_budget_ms: self.latency_budget_ms,
        }
    }

    fn of_job(job: &Job) -> Self {
        Self {
            id: job.id,
            compute_cost: job.compute_cost,
            scaling_potential: job.scaling_potential,
            latency_budget_ms: job.latency_budget_ms,
            kind: Some(job.kind),
        }
    }
}

/// How a queued task is finally handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exec {
    /// Run it.
    Run,
    /// Shed it (it can no longer meet its deadline, or its batch was refused).
    Shed,
}

/// Counters that are not per-thread (rarely written). All `Relaxed` tallies.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Estimated ns of spawned work not yet finished.
    pub(crate) spawn_outstanding_ns: AtomicU64,
    /// Batches flushed because they reached `batch_max_size`.
    pub(crate) batch_flushes_full: AtomicU64,
    /// Batches flushed by the timer (`batch_max_delay_ms`) or at shutdown.
    pub(crate) batch_flushes_timer: AtomicU64,
}

/// Shared state behind [`Router`].
pub(crate) struct Inner {
    /// What the operator configured (validated). Swapped whole by `set_config`/`patch_config`.
    pub(crate) configured: ArcSwap<RouterConfig>,
    /// `configured` with the adaptive spawn threshold applied; what the hot path loads.
    pub(crate) effective: ArcSwap<RouterConfig>,
    /// Serialises config writers so read-modify-write patches never interleave.
    pub(crate) config_write: Mutex<()>,
    /// Current adaptive spawn threshold (>= configured). Written by `maybe_adapt_threshold`.
    pub(crate) adaptive_spawn: AtomicU64,
    pub(crate) pool: CpuPool,
    pub(crate) batcher: Batcher,
    pub(crate) counters: Counters,
    /// Hot-path counters, latency windows and decision logs, one stripe per thread group.
    pub(crate) stripes: Box<[Stripe]>,
    /// Set when someone subscribes to decisions; refreshed from the receiver count by
    /// the ticker, so the hot path never takes the broadcast's lock to ask.
    pub(crate) has_subscribers: AtomicBool,
    /// Bumped by every `subscribe_decisions` (lets the ticker detect a racing subscribe).
    pub(crate) subscriptions: AtomicU64,
    /// Written by the ticker and `set_external_pressure`.
    pub(crate) pressure: Mutex<PressureTracker>,
    /// `pressure.score` as f64 bits, published for lock-free reads.
    pub(crate) pressure_score: AtomicU64,
    pub(crate) decisions: broadcast::Sender<RoutingDecision>,
    /// Set once by `shutdown`; new work is rejected after it.
    pub(crate) shutting_down: AtomicBool,
    pub(crate) epoch: Instant,
    /// `epoch` on the hot path's clock (quanta).
    pub(crate) clock_epoch: quanta::Instant,
    pub(crate) epoch_unix_ms: u64,
    pub(crate) control: Mutex<control::ControlState>,
    pub(crate) learning: Learning,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Workers drain what is queued and exit; do not block the dropping thread.
        self.pool.close(Duration::ZERO);
    }
}

/// The routing engine. Cheap to clone (an `Arc` inside); clones share everything.
///
/// # Examples
///
/// ```
/// use helixrouter::config::RouterConfig;
/// use helixrouter::router::{Router, WorkHint};
/// use helixrouter::types::{Job, JobKind};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let router = Router::new(RouterConfig::default());
/// let job = Job { id: 1, kind: JobKind::HashMix, inputs: vec![1, 2, 3], compute_cost: 2_000,
///                 scaling_potential: 0.1, latency_budget_ms: 10 };
/// assert_eq!(router.submit(job).await.map(|v| v.len()), Some(1));
///
/// let sum = router.run(WorkHint::new(2, 500), || (1..=10u64).sum::<u64>()).await;
/// assert_eq!(sum, Ok(55));
/// router.shutdown().await;
/// # }
/// ```
#[derive(Clone)]
pub struct Router {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("cpu_busy", &self.inner.pool.busy())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Builds a router and spawns its background tasks on the current Tokio runtime.
    ///
    /// # Panics
    ///
    /// When `cfg` fails [`RouterConfig::validate`] (use [`Router::try_new`] to get the
    /// error instead) or when called outside a Tokio runtime.
    pub fn new(cfg: RouterConfig) -> Router {
        match Self::try_new(cfg) {
            Ok(r) => r,
            Err(e) => panic!("Router::new: {e}"),
        }
    }

    /// Builds a router from a validated config.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming each broken field.
    pub fn try_new(cfg: RouterConfig) -> Result<Router, ConfigError> {
        cfg.validate()?;
        let learner = learning::warm_learner(&cfg);
        Self::with_learner(cfg, learner)
    }

    /// Builds a router whose neural router starts from `learner` (e.g. weights loaded
    /// with [`NeuralRouter::load`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming each broken field.
    pub fn with_learner(cfg: RouterConfig, learner: NeuralRouter) -> Result<Router, ConfigError> {
        cfg.validate()?;
        let (decisions, _) = broadcast::channel(DECISION_CHANNEL_CAP);
        let epoch_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let inner = Arc::new(Inner {
            pool: CpuPool::new(cfg.cpu_parallelism, cfg.cpu_queue_cap, cfg.cpu_pool_nice),
            batcher: Batcher::new(),
            counters: Counters::default(),
            stripes: (0..STRIPES)
                .map(|_| Stripe::new(cfg.decision_log_cap))
                .collect(),
            has_subscribers: AtomicBool::new(false),
            subscriptions: AtomicU64::new(0),
            pressure: Mutex::new(PressureTracker::default()),
            pressure_score: AtomicU64::new(0f64.to_bits()),
            decisions,
            shutting_down: AtomicBool::new(false),
            epoch: Instant::now(),
            clock_epoch: quanta::Instant::now(),
            epoch_unix_ms,
            adaptive_spawn: AtomicU64::new(cfg.spawn_threshold),
            control: Mutex::new(control::ControlState::new(&cfg)),
            learning: Learning::new(learner),
            effective: ArcSwap::from_pointee(cfg.clone()),
            configured: ArcSwap::from_pointee(cfg),
            config_write: Mutex::new(()),
        });
        let router = Router { inner };
        router.spawn_background();
        Ok(router)
    }

    /// Runs a built-in job; `None` when it was shed or failed. One `Output` per job.
    pub async fn submit(&self, job: Job) -> Option<Vec<Output>> {
        self.submit_one(job).await.map(|o| vec![o])
    }

    /// [`Router::submit`] without the `Vec`: the allocation-free form for hot loops.
    pub async fn submit_one(&self, job: Job) -> Option<Output> {
        let hint = WorkHint::of_job(&job);
        self.run(hint, move || execute_job(&job)).await.ok()
    }

    /// Routes and runs arbitrary CPU work.
    ///
    /// # Errors
    ///
    /// [`Rejected`] saying why no value was produced: shed under pressure, queue full,
    /// budget impossible, shutting down, or the work panicked.
    pub async fn run<T, F>(&self, hint: WorkHint, work: F) -> Result<T, Rejected>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let inner = &*self.inner;
        // quanta's TSC clock costs a fraction of `std::time::Instant::now()` here.
        let start = quanta::Instant::now();
        if inner.shutting_down.load(Relaxed) {
            inner.decide(&hint, Strategy::Drop, DecisionSource::Shutdown, start, 0);
            inner.record_drop(Strategy::Drop, None);
            return Err(Rejected::ShuttingDown);
        }
        let cfg = inner.effective.load();
        let busy = inner.pool.busy();
        let profile = hint.profile();
        let mut strategy = choose_for_profile(&cfg, profile, busy);
        let mut source = DecisionSource::Heuristic;
        let budget_ns = hint.latency_budget_ms.saturating_mul(1_000_000);
        // Read only when a decision needs it (not on the inline fast path).
        let spawn_backlog_ok =
            || inner.counters.spawn_outstanding_ns.load(Relaxed) <= SPAWN_BACKLOG_LIMIT_NS;
        let mut ctx = None;
        // The learned override: only once warmed up, never where the heuristic shed or
        // ran inline, and only among strategies that cannot obviously blow the budget.
        // Tiny work the heuristic runs inline is never second-guessed: running it in
        // place is the cheapest execution there is, and the hot path stays lean.
        if cfg.enable_neural
            && !matches!(strategy, Strategy::Drop | Strategy::Inline)
            && inner.learning.ready.load(Relaxed)
        {
            let c = inner.context(&hint, &cfg);
            let mask = learning::safe_mask(&cfg, profile, spawn_backlog_ok());
            if let Some(choice) =
                inner
                    .learning
                    .policy
                    .load()
                    .choose(&c, mask, learning::next_random())
                && choice.strategy != strategy
            {
                strategy = choice.strategy;
                source = DecisionSource::Neural;
            }
            ctx = Some(c);
        }
        // Budget-aware rerouting: keep the executor free of medium backlogs, and never
        // batch work whose budget the batch delay alone would blow.
        if (strategy == Strategy::Spawn && !spawn_backlog_ok())
            || (strategy == Strategy::Batch && !batch_fits_budget(&cfg, profile))
        {
            strategy = Strategy::CpuPool;
            source = DecisionSource::Admission;
        }
        // Outcomes for the learner: every job the heuristic did not run inline.
        let sample = if cfg.enable_neural
            && (strategy != Strategy::Inline || source == DecisionSource::Neural)
        {
            Some(ctx.unwrap_or_else(|| inner.context(&hint, &cfg)))
        } else {
            None
        };
        inner.decide(&hint, strategy, source, start, busy);
        match strategy {
            Strategy::Inline => {
                let r = catch_unwind(AssertUnwindSafe(work));
                inner.finish(Strategy::Inline, start, budget_ns, r.is_ok(), sample);
                r.map_err(|_| Rejected::Panicked)
            }
            Strategy::Spawn => {
                let est = hint.compute_cost;
                inner.counters.spawn_outstanding_ns.fetch_add(est, Relaxed);
                let task_inner = Arc::clone(&self.inner);
                let handle = tokio::spawn(async move {
                    let r = catch_unwind(AssertUnwindSafe(work));
                    task_inner
                        .counters
                        .spawn_outstanding_ns
                        .fetch_sub(est, Relaxed);
                    task_inner.finish(Strategy::Spawn, start, budget_ns, r.is_ok(), sample);
                    r.map_err(|_| Rejected::Panicked)
                });
                match handle.await {
                    Ok(r) => r,
                    // The task body catches panics; a JoinError means the runtime is
                    // shutting down and cancelled it before it ran.
                    Err(_) => Err(Rejected::ShuttingDown),
                }
            }
            Strategy::CpuPool => {
                let (job, rx) = self.pool_job(Strategy::CpuPool, start, budget_ns, sample, work);
                let task = PoolTask {
                    deadline: Instant::now()
                        + Duration::from_nanos(budget_ns).saturating_sub(start.elapsed()),
                    est_ns: hint.compute_cost,
                    job,
                };
                if let Err((why, task)) = inner.pool.try_submit(task, cfg.enable_admission) {
                    drop(task);
                    return Err(inner.reject_pool(
                        Strategy::CpuPool,
                        why,
                        hint.latency_budget_ms,
                        sample,
                    ));
                }
                rx.await.unwrap_or(Err(Rejected::ShuttingDown))
            }
            Strategy::Batch => {
                let (job, rx) = self.pool_job(Strategy::Batch, start, budget_ns, sample, work);
                let entry = BatchEntry {
                    enqueued: tokio::time::Instant::now(),
                    deadline: Instant::now()
                        + Duration::from_nanos(budget_ns).saturating_sub(start.elapsed()),
                    est_ns: hint.compute_cost,
                    job,
                };
                let class = hint.kind.map_or(batch::CLASSES - 1, JobKind::index);
                match inner.batcher.push(
                    class,
                    entry,
                    batch::BatchLimits {
                        max_size: cfg.batch_max_size,
                        max_cost_ns: cfg.batch_max_cost_ns,
                        queue_cap: cfg.batch_queue_cap,
                    },
                ) {
                    Ok(Some(full)) => {
                        inner.counters.batch_flushes_full.fetch_add(1, Relaxed);
                        self.flush_batch(full, cfg.enable_admission);
                    }
                    Ok(None) => {}
                    Err(entry) => {
                        drop(entry);
                        inner.record_drop(Strategy::Batch, sample);
                        return Err(Rejected::QueueFull {
                            strategy: Strategy::Batch,
                        });
                    }
                }
                rx.await.unwrap_or(Err(Rejected::ShuttingDown))
            }
            Strategy::Drop => {
                inner.record_drop(Strategy::Drop, None);
                Err(Rejected::Overloaded { cpu_busy: busy })
            }
        }
    }

    /// Wraps `work` for the pool or a batch: runs it (catching panics) or sheds it, records
    /// the outcome exactly once, and sends the result to the returned receiver.
    #[allow(clippy::type_complexity)]
    fn pool_job<T, F>(
        &self,
        strategy: Strategy,
        start: quanta::Instant,
        budget_ns: u64,
        sample: Option<Context>,
        work: F,
    ) -> (
        Box<dyn FnOnce(Exec) + Send>,
        oneshot::Receiver<Result<T, Rejected>>,
    )
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let inner = Arc::clone(&self.inner);
        let job = Box::new(move |exec: Exec| {
            let result = match exec {
                Exec::Run => {
                    let r = catch_unwind(AssertUnwindSafe(work));
                    inner.finish(strategy, start, budget_ns, r.is_ok(), sample);
                    r.map_err(|_| Rejected::Panicked)
                }
                Exec::Shed => {
                    inner.record_drop(strategy, sample);
                    Err(Rejected::BudgetImpossible {
                        estimated_ms: start.elapsed().as_secs_f64() * 1e3,
                        budget_ms: budget_ns / 1_000_000,
                    })
                }
            };
            // The caller may have stopped waiting; the outcome is already recorded.
            let _ = tx.send(result);
        });
        (job, rx)
    }

    /// Sends one batch to the pool as a single task; members past their deadline when
    /// the batch runs are shed. A refused batch sheds every member.
    fn flush_batch(&self, entries: Vec<BatchEntry>, admission: bool) {
        if entries.is_empty() {
            return;
        }
        let deadline = entries
            .iter()
            .map(|e| e.deadline)
            .max()
            .unwrap_or_else(Instant::now);
        let est_ns = entries.iter().map(|e| e.est_ns).sum();
        let job = Box::new(move |exec: Exec| {
            for e in entries {
                let go = exec == Exec::Run && Instant::now() < e.deadline;
                (e.job)(if go { Exec::Run } else { Exec::Shed });
            }
        });
        let task = PoolTask {
            deadline,
            est_ns,
            job,
        };
        if let Err((_, task)) = self.inner.pool.try_submit(task, admission) {
            (task.job)(Exec::Shed);
        }
    }

    fn spawn_background(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(control::batch_flusher(weak.clone()));
        tokio::spawn(control::pressure_ticker(weak.clone()));
        tokio::spawn(learning::learner_task(weak));
    }

    /// A receiver of every subsequent [`RoutingDecision`]. While nobody subscribes the
    /// router skips building and sending them.
    pub fn subscribe_decisions(&self) -> broadcast::Receiver<RoutingDecision> {
        let rx = self.inner.decisions.subscribe();
        self.inner.subscriptions.fetch_add(1, Relaxed);
        self.inner.has_subscribers.store(true, Relaxed);
        rx
    }

    /// The neural router's weights and learning figures.
    pub fn neural_snapshot(&self) -> NeuralSnapshot {
        let mut snap = self
            .inner
            .learning
            .learner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot();
        snap.warmed_up = snap.warmed_up && self.inner.configured.load().enable_neural;
        snap
    }

    /// Outcome samples not delivered to the learner because its channel was full.
    pub fn learning_samples_skipped(&self) -> u64 {
        self.inner.learning.skipped.load(Relaxed)
    }

    /// Saves the neural router's weights atomically (temp file, fsync, rename).
    ///
    /// # Errors
    ///
    /// [`WeightsError`] when the file cannot be written.
    pub fn save_weights(&self, path: &std::path::Path) -> Result<(), WeightsError> {
        let learner = self
            .inner
            .learning
            .learner
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        learner.save(path)
    }

    /// Replaces the neural router's state with weights loaded from `path`.
    ///
    /// # Errors
    ///
    /// [`WeightsError`] for a missing, corrupt, truncated or mismatched file; the
    /// current learner is kept.
    pub fn load_weights(&self, path: &std::path::Path) -> Result<(), WeightsError> {
        let cfg = learning::neural_config(&self.inner.configured.load());
        let learner = NeuralRouter::load(path, cfg)?;
        self.inner.learning.replace(learner);
        Ok(())
    }

    /// The last routing decisions, newest first (at most `decision_log_cap`).
    pub fn recent_decisions(&self, limit: usize) -> Vec<RoutingDecision> {
        let mut all: Vec<RoutingDecision> = self
            .inner
            .stripes
            .iter()
            .flat_map(|s| s.log.recent(limit))
            .collect();
        all.sort_by_key(|d| std::cmp::Reverse(d.timestamp_ms));
        all.truncate(limit);
        all
    }
}

impl Inner {
    /// The calling thread's stripe.
    #[inline]
    fn stripe(&self) -> &Stripe {
        &self.stripes[stripe_index() % self.stripes.len()]
    }

    /// Summed counters (submitted, completed, dropped), the end counters read first.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        let completed: u64 = self
            .stripes
            .iter()
            .flat_map(|s| &s.latency)
            .map(|w| w.count())
            .sum();
        let dropped = stripes::sum_all(&self.stripes, |s| &s.dropped);
        // Every job is routed exactly once (the decision precedes its end), so the
        // routed total read after the end counters is the submitted count.
        let submitted = stripes::sum_all(&self.stripes, |s| &s.routed);
        (submitted, completed, dropped)
    }

    /// Publishes a decision to the log and, when someone listens, the broadcast.
    #[inline]
    fn decide(
        &self,
        hint: &WorkHint,
        strategy: Strategy,
        source: DecisionSource,
        start: quanta::Instant,
        busy: usize,
    ) {
        let stripe = self.stripe();
        stripe.routed[strategy.index()].fetch_add(1, Relaxed);
        let pressure = f64::from_bits(self.pressure_score.load(Relaxed));
        let ts = self.epoch_unix_ms
            + start
                .saturating_duration_since(self.clock_epoch)
                .as_millis() as u64;
        stripe.log.push(
            hint.id,
            hint.kind,
            strategy,
            source,
            hint.compute_cost,
            pressure,
            busy,
            ts,
        );
        if self.has_subscribers.load(Relaxed) {
            let _ = self.decisions.send(RoutingDecision {
                job_id: hint.id,
                kind: hint.kind,
                strategy,
                source,
                compute_cost: hint.compute_cost,
                pressure,
                cpu_busy: busy,
                timestamp_ms: ts,
            });
        }
    }

    /// The learner's view of this work and this moment.
    #[inline]
    fn context(&self, hint: &WorkHint, cfg: &RouterConfig) -> Context {
        Context {
            kind: hint.kind,
            compute_cost: hint.compute_cost,
            scaling_potential: hint.scaling_potential,
            latency_budget_ms: hint.latency_budget_ms,
            pressure: f64::from_bits(self.pressure_score.load(Relaxed)),
            queue_fill: self.pool.queued() as f64 / cfg.cpu_queue_cap.max(1) as f64,
        }
    }

    /// Records the end of a job that ran (or panicked).
    #[inline]
    fn finish(
        &self,
        strategy: Strategy,
        start: quanta::Instant,
        budget_ns: u64,
        ok: bool,
        sample: Option<Context>,
    ) {
        let outcome = if ok {
            let now = quanta::Instant::now();
            let ns = now.saturating_duration_since(start).as_nanos() as u64;
            let stripe = self.stripe();
            stripe.latency[strategy.index()].record(
                ns,
                now.saturating_duration_since(self.clock_epoch).as_nanos() as u64,
            );
            if ns > budget_ns {
                stripe.late.fetch_add(1, Relaxed);
            }
            Outcome::Completed { latency_ns: ns }
        } else {
            self.stripe().failed[strategy.index()].fetch_add(1, Relaxed);
            Outcome::Failed
        };
        if let Some(ctx) = sample {
            self.learning.offer(ctx, strategy, outcome);
        }
    }

    /// Records a job shed after being routed to `strategy`.
    fn record_drop(&self, strategy: Strategy, sample: Option<Context>) {
        self.stripe().dropped[strategy.index()].fetch_add(1, Relaxed);
        if let Some(ctx) = sample {
            self.learning.offer(ctx, strategy, Outcome::Dropped);
        }
    }

    fn reject_pool(
        &self,
        strategy: Strategy,
        why: PoolReject,
        budget_ms: u64,
        sample: Option<Context>,
    ) -> Rejected {
        self.record_drop(strategy, sample);
        match why {
            PoolReject::QueueFull => Rejected::QueueFull { strategy },
            PoolReject::Unmeetable { estimated_ns } => Rejected::BudgetImpossible {
                estimated_ms: estimated_ns as f64 / 1e6,
                budget_ms,
            },
            PoolReject::Closed => Rejected::ShuttingDown,
        }
    }
}
