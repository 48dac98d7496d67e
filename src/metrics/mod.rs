//! Measurement: per-strategy latency windows and histograms and the composite pressure
//! score. Writes on the hot path are relaxed atomics; percentiles and the EMA are
//! computed when read. No tokio, no I/O.

mod latency;
mod pressure;

pub use latency::LatencySummary;
pub(crate) use latency::LatencyWindow;
#[cfg(feature = "server")]
pub(crate) use latency::{BUCKET_BOUNDS_SECS, WINDOW};
pub use pressure::PressureSnapshot;
pub(crate) use pressure::{PressureInputs, PressureTracker};
