//! The work the pool and the batcher hold, and the facts its bookkeeping needs: the
//! queued job's calling convention, how it is finally handled, why it was shed, and
//! its timing. Shared by dispatch, the CPU pool and the batcher, which import it and
//! not each other.

use std::time::{Duration, Instant};

use super::Rejected;
use super::classes::ClassId;
use crate::types::{DecisionSource, Strategy};

/// A queued unit of work as the pool and the batcher hold it: called exactly once,
/// with [`Exec::Run`] to run it or [`Exec::Shed`] to shed it, whether it was admitted
/// as a probe (`true`: its end frees its class's probe slot), and a hook it calls right
/// after its work ran and before it answers its caller (so the pool has settled the
/// run before the caller can submit more); either way it records the outcome and
/// answers its caller. Returns true when work actually ran (not shed, not cancelled),
/// so the pool learns its speed from real runs only.
pub(crate) type QueuedJob = Box<dyn FnOnce(Exec, bool, &mut dyn FnMut()) -> bool + Send>;

/// How a queued task is finally handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exec {
    /// Run it.
    Run,
    /// Shed it, for this reason.
    Shed(ShedCause),
}

/// Why a queued job was shed after it was admitted (or why a batch was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShedCause {
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

impl ShedCause {
    /// What the caller of a job routed to `strategy`, `elapsed_ns` after it was
    /// submitted, is told.
    pub(crate) fn rejected(self, strategy: Strategy, elapsed_ns: u64, budget_ms: u64) -> Rejected {
        let estimate = |left_ns: u64| Rejected::BudgetImpossible {
            estimated_ms: elapsed_ns.saturating_add(left_ns) as f64 / 1e6,
            budget_ms,
        };
        match self {
            ShedCause::Late { run_ns } => estimate(run_ns),
            ShedCause::Unmeetable { estimated_ns } => estimate(estimated_ns),
            ShedCause::Evicted => Rejected::Evicted { budget_ms },
            ShedCause::QueueFull => Rejected::QueueFull { strategy },
            ShedCause::Closed => Rejected::ShuttingDown,
        }
    }

    /// The decision-feed source of a job shed after it was queued, for this reason.
    pub(crate) fn queued_source(self) -> DecisionSource {
        match self {
            ShedCause::Evicted => DecisionSource::Evicted,
            ShedCause::Late { .. } => DecisionSource::Expired,
            other => other.source(),
        }
    }

    /// The decision-feed source of a job shed at routing time for this reason.
    pub(crate) fn source(self) -> DecisionSource {
        match self {
            ShedCause::QueueFull => DecisionSource::QueueFull,
            ShedCause::Closed => DecisionSource::Shutdown,
            ShedCause::Late { .. } | ShedCause::Evicted | ShedCause::Unmeetable { .. } => {
                DecisionSource::Admission
            }
        }
    }
}

/// A job's timing and class, as its dispatch path and bookkeeping need them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// When `run` was called (the hot path's clock).
    pub(crate) start: quanta::Instant,
    pub(crate) budget_ns: u64,
    pub(crate) budget_ms: u64,
    /// The work's class, when it has one: its run time is then measured and learned.
    pub(crate) class: Option<ClassId>,
    /// The caller's cost hint (ns, 0 = none) and size: what the class's ratio and
    /// units models learn from when the run is measured.
    pub(crate) hint_ns: u64,
    pub(crate) units: Option<u64>,
    /// True for a probe: a job admission would have shed on its estimate that runs
    /// anyway to measure it. Its end frees the class's probe slot.
    pub(crate) probe: bool,
}

impl Timing {
    /// The real-time deadline (the pool's clock).
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_nanos(self.budget_ns).saturating_sub(self.start.elapsed())
    }

    pub(crate) fn elapsed_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}
