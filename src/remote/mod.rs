//! Remote workers over NATS JetStream (feature `remote`): heavy work that may leave
//! the process, sent to worker processes on other machines (or cores) when that is
//! the faster way to finish it within budget.
//!
//! Work that can cross a process boundary is a [`RemoteTask`]: named and serialisable
//! (closures stay local). A router built with [`RouterBuilder::remote`] and
//! [`RouterBuilder::register`] runs such tasks with [`Router::run_task`]: locally
//! (inline, spawn, pool, batch) exactly like [`Router::run`] when that is best, or on a
//! remote [`Worker`] when a worker has capacity and the estimated remote finish fits the
//! budget while the local one does not (or local pressure is high). With no worker or no
//! connection, remote is simply unavailable and nothing waits on a dead link.
//!
//! JetStream does the queueing: a work-queue stream (`protocol::STREAM`), one durable
//! pull consumer per task name shared by every worker, explicit acks, in-progress acks
//! for long tasks, bounded redelivery. Delivery is at-least-once; the router accepts one
//! result per job and counts duplicates. See the README's remote section for the JetStream traps this
//! design avoids.
//!
//! # Wire format
//!
//! For a worker written in another language (the names are checked by
//! `tests/remote.rs`, which plays such a worker):
//!
//! - A job is a JetStream message on `helix.jobs.<TASK NAME>` in the work-queue stream
//!   `HELIX_JOBS`, pulled through the durable consumer `helix-task-<TASK NAME>`; body =
//!   the task as JSON; headers `Helix-Job` (the router's id for it, decimal),
//!   `Helix-Reply` (the subject the result goes to) and `Helix-Deadline-Ms` (Unix ms
//!   after which running it is pointless).
//! - A result is a core NATS message on that reply subject (`helix.results.<ROUTER
//!   ID>`); body = the output as JSON; headers `Helix-Job`, `Helix-Status` (`ok`,
//!   `expired`, `panicked`, `unknown_task`, `bad_payload`), `Helix-Run-Ns` (the run
//!   time on the worker) and `Helix-Delivered` (JetStream's delivery count, 1 = first).
//! - A heartbeat is a core NATS message on `helix.workers.heartbeat`, body
//!   `{"worker": id, "parallelism": n, "running": n, "queued": n, "tasks": [names]}`, at
//!   most 16 KiB. Task names are 1–64 of `[A-Za-z0-9_-]`.
//!
//! # Examples
//!
//! ```no_run
//! use helixrouter::remote::{RemoteConfig, RemoteTask, Worker, WorkerConfig};
//! use helixrouter::{Router, RouterConfig, WorkHint};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Spin { iters: u64 }
//!
//! impl RemoteTask for Spin {
//!     const NAME: &'static str = "spin";
//!     type Output = u64;
//!     fn run(self) -> u64 { (0..self.iters).fold(0, |a, x| a ^ x.rotate_left(5)) }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // A worker process:
//! let worker = Worker::builder(WorkerConfig::nats("nats://127.0.0.1:4222"))
//!     .register::<Spin>()
//!     .build()
//!     .await?;
//! tokio::spawn(worker.run());
//! // The router:
//! let router = Router::builder(RouterConfig::default())
//!     .remote(RemoteConfig::nats("nats://127.0.0.1:4222"))
//!     .register::<Spin>()
//!     .build()
//!     .await?;
//! let out = router.run_task(WorkHint::new(1, 50_000_000).budget_ms(500), Spin { iters: 1 << 26 }).await;
//! # let _ = out; Ok(()) }
//! ```
//!
//! [`Router::run`]: crate::Router::run
//! [`Router::run_task`]: crate::Router::run_task
//! [`RouterBuilder::remote`]: crate::router::RouterBuilder::remote
//! [`RouterBuilder::register`]: crate::router::RouterBuilder::register

mod client;
mod config;
mod demo;
pub(crate) mod protocol;
mod worker;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::types::{RemoteStats, WorkerInfo};
pub(crate) use client::{Remote, RemoteOutcome};
pub use config::{NatsAuth, NatsConfig, RemoteConfig, WorkerConfig};
pub use demo::DemoJob;
pub use protocol::BadTaskName;
pub use worker::{Worker, WorkerBuilder};

/// Work that may run in another process: named, serialisable both ways.
///
/// `NAME` identifies the task on the wire (a NATS subject token: 1..=64 of
/// `[A-Za-z0-9_-]`); routers and workers must agree on it and on the serde format.
/// It is also the task's work class, so the router learns its cost.
pub trait RemoteTask: Serialize + DeserializeOwned + Send + 'static {
    /// The task's wire name and work class.
    const NAME: &'static str;
    /// What running it produces.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Runs the task (on a router's local path or on a worker's pool thread).
    fn run(self) -> Self::Output;
}

/// Why the remote side could not be set up or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// Could not connect to the NATS server at `url`.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server URL.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// The credentials file could not be read.
    #[error("cannot read NATS credentials file {path}: {source}")]
    Credentials {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// JetStream refused to create or open the stream or a consumer.
    #[error("jetstream setup failed ({what}): {reason}")]
    Setup {
        /// What was being set up.
        what: String,
        /// What the server said.
        reason: String,
    },
    /// A task name is not usable on the wire.
    #[error(transparent)]
    BadTaskName(#[from] protocol::BadTaskName),
    /// A value of the configuration is out of range (the field is named).
    #[error("invalid remote config: {field} {rule}")]
    Config {
        /// The field.
        field: &'static str,
        /// What would be valid.
        rule: &'static str,
    },
}

/// A registered task, type-erased: decode the JSON body, run, encode the output.
pub(crate) type TaskFn =
    std::sync::Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, TaskFailure> + Send + Sync>;

/// Why a registered task produced no output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskFailure {
    /// The body did not decode as the task.
    BadPayload,
    /// The task panicked.
    Panicked,
}

/// The type-erased runner of `T`.
pub(crate) fn task_fn<T: RemoteTask>() -> TaskFn {
    std::sync::Arc::new(|body: &[u8]| {
        let task: T = serde_json::from_slice(body).map_err(|_| TaskFailure::BadPayload)?;
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run()))
            .map_err(|_| TaskFailure::Panicked)?;
        serde_json::to_vec(&out).map_err(|_| TaskFailure::Panicked)
    })
}

/// Unix milliseconds now.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
