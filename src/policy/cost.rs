//! Learned cost of a work class: a robust running estimate of how long its work runs,
//! and how that estimate is blended with what the caller said. Pure: values in, values
//! out; the router keeps the state in one `AtomicU64` per class and updates it with a
//! single compare-and-swap.
//!
//! # Design
//!
//! Costs of one class spread multiplicatively (a resize of a big image costs a multiple
//! of a small one), so the estimator works on `log2(ns)`:
//!
//! - `mean` is an exponentially weighted mean of `log2(ns)` (its `2^mean` is a geometric
//!   mean, close to the median). Its weight is `1/n` for the first samples (so it starts
//!   at the first measurement and averages the first few exactly), then [`ALPHA`].
//! - `dev` is the same kind of average of `|log2(ns) - mean|` (a mean absolute
//!   deviation, in doublings).
//! - Each deviation is clamped to `max(3 dev, 1)` before it moves either: one sample
//!   100× off moves the estimate by at most a few percent, while a real shift moves it
//!   steadily (and widens `dev`, which speeds the move up).
//! - [`CostState::high_ns`] is `2^(mean + 1.6 dev)`, about the 90th percentile for a
//!   log-normal spread: what admission plans with.
//!
//! [`blend`] mixes the caller's hint with the measurement in log space: the hint's
//! weight falls linearly to zero at [`TRUST_SAMPLES`], after which the measurement alone
//! decides. A hint of `0` means "unknown".

/// Weight of a new sample once past the first `1 / ALPHA` samples.
pub const ALPHA: f32 = 0.1;
/// Samples after which the measurement alone decides (the hint's weight is zero).
pub const TRUST_SAMPLES: u64 = 16;
/// A hint off from the measurement by more than this factor is flagged as a mismatch.
pub const MISMATCH_FACTOR: f64 = 3.0;
/// `dev` given to the first sample (doublings): an unknown spread is assumed moderate.
const FIRST_DEV: f32 = 0.5;
/// Smallest clamp of a deviation, in doublings.
const MIN_CLAMP: f32 = 1.0;
/// `high_ns` = `2^(mean + HIGH_DEVS × dev)`.
const HIGH_DEVS: f32 = 1.6;

/// The packed estimator state: `mean` (f32 bits) in the high half, `dev` in the low
/// half; [`CostState::EMPTY`] before the first sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostState(pub u64);

impl CostState {
    /// No sample yet.
    pub const EMPTY: CostState = CostState(u64::MAX);

    fn pack(mean: f32, dev: f32) -> CostState {
        CostState(u64::from(mean.to_bits()) << 32 | u64::from(dev.to_bits()))
    }

    /// `(mean, dev)` in doublings, `None` before the first sample.
    pub fn parts(self) -> Option<(f32, f32)> {
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
    pub fn update(self, ns: u64, n: u64) -> CostState {
        let x = log2_ns(ns);
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
    pub fn typical_ns(self) -> Option<u64> {
        self.parts().map(|(m, _)| exp2_ns(m))
    }

    /// About the 90th percentile of the run time, `None` before the first sample.
    pub fn high_ns(self) -> Option<u64> {
        self.parts().map(|(m, d)| exp2_ns(m + HIGH_DEVS * d))
    }

    /// The multiplicative spread `2^dev` (1.0 = every run the same).
    pub fn spread(self) -> Option<f64> {
        self.parts().map(|(_, d)| f64::from(d).exp2())
    }
}

/// What the router should plan with for one unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostEstimate {
    /// Cost the policy routes on (ns).
    pub policy_ns: u64,
    /// Cost admission plans with (ns): a high quantile once measured.
    pub admit_ns: u64,
    /// Neither a hint nor a measurement: the work must take a safe path.
    pub unknown: bool,
}

/// Blends the caller's `hint_ns` (`0` = unknown) with the class's measured `state` after
/// `samples` runs. With `learning` off the hint is used as given.
pub fn blend(hint_ns: u64, state: CostState, samples: u64, learning: bool) -> CostEstimate {
    let measured = if learning { state.parts() } else { None };
    match (hint_ns, measured) {
        (0, None) => CostEstimate {
            policy_ns: 0,
            admit_ns: 0,
            unknown: true,
        },
        (hint, None) => CostEstimate {
            policy_ns: hint,
            admit_ns: hint,
            unknown: false,
        },
        (hint, Some((mean, dev))) => {
            let w = if hint == 0 {
                1.0
            } else {
                (samples as f32 / TRUST_SAMPLES as f32).min(1.0)
            };
            let h = if hint == 0 { mean } else { log2_ns(hint) };
            let m = (1.0 - w) * h + w * mean;
            CostEstimate {
                policy_ns: exp2_ns(m),
                admit_ns: exp2_ns(m + w * HIGH_DEVS * dev),
                unknown: false,
            }
        }
    }
}

/// True when a non-zero hint is off from an established measurement by more than
/// [`MISMATCH_FACTOR`] either way.
pub fn mismatched(hint_ns: u64, state: CostState, samples: u64) -> bool {
    match (hint_ns, state.typical_ns()) {
        (0, _) | (_, None) => false,
        (hint, Some(typical)) => {
            let ratio = hint as f64 / typical.max(1) as f64;
            samples >= TRUST_SAMPLES && !(1.0 / MISMATCH_FACTOR..=MISMATCH_FACTOR).contains(&ratio)
        }
    }
}

fn log2_ns(ns: u64) -> f32 {
    (ns.max(1) as f64).log2() as f32
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

    /// `n` runs of `true_ns` with ±`jitter` multiplicative noise.
    fn learn(true_ns: u64, n: u64, jitter: f64, seed: u64) -> CostState {
        let mut s = CostState::EMPTY;
        let mut r = seed | 1;
        for i in 0..n {
            let f = 1.0 + jitter * (2.0 * uniform(&mut r) - 1.0);
            s = s.update((true_ns as f64 * f) as u64, i);
        }
        s
    }

    fn within(a: u64, b: u64, frac: f64) -> bool {
        (a as f64 - b as f64).abs() <= frac * b as f64
    }

    #[test]
    fn first_sample_is_the_estimate() {
        let s = CostState::EMPTY.update(5_000, 0);
        assert_eq!(s.typical_ns(), Some(5_000));
        assert!(s.high_ns().unwrap_or(0) > 5_000);
        assert_eq!(CostState::EMPTY.typical_ns(), None);
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
    fn hint_decides_first_then_the_measurement() {
        let measured = learn(5_000_000, 64, 0.0, 1);
        // No samples: the hint as given.
        let e = blend(50_000, CostState::EMPTY, 0, true);
        assert_eq!((e.policy_ns, e.unknown), (50_000, false));
        // Enough samples: the measurement, whatever the hint said.
        for hint in [50_000, 500_000_000] {
            let e = blend(hint, measured, TRUST_SAMPLES, true);
            assert!(within(e.policy_ns, 5_000_000, 0.01), "hint {hint}: {e:?}");
            assert!(e.admit_ns >= e.policy_ns);
        }
        // Half way: between the two, in log space.
        let e = blend(50_000, measured, TRUST_SAMPLES / 2, true);
        assert!(within(e.policy_ns, 500_000, 0.05), "{e:?}");
        // Learning off: the hint.
        assert_eq!(blend(50_000, measured, 64, false).policy_ns, 50_000);
    }

    #[test]
    fn unknown_without_hint_or_measurement() {
        assert!(blend(0, CostState::EMPTY, 0, true).unknown);
        let e = blend(0, learn(7_000, 1, 0.0, 1), 1, true);
        assert_eq!((e.policy_ns, e.unknown), (7_000, false));
    }

    #[test]
    fn mismatch_needs_enough_samples_and_a_factor_of_three() {
        let s = learn(1_000_000, 32, 0.0, 1);
        assert!(mismatched(10_000, s, 32));
        assert!(mismatched(100_000_000, s, 32));
        assert!(!mismatched(2_000_000, s, 32));
        assert!(
            !mismatched(10_000, s, 4),
            "too few samples to accuse the hint"
        );
        assert!(!mismatched(0, s, 32), "no hint, nothing to flag");
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
        fn a_hint_100x_off_is_routed_as_the_true_cost(exp in 0.0f64..=6.0, low in any::<bool>(), seed in 1u64..u64::MAX) {
            let true_ns = (1_000.0 * 10f64.powf(exp)) as u64;
            let hint = if low { (true_ns / 100).max(1) } else { true_ns * 100 };
            let s = learn(true_ns, TRUST_SAMPLES, 0.1, seed);
            let e = blend(hint, s, TRUST_SAMPLES, true);
            prop_assert!(within(e.policy_ns, true_ns, 0.10), "true {true_ns} hint {hint} -> {e:?}");
            prop_assert!(mismatched(hint, s, TRUST_SAMPLES));
        }
    }
}
