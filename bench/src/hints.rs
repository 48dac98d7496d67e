//! Hint scenarios: what the caller tells HelixRouter about each job's cost.
//!
//! Every HelixRouter job names its class (the mix's class name) and carries a cost
//! hint; the scenario decides the hint. The schedule is the same in every scenario, so
//! the only difference between two scenarios' runs is the hint:
//!
//! - [`HintScenario::Exact`]: each job hinted its class's nominal cost
//!   ([`JobClass::cost_ns`]).
//! - [`HintScenario::Flat`]: every job hinted the mix's weighted mean nominal cost
//!   ([`flat_hint_ns`]), as a caller who knows only the average would.
//! - [`HintScenario::Unknown`]: no cost at all (`compute_cost` 0, "unknown").
//! - [`HintScenario::Noisy`]: the nominal cost times a factor log-uniform in
//!   [1/[`NOISE_MAX_FACTOR`], [`NOISE_MAX_FACTOR`]], drawn per job from an RNG seeded by
//!   the step's seed ([`noise_factors`]), so every executor of a step sees the same
//!   draws.
//!
//! Pure: no tokio, no clock.

use std::fmt;
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use super::workload::{JobClass, Mix};

/// Largest factor a noisy hint is off by, either way: hints fall in
/// `[cost / NOISE_MAX_FACTOR, cost × NOISE_MAX_FACTOR]`.
pub const NOISE_MAX_FACTOR: f64 = 4.0;

/// Mixed into a step's seed to seed the noisy hints' RNG (so the noise is independent
/// of the schedule's own draws, which stay exactly what they were without hints).
const NOISE_SALT: u64 = 0x6e6f_6973_795f_6869; // "noisy_hi"

/// What the caller tells HelixRouter about each job's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintScenario {
    /// Each job hinted its class's nominal cost.
    Exact,
    /// Every job hinted the mix's weighted mean nominal cost.
    Flat,
    /// No cost hint (`compute_cost` 0).
    Unknown,
    /// The nominal cost off by a per-job factor log-uniform in [1/4, 4].
    Noisy,
}

impl HintScenario {
    /// Every scenario, in report order.
    pub const ALL: [HintScenario; 4] = [
        HintScenario::Exact,
        HintScenario::Flat,
        HintScenario::Unknown,
        HintScenario::Noisy,
    ];

    /// The snake_case id used in JSON, labels and on the command line.
    pub const fn id(self) -> &'static str {
        match self {
            HintScenario::Exact => "exact",
            HintScenario::Flat => "flat",
            HintScenario::Unknown => "unknown",
            HintScenario::Noisy => "noisy",
        }
    }

    /// One line on what the caller says in this scenario.
    pub const fn describe(self) -> &'static str {
        match self {
            HintScenario::Exact => "each job hinted its class's nominal cost",
            HintScenario::Flat => "every job hinted the mix's weighted mean cost",
            HintScenario::Unknown => "no cost hint (0 = unknown)",
            HintScenario::Noisy => "nominal cost × a per-job factor log-uniform in [1/4, 4]",
        }
    }

    /// The cost hint (ns) of every arrival of `schedule`, indexed like its arrivals.
    /// `Noisy` draws its factors from an RNG seeded by `schedule.seed`, so the same
    /// schedule always gets the same hints. An arrival whose class is not in the mix
    /// gets 0 (it is never issued).
    pub fn hints(self, mix: &Mix, schedule: &Schedule) -> Vec<u64> {
        let nominal = |class: u8| mix.classes.get(usize::from(class)).map(|c| c.cost_ns);
        match self {
            HintScenario::Exact => schedule
                .arrivals
                .iter()
                .map(|a| nominal(a.class).unwrap_or(0))
                .collect(),
            HintScenario::Flat => {
                let flat = flat_hint_ns(mix);
                vec![flat; schedule.arrivals.len()]
            }
            HintScenario::Unknown => vec![0; schedule.arrivals.len()],
            HintScenario::Noisy => schedule
                .arrivals
                .iter()
                .zip(noise_factors(
                    schedule.arrivals.len(),
                    schedule.seed ^ NOISE_SALT,
                ))
                .map(|(a, f)| nominal(a.class).map_or(0, |c| noisy_hint_ns(c, f)))
                .collect(),
        }
    }
}

impl fmt::Display for HintScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for HintScenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HintScenario::ALL
            .into_iter()
            .find(|h| h.id() == s.trim())
            .ok_or_else(|| {
                let ids: Vec<&str> = HintScenario::ALL.iter().map(|h| h.id()).collect();
                format!(
                    "unknown hint scenario `{s}`; expected one of {}",
                    ids.join(", ")
                )
            })
    }
}

/// The flat hint: the mix's weighted mean nominal cost, rounded (at least 1 ns, so it
/// never reads as "unknown").
///
/// # Examples
///
/// ```
/// use helix_overload::{Mix, hints::flat_hint_ns};
/// // 0.45 × 2 µs + 0.15 × 30 µs + 0.30 × 200 µs + 0.10 × 5 ms
/// assert_eq!(flat_hint_ns(&Mix::standard()), 565_400);
/// ```
pub fn flat_hint_ns(mix: &Mix) -> u64 {
    let nominal: Vec<f64> = mix.classes.iter().map(|c| c.cost_ns as f64).collect();
    (mix.mean_cost_ns(&nominal).round() as u64).max(1)
}

/// `n` factors log-uniform in [1/[`NOISE_MAX_FACTOR`], [`NOISE_MAX_FACTOR`]]
/// (`2^u`, `u` uniform in [-2, 2] for a factor of 4), drawn in order from a `StdRng`
/// seeded with `seed`.
pub fn noise_factors(n: usize, seed: u64) -> Vec<f64> {
    let max_log2 = NOISE_MAX_FACTOR.log2();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| rng.random_range(-max_log2..=max_log2).exp2())
        .collect()
}

/// `cost_ns × factor`, rounded, at least 1 ns (0 would mean "unknown").
fn noisy_hint_ns(cost_ns: u64, factor: f64) -> u64 {
    ((cost_ns as f64 * factor).round() as u64).max(1)
}

/// A class name as a `&'static str`, as [`WorkHint::class`] needs: each distinct name is
/// leaked once per process (later calls with the same name return the same string).
///
/// [`WorkHint::class`]: helixrouter::router::WorkHint::class
pub(crate) fn static_name(class: &JobClass) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(&n) = names.get(class.name.as_str()) {
        return n;
    }
    let leaked: &'static str = Box::leak(class.name.clone().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn schedule(seed: u64) -> Schedule {
        Schedule::generate(&Mix::standard(), 5_000.0, Duration::from_millis(400), seed).unwrap()
    }

    #[test]
    fn ids_round_trip() {
        for h in HintScenario::ALL {
            assert_eq!(h.id().parse::<HintScenario>(), Ok(h));
            assert_eq!(
                serde_json::to_string(&h).unwrap(),
                format!("\"{}\"", h.id())
            );
        }
        assert!(
            "wrong"
                .parse::<HintScenario>()
                .unwrap_err()
                .contains("noisy")
        );
    }

    #[test]
    fn noise_factors_are_within_a_factor_of_four_and_reproducible() {
        let f = noise_factors(20_000, 3);
        assert!(
            f.iter().all(|&x| (0.25..=4.0).contains(&x)),
            "{:?}",
            f.iter()
                .copied()
                .fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)))
        );
        assert_eq!(f, noise_factors(20_000, 3));
        assert_ne!(f, noise_factors(20_000, 4));
        // Log-uniform: log2 of the factors is uniform on [-2, 2], mean 0, and both
        // ends of the range are reached.
        let logs: Vec<f64> = f.iter().map(|x| x.log2()).collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!(logs.iter().any(|&l| l < -1.9) && logs.iter().any(|&l| l > 1.9));
        let below_half = logs.iter().filter(|&&l| l < -1.0).count() as f64 / logs.len() as f64;
        assert!((below_half - 0.25).abs() < 0.02, "{below_half}");
    }

    #[test]
    fn noisy_hints_are_the_nominal_cost_within_a_factor_of_four_and_reproducible() {
        let mix = Mix::standard();
        let s = schedule(5);
        let h = HintScenario::Noisy.hints(&mix, &s);
        assert_eq!(h.len(), s.arrivals.len());
        assert_eq!(h, HintScenario::Noisy.hints(&mix, &s));
        assert_ne!(h, HintScenario::Noisy.hints(&mix, &schedule(6)));
        let exact = HintScenario::Exact.hints(&mix, &s);
        assert_ne!(h, exact);
        for (n, e) in h.iter().zip(&exact) {
            let ratio = *n as f64 / *e as f64;
            assert!((0.25 - 1e-3..=4.0 + 1e-3).contains(&ratio), "{n} vs {e}");
        }
    }

    #[test]
    fn flat_hints_equal_the_weighted_mean() {
        let mix = Mix::standard();
        let s = schedule(1);
        let costs: Vec<f64> = mix.classes.iter().map(|c| c.cost_ns as f64).collect();
        let mean = mix.mean_cost_ns(&costs);
        let h = HintScenario::Flat.hints(&mix, &s);
        assert_eq!(h.len(), s.arrivals.len());
        assert!(h.iter().all(|&x| x as f64 == mean.round()), "{mean}");
        assert_eq!(h[0], 565_400);
    }

    #[test]
    fn unknown_hints_are_zero_and_exact_hints_are_the_class_costs() {
        let mix = Mix::standard();
        let s = schedule(2);
        assert!(
            HintScenario::Unknown
                .hints(&mix, &s)
                .iter()
                .all(|&x| x == 0)
        );
        let exact = HintScenario::Exact.hints(&mix, &s);
        for (a, h) in s.arrivals.iter().zip(exact) {
            assert_eq!(h, mix.classes[usize::from(a.class)].cost_ns);
        }
    }

    #[test]
    fn class_names_are_leaked_once_per_distinct_name() {
        let mix = Mix::standard();
        let a = static_name(&mix.classes[0]);
        let b = static_name(&Mix::standard().classes[0]);
        assert_eq!(a, "tiny");
        assert!(std::ptr::eq(a, b), "the same name is not leaked twice");
        assert_eq!(static_name(&mix.classes[3]), "heavy");
    }
}
