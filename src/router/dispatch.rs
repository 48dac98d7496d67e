//! Dispatch: [`Router::run`] resolves the work's class and its learned cost, asks
//! [`Inner::route`](super::Inner::route) for a decision, records it, and runs the work
//! the way the decision says (inline, spawned, on the CPU pool, or in a batch) or sheds
//! it. The only generic code of the router.
//!
//! A caller that stops waiting (drops the future) before its work starts cancels it:
//! queued work is skipped when reached, spawned work is aborted before it runs; either
//! way it is counted once as `cancelled`. Work already running finishes (a thread
//! cannot be interrupted) and its result is discarded.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::oneshot;

use super::batch::{self, BatchEntry, BatchLimits};
use super::classes::{ClassEntry, ClassId};
use super::cpu_pool::{PoolTask, TaskFacts};
use super::hint::WorkHint;
use super::job::{Exec, QueuedJob, ShedCause, Timing};
use super::record::Ended;
use super::route::Route;
use super::{Inner, Rejected, Router};
use crate::config::RouterConfig;
use crate::neural_router::Context;
use crate::strategies::execute_job;
use crate::types::{DecisionSource, Job, JobKind, Output, Strategy};

/// Where a queued job's result goes.
type Reply<T> = oneshot::Receiver<Result<T, Rejected>>;

/// Runs `work`, catching a panic; measures its run time (not its queueing) when the
/// work has a class to learn from or `measure` asks for it (spawned work, whose
/// latency includes a wait), and its CPU time too for [`Measure::Cpu`] (pool and
/// batch work, whose low-priority threads may be preempted mid-run; the thread clock
/// is a system call, so the ledger reads it only there). Unmeasured (0), the ledger
/// takes the run time for the CPU time, and the latency for the run time.
#[inline]
fn run_work<T, F: FnOnce() -> T>(work: F, timing: &Timing, measure: Measure) -> Run<T> {
    let cpu0 = (measure == Measure::Cpu)
        .then(|| cpu_time::ThreadTime::try_now().ok())
        .flatten();
    let t0 = (measure != Measure::Nothing || timing.class.is_some()).then(quanta::Instant::now);
    let r = catch_unwind(AssertUnwindSafe(work));
    Run {
        r,
        run_ns: t0.map_or(0, |t| t.elapsed().as_nanos() as u64),
        cpu_ns: cpu0
            .and_then(|c| c.try_elapsed().ok())
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// What [`run_work`] measures beyond what learning needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    /// Nothing (inline work: its latency is its run time).
    Nothing,
    /// Its run time.
    Run,
    /// Its run time and its thread's CPU time.
    Cpu,
}

/// What [`run_work`] measured.
struct Run<T> {
    r: std::thread::Result<T>,
    /// Wall time of the work, ns (0 = not measured).
    run_ns: u64,
    /// CPU time of the work's thread meanwhile, ns (0 = not measured).
    cpu_ns: u64,
}

/// Held by a spawned task until it starts. Dropped unstarted (the caller went away and
/// the task was aborted, or the runtime shut down), it counts the job as cancelled.
struct Unstarted {
    inner: Option<Arc<Inner>>,
    est: u64,
    timing: Timing,
}

impl Unstarted {
    /// The task started: hands over the router and disarms the guard.
    fn start(mut self) -> Option<Arc<Inner>> {
        self.inner.take()
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner
                .counters
                .spawn_outstanding_ns
                .fetch_sub(self.est, Relaxed);
            inner.record_cancelled(Strategy::Spawn, &self.timing);
        }
    }
}

/// Aborts a spawned task when the caller's future is dropped (a no-op once it ran:
/// the task body has no await point).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the pool and batch paths plan with, beside the hint.
#[derive(Debug, Clone, Copy)]
struct Plan {
    route: Route,
    timing: Timing,
    /// The cost admission and batch caps plan with (a high quantile once learned).
    admit_ns: u64,
    /// `admit_ns` rests on measured runs (the pool does not scale it by its slowdown).
    learned: bool,
    admission: bool,
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
    /// Dropping the returned future before the work starts cancels it (it never runs);
    /// once it runs it finishes and the result is discarded.
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
        let mut hint = hint;
        let hint_ns = hint.compute_cost;
        let cfg = inner.config.effective();
        let costed = inner.cost(&mut hint, &cfg);
        let timing = Timing {
            start,
            budget_ns: hint.budget_ns(),
            budget_ms: hint.latency_budget_ms,
            class: costed.class,
            hint_ns,
            units: hint.units,
            probe: false,
        };
        if inner.shutting_down.load(Relaxed) {
            return Err(inner.shed_shutting_down(&hint, &timing));
        }
        let route = inner.route(&hint, &cfg, costed.entry, costed.unknown);
        // Counted before the job can end, so `submitted` never trails an end counter.
        inner.count_routed(route.strategy, &timing);
        let plan = Plan {
            route,
            timing,
            admit_ns: costed.admit_ns,
            learned: costed.learned,
            admission: cfg.enable_admission,
        };
        match route.strategy {
            Strategy::Inline => {
                inner.log_decision(&hint, Strategy::Inline, route.source, &timing, route.busy);
                let Run { r, run_ns, cpu_ns } = run_work(work, &timing, Measure::Nothing);
                let end = Ended {
                    ok: r.is_ok(),
                    run_ns,
                    cpu_ns,
                    caller_gone: false,
                    sample: route.sample,
                };
                inner.finish(Strategy::Inline, &timing, end);
                r.map_err(|_| Rejected::Panicked)
            }
            Strategy::Spawn => {
                inner.log_decision(&hint, Strategy::Spawn, route.source, &timing, route.busy);
                self.spawn_work(hint.compute_cost, timing, route.sample, work)
                    .await
            }
            Strategy::CpuPool => self.pool_work(&hint, plan, work).await,
            Strategy::Batch => {
                let limits = BatchLimits {
                    max_size: cfg.batch_max_size,
                    max_cost_ns: cfg.batch_max_cost_ns,
                    queue_cap: cfg.batch_queue_cap,
                };
                self.batch_work(&hint, plan, limits, work).await
            }
            // `route` never picks `Remote` (`run_task` decides that before); total anyway.
            Strategy::Drop | Strategy::Remote => {
                inner.log_decision(&hint, Strategy::Drop, route.source, &timing, route.busy);
                inner.record_drop(Strategy::Drop, &timing, None);
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
        let unstarted = Unstarted {
            inner: Some(Arc::clone(&self.inner)),
            est,
            timing,
        };
        let handle = tokio::spawn(async move {
            let inner = unstarted.start()?;
            let Run { r, run_ns, cpu_ns } = run_work(work, &timing, Measure::Run);
            inner.counters.spawn_outstanding_ns.fetch_sub(est, Relaxed);
            // Whether its caller is still waiting is not known here (an aborted task
            // whose work had started still runs it to the end): counted as delivered.
            let end = Ended {
                ok: r.is_ok(),
                run_ns,
                cpu_ns,
                caller_gone: false,
                sample,
            };
            inner.finish(Strategy::Spawn, &timing, end);
            Some(r.map_err(|_| Rejected::Panicked))
        });
        // Dropping this future before the task starts aborts it: it never runs.
        let _abort = AbortOnDrop(handle.abort_handle());
        match handle.await {
            Ok(Some(r)) => r,
            // A JoinError (or the impossible empty guard) means the runtime is shutting
            // down and dropped the task before it ran; the guard counted it cancelled.
            Ok(None) | Err(_) => Err(Rejected::ShuttingDown),
        }
    }

    /// Submits the work to the CPU pool (admission decides at once) and waits for it.
    /// Work of a class shed on its estimate runs anyway as a probe now and then (see
    /// `ClassEntry::take_probe`), so an estimate that is too high gets measured.
    async fn pool_work<T, F>(&self, hint: &WorkHint, plan: Plan, work: F) -> Result<T, Rejected>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let inner = &*self.inner;
        let Plan {
            route,
            timing,
            admit_ns,
            learned,
            admission,
        } = plan;
        let facts = TaskFacts {
            deadline: timing.deadline(),
            est_ns: admit_ns,
            learned,
        };
        let class = timing.class.and_then(|id| inner.classes.get(id));
        let probe = || class.is_some_and(|c| c.take_probe());
        // The job (its boxed closure and its answer's channel) is built only once the
        // pool queues it: a job shed here costs neither.
        let mut reply = None;
        let make = || {
            let (job, rx) = self.queued_job(Strategy::CpuPool, *hint, timing, route.sample, work);
            reply = Some(rx);
            job
        };
        if let Err((why, make)) = inner.pool.try_submit_with(facts, admission, probe, make) {
            drop(make);
            let shed = ShedCause::from(why);
            inner.log_decision(hint, Strategy::Drop, shed.source(), &timing, route.busy);
            inner.record_routing_shed(Strategy::CpuPool, &timing, route.sample);
            return Err(shed.rejected(Strategy::CpuPool, timing.elapsed_ns(), timing.budget_ms));
        }
        inner.log_decision(hint, Strategy::CpuPool, route.source, &timing, route.busy);
        match reply {
            Some(rx) => rx.await.unwrap_or(Err(Rejected::ShuttingDown)),
            None => Err(Rejected::ShuttingDown),
        }
    }

    /// Queues the work in its kind's batch (flushing the batch when this fills it) and
    /// waits for it.
    async fn batch_work<T, F>(
        &self,
        hint: &WorkHint,
        plan: Plan,
        limits: BatchLimits,
        work: F,
    ) -> Result<T, Rejected>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let inner = &*self.inner;
        let Plan {
            route,
            timing,
            admit_ns,
            learned,
            admission,
        } = plan;
        let (job, rx) = self.queued_job(Strategy::Batch, *hint, timing, route.sample, work);
        let entry = BatchEntry {
            enqueued: tokio::time::Instant::now(),
            deadline: timing.deadline(),
            est_ns: admit_ns,
            learned,
            job,
        };
        let queue = hint.kind.map_or(batch::CLASSES - 1, JobKind::index);
        match inner.batcher.push(queue, entry, limits) {
            Ok(full) => {
                inner.log_decision(hint, Strategy::Batch, route.source, &timing, route.busy);
                if let Some(full) = full {
                    inner.counters.batch_flushes_full.fetch_add(1, Relaxed);
                    self.flush_batch(full, admission);
                }
            }
            Err(entry) => {
                drop(entry);
                let shed = ShedCause::QueueFull;
                inner.log_decision(hint, Strategy::Drop, shed.source(), &timing, route.busy);
                inner.record_routing_shed(Strategy::Batch, &timing, route.sample);
                return Err(shed.rejected(Strategy::Batch, timing.elapsed_ns(), timing.budget_ms));
            }
        }
        rx.await.unwrap_or(Err(Rejected::ShuttingDown))
    }

    /// Wraps `work` for the pool or a batch: runs it (catching panics), sheds it, or —
    /// when its caller stopped waiting before it started — skips it; records the outcome
    /// exactly once and sends the result to the returned receiver. A shed after
    /// routing also goes to the decision feed, so the feed shows every shed.
    fn queued_job<T, F>(
        &self,
        strategy: Strategy,
        hint: WorkHint,
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
        let job = Box::new(move |exec: Exec, probe: bool, ran: &mut dyn FnMut()| {
            let timing = Timing { probe, ..timing };
            let result = match exec {
                Exec::Run if tx.is_closed() => {
                    inner.record_cancelled(strategy, &timing);
                    return false;
                }
                Exec::Run => {
                    let Run { r, run_ns, cpu_ns } = run_work(work, &timing, Measure::Cpu);
                    ran();
                    let end = Ended {
                        ok: r.is_ok(),
                        run_ns,
                        cpu_ns,
                        caller_gone: tx.is_closed(),
                        sample,
                    };
                    inner.finish(strategy, &timing, end);
                    r.map_err(|_| Rejected::Panicked)
                }
                Exec::Shed(why) => {
                    inner.log_decision(&hint, Strategy::Drop, why.queued_source(), &timing, 0);
                    inner.record_drop(strategy, &timing, sample);
                    Err(why.rejected(strategy, timing.elapsed_ns(), timing.budget_ms))
                }
            };
            // The caller may have stopped waiting since; the outcome is already recorded.
            let _ = tx.send(result);
            exec == Exec::Run
        });
        (job, rx)
    }

    /// Sends one batch to the pool as a single task, queued by its most urgent
    /// member's deadline so every member can be on time; members past their deadline
    /// when the batch runs are shed. When admission finds the batch cannot finish by
    /// that deadline, its members go to the pool one by one, each admitted on its own
    /// deadline (a long member does not sink the others); a batch refused for any
    /// other reason (queue full, closed) sheds every member with the pool's reason.
    pub(crate) fn flush_batch(&self, entries: Vec<BatchEntry>, admission: bool) {
        let Some(deadline) = entries.iter().map(|e| e.deadline).min() else {
            return;
        };
        let est_ns = entries.iter().map(|e| e.est_ns).sum();
        let learned = entries.iter().all(|e| e.learned);
        let inner = Arc::clone(&self.inner);
        let job = Box::new(move |exec: Exec, _probe: bool, done: &mut dyn FnMut()| {
            if let Exec::Shed(ShedCause::Unmeetable { .. }) = exec {
                for e in entries {
                    inner.pool_alone(e, admission);
                }
                return false;
            }
            let mut ran = false;
            for e in entries {
                let member = match exec {
                    Exec::Run if Instant::now() >= e.deadline => {
                        Exec::Shed(ShedCause::Late { run_ns: e.est_ns })
                    }
                    other => other,
                };
                ran |= (e.job)(member, false, &mut || {});
            }
            if ran {
                done();
            }
            ran
        });
        let task = PoolTask {
            deadline,
            est_ns,
            learned,
            probe: false,
            job,
        };
        // A batch is never a probe: its members' classes learn from their own runs.
        if let Err((why, task)) = self.inner.pool.try_submit(task, admission, || false) {
            task.finish(Exec::Shed(ShedCause::from(why)));
        }
    }
}

/// A job's class and what the class's cost model makes of its hint.
struct Costed<'a> {
    class: Option<ClassId>,
    entry: Option<&'a ClassEntry>,
    /// The cost admission and batch caps plan with.
    admit_ns: u64,
    /// No hint, no trusted size and nothing measured: the work must take a safe path.
    unknown: bool,
    /// `admit_ns` rests on measured runs.
    learned: bool,
}

impl Inner {
    /// Resolves the hint's class and sets `hint.compute_cost` to the cost its model
    /// routes on (from the job's own facts: its hint, its size). Work with no class
    /// keeps its hint as given (decided in place, so the unclassified hot path makes no
    /// call).
    #[inline(always)]
    fn cost(&self, hint: &mut WorkHint, cfg: &RouterConfig) -> Costed<'_> {
        match hint.class {
            None => Costed {
                class: None,
                entry: None,
                admit_ns: hint.compute_cost,
                unknown: false,
                learned: false,
            },
            Some(name) => self.class_cost(name, hint, cfg),
        }
    }

    /// [`Inner::cost`] for work of class `name`.
    fn class_cost(
        &self,
        name: &'static str,
        hint: &mut WorkHint,
        cfg: &RouterConfig,
    ) -> Costed<'_> {
        let (id, entry) = self.classes.resolve(name);
        let est = entry.estimate(hint.compute_cost, hint.units, cfg.enable_cost_learning);
        hint.compute_cost = est.policy_ns;
        Costed {
            class: Some(id),
            entry: Some(entry),
            admit_ns: est.admit_ns,
            unknown: est.unknown,
            learned: est.learned,
        }
    }

    /// Sheds a job that arrived after shutdown began: counts it routed to `Drop`, logs
    /// and records the drop.
    #[cold]
    fn shed_shutting_down(&self, hint: &WorkHint, timing: &Timing) -> Rejected {
        self.count_routed(Strategy::Drop, timing);
        self.log_decision(hint, Strategy::Drop, DecisionSource::Shutdown, timing, 0);
        self.record_drop(Strategy::Drop, timing, None);
        Rejected::ShuttingDown
    }

    /// Submits one batch member to the pool on its own (its batch was refused as a
    /// whole); shed with the pool's reason if the pool refuses it too.
    fn pool_alone(&self, e: BatchEntry, admission: bool) {
        let task = PoolTask {
            deadline: e.deadline,
            est_ns: e.est_ns,
            learned: e.learned,
            probe: false,
            job: e.job,
        };
        if let Err((why, task)) = self.pool.try_submit(task, admission, || false) {
            task.finish(Exec::Shed(ShedCause::from(why)));
        }
    }
}
