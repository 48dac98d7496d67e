//! What a caller says about a unit of work.

use crate::types::{Job, JobKind, JobProfile};

/// What a caller says about a closure submitted through [`Router::run`](super::Router::run).
///
/// Name the class of the work (`"thumbnail"`, `"password_hash"`) and the router learns
/// its real cost from what ran: a cost of `0` means "unknown", and a wrong guess is
/// outweighed by measurement after a few runs. Work with no class is routed on its
/// hint alone.
///
/// # Examples
///
/// ```
/// use helixrouter::WorkHint;
/// // A guess in nanoseconds...
/// let hint = WorkHint::new(7, 250_000).budget_ms(50).scaling(0.2);
/// assert_eq!(hint.compute_cost, 250_000);
/// // ...or just the class: the router measures what it costs.
/// let hint = WorkHint::of_class("thumbnail").budget_ms(200);
/// assert_eq!((hint.compute_cost, hint.class), (0, Some("thumbnail")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkHint {
    /// Caller-chosen id, echoed in the decision feed.
    pub id: u64,
    /// The caller's estimate of CPU time in nanoseconds (0 = unknown). Work with a
    /// class is routed on the class's model of it instead (the decision feed's
    /// `compute_cost` is that estimate); the caller's hint is what the model learns
    /// from.
    pub compute_cost: u64,
    /// How well the work amortises in a batch, in [0, 1].
    pub scaling_potential: f32,
    /// End-to-end latency budget in milliseconds.
    pub latency_budget_ms: u64,
    /// A built-in kind, if the work is one (used for per-kind batching and learning).
    pub kind: Option<JobKind>,
    /// The work class, whose cost the router learns (built-in kinds are classes named
    /// by [`JobKind::as_str`]). `None`: routed on `compute_cost` alone.
    pub class: Option<&'static str>,
    /// The job's size in whatever the work grows with (bytes, pixels, rows), set by
    /// [`WorkHint::units`]. A class learns a fixed part plus a cost per unit from the
    /// runs that give one, and routes each job that gives no cost on its own size.
    pub units: Option<u64>,
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
            class: None,
            units: None,
        }
    }

    /// A hint for work of class `name` whose cost is unknown (`compute_cost` 0): the
    /// router runs it on a safe path (never inline, never shed for lack of an
    /// estimate) until it has measured the class. Id 0, 100 ms budget.
    pub fn of_class(name: &'static str) -> Self {
        Self::new(0, 0).class(name)
    }

    /// Names the class of the work (sets the `class` field).
    pub fn class(mut self, name: &'static str) -> Self {
        self.class = Some(name);
        self
    }

    /// Sets the caller's id (echoed in the decision feed).
    pub fn id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }

    /// Sets the cost hint in nanoseconds (`0` = unknown).
    pub fn cost_ns(mut self, ns: u64) -> Self {
        self.compute_cost = ns;
        self
    }

    /// Sets the job's size: any count its work grows with (bytes of a body, pixels of an
    /// image, rows of a query). With a class and no cost hint, the router predicts the
    /// job's cost from its size once the class has learned a fixed part and a cost per
    /// unit (see `crate::policy::cost`); with a cost hint the hint wins. `0` is a size
    /// (an empty body), not "unknown".
    ///
    /// # Examples
    ///
    /// ```
    /// use helixrouter::WorkHint;
    /// let body = vec![0u8; 64 * 1024];
    /// let hint = WorkHint::of_class("compress").units(body.len() as u64).budget_ms(50);
    /// assert_eq!(hint.units, Some(65_536));
    /// ```
    pub fn units(mut self, n: u64) -> Self {
        self.units = Some(n);
        self
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

    /// The hint `Router::submit` routes a built-in job with (see `From<&Job>`).
    pub(crate) fn of_job(job: &Job) -> Self {
        Self {
            id: job.id,
            compute_cost: job.compute_cost,
            scaling_potential: job.scaling_potential,
            latency_budget_ms: job.latency_budget_ms,
            kind: Some(job.kind),
            class: Some(job.kind.as_str()),
            units: None,
        }
    }
}

impl From<&Job> for WorkHint {
    /// The hint `Router::submit` routes `job` with: its id, cost, scaling, budget,
    /// kind, and the kind as its class.
    fn from(job: &Job) -> Self {
        WorkHint::of_job(job)
    }
}
