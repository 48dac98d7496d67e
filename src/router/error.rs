//! Why work did not produce a result.

use crate::types::Strategy;

/// Why `Router::run` returned no value. Shed variants are the router protecting the
/// budget of other work; `Panicked` is the work's own failure.
///
/// More reasons may be added, so matches outside this crate need a wildcard arm.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// The backpressure gate chose `Drop`: the CPU pool is saturated and the work
    /// does not batch well.
    #[error("shed under pressure: cpu pool occupancy {cpu_busy} >= backpressure threshold")]
    Overloaded {
        /// CPU pool occupancy (running + queued) at decision time.
        cpu_busy: usize,
    },
    /// The queue of the chosen strategy was full (CPU pool `cpu_queue_cap` or a batch
    /// queue's `batch_queue_cap`).
    #[error("shed: {strategy} queue is full")]
    QueueFull {
        /// The strategy whose queue was full.
        strategy: Strategy,
    },
    /// The estimated completion time exceeds the latency budget, so the work was shed
    /// at once instead of queued to fail and delay others (or, when it already waited,
    /// it could no longer finish in time and was shed instead of run late).
    #[error("budget impossible: estimated {estimated_ms:.3} ms > budget {budget_ms} ms")]
    BudgetImpossible {
        /// Estimated time from submission to completion had it run: the time already
        /// spent plus the router's estimate of what was left (queue ahead and the work).
        estimated_ms: f64,
        /// The work's latency budget.
        budget_ms: u64,
    },
    /// The work waited in the CPU pool's queue and was evicted to let work with
    /// earlier deadlines finish in time (the pool keeps the most jobs on time).
    #[error("evicted from the cpu pool queue so earlier deadlines are met (budget {budget_ms} ms)")]
    Evicted {
        /// The work's latency budget.
        budget_ms: u64,
    },
    /// Sent to a remote worker and no result came back within the budget (the worker
    /// died and redelivery came too late, or the link was lost); the job ended as
    /// dropped. A result arriving later is ignored.
    #[error("no remote result within the budget of {budget_ms} ms")]
    TimedOut {
        /// The work's latency budget.
        budget_ms: u64,
    },
    /// The remote worker could not run the task (it did not decode as the task, or the
    /// output did not decode as the task's output).
    #[error("remote task failed: {reason}")]
    RemoteFailed {
        /// What went wrong.
        reason: String,
    },
    /// The router is shutting down and admits no new work.
    #[error("router is shutting down")]
    ShuttingDown,
    /// The work panicked; the panic was caught and counted as a failure.
    #[error("work panicked")]
    Panicked,
}

impl Rejected {
    /// True when the router shed the work (as opposed to the work failing: a panic, or
    /// a remote task that did not decode, both counted as `failed`).
    ///
    /// ```
    /// use helixrouter::Rejected;
    /// assert!(Rejected::ShuttingDown.is_shed());
    /// assert!(!Rejected::Panicked.is_shed());
    /// assert!(!Rejected::RemoteFailed { reason: "bad payload".into() }.is_shed());
    /// ```
    pub fn is_shed(&self) -> bool {
        !matches!(self, Rejected::Panicked | Rejected::RemoteFailed { .. })
    }
}
