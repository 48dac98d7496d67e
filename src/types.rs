//! Shared value types: the unit of work, its kind, the execution strategies, outputs
//! and the record of each routing decision.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The built-in demonstration workloads. Each maps to a pure kernel in
/// [`crate::strategies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// FNV-style hash chain over the inputs ([`crate::strategies::hashmix`]).
    HashMix,
    /// Segmented sieve of Eratosthenes ([`crate::strategies::primecount`]).
    PrimeCount,
    /// Monte-Carlo value-at-risk ([`crate::strategies::montecarlo_risk`]).
    MonteCarloRisk,
}

impl JobKind {
    /// Every kind, in index order.
    pub const ALL: [JobKind; 3] = [
        JobKind::HashMix,
        JobKind::PrimeCount,
        JobKind::MonteCarloRisk,
    ];

    /// Dense index (0..3) used by per-kind tables.
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            JobKind::HashMix => 0,
            JobKind::PrimeCount => 1,
            JobKind::MonteCarloRisk => 2,
        }
    }

    /// The snake_case name used in JSON and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::HashMix => "hash_mix",
            JobKind::PrimeCount => "prime_count",
            JobKind::MonteCarloRisk => "monte_carlo_risk",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a unit of work is executed. More strategies may be added (as `Remote` was), so
/// matches outside this crate need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// Run on the caller's task, no hop.
    Inline,
    /// `tokio::spawn` onto the async executor.
    Spawn,
    /// The bounded CPU pool (threads that are not the async workers).
    CpuPool,
    /// Collected with others of its kind and run as one unit on the CPU pool.
    Batch,
    /// Shed: nothing runs.
    Drop,
    /// Sent to a remote worker over NATS JetStream (feature `remote`; only for
    /// registered `RemoteTask`s).
    Remote,
}

impl Strategy {
    /// Every strategy, in index order.
    pub const ALL: [Strategy; 6] = [
        Strategy::Inline,
        Strategy::Spawn,
        Strategy::CpuPool,
        Strategy::Batch,
        Strategy::Drop,
        Strategy::Remote,
    ];

    /// Number of strategies.
    pub const COUNT: usize = 6;

    /// Dense index (0..6) used by per-strategy tables.
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            Strategy::Inline => 0,
            Strategy::Spawn => 1,
            Strategy::CpuPool => 2,
            Strategy::Batch => 3,
            Strategy::Drop => 4,
            Strategy::Remote => 5,
        }
    }

    /// The strategy at a dense index, if any.
    pub const fn from_index(i: usize) -> Option<Strategy> {
        match i {
            0 => Some(Strategy::Inline),
            1 => Some(Strategy::Spawn),
            2 => Some(Strategy::CpuPool),
            3 => Some(Strategy::Batch),
            4 => Some(Strategy::Drop),
            5 => Some(Strategy::Remote),
            _ => None,
        }
    }

    /// The snake_case name used in JSON and metrics labels (`cpu_pool`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::Inline => "inline",
            Strategy::Spawn => "spawn",
            Strategy::CpuPool => "cpu_pool",
            Strategy::Batch => "batch",
            Strategy::Drop => "drop",
            Strategy::Remote => "remote",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A unit of built-in work.
///
/// # Examples
///
/// ```
/// use helixrouter::types::{Job, JobKind};
/// let job = Job {
///     id: 1,
///     kind: JobKind::HashMix,
///     inputs: vec![1, 2, 3, 4],
///     compute_cost: 2_000,
///     scaling_potential: 0.1,
///     latency_budget_ms: 5,
/// };
/// assert_eq!(helixrouter::strategies::execute_job(&job), helixrouter::strategies::execute_job(&job.clone()));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Caller-chosen identifier, echoed in the [`RoutingDecision`].
    pub id: u64,
    /// Which kernel runs.
    pub kind: JobKind,
    /// Kernel inputs.
    pub inputs: Vec<u64>,
    /// The caller's estimate of CPU time, in nanoseconds.
    pub compute_cost: u64,
    /// How well the job amortises when batched with others, in [0, 1].
    pub scaling_potential: f32,
    /// End-to-end latency the caller can tolerate, in milliseconds.
    pub latency_budget_ms: u64,
}

impl Job {
    /// The routing-relevant part of the job.
    #[inline]
    pub(crate) fn profile(&self) -> JobProfile {
        JobProfile {
            compute_cost: self.compute_cost,
            scaling_potential: self.scaling_potential,
            latency_budget_ms: self.latency_budget_ms,
        }
    }
}

/// What the policy looks at: cost, batchability and budget. Built from a [`Job`]
/// or from a user's `WorkHint`; `Copy`, so deciding never allocates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct JobProfile {
    /// Estimated CPU time in nanoseconds.
    pub(crate) compute_cost: u64,
    /// Batch amortisation potential in [0, 1].
    pub(crate) scaling_potential: f32,
    /// Latency budget in milliseconds.
    pub(crate) latency_budget_ms: u64,
}

/// The result of a built-in job.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// An integer result (hash, prime count).
    U64(u64),
    /// A floating-point result (value-at-risk).
    F64(f64),
}

/// Why a job ended up with the strategy its [`RoutingDecision`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecisionSource {
    /// The heuristic ([`crate::policy::choose_strategy`]) chose it; with strategy `drop`
    /// this is the backpressure gate shedding the job.
    Heuristic,
    /// The learned model overrode the heuristic.
    Neural,
    /// A guard moved the job to the CPU pool: the spawned backlog was too large for
    /// `spawn`, or the batch delay alone would blow its budget.
    Rerouted,
    /// Budget-aware admission shed the job (strategy `drop`): its estimated finish at
    /// the CPU pool was past its budget.
    Admission,
    /// The job was shed (strategy `drop`) because its queue was full (CPU pool or
    /// batch queue).
    QueueFull,
    /// The job was shed (strategy `drop`) because the router is shutting down.
    Shutdown,
    /// A queued job was shed (strategy `drop`, a second entry for the job) to let work
    /// with earlier deadlines in the CPU pool's queue finish in time.
    Evicted,
    /// A queued job was shed (strategy `drop`, a second entry for the job) because it
    /// could no longer finish within its budget when its turn came.
    Expired,
}

impl DecisionSource {
    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecisionSource::Heuristic => "heuristic",
            DecisionSource::Neural => "neural",
            DecisionSource::Rerouted => "rerouted",
            DecisionSource::Admission => "admission",
            DecisionSource::QueueFull => "queue_full",
            DecisionSource::Shutdown => "shutdown",
            DecisionSource::Evicted => "evicted",
            DecisionSource::Expired => "expired",
        }
    }
}

impl fmt::Display for DecisionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The record of one routing decision, broadcast to subscribers and kept in a
/// bounded log. It says what happened to the job when it was routed: where it runs, or
/// that it was shed (`strategy` = `drop`) and why (`source`). A job admitted to a queue
/// and shed there later (evicted, or its deadline passed while it waited) gets a second
/// entry, `drop` with source `evicted` or `expired`, so every shed shows in the feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingDecision {
    /// The job's id (or the `WorkHint` id for user work).
    pub job_id: u64,
    /// The built-in kind, or `None` for user closures submitted through `Router::run`.
    pub kind: Option<JobKind>,
    /// The work class (`WorkHint::class`; built-in kinds are classes too), `None` for
    /// work without one.
    #[serde(default)]
    pub class: Option<Cow<'static, str>>,
    /// The strategy the job was routed to.
    pub strategy: Strategy,
    /// Who decided.
    pub source: DecisionSource,
    /// The cost the decision planned with, in nanoseconds: the caller's hint, or the
    /// class's learned cost once measured (0 = unknown).
    pub compute_cost: u64,
    /// Composite pressure in [0, 1] at decision time.
    pub pressure: f64,
    /// CPU pool occupancy (running + queued) at decision time.
    pub cpu_busy: usize,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Position in the decision feed ([`Router::subscribe_decisions`](crate::Router::subscribe_decisions)),
    /// the SSE `id:`; `None` in the log. Decisions made while nobody listened are
    /// counted into it when the next subscriber arrives, so the gap between two feed
    /// positions is (close to) the number of decisions made in between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// A live worker, from its last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The worker's id.
    pub id: String,
    /// Tasks it runs at once.
    pub parallelism: usize,
    /// Tasks running.
    pub running: usize,
    /// Jobs pulled and not yet started.
    pub queued: usize,
    /// Task names it serves.
    pub tasks: Vec<String>,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
}

/// What the router's remote side did (all counts since the router was built), as
/// `RouterStats::remote` reports it (feature `remote`; the types exist without it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemoteStats {
    /// Connected to the NATS server now.
    pub connected: bool,
    /// The subject this router receives results on.
    pub results_subject: String,
    /// Task names registered with the router.
    pub tasks: Vec<String>,
    /// Workers heard from within `worker_timeout`.
    pub workers: Vec<WorkerInfo>,
    /// Remote jobs waiting for their result.
    pub in_flight: usize,
    /// Jobs published (and stored by the stream).
    pub sent: u64,
    /// Jobs that came back with an output.
    pub completed: u64,
    /// Jobs that came back failed (panicked, undecodable, unknown task).
    pub failed: u64,
    /// Jobs a worker received past their deadline and did not run.
    pub expired: u64,
    /// Jobs with no result by their deadline (dropped at the router).
    pub timed_out: u64,
    /// Results for jobs already ended: redeliveries' second results, or results after
    /// the deadline. Ignored; each job completes once.
    pub duplicates: u64,
    /// Messages on the router's subjects that were not valid results or heartbeats.
    pub malformed: u64,
    /// Results whose job had been delivered more than once (a worker died or was slow).
    pub redelivered: u64,
    /// Jobs that could not be published (they ran locally instead).
    pub publish_failed: u64,
    /// Median round-trip overhead (total time minus the worker's run time), µs.
    pub round_trip_p50_us: Option<f64>,
    /// 99th percentile round-trip overhead, µs.
    pub round_trip_p99_us: Option<f64>,
}
