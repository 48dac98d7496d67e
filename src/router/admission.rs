//! Budget-aware admission: a pure estimate of when a job would finish given what is
//! ahead of it, fed by the pool (queued work, running work, observed speed).

/// What is ahead of a job at the CPU pool, in estimated nanoseconds of CPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueuedWork {
    /// Remaining expected time of the tasks running now, summed over workers.
    pub running_remaining_ns: u64,
    /// Estimated cost of queued tasks that would run before this one (earlier deadline).
    pub ahead_ns: u64,
    /// This job's estimated cost.
    pub own_ns: u64,
    /// Workers serving the queue (>= 1).
    pub workers: usize,
    /// Observed actual / estimated run time of pool work (1.0 = estimates are exact).
    pub slowdown: f64,
}

/// The admission verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Expected to finish within budget.
    Admit {
        /// Estimated time to completion.
        estimated_ns: u64,
    },
    /// Expected to miss its budget: shed now rather than queue to fail and delay others.
    Reject {
        /// Estimated time to completion.
        estimated_ns: u64,
    },
}

/// Estimated time to completion: the queue ahead drains across the workers, then the
/// job runs on one of them.
///
/// # Examples
///
/// ```
/// use helixrouter::router::admission::{QueuedWork, estimate_ns};
/// let w = QueuedWork { running_remaining_ns: 2_000, ahead_ns: 6_000, own_ns: 1_000, workers: 2, slowdown: 1.0 };
/// assert_eq!(estimate_ns(&w), 5_000);
/// ```
pub fn estimate_ns(w: &QueuedWork) -> u64 {
    let workers = w.workers.max(1) as f64;
    let slow = if w.slowdown.is_finite() && w.slowdown > 0.0 {
        w.slowdown
    } else {
        1.0
    };
    let wait = (w.running_remaining_ns as f64 + w.ahead_ns as f64 * slow) / workers;
    (wait + w.own_ns as f64 * slow) as u64
}

/// Admits when the estimate fits in `budget_ns`.
pub fn admit(w: &QueuedWork, budget_ns: u64) -> Admission {
    let estimated_ns = estimate_ns(w);
    if estimated_ns <= budget_ns {
        Admission::Admit { estimated_ns }
    } else {
        Admission::Reject { estimated_ns }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn work(ahead: u64) -> QueuedWork {
        QueuedWork {
            running_remaining_ns: 0,
            ahead_ns: ahead,
            own_ns: 1_000_000,
            workers: 2,
            slowdown: 1.0,
        }
    }

    #[test]
    fn rejects_when_backlog_blows_budget() {
        assert!(matches!(
            admit(&work(0), 2_000_000),
            Admission::Admit { .. }
        ));
        assert!(matches!(
            admit(&work(4_000_000), 2_000_000),
            Admission::Reject {
                estimated_ns: 3_000_000
            }
        ));
    }

    #[test]
    fn slower_pool_means_later_estimate() {
        let mut w = work(2_000_000);
        let fast = estimate_ns(&w);
        w.slowdown = 2.0;
        assert_eq!(estimate_ns(&w), 2 * fast);
    }

    proptest! {
        #[test]
        fn estimate_is_monotone_in_backlog(a in 0u64..1u64 << 40, b in 0u64..1u64 << 40, workers in 1usize..64) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let mk = |ahead| QueuedWork { running_remaining_ns: 0, ahead_ns: ahead, own_ns: 10, workers, slowdown: 1.3 };
            prop_assert!(estimate_ns(&mk(lo)) <= estimate_ns(&mk(hi)));
        }
    }
}
