//! The router's pressure score as shared state: the tracker (its EMAs and the external
//! signal) behind a lock, and its score published for lock-free reads on the hot path.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::lock;
use crate::metrics::{PressureInputs, PressureSnapshot, PressureTracker};

/// Written by the pressure ticker and `Router::set_external_pressure`; read by every
/// decision that needs it.
#[derive(Debug)]
pub(crate) struct Pressure {
    tracker: Mutex<PressureTracker>,
    /// The tracker's last score as f64 bits.
    score: AtomicU64,
}

impl Pressure {
    pub(crate) fn new() -> Self {
        Self {
            tracker: Mutex::new(PressureTracker::default()),
            score: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// The last published score, in [0, 1] (lock-free).
    #[inline]
    pub(crate) fn score(&self) -> f64 {
        f64::from_bits(self.score.load(Relaxed))
    }

    /// The last snapshot: the score and its parts.
    pub(crate) fn snapshot(&self) -> PressureSnapshot {
        lock(&self.tracker).last()
    }

    /// Folds one tick of observations in at `now_secs` and publishes the new score.
    pub(crate) fn tick(&self, inputs: PressureInputs, now_secs: f64) {
        let mut p = lock(&self.tracker);
        let snap = p.tick(inputs, now_secs);
        self.score.store(snap.score.to_bits(), Relaxed);
    }

    /// Sets the external signal `value` until `now_secs + ttl_secs` and publishes the
    /// score it gives.
    pub(crate) fn set_external(&self, value: f64, now_secs: f64, ttl_secs: f64) {
        let mut p = lock(&self.tracker);
        p.set_external(value, now_secs, ttl_secs);
        self.score.store(p.last().score.to_bits(), Relaxed);
    }
}
