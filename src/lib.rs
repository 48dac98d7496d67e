//! # HelixRouter
//!
//! Adaptive async compute routing for Tokio: per unit of work, decide in nanoseconds
//! whether it runs inline, spawned, on a bounded CPU pool, batched with others, or is
//! shed — learn from outcomes, forecast load, and show all of it live.
//!
//! ```
//! use helixrouter::{Rejected, Router, RouterConfig, WorkHint};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let router = Router::new(RouterConfig::default());
//! // ~250 µs of CPU with a 50 ms budget: the router picks where it runs.
//! let hint = WorkHint::new(1, 250_000).budget_ms(50);
//! match router.run(hint, || (0..10_000u64).map(|x| x * x % 7).sum::<u64>()).await {
//!     Ok(v) => assert!(v > 0),
//!     Err(Rejected::Panicked) => unreachable!("the work does not panic"),
//!     Err(shed) => eprintln!("shed: {shed}"),
//! }
//! router.shutdown().await;
//! # }
//! ```
//!
//! # Layers
//!
//! - Pure core (no tokio, no I/O): [`types`], [`config`], `policy` (where a decision
//!   comes from), [`neural_router`], `autoscaler`, `metrics`, [`strategies`],
//!   [`simulator`].
//! - Runtime shell: [`router`] — the [`Router`] handle, its CPU pool, batches, ticks and
//!   file reload. The decision for each job is made in one place, the pure
//!   `policy::decide`, on a view of the router that `router/route.rs` gives it.
//! - HTTP edge, feature `server`: [`web`] — axum routes, SSE, Prometheus text, the
//!   embedded dashboard.
//! - The `helixrouter` binary, feature `cli`.
//!
//! With `default-features = false` only the pure core and the runtime shell are built.
//! The README has the architecture sketch and the module map.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod autoscaler;
pub mod config;
mod metrics;
pub mod neural_router;
mod policy;
#[cfg(feature = "remote")]
pub mod remote;
pub mod router;
pub mod simulator;
pub mod strategies;
mod sync;
#[cfg(feature = "tower")]
pub mod tower;
pub mod types;
#[cfg(feature = "server")]
pub mod web;

pub use config::{ConfigError, RouterConfig, RouterConfigPatch};
pub use policy::choose_strategy;
pub use router::{ClassStats, OVERFLOW_CLASS, Rejected, Router, RouterStats, WorkHint};
pub use types::{DecisionSource, Job, JobKind, Output, RoutingDecision, Strategy};

/// The README's code blocks, compiled and run as doc tests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
