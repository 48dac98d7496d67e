//! Predictive autoscaler for the CPU pool: an OLS linear trend of the arrival rate
//! over a fixed ring buffer of observations, extrapolated `horizon_secs` ahead, turned
//! into a worker count and a queue capacity.
//!
//! Pure: the caller passes the clock (`at_secs`, `now_secs`) and applies the
//! recommendation; nothing here sleeps, spawns or reads time.
//!
//! # Sizing rule
//!
//! With `demand = max(predicted rate, current trend rate)` (a falling trend never
//! removes capacity the present load still needs) and `service` the
//! arrival-weighted mean service time of one job on one worker:
//!
//! - workers = `ceil(demand × service / target_utilisation)`,
//!   clamped to `[min_parallelism, max_parallelism]`;
//! - queue capacity = `ceil(demand × queue_secs)`, at least the worker count, clamped
//!   to `[min_queue_cap, max_queue_cap]`.
//!
//! A size changes only when the target leaves the hysteresis band around the current
//! size (`|target − current| > hysteresis × current`) and `cooldown_secs` have passed
//! since the last change; a current size outside the bounds is corrected at once.
//! A slope within two standard errors of zero is not extrapolated, so periodic or
//! noisy load is sized at its mean rather than chased; bursts shorter than the
//! window are for the queue and admission control to absorb.
//!
//! Internal: users configure it through `RouterConfig` (`autoscale_*`) and read its
//! [`Recommendation`] in `RouterStats::autoscaler`.

use serde::{Deserialize, Serialize};

use crate::config::autoscale::AutoscaleSizes;

/// Bounds and tuning of an [`Autoscaler`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct AutoscalerConfig {
    /// Ring buffer length (observations kept), at least 2.
    pub(crate) window: usize,
    /// How far ahead the trend is extrapolated, in seconds (finite, `>= 0`).
    pub(crate) horizon_secs: f64,
    /// Fewest workers ever recommended (`>= 1`).
    pub(crate) min_parallelism: usize,
    /// Most workers ever recommended (`>= min_parallelism`).
    pub(crate) max_parallelism: usize,
    /// Smallest queue capacity ever recommended (`>= 1`).
    pub(crate) min_queue_cap: usize,
    /// Largest queue capacity ever recommended (`>= min_queue_cap` and
    /// `>= max_parallelism`, so the queue can always hold one job per worker).
    pub(crate) max_queue_cap: usize,
    /// Seconds after a change before the next one (finite, `>= 0`).
    pub(crate) cooldown_secs: f64,
    /// Share of worker time the sizing aims to keep busy, in `(0, 1]`.
    pub(crate) target_utilisation: f64,
    /// Relative band around the current size inside which nothing changes, in
    /// `[0, 1)`.
    pub(crate) hysteresis: f64,
    /// Seconds of forecast demand the queue should hold (finite, `> 0`).
    pub(crate) queue_secs: f64,
}

impl Default for AutoscalerConfig {
    fn default() -> Self {
        AutoscalerConfig {
            window: 12,
            horizon_secs: 30.0,
            min_parallelism: 1,
            max_parallelism: 64,
            min_queue_cap: 64,
            max_queue_cap: 8192,
            cooldown_secs: 30.0,
            target_utilisation: 0.75,
            hysteresis: 0.15,
            queue_secs: 0.5,
        }
    }
}

/// An [`AutoscalerConfig`] field outside its valid range (tests check that
/// [`AutoscalerConfig::sanitized`] never gives one; the router validates its own config).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum AutoscalerConfigError {
    /// The named field is out of range; `valid` says what would be accepted.
    #[error("autoscaler {field} is {value}, must be {valid}")]
    OutOfRange {
        /// Field name, as in the struct.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// The valid range, in words.
        valid: &'static str,
    },
}

impl AutoscalerConfig {
    /// Checks every field against its documented range.
    ///
    /// # Errors
    ///
    /// [`AutoscalerConfigError::OutOfRange`] naming the first offending field.
    ///
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), AutoscalerConfigError> {
        fn check(
            field: &'static str,
            value: impl ToString,
            ok: bool,
            valid: &'static str,
        ) -> Result<(), AutoscalerConfigError> {
            if ok {
                Ok(())
            } else {
                Err(AutoscalerConfigError::OutOfRange {
                    field,
                    value: value.to_string(),
                    valid,
                })
            }
        }
        let c = self;
        // The size rules are the router config's (`config::autoscale`); the words in
        // `valid` are this type's own.
        let sizes = c.sizes().rules();
        let finite_non_neg = |v: f64| v.is_finite() && v >= 0.0;
        check("window", c.window, sizes.window.holds(), "at least 2")?;
        check(
            "horizon_secs",
            c.horizon_secs,
            finite_non_neg(c.horizon_secs),
            "finite and >= 0",
        )?;
        check(
            "min_parallelism",
            c.min_parallelism,
            sizes.min_parallelism.holds(),
            "at least 1",
        )?;
        check(
            "max_parallelism",
            c.max_parallelism,
            sizes.max_parallelism.holds(),
            ">= min_parallelism",
        )?;
        check(
            "min_queue_cap",
            c.min_queue_cap,
            sizes.min_queue_cap.holds(),
            "at least 1",
        )?;
        check(
            "max_queue_cap",
            c.max_queue_cap,
            sizes.max_queue_cap.holds() && sizes.max_queue_cap_workers.holds(),
            ">= min_queue_cap and >= max_parallelism",
        )?;
        check(
            "cooldown_secs",
            c.cooldown_secs,
            finite_non_neg(c.cooldown_secs),
            "finite and >= 0",
        )?;
        check(
            "target_utilisation",
            c.target_utilisation,
            c.target_utilisation > 0.0 && c.target_utilisation <= 1.0,
            "in (0, 1]",
        )?;
        check(
            "hysteresis",
            c.hysteresis,
            (0.0..1.0).contains(&c.hysteresis),
            "in [0, 1)",
        )?;
        check(
            "queue_secs",
            c.queue_secs,
            c.queue_secs.is_finite() && c.queue_secs > 0.0,
            "finite and > 0",
        )
    }

    /// A copy with every out-of-range field replaced by the nearest valid value (a
    /// non-finite float by its default); an upper bound below its lower bound is
    /// raised to it.
    pub(crate) fn sanitized(&self) -> AutoscalerConfig {
        let d = AutoscalerConfig::default();
        let fix = |v: f64, default: f64, lo: f64, hi: f64| {
            if v.is_finite() {
                v.clamp(lo, hi)
            } else {
                default
            }
        };
        let sizes = self.sizes().sanitized();
        AutoscalerConfig {
            window: sizes.window,
            horizon_secs: fix(self.horizon_secs, d.horizon_secs, 0.0, f64::MAX),
            min_parallelism: sizes.min_parallelism,
            max_parallelism: sizes.max_parallelism,
            min_queue_cap: sizes.min_queue_cap,
            max_queue_cap: sizes.max_queue_cap,
            cooldown_secs: fix(self.cooldown_secs, d.cooldown_secs, 0.0, f64::MAX),
            target_utilisation: fix(self.target_utilisation, d.target_utilisation, 1e-3, 1.0),
            hysteresis: fix(self.hysteresis, d.hysteresis, 0.0, 0.99),
            queue_secs: fix(self.queue_secs, d.queue_secs, 1e-6, f64::MAX),
        }
    }

    /// The pool-size fields, for the rules they share with the router config.
    fn sizes(&self) -> AutoscaleSizes {
        AutoscaleSizes {
            window: self.window,
            min_parallelism: self.min_parallelism,
            max_parallelism: self.max_parallelism,
            min_queue_cap: self.min_queue_cap,
            max_queue_cap: self.max_queue_cap,
        }
    }
}

/// One load sample, typically taken at each autoscale tick.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Observation {
    /// When it was taken, in seconds on any monotonic clock.
    pub(crate) at_secs: f64,
    /// Jobs per second offered to the pool since the previous sample.
    pub(crate) arrival_rate: f64,
    /// Mean time one job kept one worker busy, in seconds.
    pub(crate) mean_service_secs: f64,
}

/// The pool's size: the two knobs the autoscaler turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PoolSize {
    /// Worker threads (CPU pool concurrency).
    pub(crate) parallelism: usize,
    /// Jobs that may wait in the pool's queue.
    pub(crate) queue_cap: usize,
}

/// The fitted trend of the arrival rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Forecast {
    /// Change of the arrival rate per second (jobs/s²) used for the projection: the
    /// OLS slope, or 0 when it is not significant.
    pub slope_per_sec: f64,
    /// Whether the OLS slope stands out of the noise (|slope| ≥ 2 standard errors);
    /// when it does not, the forecast is flat at the window's mean, so periodic or
    /// noisy load is not extrapolated into swings.
    pub trend_significant: bool,
    /// Trend value at `at_secs = 0` (large when the clock is an epoch; prefer
    /// `current_rate`).
    pub intercept: f64,
    /// Trend value at the newest observation, clamped to `>= 0`.
    pub current_rate: f64,
    /// Trend value `horizon_secs` after the newest observation, clamped to `>= 0`.
    pub predicted_rate: f64,
    /// Observations the fit used.
    pub samples: usize,
}

/// What `Autoscaler::recommend` advises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Recommendation {
    /// Workers to run (within the configured bounds).
    pub parallelism: usize,
    /// Queue capacity to allow (within the configured bounds).
    pub queue_cap: usize,
    /// The forecast it is based on, if there was enough data.
    pub forecast: Option<Forecast>,
    /// Whether this differs from the size passed in.
    pub changed: bool,
    /// Why, in words (e.g. `"cooldown 12s left: ..."`).
    pub reason: String,
}

/// OLS trend forecaster and pool sizer over a fixed ring buffer of observations.
#[derive(Debug, Clone)]
pub(crate) struct Autoscaler {
    /// Sanitised configuration.
    cfg: AutoscalerConfig,
    /// Ring buffer; allocated once with `window` slots, never grows past them.
    ring: Vec<Observation>,
    /// Slot `observe` overwrites next once the ring is full.
    next: usize,
    /// `now_secs` of the last recommendation that changed the size.
    last_change_at: Option<f64>,
    /// The last recommendation made.
    last: Option<Recommendation>,
}

impl Autoscaler {
    /// An autoscaler with no observations. Out-of-range config fields are replaced
    /// as by [`AutoscalerConfig::sanitized`].
    pub(crate) fn new(cfg: AutoscalerConfig) -> Autoscaler {
        let cfg = cfg.sanitized();
        Autoscaler {
            cfg,
            ring: Vec::with_capacity(cfg.window),
            next: 0,
            last_change_at: None,
            last: None,
        }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> &AutoscalerConfig {
        &self.cfg
    }

    /// Adds an observation, overwriting the oldest once `window` are held. Returns
    /// `false` (and keeps nothing) when `at_secs` or `arrival_rate` is not finite; a
    /// negative rate counts as 0, a service time that is not a positive finite
    /// number is ignored for sizing.
    pub(crate) fn observe(&mut self, obs: Observation) -> bool {
        if !obs.at_secs.is_finite() || !obs.arrival_rate.is_finite() {
            return false;
        }
        let obs = Observation {
            arrival_rate: obs.arrival_rate.max(0.0),
            ..obs
        };
        if self.ring.len() < self.cfg.window {
            self.ring.push(obs);
        } else {
            self.ring[self.next] = obs;
            self.next = (self.next + 1) % self.cfg.window;
        }
        true
    }

    /// Observations held (at most `window`).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    /// The held observations, oldest first.
    #[cfg(test)]
    pub(crate) fn observations(&self) -> impl Iterator<Item = &Observation> {
        let (newer, older) = self.ring.split_at(self.next);
        older.iter().chain(newer)
    }

    /// The OLS linear trend of `arrival_rate` over `at_secs`, extrapolated
    /// `horizon_secs` past the newest observation; `None` with fewer than two
    /// observations. A slope smaller than two standard errors is treated as 0 (see
    /// [`Forecast::trend_significant`]); with all observations at one instant the
    /// slope is 0.
    pub(crate) fn forecast(&self) -> Option<Forecast> {
        let n = self.ring.len();
        if n < 2 {
            return None;
        }
        let nf = n as f64;
        let mean_t = self.ring.iter().map(|o| o.at_secs).sum::<f64>() / nf;
        let mean_y = self.ring.iter().map(|o| o.arrival_rate).sum::<f64>() / nf;
        let mut sxx = 0.0;
        let mut sxy = 0.0;
        let mut newest = f64::NEG_INFINITY;
        for o in &self.ring {
            let dt = o.at_secs - mean_t;
            sxx += dt * dt;
            sxy += dt * (o.arrival_rate - mean_y);
            newest = newest.max(o.at_secs);
        }
        let fitted = if sxx > 0.0 && (sxy / sxx).is_finite() {
            sxy / sxx
        } else {
            0.0
        };
        // Standard error of the slope from the residuals (n − 2 degrees of freedom).
        let significant = if n > 2 && fitted != 0.0 {
            let ssr: f64 = self
                .ring
                .iter()
                .map(|o| {
                    let r = o.arrival_rate - mean_y - fitted * (o.at_secs - mean_t);
                    r * r
                })
                .sum();
            let se = (ssr / (nf - 2.0) / sxx).sqrt();
            fitted.abs() >= 2.0 * se
        } else {
            fitted != 0.0
        };
        let slope = if significant { fitted } else { 0.0 };
        let at = |t: f64| {
            let v = mean_y + slope * (t - mean_t);
            if v.is_finite() { v.max(0.0) } else { 0.0 }
        };
        Some(Forecast {
            slope_per_sec: slope,
            trend_significant: significant,
            intercept: mean_y - slope * mean_t,
            current_rate: at(newest),
            predicted_rate: at(newest + self.cfg.horizon_secs),
            samples: n,
        })
    }

    /// Arrival-weighted mean service time over the window (plain mean when no job
    /// arrived); `None` when no observation has a positive finite service time.
    fn service_secs(&self) -> Option<f64> {
        let valid = || {
            self.ring
                .iter()
                .filter(|o| o.mean_service_secs.is_finite() && o.mean_service_secs > 0.0)
        };
        let (mut w, mut sw, mut n, mut s) = (0.0, 0.0, 0usize, 0.0);
        for o in valid() {
            w += o.arrival_rate;
            sw += o.arrival_rate * o.mean_service_secs;
            n += 1;
            s += o.mean_service_secs;
        }
        if n == 0 {
            None
        } else if w > 0.0 && (sw / w).is_finite() {
            Some(sw / w)
        } else {
            Some(s / n as f64)
        }
    }

    /// Recommends a pool size for `current` at time `now_secs` and remembers it (see
    /// [`Autoscaler::last_recommendation`]). The result is always within the
    /// configured bounds, with `queue_cap >= parallelism`; a `current` size that is
    /// not (outside the bounds, or a queue smaller than the worker count) is
    /// corrected at once, regardless of band and cooldown.
    pub(crate) fn recommend(&mut self, now_secs: f64, current: PoolSize) -> Recommendation {
        let have = self.within_bounds(current);
        let forecast = self.forecast();
        let (target, why) = self.target(forecast, have, current);
        let (size, reason) = self.next_size(now_secs, current, have, target, why);
        let changed = size != current;
        if changed && now_secs.is_finite() {
            self.last_change_at = Some(now_secs);
        }
        let rec = Recommendation {
            parallelism: size.parallelism,
            queue_cap: size.queue_cap,
            forecast,
            changed,
            reason,
        };
        self.last = Some(rec.clone());
        rec
    }

    /// The nearest size to `current` within the bounds, with `queue_cap >= parallelism`.
    fn within_bounds(&self, current: PoolSize) -> PoolSize {
        let c = &self.cfg;
        let parallelism = current
            .parallelism
            .clamp(c.min_parallelism, c.max_parallelism);
        PoolSize {
            parallelism,
            queue_cap: current
                .queue_cap
                .max(parallelism)
                .clamp(c.min_queue_cap, c.max_queue_cap),
        }
    }

    /// The size the forecast calls for (see the module's sizing rule) and why; `have`
    /// when there is no forecast or no service time yet. The reason quotes `current`.
    fn target(
        &self,
        forecast: Option<Forecast>,
        have: PoolSize,
        current: PoolSize,
    ) -> (PoolSize, String) {
        let c = &self.cfg;
        match (forecast, self.service_secs()) {
            (Some(f), Some(svc)) => {
                let demand = f.predicted_rate.max(f.current_rate);
                let p = ceil_usize(demand * svc / c.target_utilisation)
                    .clamp(c.min_parallelism, c.max_parallelism);
                let q = ceil_usize(demand * c.queue_secs)
                    .max(p)
                    .clamp(c.min_queue_cap, c.max_queue_cap);
                let why = format!(
                    "forecast {:.1}/s in {:.0}s (trend now {:.1}/s, {:.2} ms per job) needs {} workers (have {}) and queue cap {} (have {})",
                    f.predicted_rate,
                    c.horizon_secs,
                    f.current_rate,
                    svc * 1e3,
                    p,
                    current.parallelism,
                    q,
                    current.queue_cap,
                );
                (
                    PoolSize {
                        parallelism: p,
                        queue_cap: q,
                    },
                    why,
                )
            }
            (None, _) => (
                have,
                format!("need 2 observations to forecast (have {})", self.ring.len()),
            ),
            (Some(_), None) => (have, "no service time observed yet".to_owned()),
        }
    }

    /// The size to recommend at `now_secs`, and the reason: `have` (the in-bounds
    /// `current`) while `target` is within the hysteresis band or the cooldown runs,
    /// else `target` on each knob that left the band. An out-of-bounds `current` is
    /// corrected regardless of the cooldown.
    fn next_size(
        &self,
        now_secs: f64,
        current: PoolSize,
        have: PoolSize,
        target: PoolSize,
        why: String,
    ) -> (PoolSize, String) {
        let c = &self.cfg;
        let out_of_bounds = have != current;
        let move_p = self.outside_band(target.parallelism, have.parallelism);
        let move_q = self.outside_band(target.queue_cap, have.queue_cap);
        let cooldown_left = self.cooldown_left(now_secs);
        if out_of_bounds && !(move_p || move_q) {
            (
                have,
                format!("current size outside bounds (or queue below workers); {why}"),
            )
        } else if !(move_p || move_q) {
            (have, format!("within hysteresis band: {why}"))
        } else if cooldown_left > 0.0 && !out_of_bounds {
            (have, format!("cooldown {cooldown_left:.0}s left: {why}"))
        } else {
            let parallelism = if move_p {
                target.parallelism
            } else {
                have.parallelism
            };
            let queue_cap = if move_q {
                target.queue_cap
            } else {
                have.queue_cap
            };
            let size = PoolSize {
                parallelism,
                queue_cap: queue_cap.max(parallelism).min(c.max_queue_cap),
            };
            (size, why)
        }
    }

    /// Whether `want` is outside the hysteresis band around `cur`.
    fn outside_band(&self, want: usize, cur: usize) -> bool {
        let (w, h) = (want as f64, cur as f64);
        w > h * (1.0 + self.cfg.hysteresis) || w < h * (1.0 - self.cfg.hysteresis)
    }

    /// Seconds of cooldown left at `now_secs` (0 or less: none; infinite when
    /// `now_secs` is not finite after a change).
    fn cooldown_left(&self, now_secs: f64) -> f64 {
        match self.last_change_at {
            Some(t) if now_secs.is_finite() => self.cfg.cooldown_secs - (now_secs - t),
            Some(_) => f64::INFINITY,
            None => 0.0,
        }
    }

    /// The last recommendation made, if any.
    pub(crate) fn last_recommendation(&self) -> Option<&Recommendation> {
        self.last.as_ref()
    }
}

/// `ceil(x)` as a `usize`; 0 for NaN or negative, saturating for huge values.
fn ceil_usize(x: f64) -> usize {
    if x.is_nan() || x <= 0.0 {
        0
    } else {
        x.ceil() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn obs(t: f64, rate: f64, svc: f64) -> Observation {
        Observation {
            at_secs: t,
            arrival_rate: rate,
            mean_service_secs: svc,
        }
    }

    fn size(parallelism: usize, queue_cap: usize) -> PoolSize {
        PoolSize {
            parallelism,
            queue_cap,
        }
    }

    #[test]
    fn forecasts_a_noisy_linear_ramp_within_ten_percent() {
        let mut a = Autoscaler::new(AutoscalerConfig::default());
        for i in 0..40 {
            let t = 5.0 * i as f64;
            // ±5% deterministic wiggle around 200 + 4 t.
            let wiggle = 1.0 + 0.05 * (i as f64 * 2.3).sin();
            a.observe(obs(t, (200.0 + 4.0 * t) * wiggle, 0.002));
        }
        let f = a.forecast().unwrap();
        let truth = 200.0 + 4.0 * (195.0 + 30.0);
        assert!(
            (f.predicted_rate - truth).abs() < 0.1 * truth,
            "{f:?} vs {truth}"
        );
        assert!((f.slope_per_sec - 4.0).abs() < 0.4, "{f:?}");
        assert_eq!(f.samples, 12);
    }

    #[test]
    fn no_forecast_before_two_observations() {
        let mut a = Autoscaler::new(AutoscalerConfig::default());
        assert!(a.forecast().is_none());
        let r = a.recommend(0.0, size(4, 512));
        assert!(!r.changed);
        assert!(r.reason.contains("need 2 observations"), "{}", r.reason);
        a.observe(obs(0.0, 10.0, 0.01));
        assert!(a.forecast().is_none());
        a.observe(obs(0.0, 30.0, 0.01));
        let f = a.forecast().unwrap();
        assert_eq!((f.slope_per_sec, f.current_rate), (0.0, 20.0));
    }

    #[test]
    fn scales_up_before_a_ramp_saturates_the_pool() {
        // 4 workers, 10 ms per job: saturated at 400 jobs/s. Load ramps from 100/s
        // by 5/s every second, so saturation comes at t = 60 s. Ticks every 5 s.
        let svc = 0.01;
        let mut a = Autoscaler::new(AutoscalerConfig::default());
        let mut pool = size(4, 512);
        let mut first_up = None;
        for i in 0..=20 {
            let t = 5.0 * i as f64;
            let rate = 100.0 + 5.0 * t;
            a.observe(obs(t, rate, svc));
            let r = a.recommend(t, pool);
            if r.changed && r.parallelism > pool.parallelism && first_up.is_none() {
                first_up = Some((t, rate, r.reason.clone()));
            }
            pool = size(r.parallelism, r.queue_cap);
            assert!(
                rate * svc <= pool.parallelism as f64,
                "saturated at t={t}: {pool:?}"
            );
        }
        // The first tick already shrank the oversized queue, so the cooldown holds
        // the scale-up until t = 35 s: still 25 s before saturation, at 69% load.
        let (t, rate, reason) = first_up.unwrap();
        assert!(
            t < 60.0 && rate * svc < 4.0 * 0.75,
            "scaled up only at t={t} ({rate}/s)"
        );
        assert!(reason.starts_with("forecast"), "{reason}");
    }

    #[test]
    fn scales_down_after_load_falls() {
        let svc = 0.01;
        let mut a = Autoscaler::new(AutoscalerConfig::default());
        let mut pool = size(4, 512);
        for i in 0..20 {
            let t = 10.0 * i as f64;
            a.observe(obs(t, 2_000.0, svc));
            let r = a.recommend(t, pool);
            pool = size(r.parallelism, r.queue_cap);
        }
        assert_eq!(pool.parallelism, 27); // ceil(2000 × 0.01 / 0.75)
        assert_eq!(pool.queue_cap, 1_000);
        // While the trend still says "busy" it holds; once the window is all low
        // load it shrinks.
        let mut shrank_at = None;
        for i in 20..60 {
            let t = 10.0 * i as f64;
            a.observe(obs(t, 100.0, svc));
            let r = a.recommend(t, pool);
            if r.changed && shrank_at.is_none() {
                shrank_at = Some(t);
            }
            pool = size(r.parallelism, r.queue_cap);
        }
        assert!(shrank_at.is_some());
        assert_eq!(pool.parallelism, 2); // ceil(100 × 0.01 / 0.75)
        assert_eq!(pool.queue_cap, 64); // 50 → min_queue_cap
    }

    #[test]
    fn hysteresis_and_cooldown_hold_the_size() {
        let cfg = AutoscalerConfig {
            horizon_secs: 0.0,
            ..AutoscalerConfig::default()
        };
        let mut a = Autoscaler::new(cfg);
        a.observe(obs(0.0, 750.0, 0.01));
        a.observe(obs(1.0, 750.0, 0.01));
        // Needs 10 workers; 9 is within 15%.
        let r = a.recommend(1.0, size(9, 375));
        assert!(
            !r.changed && r.reason.starts_with("within hysteresis band"),
            "{}",
            r.reason
        );
        // 5 is far off: change.
        let r = a.recommend(1.0, size(5, 375));
        assert!(r.changed && r.parallelism == 10, "{r:?}");
        // Load doubles right after: cooldown holds.
        a.observe(obs(2.0, 1_500.0, 0.01));
        a.observe(obs(3.0, 1_500.0, 0.01));
        let r = a.recommend(11.0, size(10, 375));
        assert!(
            !r.changed && r.reason.starts_with("cooldown 20s left"),
            "{}",
            r.reason
        );
        let r = a.recommend(31.0, size(10, 375));
        assert!(r.changed && r.parallelism > 10, "{r:?}");
        assert_eq!(a.last_recommendation(), Some(&r));
    }

    #[test]
    fn out_of_bounds_size_is_corrected_at_once() {
        let mut a = Autoscaler::new(AutoscalerConfig {
            max_parallelism: 8,
            ..AutoscalerConfig::default()
        });
        let r = a.recommend(0.0, size(100, 10));
        assert!(r.changed);
        assert_eq!((r.parallelism, r.queue_cap), (8, 64));
        assert!(
            r.reason.starts_with("current size outside bounds"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn square_wave_shorter_than_cooldown_does_not_flap() {
        // Ticks every 5 s; load alternates 1000/s and 200/s every 10 s (period 20 s,
        // shorter than the 30 s cooldown); 10 ms per job.
        let svc = 0.01;
        let mut a = Autoscaler::new(AutoscalerConfig::default());
        let mut pool = size(2, 256);
        let (mut changes, mut naive_changes, mut naive_last) = (0, 0, 0);
        for i in 0..240 {
            let t = 5.0 * i as f64;
            let rate = if ((t / 10.0) as u64).is_multiple_of(2) {
                1_000.0
            } else {
                200.0
            };
            a.observe(obs(t, rate, svc));
            let r = a.recommend(t, pool);
            changes += usize::from(r.changed);
            pool = size(r.parallelism, r.queue_cap);
            // A sizer without trend, band or cooldown follows every swing.
            let naive = ceil_usize(rate * svc / 0.75);
            naive_changes += usize::from(naive != naive_last);
            naive_last = naive;
        }
        assert!(changes <= 3, "{changes} changes in 20 minutes");
        assert!(naive_changes > 100);
        assert!((8..=14).contains(&pool.parallelism), "{pool:?}");
    }

    #[test]
    fn ring_buffer_stays_bounded() {
        let mut a = Autoscaler::new(AutoscalerConfig {
            window: 5,
            ..AutoscalerConfig::default()
        });
        let cap = a.ring.capacity();
        for i in 0..10_000 {
            assert!(a.observe(obs(i as f64, i as f64, 0.001)));
            assert!(a.len() <= 5);
        }
        assert_eq!(a.len(), 5);
        assert_eq!(a.ring.capacity(), cap);
        let times: Vec<f64> = a.observations().map(|o| o.at_secs).collect();
        assert_eq!(times, vec![9_995.0, 9_996.0, 9_997.0, 9_998.0, 9_999.0]);
        assert!(!a.observe(obs(f64::NAN, 1.0, 0.001)));
        assert!(!a.observe(obs(1.0, f64::INFINITY, 0.001)));
        assert_eq!(a.len(), 5);
    }

    #[test]
    fn validation_names_the_field() {
        assert!(AutoscalerConfig::default().validate().is_ok());
        let bad = AutoscalerConfig {
            max_queue_cap: 4,
            max_parallelism: 8,
            min_queue_cap: 1,
            ..AutoscalerConfig::default()
        };
        let msg = bad.validate().unwrap_err().to_string();
        assert_eq!(
            msg,
            "autoscaler max_queue_cap is 4, must be >= min_queue_cap and >= max_parallelism"
        );
        assert!(bad.sanitized().validate().is_ok());
        let nan = AutoscalerConfig {
            target_utilisation: f64::NAN,
            ..AutoscalerConfig::default()
        };
        assert!(nan.validate().is_err());
        assert!(nan.sanitized().validate().is_ok());
    }

    #[test]
    fn validation_words_the_shared_window_bound() {
        use crate::config::autoscale::MIN_WINDOW;
        let short = AutoscalerConfig {
            window: MIN_WINDOW - 1,
            ..AutoscalerConfig::default()
        };
        assert_eq!(
            short.validate().unwrap_err().to_string(),
            format!(
                "autoscaler window is {}, must be at least {MIN_WINDOW}",
                MIN_WINDOW - 1
            )
        );
        assert_eq!(short.sanitized().window, MIN_WINDOW);
    }

    fn arb_config() -> impl Strategy<Value = AutoscalerConfig> {
        (
            0usize..20,
            -10.0f64..120.0,
            (0usize..8, 0usize..40),
            (0usize..64, 0usize..4_000),
            -5.0f64..60.0,
            -0.5f64..1.5,
            -0.5f64..1.5,
            -1.0f64..3.0,
        )
            .prop_map(
                |(window, horizon, (min_p, max_p), (min_q, max_q), cd, tu, hy, qs)| {
                    AutoscalerConfig {
                        window,
                        horizon_secs: horizon,
                        min_parallelism: min_p,
                        max_parallelism: max_p,
                        min_queue_cap: min_q,
                        max_queue_cap: max_q,
                        cooldown_secs: cd,
                        target_utilisation: tu,
                        hysteresis: hy,
                        queue_secs: qs,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn recommendations_stay_within_bounds(
            cfg in arb_config(),
            series in prop::collection::vec(
                (0.0f64..30.0, prop_oneof![0.0f64..1e6, Just(f64::NAN), Just(-5.0)], prop_oneof![0.0f64..2.0, Just(f64::INFINITY)]),
                0..60,
            ),
            start in (0usize..200, 0usize..10_000),
        ) {
            let mut a = Autoscaler::new(cfg);
            let c = *a.config();
            prop_assert!(c.validate().is_ok());
            let mut pool = size(start.0, start.1);
            let mut t = 0.0;
            for (dt, rate, svc) in series {
                t += dt;
                a.observe(obs(t, rate, svc));
                prop_assert!(a.len() <= c.window);
                let r = a.recommend(t, pool);
                prop_assert!((c.min_parallelism..=c.max_parallelism).contains(&r.parallelism), "{:?} {:?}", c, r);
                prop_assert!((c.min_queue_cap..=c.max_queue_cap).contains(&r.queue_cap), "{:?} {:?}", c, r);
                prop_assert!(r.queue_cap >= r.parallelism, "{:?} {:?}", c, r);
                if let Some(f) = r.forecast {
                    prop_assert!(f.predicted_rate >= 0.0 && f.predicted_rate.is_finite());
                    prop_assert!(f.current_rate >= 0.0 && f.slope_per_sec.is_finite());
                }
                pool = size(r.parallelism, r.queue_cap);
            }
        }
    }

    /// A load ramp is extrapolated and sized (the module docs' sizing rule).
    #[test]
    fn a_ramp_is_forecast_and_sized() {
        let mut a = Autoscaler::new(AutoscalerConfig::default());
        for t in 0..12 {
            // Load ramps by 20 jobs/s every second; each job takes 10 ms of one worker.
            let rate = 100.0 + 20.0 * t as f64;
            a.observe(Observation {
                at_secs: t as f64,
                arrival_rate: rate,
                mean_service_secs: 0.01,
            });
        }
        let f = a.forecast().expect("a forecast");
        assert!((f.predicted_rate - 920.0).abs() < 1e-6); // 100 + 20 × (11 + 30)
        let r = a.recommend(
            11.0,
            PoolSize {
                parallelism: 2,
                queue_cap: 256,
            },
        );
        assert!(r.changed && r.parallelism == 13); // ceil(920 × 0.01 / 0.75)
    }
}
