//! The job classes of the overload workload and the work each one does.
//!
//! Pure: no tokio, no clock. Built-in classes call helixrouter's kernels
//! ([`helixrouter::strategies`]) on a fixed-size input array (no allocation); the
//! user-closure class stands for arbitrary caller code the router knows nothing about
//! except its [`helixrouter::router::WorkHint`].

use serde::{Deserialize, Serialize};

use helixrouter::strategies::{hashmix, montecarlo_risk, primecount};
use helixrouter::types::JobKind;

/// Nanoseconds of CPU per element of the user closure's sort (calibrated on the 2-core
/// development machine; the harness measures the real cost, so an error here only
/// makes the caller's hint less accurate, which is realistic).
pub const NS_PER_SORTED_ELEMENT: u64 = 10;

/// What a job of a class runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// One of the crate's built-in kernels, submitted with its [`JobKind`].
    Kernel(JobKind),
    /// A user closure (sort + checksum of a freshly generated vector) submitted through
    /// `Router::run` with no kind.
    Closure,
}

impl WorkKind {
    /// The built-in kind, if any (what the router uses for per-kind batching).
    pub fn job_kind(self) -> Option<JobKind> {
        match self {
            WorkKind::Kernel(k) => Some(k),
            WorkKind::Closure => None,
        }
    }
}

/// One class of jobs in the mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobClass {
    /// Short name used in tables and JSON (`tiny`, `medium`, …).
    pub name: String,
    /// What the job runs.
    pub work: WorkKind,
    /// The caller's CPU-time estimate in nanoseconds (the hint given to the router).
    pub cost_ns: u64,
    /// End-to-end latency budget, measured from the scheduled arrival, in milliseconds.
    pub budget_ms: u64,
    /// Relative frequency in the mix (> 0).
    pub weight: f64,
    /// Each job's `scaling_potential` is drawn uniformly from `[lo, hi)`.
    pub scaling: (f32, f32),
}

impl JobClass {
    /// The budget in nanoseconds.
    pub fn budget_ns(&self) -> u64 {
        self.budget_ms.saturating_mul(1_000_000)
    }

    /// Runs one job of this class with the given per-job seed and returns a digest of
    /// its output (so the work cannot be optimised away).
    pub fn execute(&self, seed: u64) -> u64 {
        execute(self.work, self.cost_ns, seed)
    }
}

/// Runs `work` at `cost_ns` for the per-job `seed`; returns a digest of the output.
pub fn execute(work: WorkKind, cost_ns: u64, seed: u64) -> u64 {
    let inputs = inputs_for(seed);
    match work {
        WorkKind::Kernel(JobKind::HashMix) => hashmix(&inputs, cost_ns),
        WorkKind::Kernel(JobKind::PrimeCount) => primecount(&inputs, cost_ns),
        WorkKind::Kernel(JobKind::MonteCarloRisk) => {
            montecarlo_risk(seed, &inputs, cost_ns).to_bits()
        }
        WorkKind::Closure => user_closure(seed, cost_ns),
    }
}

/// Four kernel inputs derived from a job seed (no allocation).
fn inputs_for(seed: u64) -> [u64; 4] {
    let mut x = seed | 1;
    std::array::from_fn(|_| {
        x = xorshift(x);
        x % 1_000_000
    })
}

#[inline]
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// What a caller's own CPU work might look like: generate a vector, sort it, fold it.
fn user_closure(seed: u64, cost_ns: u64) -> u64 {
    let n = (cost_ns / NS_PER_SORTED_ELEMENT).max(16) as usize;
    let mut x = seed | 1;
    let mut v: Vec<u64> = (0..n)
        .map(|_| {
            x = xorshift(x);
            x
        })
        .collect();
    v.sort_unstable();
    v.iter()
        .step_by(7)
        .fold(0u64, |acc, &b| acc.rotate_left(5) ^ b)
}

/// The workload: a weighted set of job classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mix {
    /// The classes; a job's class is drawn with probability `weight / Σ weight`.
    pub classes: Vec<JobClass>,
}

impl Mix {
    /// The standard mix of the issue: tiny 2 µs hash jobs with a 2 ms budget, user
    /// closures of ~30 µs with 10 ms, medium 200 µs prime counts with 50 ms, heavy
    /// 5 ms Monte-Carlo jobs with 250 ms. By count 45 / 15 / 30 / 10 %; by CPU the heavy
    /// jobs dominate (≈ 88 % of the demand), so under overload most jobs can still be
    /// served if the heavy ones are the ones shed. Scaling potentials follow the
    /// ranges of [`helixrouter::simulator`].
    pub fn standard() -> Mix {
        let class = |name: &str, work, cost_ns, budget_ms, weight, scaling| JobClass {
            name: name.to_owned(),
            work,
            cost_ns,
            budget_ms,
            weight,
            scaling,
        };
        Mix {
            classes: vec![
                class(
                    "tiny",
                    WorkKind::Kernel(JobKind::HashMix),
                    2_000,
                    2,
                    0.45,
                    (0.0, 0.5),
                ),
                class("closure", WorkKind::Closure, 30_000, 10, 0.15, (0.0, 0.5)),
                class(
                    "medium",
                    WorkKind::Kernel(JobKind::PrimeCount),
                    200_000,
                    50,
                    0.30,
                    (0.0, 0.9),
                ),
                class(
                    "heavy",
                    WorkKind::Kernel(JobKind::MonteCarloRisk),
                    5_000_000,
                    250,
                    0.10,
                    (0.0, 1.0),
                ),
            ],
        }
    }

    /// Checks that the mix can drive a schedule.
    ///
    /// # Errors
    ///
    /// A message naming the first broken rule: at least one class, at most 255,
    /// weights finite and > 0, budgets >= 1 ms, scaling ranges within [0, 1] and ordered.
    pub fn validate(&self) -> Result<(), String> {
        if self.classes.is_empty() {
            return Err("the mix needs at least one class".into());
        }
        if self.classes.len() > usize::from(u8::MAX) {
            return Err(format!(
                "the mix has {} classes; at most 255 are supported",
                self.classes.len()
            ));
        }
        for c in &self.classes {
            if !(c.weight.is_finite() && c.weight > 0.0) {
                return Err(format!(
                    "class `{}`: weight must be finite and > 0, got {}",
                    c.name, c.weight
                ));
            }
            if c.budget_ms == 0 {
                return Err(format!("class `{}`: budget_ms must be >= 1", c.name));
            }
            let (lo, hi) = c.scaling;
            if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
                return Err(format!(
                    "class `{}`: scaling range must satisfy 0 <= lo <= hi <= 1, got ({lo}, {hi})",
                    c.name
                ));
            }
        }
        Ok(())
    }

    /// Each class's share of the jobs (weights normalised to sum to 1).
    pub fn shares(&self) -> Vec<f64> {
        let total: f64 = self.classes.iter().map(|c| c.weight).sum();
        self.classes.iter().map(|c| c.weight / total).collect()
    }

    /// Mean cost per job in ns given a cost per class (same order as `classes`).
    pub fn mean_cost_ns(&self, cost_per_class: &[f64]) -> f64 {
        self.shares()
            .iter()
            .zip(cost_per_class)
            .map(|(s, c)| s * c)
            .sum()
    }

    /// The largest budget in the mix (ns).
    pub fn max_budget_ns(&self) -> u64 {
        self.classes
            .iter()
            .map(JobClass::budget_ns)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_mix_is_valid_and_heavy_dominates_cpu() {
        let mix = Mix::standard();
        assert!(mix.validate().is_ok());
        let costs: Vec<f64> = mix.classes.iter().map(|c| c.cost_ns as f64).collect();
        let mean = mix.mean_cost_ns(&costs);
        assert!((mean - 565_400.0).abs() < 1.0, "{mean}");
        let heavy_share = 0.10 * 5_000_000.0 / mean;
        assert!(heavy_share > 0.85, "{heavy_share}");
        assert_eq!(mix.max_budget_ns(), 250_000_000);
    }

    #[test]
    fn invalid_mixes_are_named() {
        let mut mix = Mix::standard();
        mix.classes[1].weight = 0.0;
        assert!(mix.validate().unwrap_err().contains("closure"));
        let mut mix = Mix::standard();
        mix.classes[0].scaling = (0.6, 0.2);
        assert!(mix.validate().unwrap_err().contains("scaling"));
        assert!(Mix { classes: vec![] }.validate().is_err());
    }

    #[test]
    fn work_is_deterministic_per_seed() {
        for c in Mix::standard().classes {
            let c = JobClass {
                cost_ns: c.cost_ns.min(20_000),
                ..c
            };
            assert_eq!(c.execute(42), c.execute(42), "{}", c.name);
        }
    }
}
