//! The remote side's figures, as `RouterStats::remote` reports them.

use serde::{Deserialize, Serialize};

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

/// What the router's remote side did (all counts since the router was built).
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
