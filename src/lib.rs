//! # HelixRouter
//!
//! Adaptive async compute routing for Tokio: per unit of work, decide in nanoseconds
//! whether it runs inline, spawned, on a bounded CPU pool, batched with others, or is
//! shed — learn from outcomes, forecast load, and show all of it live.
//!
//! See the README for the architecture and the module map.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod autoscaler;
pub mod config;
pub mod metrics;
pub mod neural_router;
pub mod router;
pub mod simulator;
pub mod strategies;
pub mod types;
pub mod web;
