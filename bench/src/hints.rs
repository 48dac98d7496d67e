//! Scenarios: what the caller tells HelixRouter about each job, and (for the cost-model
//! scenarios) which work the jobs do.
//!
//! Every HelixRouter job names a work class and carries a cost hint (and, in one
//! scenario, a size); the scenario decides them ([`JobHint`]). The schedule is the same
//! in every scenario. The *hint scenarios* keep the work fixed and name each job's mix
//! class, so the only difference between two of their runs is the cost hint:
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
//! The *cost-model scenarios* test what a class learns beyond one cost per class:
//!
//! - [`HintScenario::OneClass`]: exact hints as in `exact`, but every job names the
//!   one class [`ONE_CLASS`] instead of its mix class, so the class holds work from
//!   2 µs to 5 ms and only the per-job hint (× the class's learned ratio) tells
//!   them apart.
//! - [`HintScenario::SizesExact`]: the *sized* workload ([`crate::sizes`]: each job's
//!   work is its class's nominal cost × a per-job factor over a 64× range, mean 1), each
//!   job hinted its own nominal work (nominal cost × factor), class named as in `exact`.
//! - [`HintScenario::SizesUnits`]: the sized workload with no cost hint (0) and the
//!   job's size as [`WorkHint::units`] (`round(factor × 1024)`, at least 1), class named
//!   as in `exact`: the class must learn `fixed + per_unit × units`.
//!
//! Pure: no tokio, no clock.
//!
//! [`WorkHint::units`]: helixrouter::router::WorkHint::units

use std::fmt;
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use super::sizes::{Workload, job_factors, scaled_ns, units_of};
use super::workload::{JobClass, Mix};

/// Largest factor a noisy hint is off by, either way: hints fall in
/// `[cost / NOISE_MAX_FACTOR, cost × NOISE_MAX_FACTOR]`.
pub const NOISE_MAX_FACTOR: f64 = 4.0;

/// The class every job names in [`HintScenario::OneClass`].
pub const ONE_CLASS: &str = "mixed";

/// Mixed into a step's seed to seed the noisy hints' RNG (so the noise is independent
/// of the schedule's own draws, which stay exactly what they were without hints).
const NOISE_SALT: u64 = 0x6e6f_6973_795f_6869; // "noisy_hi"

/// What a HelixRouter job of a scenario says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobHint {
    /// The work class it names (the router learns the cost under this name).
    pub class: &'static str,
    /// The cost hint, ns (0 = unknown).
    pub cost_ns: u64,
    /// The job's size ([`WorkHint::units`](helixrouter::router::WorkHint::units)), if
    /// it gives one.
    pub units: Option<u64>,
}

/// What the caller tells HelixRouter about each job (and, for the cost-model
/// scenarios, which work the jobs do: see [`HintScenario::workload`]).
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
    /// Exact hints, every job naming the one class [`ONE_CLASS`].
    OneClass,
    /// Sized work (64× within a class), each job hinted its own nominal work.
    SizesExact,
    /// Sized work, no cost hint, each job's size as units.
    SizesUnits,
}

impl HintScenario {
    /// Every scenario, in report order.
    pub const ALL: [HintScenario; 7] = [
        HintScenario::Exact,
        HintScenario::Flat,
        HintScenario::Unknown,
        HintScenario::Noisy,
        HintScenario::OneClass,
        HintScenario::SizesExact,
        HintScenario::SizesUnits,
    ];

    /// The hint scenarios (fixed work, the mix's class names; only the hint differs).
    pub const HINTS: [HintScenario; 4] = [
        HintScenario::Exact,
        HintScenario::Flat,
        HintScenario::Unknown,
        HintScenario::Noisy,
    ];

    /// The cost-model scenarios, checked against `exact` by the cost-model bars.
    pub const COST_MODEL: [HintScenario; 3] = [
        HintScenario::OneClass,
        HintScenario::SizesExact,
        HintScenario::SizesUnits,
    ];

    /// The snake_case id used in JSON, labels and on the command line.
    pub const fn id(self) -> &'static str {
        match self {
            HintScenario::Exact => "exact",
            HintScenario::Flat => "flat",
            HintScenario::Unknown => "unknown",
            HintScenario::Noisy => "noisy",
            HintScenario::OneClass => "one_class",
            HintScenario::SizesExact => "sizes_exact",
            HintScenario::SizesUnits => "sizes_units",
        }
    }

    /// One line on what the caller says in this scenario.
    pub const fn describe(self) -> &'static str {
        match self {
            HintScenario::Exact => "each job hinted its class's nominal cost",
            HintScenario::Flat => "every job hinted the mix's weighted mean cost",
            HintScenario::Unknown => "no cost hint (0 = unknown)",
            HintScenario::Noisy => "nominal cost × a per-job factor log-uniform in [1/4, 4]",
            HintScenario::OneClass => {
                "exact hints, every job naming the one class `mixed` instead of its own"
            }
            HintScenario::SizesExact => "sized work, each job hinted its own nominal work",
            HintScenario::SizesUnits => {
                "sized work, no cost hint, units = round(size factor × 1024)"
            }
        }
    }

    /// The work the jobs do in this scenario: sized for `sizes_exact` and
    /// `sizes_units`, fixed for the others.
    pub const fn workload(self) -> Workload {
        match self {
            HintScenario::SizesExact | HintScenario::SizesUnits => Workload::Sized,
            _ => Workload::Fixed,
        }
    }

    /// True for the cost-model scenarios ([`HintScenario::COST_MODEL`]).
    pub const fn is_cost_model(self) -> bool {
        matches!(
            self,
            HintScenario::OneClass | HintScenario::SizesExact | HintScenario::SizesUnits
        )
    }

    /// What every arrival of `schedule` says, indexed like its arrivals. `Noisy` draws
    /// its factors from an RNG seeded by `schedule.seed`, the sized scenarios their
    /// sizes ([`job_factors`]), so the same schedule always gets the same hints. An
    /// arrival whose class is not in the mix gets no hint (it is never issued).
    pub fn hints(self, mix: &Mix, schedule: &Schedule) -> Vec<JobHint> {
        let names: Vec<&'static str> = mix.classes.iter().map(static_name).collect();
        let costs = self.cost_hints(mix, schedule);
        let factors = (self == HintScenario::SizesUnits).then(|| job_factors(schedule));
        schedule
            .arrivals
            .iter()
            .zip(costs)
            .enumerate()
            .map(|(i, (a, cost_ns))| JobHint {
                class: match self {
                    HintScenario::OneClass => ONE_CLASS,
                    _ => names
                        .get(usize::from(a.class))
                        .copied()
                        .unwrap_or(ONE_CLASS),
                },
                cost_ns,
                units: factors
                    .as_ref()
                    .and_then(|f| f.get(i))
                    .map(|&f| units_of(f)),
            })
            .collect()
    }

    /// The cost hint (ns, 0 = unknown) of every arrival of `schedule`.
    fn cost_hints(self, mix: &Mix, schedule: &Schedule) -> Vec<u64> {
        let nominal = |class: u8| mix.classes.get(usize::from(class)).map(|c| c.cost_ns);
        let n = schedule.arrivals.len();
        let scaled = |factors: Vec<f64>| -> Vec<u64> {
            schedule
                .arrivals
                .iter()
                .zip(factors)
                .map(|(a, f)| nominal(a.class).map_or(0, |c| scaled_ns(c, f)))
                .collect()
        };
        match self {
            HintScenario::Exact | HintScenario::OneClass => schedule
                .arrivals
                .iter()
                .map(|a| nominal(a.class).unwrap_or(0))
                .collect(),
            HintScenario::Flat => vec![flat_hint_ns(mix); n],
            HintScenario::Unknown | HintScenario::SizesUnits => vec![0; n],
            HintScenario::Noisy => scaled(noise_factors(n, schedule.seed ^ NOISE_SALT)),
            HintScenario::SizesExact => scaled(job_factors(schedule)),
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

    /// The cost hints of a scenario.
    fn costs(h: HintScenario, mix: &Mix, s: &Schedule) -> Vec<u64> {
        h.hints(mix, s).iter().map(|x| x.cost_ns).collect()
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
        let h = costs(HintScenario::Noisy, &mix, &s);
        assert_eq!(h.len(), s.arrivals.len());
        assert_eq!(h, costs(HintScenario::Noisy, &mix, &s));
        assert_ne!(h, costs(HintScenario::Noisy, &mix, &schedule(6)));
        let exact = costs(HintScenario::Exact, &mix, &s);
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
        let nominal: Vec<f64> = mix.classes.iter().map(|c| c.cost_ns as f64).collect();
        let mean = mix.mean_cost_ns(&nominal);
        let h = costs(HintScenario::Flat, &mix, &s);
        assert_eq!(h.len(), s.arrivals.len());
        assert!(h.iter().all(|&x| x as f64 == mean.round()), "{mean}");
        assert_eq!(h[0], 565_400);
    }

    #[test]
    fn unknown_hints_are_zero_and_exact_hints_are_the_class_costs() {
        let mix = Mix::standard();
        let s = schedule(2);
        assert!(
            costs(HintScenario::Unknown, &mix, &s)
                .iter()
                .all(|&x| x == 0)
        );
        let exact = HintScenario::Exact.hints(&mix, &s);
        for (a, h) in s.arrivals.iter().zip(exact) {
            let class = &mix.classes[usize::from(a.class)];
            assert_eq!(h.cost_ns, class.cost_ns);
            assert_eq!((h.class, h.units), (class.name.as_str(), None));
        }
    }

    #[test]
    fn one_class_names_one_class_with_exact_hints() {
        let mix = Mix::standard();
        let s = schedule(3);
        let one = HintScenario::OneClass.hints(&mix, &s);
        assert!(
            one.iter()
                .all(|h| h.class == ONE_CLASS && h.units.is_none())
        );
        assert_eq!(
            one.iter().map(|h| h.cost_ns).collect::<Vec<_>>(),
            costs(HintScenario::Exact, &mix, &s)
        );
        // Every other scenario names the mix's classes.
        for h in HintScenario::ALL
            .into_iter()
            .filter(|&h| h != HintScenario::OneClass)
        {
            let names: std::collections::HashSet<&str> =
                h.hints(&mix, &s).iter().map(|x| x.class).collect();
            assert_eq!(names.len(), mix.classes.len(), "{h}");
            assert!(!names.contains(ONE_CLASS), "{h}");
        }
    }

    #[test]
    fn sized_hints_follow_the_job_sizes() {
        use crate::sizes::{job_factors, scaled_ns, units_of};
        let mix = Mix::standard();
        let s = schedule(4);
        let f = job_factors(&s);
        let units = HintScenario::SizesUnits.hints(&mix, &s);
        let exact = HintScenario::SizesExact.hints(&mix, &s);
        for (((a, u), e), &f) in s.arrivals.iter().zip(&units).zip(&exact).zip(&f) {
            let class = &mix.classes[usize::from(a.class)];
            // sizes_units: units and no cost; sizes_exact: the job's own work, no units.
            assert_eq!((u.cost_ns, u.units), (0, Some(units_of(f))));
            assert!(u.units.is_some_and(|n| n >= 1));
            assert_eq!((e.cost_ns, e.units), (scaled_ns(class.cost_ns, f), None));
            assert_eq!(
                (u.class, e.class),
                (class.name.as_str(), class.name.as_str())
            );
        }
        // Units are proportional to the size: a 64× range, 1024 at the mean.
        let n: Vec<u64> = units.iter().filter_map(|u| u.units).collect();
        let (lo, hi) = (n.iter().min().unwrap(), n.iter().max().unwrap());
        assert!(
            *lo >= 67 && *hi <= 4_327 && *hi as f64 / *lo as f64 > 50.0,
            "{lo} {hi}"
        );
        assert_eq!(HintScenario::SizesUnits.workload(), Workload::Sized);
        assert_eq!(HintScenario::OneClass.workload(), Workload::Fixed);
        assert!(HintScenario::COST_MODEL.iter().all(|h| h.is_cost_model()));
        assert!(!HintScenario::HINTS.iter().any(|h| h.is_cost_model()));
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
