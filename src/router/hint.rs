//! What a caller says about a unit of work.

use crate::types::{Job, JobKind, JobProfile};

/// What a caller says about a closure submitted through [`Router::run`](super::Router::run).
///
/// # Examples
///
/// ```
/// use helixrouter::WorkHint;
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

    /// The routing-relevant part of the hint.
    #[inline]
    pub(crate) fn profile(&self) -> JobProfile {
        JobProfile {
            compute_cost: self.compute_cost,
            scaling_potential: self.scaling_potential,
            latency_budget_ms: self.latency_budget_ms,
        }
    }

    /// The latency budget in nanoseconds.
    #[inline]
    pub(crate) fn budget_ns(&self) -> u64 {
        self.latency_budget_ms.saturating_mul(1_000_000)
    }

    /// The hint `Router::submit` routes a built-in job with.
    pub(crate) fn of_job(job: &Job) -> Self {
        Self {
            id: job.id,
            compute_cost: job.compute_cost,
            scaling_potential: job.scaling_potential,
            latency_budget_ms: job.latency_budget_ms,
            kind: Some(job.kind),
        }
    }
}
