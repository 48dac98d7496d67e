//! The composite pressure score in [0, 1]: worker saturation, queue fill, drop-rate
//! EMA and late-completion EMA, blended with an expiring external signal. Pure math: the
//! router's ticker feeds it counter deltas and the clock.

use serde::{Deserialize, Serialize};

/// Weights of the components; they sum to 1.
const W_SATURATION: f64 = 0.30;
const W_QUEUE: f64 = 0.25;
const W_DROPS: f64 = 0.25;
const W_LATE: f64 = 0.20;
/// Time constant (s) of the drop-rate and lateness EMAs: the score falls by about
/// 63% per second once load stops.
const TAU_SECS: f64 = 1.0;

/// What the ticker observed since its previous tick.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PressureInputs {
    /// Busy CPU-pool workers / parallelism, in [0, 1].
    pub(crate) saturation: f64,
    /// Queued CPU-pool jobs / queue cap, in [0, 1].
    pub(crate) queue_fill: f64,
    /// Jobs submitted since the last tick.
    pub(crate) submitted: u64,
    /// Jobs dropped since the last tick.
    pub(crate) dropped: u64,
    /// Jobs completed since the last tick.
    pub(crate) completed: u64,
    /// Completed jobs that finished over their latency budget since the last tick.
    pub(crate) late: u64,
    /// Seconds since the last tick.
    pub(crate) dt_secs: f64,
}

/// The score and its parts, as shown by the stats API and the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PressureSnapshot {
    /// `max(internal, external)` when the external signal is in force, else `internal`.
    pub score: f64,
    /// The router's own composite score.
    pub internal: f64,
    /// Worker saturation component.
    pub saturation: f64,
    /// Queue fill component.
    pub queue_fill: f64,
    /// Drop-rate EMA component.
    pub drop_rate: f64,
    /// Late-completion EMA component.
    pub late_rate: f64,
    /// External signal, when in force.
    pub external: Option<f64>,
}

/// Tracks the EMAs between ticks and the external signal with its expiry.
#[derive(Debug, Clone, Default)]
pub(crate) struct PressureTracker {
    drop_ema: f64,
    late_ema: f64,
    external: Option<(f64, f64)>, // (value, expires_at_secs)
    last: PressureSnapshot,
}

impl PressureTracker {
    /// Folds one tick of observations in at time `now_secs` and returns the new snapshot.
    pub(crate) fn tick(&mut self, inp: PressureInputs, now_secs: f64) -> PressureSnapshot {
        let alpha = 1.0 - (-inp.dt_secs.max(0.0) / TAU_SECS).exp();
        let drop_rate = if inp.submitted > 0 {
            (inp.dropped as f64 / inp.submitted as f64).min(1.0)
        } else {
            0.0
        };
        let late_rate = if inp.completed > 0 {
            (inp.late as f64 / inp.completed as f64).min(1.0)
        } else {
            0.0
        };
        self.drop_ema += alpha * (drop_rate - self.drop_ema);
        self.late_ema += alpha * (late_rate - self.late_ema);
        // Snap tiny residues to zero so an idle router reads exactly 0.
        if self.drop_ema < 1e-4 {
            self.drop_ema = 0.0;
        }
        if self.late_ema < 1e-4 {
            self.late_ema = 0.0;
        }
        let saturation = clamp01(inp.saturation);
        let queue_fill = clamp01(inp.queue_fill);
        let internal = clamp01(
            W_SATURATION * saturation
                + W_QUEUE * queue_fill
                + W_DROPS * self.drop_ema
                + W_LATE * self.late_ema,
        );
        if matches!(self.external, Some((_, until)) if now_secs >= until) {
            self.external = None;
        }
        let external = self.external.map(|(v, _)| v);
        self.last = PressureSnapshot {
            score: external.map_or(internal, |e| internal.max(e)),
            internal,
            saturation,
            queue_fill,
            drop_rate: self.drop_ema,
            late_rate: self.late_ema,
            external,
        };
        self.last
    }

    /// Sets the external signal (clamped to [0, 1]) until `now_secs + ttl_secs`.
    pub(crate) fn set_external(&mut self, value: f64, now_secs: f64, ttl_secs: f64) {
        let v = clamp01(value);
        self.external = Some((v, now_secs + ttl_secs));
        self.last.external = Some(v);
        self.last.score = self.last.internal.max(v);
    }

    /// The last snapshot.
    pub(crate) fn last(&self) -> PressureSnapshot {
        self.last
    }
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded() -> PressureInputs {
        PressureInputs {
            saturation: 1.0,
            queue_fill: 0.8,
            submitted: 1000,
            dropped: 400,
            completed: 600,
            late: 300,
            dt_secs: 0.1,
        }
    }

    #[test]
    fn pressure_decays_when_idle() {
        let mut p = PressureTracker::default();
        let mut t = 0.0;
        for _ in 0..50 {
            t += 0.1;
            p.tick(loaded(), t);
        }
        let high = p.last().internal;
        // Converges toward 0.3·1 + 0.25·0.8 + 0.25·0.4 + 0.2·0.5 = 0.7.
        assert!(high > 0.65, "{high}");
        let idle = PressureInputs {
            dt_secs: 0.1,
            ..Default::default()
        };
        let mut prev = high;
        for _ in 0..100 {
            t += 0.1;
            let s = p.tick(idle, t).internal;
            assert!(s <= prev);
            prev = s;
        }
        assert_eq!(prev, 0.0);
    }

    #[test]
    fn external_blends_as_max_and_expires() {
        let mut p = PressureTracker::default();
        p.set_external(0.9, 0.0, 5.0);
        assert_eq!(
            p.tick(
                PressureInputs {
                    dt_secs: 0.1,
                    ..Default::default()
                },
                1.0
            )
            .score,
            0.9
        );
        let s = p.tick(
            PressureInputs {
                dt_secs: 0.1,
                ..Default::default()
            },
            5.0,
        );
        assert_eq!(s.external, None);
        assert_eq!(s.score, 0.0);
    }

    #[test]
    fn score_is_within_unit_interval() {
        let mut p = PressureTracker::default();
        let s = p.tick(
            PressureInputs {
                saturation: 7.0,
                queue_fill: f64::NAN,
                submitted: 1,
                dropped: 9,
                completed: 1,
                late: 5,
                dt_secs: 100.0,
            },
            0.0,
        );
        assert!((0.0..=1.0).contains(&s.score), "{s:?}");
    }

    #[test]
    fn tracker_rises_under_load_and_decays_when_idle() {
        let mut p = PressureTracker::default();
        let busy = PressureInputs {
            saturation: 1.0,
            queue_fill: 1.0,
            submitted: 100,
            dropped: 50,
            dt_secs: 1.0,
            ..Default::default()
        };
        assert!(p.tick(busy, 0.0).internal > 0.6);
        let idle = PressureInputs {
            dt_secs: 5.0,
            ..Default::default()
        };
        assert!(p.tick(idle, 5.0).internal < 0.01);
    }
}
