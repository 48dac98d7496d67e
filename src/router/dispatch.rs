//! Dispatch: [`Router::run`] asks [`Inner::route`](super::Inner::route) for a decision,
//! records it, and runs the work the way the decision says (inline, spawned, on the
//! CPU pool, or in a batch) or sheds it. The only generic code of the router.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::batch::{self, BatchEntry, BatchLimits};
use super::cpu_pool::{PoolReject, PoolTask};
use super::hint::WorkHint;
use super::route::Route;
use super::{Rejected, Router};
use crate::neural_router::Context;
use crate::strategies::execute_job;
use crate::types::{DecisionSource, Job, JobKind, Output, Strategy};

/// A queued unit of work as the pool and the batcher hold it: called exactly once,
/// with [`Exec::Run`] to run it or [`Exec::Shed`] to shed it; either way it records
/// the outcome and answers its caller.
pub(crate) type QueuedJob = Box<dyn FnOnce(Exec) + Send>;

/// Where a queued job's result goes.
type Reply<T> = oneshot::Receiver<Result<T, Rejected>>;

/// How a queued task is finally handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exec {
    /// Run it.
    Run,
    /// Shed it, for this reason.
    Shed(Shed),
}

/// Why a queued job was shed after it was admitted (or why a batch was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shed {
    /// It can no longer finish by its deadline: `run_ns` is its expected run time from
    /// now (the pool's observed speed applied), `0` when the deadline already passed.
    Late { run_ns: u64 },
    /// Evicted from the pool queue so jobs with earlier deadlines finish in time.
    Evicted,
    /// The pool refused it: its queue was full.
    QueueFull,
    /// The pool refused it: its estimated finish, `estimated_ns` from now, is past the
    /// deadline.
    Unmeetable { estimated_ns: u64 },
    /// The pool is closed (the router is shutting down).
    Closed,
}

impl From<PoolReject> for Shed {
    fn from(why: PoolReject) -> Self {
        match why {
            PoolReject::QueueFull => Shed::QueueFull,
            PoolReject::Unmeetable { estimated_ns } => Shed::Unmeetable { estimated_ns },
            PoolReject::Closed => Shed::Closed,
        }
    }
}

impl Shed {
    /// What the caller of a job routed to `strategy`, `elapsed_ns` after it was
    /// submitted, is told.
    pub(crate) fn rejected(self, strategy: Strategy, elapsed_ns: u64, budget_ms: u64) -> Rejected {
        let estimate = |left_ns: u64| Rejected::BudgetImpossible {
            estimated_ms: elapsed_ns.saturating_add(left_ns) as f64 / 1e6,
            budget_ms,
        };
        match self {
            Shed::Late { run_ns } => estimate(run_ns),
            Shed::Unmeetable { estimated_ns } => estimate(estimated_ns),
            Shed::Evicted => Rejected::Evicted { budget_ms },
            Shed::QueueFull => Rejected::QueueFull { strategy },
            Shed::Closed => Rejected::ShuttingDown,
        }
    }

    /// The decision-feed source of a job shed at routing time for this reason.
    pub(crate) fn source(self) -> DecisionSource {
        match self {
            Shed::QueueFull => DecisionSource::QueueFull,
            Shed::Closed => DecisionSource::Shutdown,
            Shed::Late { .. } | Shed::Evicted | Shed::Unmeetable { .. } => {
                DecisionSource::Admission
            }
        }
    }
}

/// A job's timing as its dispatch path needs it.
#[derive(Debug, Clone, Copy)]
struct Timing {
    start: quanta::Instant,
    budget_ns: u64,
    budget_ms: u64,
}

impl Timing {
    /// The real-time deadline (the pool's clock).
    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_nanos(self.budget_ns).saturating_sub(self.start.elapsed())
    }

    fn elapsed_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

impl Router {
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
    /// budget impossible, evicted, shutting down, or the work panicked.
    pub async fn run<T, F>(&self, hint: WorkHint, work: F) -> Result<T, Rejected>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let inner = &*self.inner;
        // quanta's TSC clock costs a fraction of `std::time::Instant::now()` here.
        let start = quanta::Instant::now();
        if inner.shutting_down.load(Relaxed) {
            inner.count_routed(Strategy::Drop);
            inner.log_decision(&hint, Strategy::Drop, DecisionSource::Shutdown, start, 0);
            inner.record_drop(Strategy::Drop, None);
            return Err(Rejected::ShuttingDown);
        }
        let cfg = inner.effective.load();
        let route = inner.route(&hint, &cfg);
        // Counted before the job can end, so `submitted` never trails an end counter.
        inner.count_routed(route.strategy);
        let timing = Timing {
            start,
            budget_ns: hint.budget_ns(),
            budget_ms: hint.latency_budget_ms,
        };
        match route.strategy {
            Strategy::Inline => {
                inner.log_decision(&hint, Strategy::Inline, route.source, start, route.busy);
                let r = catch_unwind(AssertUnwindSafe(work));
                inner.finish(
                    Strategy::Inline,
                    start,
                    timing.budget_ns,
                    r.is_ok(),
                    route.sample,
                );
                r.map_err(|_| Rejected::Panicked)
            }
            Strategy::Spawn => {
                inner.log_decision(&hint, Strategy::Spawn, route.source, start, route.busy);
                self.spawn_work(hint.compute_cost, timing, route.sample, work)
                    .await
            }
            Strategy::CpuPool => {
                self.pool_work(&hint, route, timing, cfg.enable_admission, work)
                    .await
            }
            Strategy::Batch => {
                let limits = BatchLimits {
                    max_size: cfg.batch_max_size,
                    max_cost_ns: cfg.batch_max_cost_ns,
                    queue_cap: cfg.batch_queue_cap,
                };
                self.batch_work(&hint, route, timing, limits, cfg.enable_admission, work)
                    .await
            }
            Strategy::Drop => {
                inner.log_decision(&hint, Strategy::Drop, route.source, start, route.busy);
                inner.record_drop(Strategy::Drop, None);
                Err(Rejected::Overloaded {
                    cpu_busy: route.busy,
                })
            }
        }
    }

    /// `tokio::spawn`s the work and waits for it.
    async fn spawn_work<T, F>(
        &self,
        est: u64,
        timing: Timing,
        sample: Option<Context>,
        work: F,
    ) -> Result<T, Rejected>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.inner
            .counters
            .spawn_outstanding_ns
            .fetch_add(est, Relaxed);
        let inner = Arc::clone(&self.inner);
        let handle = tokio::spawn(async move {
            let r = catch_unwind(AssertUnwindSafe(work));
            inner.counters.spawn_outstanding_ns.fetch_sub(est, Relaxed);
            inner.finish(
                Strategy::Spawn,
                timing.start,
                timing.budget_ns,
                r.is_ok(),
                sample,
            );
            r.map_err(|_| Rejected::Panicked)
        });
        match handle.await {
            Ok(r) => r,
            // The task body catches panics; a JoinError means the runtime is shutting
            // down and cancelled it before it ran.
            Err(_) => Err(Rejected::ShuttingDown),
        }
    }

    /// Submits the work to the CPU pool (admission decides at once) and waits for it.
    async fn pool_work<T, F>(
        &self,
        hint: &WorkHint,
        route: Route,
        timing: Timing,
        admission: bool,
        work: F,
    ) -> Result<T, Rejected>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let inner = &*self.inner;
        let (job, rx) = self.queued_job(Strategy::CpuPool, timing, route.sample, work);
        let task = PoolTask {
            deadline: timing.deadline(),
            est_ns: hint.compute_cost,
            job,
        };
        if let Err((why, task)) = inner.pool.try_submit(task, admission) {
            drop(task);
            let shed = Shed::from(why);
            inner.log_decision(
                hint,
                Strategy::Drop,
                shed.source(),
                timing.start,
                route.busy,
            );
            inner.record_drop(Strategy::CpuPool, route.sample);
            return Err(shed.rejected(Strategy::CpuPool, timing.elapsed_ns(), timing.budget_ms));
        }
        inner.log_decision(
            hint,
            Strategy::CpuPool,
            route.source,
            timing.start,
            route.busy,
        );
        rx.await.unwrap_or(Err(Rejected::ShuttingDown))
    }

    /// Queues the work in its class's batch (flushing the batch when this fills it) and
    /// waits for it.
    async fn batch_work<T, F>(
        &self,
        hint: &WorkHint,
        route: Route,
        timing: Timing,
        limits: BatchLimits,
        admission: bool,
        work: F,
    ) -> Result<T, Rejected>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let inner = &*self.inner;
        let (job, rx) = self.queued_job(Strategy::Batch, timing, route.sample, work);
        let entry = BatchEntry {
            enqueued: tokio::time::Instant::now(),
            deadline: timing.deadline(),
            est_ns: hint.compute_cost,
            job,
        };
        let class = hint.kind.map_or(batch::CLASSES - 1, JobKind::index);
        match inner.batcher.push(class, entry, limits) {
            Ok(full) => {
                inner.log_decision(
                    hint,
                    Strategy::Batch,
                    route.source,
                    timing.start,
                    route.busy,
                );
                if let Some(full) = full {
                    inner.counters.batch_flushes_full.fetch_add(1, Relaxed);
                    self.flush_batch(full, admission);
                }
            }
            Err(entry) => {
                drop(entry);
                let shed = Shed::QueueFull;
                inner.log_decision(
                    hint,
                    Strategy::Drop,
                    shed.source(),
                    timing.start,
                    route.busy,
                );
                inner.record_drop(Strategy::Batch, route.sample);
                return Err(shed.rejected(Strategy::Batch, timing.elapsed_ns(), timing.budget_ms));
            }
        }
        rx.await.unwrap_or(Err(Rejected::ShuttingDown))
    }

    /// Wraps `work` for the pool or a batch: runs it (catching panics) or sheds it,
    /// records the outcome exactly once, and sends the result to the returned receiver.
    fn queued_job<T, F>(
        &self,
        strategy: Strategy,
        timing: Timing,
        sample: Option<Context>,
        work: F,
    ) -> (QueuedJob, Reply<T>)
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
                    inner.finish(strategy, timing.start, timing.budget_ns, r.is_ok(), sample);
                    r.map_err(|_| Rejected::Panicked)
                }
                Exec::Shed(why) => {
                    inner.record_drop(strategy, sample);
                    Err(why.rejected(strategy, timing.elapsed_ns(), timing.budget_ms))
                }
            };
            // The caller may have stopped waiting; the outcome is already recorded.
            let _ = tx.send(result);
        });
        (job, rx)
    }

    /// Sends one batch to the pool as a single task; members past their deadline when
    /// the batch runs are shed. A refused batch sheds every member with the pool's
    /// reason.
    pub(crate) fn flush_batch(&self, entries: Vec<BatchEntry>, admission: bool) {
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
                let member = match exec {
                    Exec::Run if Instant::now() >= e.deadline => {
                        Exec::Shed(Shed::Late { run_ns: e.est_ns })
                    }
                    other => other,
                };
                (e.job)(member);
            }
        });
        let task = PoolTask {
            deadline,
            est_ns,
            job,
        };
        if let Err((why, task)) = self.inner.pool.try_submit(task, admission) {
            (task.job)(Exec::Shed(Shed::from(why)));
        }
    }
}
