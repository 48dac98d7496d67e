//! The bounded, resizable CPU pool: dedicated OS threads (never the async workers),
//! an earliest-deadline-first queue with a hard capacity, and budget-aware admission.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::job::{Exec, QueuedJob, ShedCause};
use crate::policy::admission::{self, Admit, QueuedWork};

/// A unit of work for the pool: one job, or one whole batch.
pub(crate) struct PoolTask {
    /// Absolute deadline; the queue is ordered by it (earliest first).
    pub(crate) deadline: Instant,
    /// Estimated CPU time in nanoseconds that admission plans with (the job's admission
    /// estimate from its class's model, or its hint; summed for a batch).
    pub(crate) est_ns: u64,
    /// True when `est_ns` rests on measured run times: it is used as it is. Otherwise
    /// (a hint taken as given) it is scaled by the pool's observed slowdown, and the
    /// run teaches the slowdown.
    pub(crate) learned: bool,
    /// Set by the pool when admission would have shed the task on its estimate and the
    /// caller's probe callback let it in anyway: it is never evicted nor shed as late,
    /// so its run is measured.
    pub(crate) probe: bool,
    /// Runs the work (`Exec::Run`) or sheds it (`Exec::Shed`), recording the outcome
    /// and delivering the result either way. Called exactly once, by [`PoolTask::finish`].
    pub(crate) job: QueuedJob,
}

impl PoolTask {
    /// Sheds the task (or runs it, with no hook; see [`QueuedJob`]); true when work ran.
    pub(crate) fn finish(self, exec: Exec) -> bool {
        self.finish_with(exec, &mut || {})
    }

    /// [`PoolTask::finish`] with the hook its job calls once its work ran.
    fn finish_with(self, exec: Exec, ran: &mut dyn FnMut()) -> bool {
        (self.job)(exec, self.probe, ran)
    }
}

/// What admission needs to know of a task before its job exists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskFacts {
    /// See [`PoolTask::deadline`].
    pub(crate) deadline: Instant,
    /// See [`PoolTask::est_ns`].
    pub(crate) est_ns: u64,
    /// See [`PoolTask::learned`].
    pub(crate) learned: bool,
}

/// Why the pool did not take a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolReject {
    /// `cpu_queue_cap` tasks are already waiting.
    QueueFull,
    /// The estimated finish time is past the deadline.
    Unmeetable { estimated_ns: u64 },
    /// The pool is shutting down.
    Closed,
}

struct Queued {
    deadline: Instant,
    /// What the pool plans with: the task's estimate, times the slowdown observed when
    /// it was queued unless the estimate is learned.
    est_ns: u64,
    /// The task's own estimate when it is a hint taken as given (0 when learned): what
    /// its run time teaches the slowdown with.
    raw_ns: u64,
    task: PoolTask,
}

struct State {
    /// Waiting tasks sorted by deadline, FIFO among equal deadlines. Bounded by `queue_cap`.
    queue: VecDeque<Queued>,
    /// Sum of the queued tasks' `est_ns`, kept with the queue, so admission sums only
    /// the shorter side of a newcomer's place (a newcomer is mostly due after most of
    /// the queue: the work ahead is this total less the few tasks behind it).
    queued_ns: u128,
    /// (worker id, start, planned ns) of each running task. Pushed when a worker takes a
    /// task, removed when it finishes. At most `live` entries.
    running: Vec<(u64, Instant, u64)>,
    /// Next worker id.
    next_worker: u64,
    /// Workers alive (threads that have not exited).
    live: usize,
    /// Workers waiting for work on the condvar. A submission wakes one only when some
    /// wait: under load every worker is busy, and a wake-up would be a wasted syscall.
    sleepers: usize,
    /// Workers wanted; a worker above this exits after its current task.
    target: usize,
    /// Niceness new workers give themselves.
    nice: u8,
    queue_cap: usize,
    /// EMA of actual / estimated run time of pool tasks whose estimate is a hint taken
    /// as given (the pool's observed speed against such hints). Learned estimates
    /// already measure the run time, so they neither use it nor teach it.
    slowdown: f64,
    /// EMA of the run time of one pool task, in seconds (what a worker spends per task).
    service_secs: f64,
    /// Scratch space of admission, kept to avoid allocating per submission.
    scratch: Scratch,
    closed: bool,
}

impl State {
    /// Expected time left of the running tasks at `now`, summed over workers.
    fn running_remaining_ns(&self, now: Instant) -> u64 {
        self.running
            .iter()
            .map(|&(_, start, planned)| {
                planned.saturating_sub(now.duration_since(start).as_nanos() as u64)
            })
            .sum()
    }

    /// Estimated work of the first `pos` queued tasks, summing the shorter side.
    fn ahead_ns(&self, pos: usize) -> u64 {
        let sum = |it: &mut dyn Iterator<Item = &Queued>| -> u128 {
            it.map(|q| u128::from(q.est_ns)).sum()
        };
        // Every test build checks the running total against the queue.
        debug_assert_eq!(self.queued_ns, sum(&mut self.queue.iter()));
        saturate(if pos <= self.queue.len() / 2 {
            sum(&mut self.queue.iter().take(pos))
        } else {
            self.queued_ns - sum(&mut self.queue.iter().skip(pos))
        })
    }

    /// True when a worker is free and nothing waits: a task queued now starts at once.
    fn idle_slot(&self) -> bool {
        self.queue.is_empty() && self.running.len() < self.target
    }
}

/// A sum of estimates as admission takes it (a queue of absurd hints caps at
/// `u64::MAX` ns instead of overflowing).
fn saturate(ns: u128) -> u64 {
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Buffers reused by every admission.
#[derive(Default)]
struct Scratch {
    suffix: Vec<(u64, u64)>,
    heap: std::collections::BinaryHeap<(u64, usize)>,
    out: Vec<usize>,
}

/// Handle to the pool; cheap to clone.
#[derive(Clone)]
pub(crate) struct CpuPool {
    inner: Arc<Shared>,
}

/// What the pool handle and its worker threads share: the queue and running set under
/// one lock, and gauges mirrored from them for lock-free reads.
struct Shared {
    state: Mutex<State>,
    work: Condvar,
    idle: Condvar,
    /// Running + queued tasks, mirrored from `state` for lock-free reads on the hot path.
    /// Written under the state lock; `Relaxed` is enough for a gauge.
    busy: AtomicUsize,
    /// Queued tasks only (same rules as `busy`).
    queued: AtomicUsize,
    /// Running tasks only (same rules as `busy`).
    running: AtomicUsize,
    /// Tasks shed in the queue because they could no longer meet their deadline.
    shed_in_queue: AtomicUsize,
    /// Tasks accepted into the queue since start (the pool's arrival count).
    accepted: std::sync::atomic::AtomicU64,
    /// Queued tasks shed to make room for shorter ones with earlier deadlines.
    evicted: std::sync::atomic::AtomicU64,
    /// Tasks refused at submission because `queue_cap` tasks were waiting.
    refused_full: std::sync::atomic::AtomicU64,
    /// Tasks refused at submission on admission's estimate (past their deadline).
    refused_estimate: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool")
            .field("busy", &self.busy())
            .finish()
    }
}

impl CpuPool {
    pub(crate) fn new(parallelism: usize, queue_cap: usize, nice: u8) -> Self {
        let inner = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(queue_cap.min(4096)),
                queued_ns: 0,
                running: Vec::new(),
                live: 0,
                sleepers: 0,
                next_worker: 0,
                target: 0,
                nice: 0,
                queue_cap,
                slowdown: 1.0,
                service_secs: 0.0,
                scratch: Scratch::default(),
                closed: false,
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
            busy: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            shed_in_queue: AtomicUsize::new(0),
            accepted: std::sync::atomic::AtomicU64::new(0),
            evicted: std::sync::atomic::AtomicU64::new(0),
            refused_full: std::sync::atomic::AtomicU64::new(0),
            refused_estimate: std::sync::atomic::AtomicU64::new(0),
        });
        let pool = CpuPool { inner };
        pool.resize(parallelism, queue_cap, nice);
        pool
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock (tasks run outside it).
        super::lock(&self.inner.state)
    }

    /// Estimated time from now until a new task of `est_ns` would finish if queued
    /// behind everything queued now (the latest it could finish under EDF), at the
    /// pool's observed speed. Takes the pool's lock: for decisions about heavy work only
    /// (whether a remote task should leave the process; `Router::class_estimate` for
    /// classes at or above the spawn threshold).
    pub(crate) fn estimate_finish_ns(&self, est_ns: u64) -> u64 {
        let st = self.lock();
        let now = Instant::now();
        admission::estimate_ns(&QueuedWork {
            running_remaining_ns: st.running_remaining_ns(now),
            ahead_ns: saturate(st.queued_ns),
            own_ns: est_ns,
            workers: st.target,
            slowdown: 1.0,
        })
    }

    /// Running + queued.
    #[inline]
    pub(crate) fn busy(&self) -> usize {
        self.inner.busy.load(Relaxed)
    }

    pub(crate) fn queued(&self) -> usize {
        self.inner.queued.load(Relaxed)
    }

    pub(crate) fn running(&self) -> usize {
        self.inner.running.load(Relaxed)
    }

    pub(crate) fn shed_in_queue(&self) -> usize {
        self.inner.shed_in_queue.load(Relaxed)
    }

    /// Tasks refused at submission: (queue full, on admission's estimate). A batch
    /// counts once.
    pub(crate) fn refused(&self) -> (u64, u64) {
        (
            self.inner.refused_full.load(Relaxed),
            self.inner.refused_estimate.load(Relaxed),
        )
    }

    /// Queued tasks evicted for shorter, earlier-deadline work since start.
    pub(crate) fn evicted(&self) -> u64 {
        self.inner.evicted.load(Relaxed)
    }

    /// Tasks accepted since start.
    pub(crate) fn accepted(&self) -> u64 {
        self.inner.accepted.load(Relaxed)
    }

    /// EMA of one task's run time in seconds (0 before any task ran).
    pub(crate) fn service_secs(&self) -> f64 {
        self.lock().service_secs
    }

    /// (parallelism, queue cap, observed slowdown) currently in force.
    pub(crate) fn shape(&self) -> (usize, usize, f64) {
        let st = self.lock();
        (st.target, st.queue_cap, st.slowdown)
    }

    /// Applies a new parallelism and queue cap to the live pool: extra workers are
    /// started at once; surplus workers exit after their current task. Tasks already
    /// queued beyond a smaller cap stay queued (nothing admitted is lost).
    pub(crate) fn resize(&self, parallelism: usize, queue_cap: usize, nice: u8) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.nice = nice;
        st.target = parallelism.max(1);
        st.queue_cap = queue_cap.max(1);
        let to_start = st.target.saturating_sub(st.live);
        for _ in 0..to_start {
            let slot = st.next_worker;
            st.next_worker += 1;
            st.live += 1;
            let pool = self.clone();
            let nice = st.nice;
            let spawned = std::thread::Builder::new()
                .name(format!("helix-cpu-{slot}"))
                .spawn(move || {
                    lower_priority(nice);
                    pool.worker(slot)
                });
            if let Err(e) = spawned {
                st.live -= 1;
                tracing::error!(error = %e, "could not start a cpu pool worker");
            }
        }
        drop(st);
        self.inner.work.notify_all();
    }

    /// Queues `task` if its deadline can be met (when `admission` is on), else returns
    /// it with the reason. Bounded by the queue cap either way; never blocks on work.
    ///
    /// Admission never sheds a task while a worker is free and nothing waits: it starts
    /// at once and its run is measured, whatever its estimate says. When admission
    /// would shed the newcomer on its estimate, `probe` (called under the pool's lock,
    /// so it must be cheap) may let it in anyway as a probe.
    pub(crate) fn try_submit(
        &self,
        task: PoolTask,
        admission: bool,
        probe: impl FnOnce() -> bool,
    ) -> Result<(), (PoolReject, PoolTask)> {
        let PoolTask {
            deadline,
            est_ns,
            learned,
            probe: _,
            job,
        } = task;
        let facts = TaskFacts {
            deadline,
            est_ns,
            learned,
        };
        self.try_submit_with(facts, admission, probe, move || job)
            .map_err(|(why, job)| {
                let task = PoolTask {
                    deadline,
                    est_ns,
                    learned,
                    probe: false,
                    job: job(),
                };
                (why, task)
            })
    }

    /// [`CpuPool::try_submit`] for a task whose job is built only once it is queued
    /// (`make` is called under the pool's lock): a job shed on the spot costs no
    /// allocation, no channel, no answer. Refused, `make` is handed back uncalled.
    pub(crate) fn try_submit_with<J: FnOnce() -> QueuedJob>(
        &self,
        facts: TaskFacts,
        admission: bool,
        probe: impl FnOnce() -> bool,
        make: J,
    ) -> Result<(), (PoolReject, J)> {
        let TaskFacts {
            deadline,
            est_ns: given_ns,
            learned,
        } = facts;
        let now = Instant::now();
        let mut st = self.lock();
        if st.closed {
            return Err((PoolReject::Closed, make));
        }
        if st.queue.len() >= st.queue_cap {
            self.inner.refused_full.fetch_add(1, Relaxed);
            return Err((PoolReject::QueueFull, make));
        }
        let (est_ns, raw_ns) = if learned {
            (given_ns, 0)
        } else {
            let scaled = (given_ns as f64 * st.slowdown.clamp(0.1, 100.0)) as u64;
            (scaled, given_ns)
        };
        let pos = st.queue.partition_point(|q| q.deadline <= deadline);
        let mut evicted = Vec::new();
        let mut is_probe = false;
        if admission {
            match self.plan_admission(&mut st, now, pos, est_ns, deadline) {
                Ok(out) => evicted = out,
                Err(_) if probe() => is_probe = true,
                Err(estimated_ns) => {
                    self.inner.refused_estimate.fetch_add(1, Relaxed);
                    return Err((PoolReject::Unmeetable { estimated_ns }, make));
                }
            }
        }
        let task = PoolTask {
            deadline,
            est_ns: given_ns,
            learned,
            probe: is_probe,
            job: make(),
        };
        st.queued_ns += u128::from(est_ns);
        st.queue.insert(
            pos,
            Queued {
                deadline,
                est_ns,
                raw_ns,
                task,
            },
        );
        self.inner.queued.store(st.queue.len(), Relaxed);
        self.inner.busy.fetch_add(1, Relaxed);
        self.inner.accepted.fetch_add(1, Relaxed);
        let wake = st.sleepers > 0;
        drop(st);
        if wake {
            self.inner.work.notify_one();
        }
        // Shed outside the lock: each records its outcome and answers its caller.
        for t in evicted {
            t.finish(Exec::Shed(ShedCause::Evicted));
        }
        Ok(())
    }

    /// Admission for a newcomer of `est_ns` due at `deadline`, to be queued at `pos`:
    /// gathers what the queue holds and carries out [`admission::admit`]'s verdict. On
    /// `Queue` the tasks to evict are removed from the queue and returned; on `Shed`
    /// the newcomer's estimated finish from now (ns). Probes are never evicted: one
    /// behind the newcomer counts as no work and as never late.
    fn plan_admission(
        &self,
        st: &mut State,
        now: Instant,
        pos: usize,
        est_ns: u64,
        deadline: Instant,
    ) -> Result<Vec<PoolTask>, u64> {
        let base = QueuedWork {
            running_remaining_ns: st.running_remaining_ns(now),
            ahead_ns: st.ahead_ns(pos),
            own_ns: est_ns,
            workers: st.target,
            slowdown: 1.0,
        };
        // Reused scratch buffers: admission allocates nothing in steady state.
        let mut scratch = std::mem::take(&mut st.scratch);
        // Plans with the part of each job's time that admission uses (see `usable_ns`).
        let left =
            |d: Instant| admission::usable_ns(d.saturating_duration_since(now).as_nanos() as u64);
        scratch.suffix.clear();
        scratch.suffix.push((est_ns, left(deadline)));
        scratch.suffix.extend(st.queue.iter().skip(pos).map(|q| {
            if q.task.probe {
                (0, u64::MAX)
            } else {
                (q.est_ns, left(q.deadline))
            }
        }));
        let verdict = admission::admit(
            st.idle_slot(),
            &base,
            &scratch.suffix,
            &mut scratch.heap,
            &mut scratch.out,
        );
        if let Admit::Shed { estimated_ns } = verdict {
            st.scratch = scratch;
            return Err(estimated_ns);
        }
        // Remove the evicted queued tasks (highest index first so indices stay valid).
        scratch.out.sort_unstable_by(|a, b| b.cmp(a));
        let mut evicted = Vec::with_capacity(scratch.out.len());
        for &i in &scratch.out {
            if let Some(q) = st.queue.remove(pos + i - 1) {
                st.queued_ns -= u128::from(q.est_ns);
                evicted.push(q.task);
            }
        }
        st.scratch = scratch;
        if !evicted.is_empty() {
            self.inner.busy.fetch_sub(evicted.len(), Relaxed);
            self.inner.evicted.fetch_add(evicted.len() as u64, Relaxed);
        }
        Ok(evicted)
    }

    fn worker(&self, id: u64) {
        let mut st = self.lock();
        loop {
            // Surplus workers (after a shrink) leave once they hold no task.
            if st.live > st.target || (st.closed && st.queue.is_empty()) {
                st.live -= 1;
                drop(st);
                self.inner.idle.notify_all();
                self.inner.work.notify_all();
                return;
            }
            let Some(q) = st.queue.pop_front() else {
                st.sleepers += 1;
                st = self.inner.work.wait(st).unwrap_or_else(|e| e.into_inner());
                st.sleepers -= 1;
                continue;
            };
            st.queued_ns -= u128::from(q.est_ns);
            self.inner.queued.store(st.queue.len(), Relaxed);
            let now = Instant::now();
            let left_ns = q.deadline.saturating_duration_since(now).as_nanos() as u64;
            if !st.closed && admission::late(left_ns, q.est_ns, st.queue.is_empty(), q.task.probe) {
                // It can no longer finish in time: shed it rather than spend the CPU.
                self.inner.busy.fetch_sub(1, Relaxed);
                self.inner.shed_in_queue.fetch_add(1, Relaxed);
                drop(st);
                q.task
                    .finish(Exec::Shed(ShedCause::Late { run_ns: q.est_ns }));
                st = self.lock();
                continue;
            }
            st.running.push((id, now, q.est_ns));
            self.inner.running.fetch_add(1, Relaxed);
            drop(st);
            // The run is settled (gauges, running list, speed) by the job's hook right
            // after its work ran, before its caller hears back, so a caller that submits
            // again at once never finds this finished task still counted as running.
            let mut settled = false;
            q.task.finish_with(Exec::Run, &mut || {
                self.settle(id, now, q.raw_ns, true);
                settled = true;
            });
            if !settled {
                // Cancelled (or shed) without running: says nothing about the pool's speed.
                self.settle(id, now, q.raw_ns, false);
            }
            st = self.lock();
        }
    }

    /// Ends worker `id`'s task started at `start`: out of the running gauges and list,
    /// and, when its work `ran`, folded into the service time and (for a task whose
    /// estimate `raw_ns` is a hint taken as given) the observed slowdown.
    fn settle(&self, id: u64, start: Instant, raw_ns: u64, ran: bool) {
        let took = start.elapsed().as_nanos() as f64;
        let mut st = self.lock();
        self.inner.running.fetch_sub(1, Relaxed);
        self.inner.busy.fetch_sub(1, Relaxed);
        st.running.retain(|r| r.0 != id);
        if !ran {
            return;
        }
        let secs = took / 1e9;
        st.service_secs = if st.service_secs == 0.0 {
            secs
        } else {
            st.service_secs + 0.05 * (secs - st.service_secs)
        };
        if raw_ns >= 10_000 {
            let ratio = (took / raw_ns as f64).clamp(0.1, 100.0);
            st.slowdown += 0.05 * (ratio - st.slowdown);
        }
    }

    /// Stops accepting; workers finish the queue and exit. Waits up to `timeout`.
    /// Idempotent.
    pub(crate) fn close(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        st.closed = true;
        self.inner.work.notify_all();
        while st.live > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .inner
                .idle
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        true
    }
}

/// Gives the calling thread niceness `nice` (0..=19) so async workers win the cores.
/// Failure (e.g. a platform without niceness) is logged once per worker and ignored:
/// the pool still works, only without the priority gap.
fn lower_priority(nice: u8) {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    if nice == 0 {
        return;
    }
    // thread_priority maps p in 0..=99 onto niceness -20 + floor(39 × (1 − p/99)).
    let cross = (99.0 * (1.0 - (f64::from(nice.min(19)) + 20.0) / 39.0)).floor() as u8;
    let result = ThreadPriorityValue::try_from(cross)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            set_current_thread_priority(ThreadPriority::Crossplatform(v)).map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        tracing::debug!(nice, error = %e, "could not lower cpu pool thread priority");
    }
}

impl From<PoolReject> for ShedCause {
    fn from(why: PoolReject) -> Self {
        match why {
            PoolReject::QueueFull => ShedCause::QueueFull,
            PoolReject::Unmeetable { estimated_ns } => ShedCause::Unmeetable { estimated_ns },
            PoolReject::Closed => ShedCause::Closed,
        }
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;

    fn own_nice() -> i32 {
        // Field 19 of /proc/thread-self/stat is the niceness.
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn pool_threads_run_at_the_configured_niceness() {
        let pool = CpuPool::new(1, 4, 10);
        let (tx, rx) = std::sync::mpsc::channel();
        let task = PoolTask {
            deadline: Instant::now() + Duration::from_secs(5),
            est_ns: 1,
            learned: false,
            probe: false,
            job: Box::new(move |_, _, _| {
                tx.send(own_nice()).unwrap();
                true
            }),
        };
        assert!(pool.try_submit(task, true, || false).is_ok());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 10);
        assert_eq!(own_nice(), 0, "the caller's thread is untouched");
        assert!(pool.close(Duration::from_secs(5)));
    }
}
