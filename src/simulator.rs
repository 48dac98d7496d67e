//! Seeded synthetic workload: a reproducible mix of jobs whose costs span every
//! execution strategy under the default config.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::types::{Job, JobKind};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatorConfig {
    /// PRNG seed; equal seeds give identical jobs.
    pub seed: u64,
    /// Number of jobs.
    pub total_jobs: usize,
    /// Share of tiny jobs (cost 0.5–8 µs, tight budgets), in [0, 1].
    pub tiny_share: f64,
    /// Share of medium jobs (8–60 µs); the rest are heavy (60 µs – 5 ms).
    pub medium_share: f64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            total_jobs: 200,
            tiny_share: 0.15,
            medium_share: 0.45,
        }
    }
}

/// Generates the workload.
///
/// # Examples
///
/// ```
/// use helixrouter::simulator::{Simulator, SimulatorConfig};
/// let jobs = Simulator::new(SimulatorConfig { seed: 42, total_jobs: 10, ..Default::default() }).all_jobs();
/// assert_eq!(jobs.len(), 10);
/// assert_eq!(jobs, Simulator::new(SimulatorConfig { seed: 42, total_jobs: 10, ..Default::default() }).all_jobs());
/// ```
#[derive(Debug, Clone)]
pub struct Simulator {
    cfg: SimulatorConfig,
}

impl Simulator {
    /// A simulator for `cfg`.
    pub fn new(cfg: SimulatorConfig) -> Self {
        Self { cfg }
    }

    /// The configuration.
    pub fn config(&self) -> &SimulatorConfig {
        &self.cfg
    }

    /// Every job, in submission order. Ids run from 1.
    pub fn all_jobs(&self) -> Vec<Job> {
        let mut rng = StdRng::seed_from_u64(self.cfg.seed);
        (1..=self.cfg.total_jobs as u64)
            .map(|id| self.job(&mut rng, id))
            .collect()
    }

    fn job(&self, rng: &mut StdRng, id: u64) -> Job {
        let class: f64 = rng.random();
        let kind = JobKind::ALL[rng.random_range(0..3)];
        let n_inputs = rng.random_range(2..=8);
        let inputs = (0..n_inputs)
            .map(|_| rng.random_range(0..1_000_000))
            .collect();
        let (compute_cost, latency_budget_ms, scaling_potential) = if class < self.cfg.tiny_share {
            (
                rng.random_range(500..=8_000),
                rng.random_range(2..=5),
                rng.random_range(0.0..0.5),
            )
        } else if class < self.cfg.tiny_share + self.cfg.medium_share {
            (
                rng.random_range(8_001..60_000),
                rng.random_range(5..=20),
                rng.random_range(0.0..0.9),
            )
        } else {
            // Log-uniform 60 µs .. 5 ms.
            let l: f64 = rng.random_range((60_000f64).ln()..(5_000_000f64).ln());
            (
                l.exp() as u64,
                rng.random_range(50..=500),
                rng.random_range(0.0..1.0),
            )
        };
        Job {
            id,
            kind,
            inputs,
            compute_cost,
            scaling_potential,
            latency_budget_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouterConfig;
    use crate::policy::choose_strategy;
    use crate::types::Strategy;

    fn jobs(seed: u64, n: usize) -> Vec<Job> {
        Simulator::new(SimulatorConfig {
            seed,
            total_jobs: n,
            ..Default::default()
        })
        .all_jobs()
    }

    #[test]
    fn equal_seeds_equal_jobs_different_seeds_differ() {
        assert_eq!(jobs(7, 200), jobs(7, 200));
        assert_ne!(jobs(7, 200), jobs(8, 200));
    }

    #[test]
    fn default_mix_uses_all_four_executing_strategies() {
        let cfg = RouterConfig::default();
        let mut seen = [0usize; Strategy::COUNT];
        for j in jobs(7, 200) {
            seen[choose_strategy(&cfg, &j, 0).index()] += 1;
        }
        for s in [
            Strategy::Inline,
            Strategy::Spawn,
            Strategy::CpuPool,
            Strategy::Batch,
        ] {
            assert!(seen[s.index()] > 0, "{s} unused: {seen:?}");
        }
        assert_eq!(seen[Strategy::Drop.index()], 0);
    }

    #[test]
    fn jobs_are_well_formed() {
        for j in jobs(3, 1_000) {
            assert!(!j.inputs.is_empty());
            assert!((0.0..=1.0).contains(&j.scaling_potential));
            assert!(j.latency_budget_ms >= 1);
        }
    }
}
