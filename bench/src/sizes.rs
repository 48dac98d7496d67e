//! Job sizes: the *sized* workload of the cost-model scenarios.
//!
//! In the fixed workload (every scenario before the cost-model ones) each job does its
//! class's nominal work. In the sized workload each job's work is its class's nominal
//! cost × a per-job factor, log-uniform over a [`SIZE_SPAN`]× range and normalised so
//! that its mean is 1 ([`size_factors`]): a class's *mean* work, and so the offered
//! load, is the same as in the fixed workload, but one job of a class can be 64× the
//! work of another. The factors are drawn from an RNG seeded by the step's seed
//! (salted), so every executor of a step — the HelixRouter runs and the baselines —
//! does the same work job for job.
//!
//! The bound ([`crate::bound`]) and the realised load of the sized workload use per-job
//! costs: the class's *measured* cost × the job's factor ([`job_costs_ns`]).
//!
//! Pure: no tokio, no clock.

use std::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use super::workload::Mix;

/// Ratio of the largest to the smallest job size within a class.
pub const SIZE_SPAN: f64 = 64.0;

/// The units a job of factor 1 (a class's mean size) reports in the `sizes_units`
/// scenario: a job's units are `round(factor × UNITS_PER_MEAN_SIZE)`, at least 1.
pub const UNITS_PER_MEAN_SIZE: f64 = 1_024.0;

/// Mixed into a step's seed to seed the size factors' RNG (independent of the
/// schedule's own draws and of the noisy hints').
const SIZE_SALT: u64 = 0x7369_7a65_735f_6a62; // "sizes_jb"

/// Which work the jobs of a run do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Every job does its class's nominal work.
    #[default]
    Fixed,
    /// Each job does its class's nominal work × its size factor ([`size_factors`]).
    Sized,
}

impl Workload {
    /// The snake_case id used in JSON.
    pub const fn id(self) -> &'static str {
        match self {
            Workload::Fixed => "fixed",
            Workload::Sized => "sized",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Mean of `2^u` for `u` uniform on `[0, log2 SIZE_SPAN]`: `(SPAN − 1) / ln SPAN`.
fn raw_mean() -> f64 {
    (SIZE_SPAN - 1.0) / SIZE_SPAN.ln()
}

/// The smallest and largest size factor: `(1 / m, SIZE_SPAN / m)` with `m` the mean of
/// the raw log-uniform factor, so their ratio is [`SIZE_SPAN`] and the mean factor 1.
///
/// # Examples
///
/// ```
/// use helix_overload::sizes::{SIZE_SPAN, size_factor_range};
/// let (lo, hi) = size_factor_range();
/// assert!((hi / lo - SIZE_SPAN).abs() < 1e-9);
/// assert!(lo < 0.07 && hi > 4.2);
/// ```
pub fn size_factor_range() -> (f64, f64) {
    let m = raw_mean();
    (1.0 / m, SIZE_SPAN / m)
}

/// `n` size factors, drawn in order from a `StdRng` seeded with `seed`: `2^u / m`, `u`
/// uniform on `[0, log2 SIZE_SPAN]`, `m` the mean of `2^u` (so the factors are
/// log-uniform over [`size_factor_range`] with mean 1).
pub fn size_factors(n: usize, seed: u64) -> Vec<f64> {
    let max_log2 = SIZE_SPAN.log2();
    let m = raw_mean();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| rng.random_range(0.0..=max_log2).exp2() / m)
        .collect()
}

/// The size factor of every arrival of `schedule`, indexed like its arrivals, drawn
/// from its seed: the same schedule always gets the same sizes.
pub fn job_factors(schedule: &Schedule) -> Vec<f64> {
    size_factors(schedule.arrivals.len(), schedule.seed ^ SIZE_SALT)
}

/// `cost_ns × factor`, rounded, at least 1 ns.
pub fn scaled_ns(cost_ns: u64, factor: f64) -> u64 {
    ((cost_ns as f64 * factor).round() as u64).max(1)
}

/// A job's units in the `sizes_units` scenario: `round(factor × 1024)`, at least 1.
pub fn units_of(factor: f64) -> u64 {
    ((factor * UNITS_PER_MEAN_SIZE).round() as u64).max(1)
}

/// Each arrival's cost given a cost per class (`class_costs`, indexed like the mix):
/// the class's cost, times the job's factor when `factors` is given (indexed like the
/// arrivals). An arrival outside the mix costs 0.
///
/// With the mix's nominal costs it is the work each job runs; with the measured costs
/// it is what the bound and the realised load count.
pub fn job_costs_ns(schedule: &Schedule, class_costs: &[u64], factors: Option<&[f64]>) -> Vec<u64> {
    schedule
        .arrivals
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let c = class_costs.get(usize::from(a.class)).copied().unwrap_or(0);
            match factors.and_then(|f| f.get(i)) {
                Some(&f) if c > 0 => scaled_ns(c, f),
                _ => c,
            }
        })
        .collect()
}

/// The mix's nominal cost per class, indexed like its classes.
pub fn nominal_costs(mix: &Mix) -> Vec<u64> {
    mix.classes.iter().map(|c| c.cost_ns).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn factors_have_mean_one_and_span_exactly_64() {
        let f = size_factors(200_000, 3);
        let mean = f.iter().sum::<f64>() / f.len() as f64;
        assert!((mean - 1.0).abs() < 0.02, "mean {mean}");
        let (lo, hi) = size_factor_range();
        assert!((hi / lo - 64.0).abs() < 1e-9, "{lo} {hi}");
        // Every draw is inside the range, and both ends are (nearly) reached.
        assert!(
            f.iter()
                .all(|&x| lo * (1.0 - 1e-12) <= x && x <= hi * (1.0 + 1e-12))
        );
        let (min, max) = f
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(min < lo * 1.01 && max > hi * 0.99, "{min} {max}");
        assert!(max / min > 63.0 && max / min <= 64.0 + 1e-9);
        // Log-uniform: a sixth of the draws in each doubling.
        let first = f.iter().filter(|&&x| x < 2.0 * lo).count() as f64 / f.len() as f64;
        assert!((first - 1.0 / 6.0).abs() < 0.01, "{first}");
    }

    #[test]
    fn factors_are_reproducible_per_seed_and_per_schedule() {
        assert_eq!(size_factors(1_000, 5), size_factors(1_000, 5));
        assert_ne!(size_factors(1_000, 5), size_factors(1_000, 6));
        let s =
            Schedule::generate(&Mix::standard(), 5_000.0, Duration::from_millis(200), 9).unwrap();
        let f = job_factors(&s);
        assert_eq!(f.len(), s.arrivals.len());
        assert_eq!(f, job_factors(&s));
    }

    #[test]
    fn class_mean_work_is_unchanged() {
        let mix = Mix::standard();
        let s = Schedule::generate(&mix, 20_000.0, Duration::from_secs(2), 4).unwrap();
        let nominal = nominal_costs(&mix);
        let fixed: u64 = job_costs_ns(&s, &nominal, None).iter().sum();
        let f = job_factors(&s);
        let sized = job_costs_ns(&s, &nominal, Some(&f));
        // Per class, the mean sized work is the nominal cost within a few percent.
        for (ci, c) in mix.classes.iter().enumerate() {
            let (n, sum) = s
                .arrivals
                .iter()
                .zip(&sized)
                .filter(|(a, _)| usize::from(a.class) == ci)
                .fold((0u64, 0u64), |(n, t), (_, &w)| (n + 1, t + w));
            let mean = sum as f64 / n as f64;
            assert!(
                (mean / c.cost_ns as f64 - 1.0).abs() < 0.06,
                "{} {mean}",
                c.name
            );
        }
        let total: u64 = sized.iter().sum();
        assert!((total as f64 / fixed as f64 - 1.0).abs() < 0.05);
    }

    #[test]
    fn units_and_scaled_costs_are_at_least_one() {
        assert_eq!(units_of(1.0), 1_024);
        assert_eq!(units_of(1e-9), 1);
        assert_eq!(scaled_ns(2_000, 0.5), 1_000);
        assert_eq!(scaled_ns(1, 1e-6), 1);
        assert_eq!(Workload::default(), Workload::Fixed);
        assert_eq!(
            serde_json::to_string(&Workload::Sized).unwrap(),
            "\"sized\""
        );
    }
}
