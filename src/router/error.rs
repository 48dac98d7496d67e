//! Why work did not produce a result.

use crate::types::Strategy;

/// Why `Router::run` returned no value. Shed variants are the router protecting the
/// budget of other work; `Panicked` is the work's own failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    /// at once instead of queued to fail and delay others.
    #[error("budget impossible: estimated {estimated_ms:.3} ms > budget {budget_ms} ms")]
    BudgetImpossible {
        /// Estimated time to completion.
        estimated_ms: f64,
        /// The work's latency budget.
        budget_ms: u64,
    },
    /// The router is shutting down and admits no new work.
    #[error("router is shutting down")]
    ShuttingDown,
    /// The work panicked; the panic was caught and counted as a failure.
    #[error("work panicked")]
    Panicked,
}

impl Rejected {
    /// True when the router shed the work (as opposed to the work failing).
    pub fn is_shed(&self) -> bool {
        !matches!(self, Rejected::Panicked)
    }
}
