//! Measurement: per-strategy latency windows and histograms, the composite pressure
//! score, and the Prometheus text rendering. Writes on the hot path are relaxed atomics;
//! percentiles and the EMA are computed when read.

mod latency;
mod pressure;
pub mod prometheus;

pub use latency::{BUCKET_BOUNDS_SECS, LatencySummary, LatencyWindow, WINDOW};
pub use pressure::{PressureInputs, PressureSnapshot, PressureTracker};
