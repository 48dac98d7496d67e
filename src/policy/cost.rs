//! Learned cost of a work class: robust running estimates of how long its work runs,
//! and how they turn each job's own facts into the cost it is routed on. Pure: values
//! in, values out; the router keeps the state in atomics per class (and one small
//! mutex for the units fit, taken only when a sampled run is folded in).
//!
//! # Design
//!
//! A class may hold work of very different sizes (one route serving 1 KiB and 2 MiB
//! bodies), so what a caller knows *per job* must survive learning. Each class learns
//! three models side by side, and each job is routed on the one its facts allow:
//!
//! | the job gives | model | routed on | learned from each measured run |
//! |---|---|---|---|
//! | a cost hint (`WorkHint::new(id, ns)`, `.cost_ns(ns)`) | [`CostModel::Ratio`] | `hint × 2^r` | `r` ≈ mean of `log2(measured / hint)` |
//! | a size (`WorkHint::units(n)`) and no cost | [`CostModel::Units`] | `a + b·units` | a relative-error least-squares fit ([`UnitsFit`]) |
//! | neither | [`CostModel::Class`] | `2^mean` | `mean` ≈ mean of `log2(measured)` |
//!
//! All three use the same robust running estimator in log space ([`CostState`]):
//!
//! - `mean` is an exponentially weighted mean (of `log2(ns)`, or of the log ratio). Its
//!   weight is `1/n` for the first samples (so it starts at the first measurement and
//!   averages the first few exactly), then [`ALPHA`].
//! - `dev` is the same kind of average of `|x - mean|` (a mean absolute deviation, in
//!   doublings).
//! - Each deviation is clamped to `max(3 dev, 1)` before it moves either: one sample
//!   100× off moves the estimate by at most a few percent, while a real shift moves it
//!   steadily (and widens `dev`, which speeds the move up).
//!
//! Admission plans with the model's *residual* spread, how far jobs fall from their own
//! prediction: `prediction × 2^(1.6 dev)`, about the 90th percentile for a log-normal
//! spread. A flat hint (the same for every job) makes the ratio model's prediction the
//! class's typical cost and its residual spread the class's spread, which is what the
//! class model would say; an exact per-job hint keeps each job's own cost with a
//! residual spread near zero.
//!
//! The hint's correction is phased in: the learned log ratio's weight grows linearly
//! from zero to one over the first [`TRUST_SAMPLES`] runs, so an unmeasured class
//! routes on the hint as given. A class model without any hint is used as soon as one
//! run was measured; a units fit once [`UNITS_TRUST_SAMPLES`] runs were folded in.

/// Weight of a new sample once past the first `1 / ALPHA` samples.
pub(crate) const ALPHA: f32 = 0.1;
/// Samples after which a learned ratio has its full weight over the hint.
pub(crate) const TRUST_SAMPLES: u64 = 16;
/// Samples after which a units fit is used to route work that gives no cost hint.
pub(crate) const UNITS_TRUST_SAMPLES: u64 = 8;
/// A hint off from the measurement by more than this factor is flagged as a mismatch.
pub(crate) const MISMATCH_FACTOR: f64 = 3.0;
/// `dev` given to the first sample (doublings): an unknown spread is assumed moderate.
const FIRST_DEV: f32 = 0.5;
/// Smallest clamp of a deviation, in doublings.
const MIN_CLAMP: f32 = 1.0;
/// The admission quantile is `2^(mean + HIGH_DEVS × dev)`.
const HIGH_DEVS: f32 = 1.6;
/// Weight of a new sample in the units fit once past its first `1 / UNITS_ALPHA`
/// samples: the fit has two unknowns, so it averages over a longer window.
const UNITS_ALPHA: f64 = 0.02;

/// Which model a class's estimate for a job comes from (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostModel {
    /// The caller's per-job hint times the class's learned ratio (measured ÷ hinted).
    Ratio,
    /// A fixed part plus a cost per unit of the job's size (`WorkHint::units`).
    Units,
    /// The class's own typical cost (no per-job fact).
    Class,
}

impl CostModel {
    /// The snake_case name (as in JSON and in Prometheus labels).
    pub const fn as_str(self) -> &'static str {
        match self {
            CostModel::Ratio => "ratio",
            CostModel::Units => "units",
            CostModel::Class => "class",
        }
    }
}

/// The packed estimator state: `mean` (f32 bits) in the high half, `dev` in the low
/// half; [`CostState::EMPTY`] before the first sample. `mean` is in doublings: of
/// nanoseconds for a cost, of the measured ÷ hinted factor for a ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CostState(pub(crate) u64);

impl CostState {
    /// No sample yet.
    pub(crate) const EMPTY: CostState = CostState(u64::MAX);

    fn pack(mean: f32, dev: f32) -> CostState {
        CostState(u64::from(mean.to_bits()) << 32 | u64::from(dev.to_bits()))
    }

    /// `(mean, dev)` in doublings, `None` before the first sample.
    pub(crate) fn parts(self) -> Option<(f32, f32)> {
        if self == Self::EMPTY {
            return None;
        }
        let mean = f32::from_bits((self.0 >> 32) as u32);
        let dev = f32::from_bits(self.0 as u32);
        Some((mean, dev))
    }

    /// The state after one more measured run of `ns` nanoseconds, `n` being the number
    /// of samples already folded in.
    #[must_use]
    pub(crate) fn update(self, ns: u64, n: u64) -> CostState {
        self.update_log2(log2_ns(ns), n)
    }

    /// The state after one more sample `x` (in doublings), `n` being the number of
    /// samples already folded in. A non-finite `x` is ignored.
    #[must_use]
    pub(crate) fn update_log2(self, x: f32, n: u64) -> CostState {
        if !x.is_finite() {
            return self;
        }
        let Some((mean, dev)) = self.parts() else {
            return Self::pack(x, FIRST_DEV);
        };
        let alpha = (1.0 / (n as f32 + 1.0)).max(ALPHA);
        let clamp = (3.0 * dev).max(MIN_CLAMP);
        let d = (x - mean).clamp(-clamp, clamp);
        let mean = mean + alpha * d;
        let dev = dev + alpha * (d.abs() - dev);
        Self::pack(mean, dev.max(0.0))
    }

    /// The typical run time (`2^mean`), `None` before the first sample.
    pub(crate) fn typical_ns(self) -> Option<u64> {
        self.parts().map(|(m, _)| exp2_ns(m))
    }

    /// About the 90th percentile of the run time, `None` before the first sample.
    pub(crate) fn high_ns(self) -> Option<u64> {
        self.parts().map(|(m, d)| exp2_ns(m + HIGH_DEVS * d))
    }

    /// The multiplicative spread `2^dev` (1.0 = every run the same).
    pub(crate) fn spread(self) -> Option<f64> {
        self.parts().map(|(_, d)| f64::from(d).exp2())
    }
}

/// The ratio model's factors for `state` after `samples` runs: `(policy, admit)`, what
/// a hint is multiplied by to route on and to plan admission with. The learned log
/// ratio is phased in over [`TRUST_SAMPLES`]; `(1, 1)` before the first sample.
pub(crate) fn ratio_factors(state: CostState, samples: u64) -> (f64, f64) {
    let Some((mean, dev)) = state.parts() else {
        return (1.0, 1.0);
    };
    let w = (samples as f32 / TRUST_SAMPLES as f32).min(1.0);
    (
        f64::from((w * mean).exp2()),
        f64::from((w * (mean + HIGH_DEVS * dev)).exp2()),
    )
}

/// `log2(measured / hinted)`, the ratio model's sample.
#[cfg(test)]
fn log_ratio(measured_ns: u64, hint_ns: u64) -> f32 {
    log2_ns(measured_ns) - log2_ns(hint_ns)
}

/// `ns × factor` rounded, saturating, at least 1 for a non-zero `ns`.
#[inline]
pub(crate) fn scale_ns(ns: u64, factor: f64) -> u64 {
    let v = ns as f64 * factor;
    if v.is_finite() && v >= 1.0 {
        v.min(u64::MAX as f64 / 2.0) as u64
    } else {
        u64::from(ns != 0)
    }
}

/// A robust online fit of `cost ≈ fixed + per_unit × units` for work that gives its
/// size ([`CostModel::Units`]).
///
/// Exponentially weighted least squares on `(units, ns)`, each sample weighted by
/// `1 / prediction²`, so the fit minimises *relative* error: with sizes spanning
/// decades, the small jobs (where the fixed part shows) count as much as the large ones
/// (where the per-unit cost shows). Robust like [`CostState`]: a sample further than
/// `max(3 dev, 1)` doublings from the prediction is pulled back to that distance before
/// it is folded in, so a burst of outliers moves the fit by a bounded step per sample.
/// Both parts are kept non-negative: a negative fixed part refits through the origin, a
/// negative per-unit cost refits as a constant. While every size seen is the same the
/// fit is proportional (fixed part 0).
///
/// Its residual, `log2(measured / predicted)`, is tracked by a [`CostState`]: its mean
/// corrects a systematic bias, its `dev` is the residual spread admission plans with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct UnitsFit {
    /// Exponentially weighted sums of `w`, `w·u`, `w·y`, `w·u²`, `w·u·y`.
    sums: [f64; 5],
    /// Residual `log2(measured / predicted)` as a robust running estimate.
    resid: CostState,
    /// Samples folded in.
    n: u64,
}

impl Default for UnitsFit {
    fn default() -> Self {
        Self {
            sums: [0.0; 5],
            resid: CostState::EMPTY,
            n: 0,
        }
    }
}

impl UnitsFit {
    /// Samples folded in.
    pub(crate) fn samples(&self) -> u64 {
        self.n
    }

    /// Folds in one measured run of `ns` nanoseconds of a job of `units`.
    pub(crate) fn update(&mut self, units: u64, ns: u64) {
        let u = units as f64;
        let y = ns.max(1) as f64;
        let (y, p) = match self.predict_raw(u) {
            Some(p) if p >= 1.0 => {
                let r = (y / p).log2() as f32;
                let dev = self.resid.parts().map_or(FIRST_DEV, |(_, d)| d);
                let clamp = (3.0 * dev).max(MIN_CLAMP);
                self.resid = self.resid.update_log2(r, self.n);
                (p * f64::from(r.clamp(-clamp, clamp)).exp2(), p)
            }
            _ => (y, y),
        };
        let w = 1.0 / (p * p);
        let alpha = (1.0 / (self.n as f64 + 1.0)).max(UNITS_ALPHA);
        for (s, x) in self
            .sums
            .iter_mut()
            .zip([w, w * u, w * y, w * u * u, w * u * y])
        {
            *s += alpha * (x - *s);
        }
        self.n += 1;
    }

    /// `(fixed ns, ns per unit)`, `None` before the first sample.
    pub(crate) fn parts(&self) -> Option<(f64, f64)> {
        let [sw, su, sy, suu, suy] = self.sums;
        if self.n == 0 || sw.is_nan() || sw <= 0.0 {
            return None;
        }
        let constant = (sy / sw, 0.0);
        let proportional = if suu > 0.0 {
            (0.0, suy / suu)
        } else {
            constant
        };
        let det = sw * suu - su * su;
        if det.is_nan() || det <= 1e-9 * sw * suu {
            // Every size the same (or all zero): no way to split the two parts.
            return Some(proportional);
        }
        let b = (sw * suy - su * sy) / det;
        let a = (sy - b * su) / sw;
        Some(if a < 0.0 {
            proportional
        } else if b < 0.0 {
            constant
        } else {
            (a, b)
        })
    }

    fn predict_raw(&self, units: f64) -> Option<f64> {
        self.parts().map(|(a, b)| a + b * units)
    }

    /// The residual estimator (`log2(measured / predicted)`).
    pub(crate) fn residual(&self) -> CostState {
        self.resid
    }

    /// `(policy ns, admit ns)` for a job of `units`: the fit's prediction corrected by
    /// the residual's mean, and that times the residual spread's high quantile. `None`
    /// before the first sample.
    pub(crate) fn estimate(&self, units: u64) -> Option<(u64, u64)> {
        let (a, b) = self.parts()?;
        let (policy, admit) = ratio_factors(self.resid, TRUST_SAMPLES);
        let p = a + b * units as f64;
        let at = |f: f64| {
            let v = p * f;
            if v.is_finite() {
                v.clamp(1.0, u64::MAX as f64 / 2.0) as u64
            } else {
                u64::MAX / 2
            }
        };
        Some((at(policy), at(admit)))
    }
}

/// What a class has learned, in the form the hot path reads it: every factor
/// precomputed, so an estimate is a few multiplications (no log, no exp).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Learned {
    /// Class model: typical run time (ns), 0 before the first measured run.
    pub(crate) typical_ns: u64,
    /// Class model: about the 90th percentile (ns), 0 before the first measured run.
    pub(crate) high_ns: u64,
    /// Ratio model: `(policy, admit)` factors of [`ratio_factors`].
    pub(crate) ratio: (f64, f64),
    /// Hinted runs the ratio is learned from.
    pub(crate) ratio_samples: u64,
    /// Units model, once trusted: `(fixed ns, ns per unit, policy factor, admit
    /// factor)`.
    pub(crate) units: Option<(f64, f64, f64, f64)>,
}

impl Default for Learned {
    fn default() -> Self {
        Self {
            typical_ns: 0,
            high_ns: 0,
            ratio: (1.0, 1.0),
            ratio_samples: 0,
            units: None,
        }
    }
}

/// What the router plans with for one unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CostEstimate {
    /// Cost the policy routes on (ns).
    pub(crate) policy_ns: u64,
    /// Cost admission plans with (ns): the prediction times the model's residual spread.
    pub(crate) admit_ns: u64,
    /// Neither a hint, a size with a trusted fit, nor a measurement: the work must take
    /// a safe path.
    pub(crate) unknown: bool,
    /// The model the estimate came from.
    pub(crate) model: CostModel,
    /// True when the estimate rests on measured runs (not on a hint as given): it
    /// already measures run time where the work ran, so the pool does not scale it by
    /// its observed slowdown again.
    pub(crate) learned: bool,
}

/// The estimate for one job of a class that learned `l`, from the job's own facts:
/// `hint_ns` (0 = none) and `units` (its size, if given). With `learning` off the hint
/// is used as given.
#[inline]
pub(crate) fn estimate(
    hint_ns: u64,
    units: Option<u64>,
    l: &Learned,
    learning: bool,
) -> CostEstimate {
    let known = |policy_ns, admit_ns, model, learned| CostEstimate {
        policy_ns,
        admit_ns,
        unknown: false,
        model,
        learned,
    };
    if hint_ns != 0 {
        if !learning {
            return known(hint_ns, hint_ns, CostModel::Ratio, false);
        }
        let (p, a) = l.ratio;
        return known(
            scale_ns(hint_ns, p),
            scale_ns(hint_ns, a),
            CostModel::Ratio,
            l.ratio_samples > 0,
        );
    }
    if learning {
        if let (Some(u), Some((fixed, per_unit, p, a))) = (units, l.units) {
            let pred = fixed + per_unit * u as f64;
            let at = |f: f64| scale_ns(1, pred * f).max(1);
            return known(at(p), at(a), CostModel::Units, true);
        }
        if l.typical_ns != 0 {
            return known(l.typical_ns, l.high_ns, CostModel::Class, true);
        }
    }
    CostEstimate {
        policy_ns: 0,
        admit_ns: 0,
        unknown: true,
        model: CostModel::Class,
        learned: false,
    }
}

/// True when a learned ratio (after `samples` hinted runs) says the hints are off from
/// the measurement by more than [`MISMATCH_FACTOR`] either way.
pub(crate) fn mismatched(ratio: CostState, samples: u64) -> bool {
    match ratio.parts() {
        Some((mean, _)) if samples >= TRUST_SAMPLES => {
            f64::from(mean.abs()) > MISMATCH_FACTOR.log2()
        }
        _ => false,
    }
}

/// `log2(ns)` (of at least 1 ns), the unit every estimator works in.
#[inline]
pub(crate) fn log2_ns(ns: u64) -> f32 {
    (ns.max(1) as f32).log2()
}

fn exp2_ns(x: f32) -> u64 {
    let v = f64::from(x).exp2();
    if v.is_finite() {
        v.min(u64::MAX as f64 / 2.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A deterministic xorshift stream in [0, 1).
    fn uniform(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `x × (1 ± jitter)`, uniformly.
    fn jittered(x: f64, jitter: f64, r: &mut u64) -> u64 {
        (x * (1.0 + jitter * (2.0 * uniform(r) - 1.0))).max(1.0) as u64
    }

    /// `n` runs of `true_ns` with ±`jitter` multiplicative noise.
    fn learn(true_ns: u64, n: u64, jitter: f64, seed: u64) -> CostState {
        let mut s = CostState::EMPTY;
        let mut r = seed | 1;
        for i in 0..n {
            s = s.update(jittered(true_ns as f64, jitter, &mut r), i);
        }
        s
    }

    /// A ratio learned from `n` runs whose hints are log-uniform over 1 µs .. 10 ms and
    /// whose measured cost is `factor ×` the hint, ±`jitter`.
    fn learn_ratio(factor: f64, n: u64, jitter: f64, seed: u64) -> CostState {
        let mut s = CostState::EMPTY;
        let mut r = seed | 1;
        for i in 0..n {
            let hint = 10f64.powf(3.0 + 4.0 * uniform(&mut r)) as u64;
            let measured = jittered(hint as f64 * factor, jitter, &mut r);
            s = s.update_log2(log_ratio(measured, hint), i);
        }
        s
    }

    fn learned_ratio(s: CostState, n: u64) -> Learned {
        Learned {
            ratio: ratio_factors(s, n),
            ratio_samples: n,
            ..Learned::default()
        }
    }

    fn within(a: u64, b: u64, frac: f64) -> bool {
        (a as f64 - b as f64).abs() <= frac * b as f64
    }

    fn within_f(a: f64, b: f64, frac: f64) -> bool {
        (a - b).abs() <= frac * b.abs()
    }

    #[test]
    fn first_sample_is_the_estimate() {
        let s = CostState::EMPTY.update(5_000, 0);
        assert_eq!(s.typical_ns(), Some(5_000));
        assert!(s.high_ns().unwrap_or(0) > 5_000);
        assert_eq!(CostState::EMPTY.typical_ns(), None);
        assert_eq!(CostState::EMPTY.update_log2(f32::NAN, 0), CostState::EMPTY);
    }

    #[test]
    fn one_outlier_does_not_swing_an_established_estimate() {
        let s = learn(200_000, 200, 0.05, 3);
        let before = s.typical_ns().unwrap_or(0);
        let after = s.update(20_000_000, 200).typical_ns().unwrap_or(0);
        assert!(
            within(after, before, 0.10),
            "{before} -> {after} after one 100x sample"
        );
        let low = s.update(2_000, 200).typical_ns().unwrap_or(0);
        assert!(
            within(low, before, 0.10),
            "{before} -> {low} after one 1/100x sample"
        );
    }

    #[test]
    fn a_real_shift_is_followed() {
        let mut s = learn(100_000, 100, 0.05, 5);
        for i in 0..200 {
            s = s.update(1_000_000, 100 + i);
        }
        assert!(
            within(s.typical_ns().unwrap_or(0), 1_000_000, 0.10),
            "{s:?}"
        );
    }

    #[test]
    fn a_hint_is_used_as_given_until_its_ratio_is_measured() {
        let none = Learned::default();
        let e = estimate(50_000, None, &none, true);
        assert_eq!(
            (e.policy_ns, e.admit_ns, e.unknown),
            (50_000, 50_000, false)
        );
        assert!(!e.learned);
        // Half way to trusted: half the learned log ratio (10x -> ~3.2x).
        let s = learn_ratio(10.0, 64, 0.0, 1);
        let half = estimate(50_000, None, &learned_ratio(s, TRUST_SAMPLES / 2), true);
        assert!(within(half.policy_ns, 158_000, 0.05), "{half:?}");
        // Trusted: the whole ratio; learning off: the hint.
        let full = estimate(50_000, None, &learned_ratio(s, TRUST_SAMPLES), true);
        assert!(within(full.policy_ns, 500_000, 0.02), "{full:?}");
        assert!(full.learned && full.admit_ns >= full.policy_ns);
        let off = estimate(50_000, None, &learned_ratio(s, 64), false);
        assert_eq!((off.policy_ns, off.learned), (50_000, false));
    }

    #[test]
    fn a_flat_hint_becomes_the_class_estimate() {
        // Every job hinted 100 µs; the work is 10 µs or 1 ms, half and half.
        let mut ratio = CostState::EMPTY;
        let mut class = CostState::EMPTY;
        for i in 0..400u64 {
            let ns = if i % 2 == 0 { 10_000 } else { 1_000_000 };
            ratio = ratio.update_log2(log_ratio(ns, 100_000), i);
            class = class.update(ns, i);
        }
        let e = estimate(100_000, None, &learned_ratio(ratio, 400), true);
        let typical = class.typical_ns().unwrap_or(0);
        let high = class.high_ns().unwrap_or(0);
        assert!(within(e.policy_ns, typical, 0.02), "{e:?} vs {typical}");
        assert!(within(e.admit_ns, high, 0.02), "{e:?} vs {high}");
    }

    #[test]
    fn units_without_a_trusted_fit_fall_back_to_the_class_then_unknown() {
        let mut l = Learned::default();
        let e = estimate(0, Some(4_096), &l, true);
        assert!(e.unknown);
        l.typical_ns = 70_000;
        l.high_ns = 90_000;
        let e = estimate(0, Some(4_096), &l, true);
        assert_eq!((e.policy_ns, e.model), (70_000, CostModel::Class));
        l.units = Some((10_000.0, 2.0, 1.0, 1.5));
        let e = estimate(0, Some(4_096), &l, true);
        assert_eq!((e.policy_ns, e.admit_ns), (18_192, 27_288));
        assert_eq!(e.model, CostModel::Units);
        assert!(estimate(0, Some(4_096), &l, false).unknown, "learning off");
    }

    #[test]
    fn extreme_units_neither_overflow_nor_panic() {
        let mut fit = UnitsFit::default();
        for (i, u) in [0, u64::MAX, 1, u64::MAX / 3, 0, 7]
            .into_iter()
            .cycle()
            .take(60)
            .enumerate()
        {
            fit.update(u, 1_000 + i as u64);
        }
        for u in [0, 1, u64::MAX] {
            let (p, a) = fit.estimate(u).expect("fitted");
            assert!(p >= 1 && a >= p, "units {u}: {p} {a}");
        }
        let l = Learned {
            units: Some((5.0, 1e9, 1.0, 2.0)),
            ..Learned::default()
        };
        for u in [0, u64::MAX] {
            let e = estimate(0, Some(u), &l, true);
            assert!(e.policy_ns >= 1 && e.admit_ns >= e.policy_ns, "{e:?}");
        }
    }

    #[test]
    fn a_single_size_fits_proportionally() {
        let mut fit = UnitsFit::default();
        for _ in 0..50 {
            fit.update(1_000, 40_000);
        }
        let (a, b) = fit.parts().expect("fitted");
        assert!(a == 0.0 && within_f(b, 40.0, 1e-6), "{a} {b}");
        let mut zero = UnitsFit::default();
        for _ in 0..50 {
            zero.update(0, 9_000);
        }
        assert_eq!(zero.estimate(0).map(|e| e.0), Some(9_000));
    }

    #[test]
    fn mismatch_needs_enough_samples_and_a_factor_of_three() {
        let off = learn_ratio(10.0, 32, 0.0, 1);
        assert!(mismatched(off, 32));
        assert!(mismatched(learn_ratio(0.1, 32, 0.0, 1), 32));
        assert!(!mismatched(learn_ratio(2.0, 32, 0.0, 1), 32));
        assert!(!mismatched(off, 4), "too few samples to accuse the hint");
        assert!(
            !mismatched(CostState::EMPTY, 32),
            "no hint, nothing to flag"
        );
    }

    proptest! {
        #[test]
        fn converges_within_ten_percent_from_1us_to_1s(exp in 0.0f64..=6.0, seed in 1u64..u64::MAX) {
            // 1 µs .. 1 s, log-uniform; ±10% jitter per run.
            let true_ns = (1_000.0 * 10f64.powf(exp)) as u64;
            let s = learn(true_ns, 64, 0.1, seed);
            let got = s.typical_ns().unwrap_or(0);
            prop_assert!(within(got, true_ns, 0.10), "true {true_ns} learned {got}");
        }

        #[test]
        fn the_ratio_model_recovers_the_callers_error(log_factor in -7.0f64..=7.0, seed in 1u64..u64::MAX) {
            // Callers off by up to 128x either way, ±10% noise per run; every job keeps
            // its own hint, corrected by the learned factor.
            let factor = log_factor.exp2();
            let s = learn_ratio(factor, 64, 0.1, seed);
            let l = learned_ratio(s, 64);
            for hint in [2_000u64, 200_000, 5_000_000] {
                let e = estimate(hint, None, &l, true);
                let truth = (hint as f64 * factor) as u64;
                prop_assert!(within(e.policy_ns, truth, 0.10), "factor {factor} hint {hint}: {e:?}");
                prop_assert!(e.admit_ns >= e.policy_ns);
            }
            // Flagged beyond 3x either way (log2 3 = 1.58), with a margin for the noise.
            if log_factor.abs() > 1.8 {
                prop_assert!(mismatched(s, 64), "factor {factor} not flagged");
            } else if log_factor.abs() < 1.4 {
                prop_assert!(!mismatched(s, 64), "factor {factor} flagged");
            }
        }

        #[test]
        fn the_units_model_recovers_fixed_and_per_unit_cost(
            fixed_exp in 3.0f64..=6.0, span in 6.0f64..=10.0, seed in 1u64..u64::MAX
        ) {
            // Fixed part 1 µs .. 1 ms; sizes log-uniform over 2^span (64x .. 1024x), the per-unit cost
            // such that the variable part goes from a tenth of the fixed part to many
            // times it; ±10% noise per run.
            let fixed = 10f64.powf(fixed_exp);
            let min_units = 64.0;
            let per_unit = fixed / 10.0 / min_units;
            let mut fit = UnitsFit::default();
            let mut r = seed | 1;
            for _ in 0..600 {
                let units = (min_units * (span * uniform(&mut r)).exp2()) as u64;
                fit.update(units, jittered(fixed + per_unit * units as f64, 0.1, &mut r));
            }
            let (a, b) = fit.parts().expect("fitted");
            prop_assert!(within_f(a, fixed, 0.10), "fixed {fixed} -> {a}");
            prop_assert!(within_f(b, per_unit, 0.10), "per unit {per_unit} -> {b}");
            let big = (min_units * span.exp2()) as u64;
            let (p, adm) = fit.estimate(big).expect("fitted");
            let truth = (fixed + per_unit * big as f64) as u64;
            prop_assert!(within(p, truth, 0.10) && adm >= p, "{big} units: {p} vs {truth}");
            prop_assert!(fit.residual().spread().unwrap_or(9.0) < 1.2, "{:?}", fit.residual());
        }

        #[test]
        fn the_class_model_stands_in_without_per_job_facts(exp in 0.0f64..=6.0, seed in 1u64..u64::MAX) {
            let true_ns = (1_000.0 * 10f64.powf(exp)) as u64;
            let s = learn(true_ns, 64, 0.1, seed);
            let l = Learned {
                typical_ns: s.typical_ns().unwrap_or(0),
                high_ns: s.high_ns().unwrap_or(0),
                ..Learned::default()
            };
            let e = estimate(0, None, &l, true);
            prop_assert_eq!(e.model, CostModel::Class);
            prop_assert!(within(e.policy_ns, true_ns, 0.10), "{e:?}");
        }
    }

    #[test]
    fn a_ratio_model_keeps_each_hint() {
        // A class whose jobs run 2× what their callers hint: each job keeps its own hint.
        let l = Learned {
            ratio: (2.0, 2.5),
            ratio_samples: 64,
            ..Learned::default()
        };
        let small = estimate(10_000, None, &l, true);
        let large = estimate(5_000_000, None, &l, true);
        assert_eq!((small.policy_ns, large.policy_ns), (20_000, 10_000_000));
        assert_eq!(large.model, CostModel::Ratio);
    }
}
