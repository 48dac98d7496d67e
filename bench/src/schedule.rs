//! Seeded open-loop arrival schedules: Poisson arrivals (exponential inter-arrival
//! times) over a fixed duration, each arrival drawing its class from the mix.
//!
//! Pure and reproducible: the same mix, rate, duration and seed give the same schedule
//! (`StdRng`, a fixed algorithm for a given `rand` version). Every executor of a step is
//! driven by the same schedule.

use std::time::Duration;

use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp};
use serde::{Deserialize, Serialize};

use super::HarnessError;
use super::workload::Mix;

/// One planned arrival.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Arrival {
    /// Planned issue time, nanoseconds after the start of the step.
    pub at_ns: u64,
    /// Index of the job's class in [`Mix::classes`].
    pub class: u8,
    /// Per-job seed: the kernel inputs derive from it.
    pub seed: u64,
    /// The job's `scaling_potential` hint.
    pub scaling: f32,
}

/// A step's arrivals, sorted by time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Mean arrival rate the schedule was drawn with (jobs per second).
    pub rate_per_sec: f64,
    /// Length of the arrival window (ns); every `at_ns` is below it.
    pub duration_ns: u64,
    /// The seed it was drawn from.
    pub seed: u64,
    /// The arrivals, `at_ns` non-decreasing.
    pub arrivals: Vec<Arrival>,
}

impl Schedule {
    /// Draws a schedule: exponential inter-arrival times with mean `1 / rate_per_sec`
    /// until `duration`, each job's class by the mix weights.
    ///
    /// # Errors
    ///
    /// [`HarnessError::InvalidMix`] for a mix that fails [`Mix::validate`];
    /// [`HarnessError::InvalidConfig`] for a rate that is not finite and > 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use helix_overload::{Mix, Schedule};
    /// let s = Schedule::generate(&Mix::standard(), 1_000.0, Duration::from_secs(1), 7).unwrap();
    /// assert_eq!(s, Schedule::generate(&Mix::standard(), 1_000.0, Duration::from_secs(1), 7).unwrap());
    /// assert!((800..1_200).contains(&s.arrivals.len()));
    /// ```
    pub fn generate(
        mix: &Mix,
        rate_per_sec: f64,
        duration: Duration,
        seed: u64,
    ) -> Result<Schedule, HarnessError> {
        mix.validate().map_err(HarnessError::InvalidMix)?;
        let exp = Exp::new(rate_per_sec)
            .ok()
            .filter(|_| rate_per_sec.is_finite() && rate_per_sec > 0.0)
            .ok_or_else(|| HarnessError::InvalidConfig {
                field: "rate_per_sec",
                reason: format!("must be finite and > 0, got {rate_per_sec}"),
            })?;
        let pick = WeightedIndex::new(mix.classes.iter().map(|c| c.weight))
            .map_err(|e| HarnessError::InvalidMix(e.to_string()))?;
        let mut rng = StdRng::seed_from_u64(seed);
        let end = duration.as_secs_f64();
        let mut t = 0.0f64;
        let mut arrivals = Vec::with_capacity((rate_per_sec * end * 1.1) as usize + 16);
        loop {
            t += exp.sample(&mut rng);
            if t >= end {
                break;
            }
            let class = pick.sample(&mut rng);
            let (lo, hi) = mix.classes[class].scaling;
            let scaling = if hi > lo {
                rng.random_range(lo..hi)
            } else {
                lo
            };
            arrivals.push(Arrival {
                at_ns: (t * 1e9) as u64,
                // `Mix::validate` caps the class count at 255.
                class: class as u8,
                seed: rng.random(),
                scaling,
            });
        }
        Ok(Schedule {
            rate_per_sec,
            duration_ns: duration.as_nanos() as u64,
            seed,
            arrivals,
        })
    }

    /// Jobs per class (indexed like [`Mix::classes`]).
    pub fn class_counts(&self, classes: usize) -> Vec<u64> {
        let mut n = vec![0u64; classes];
        for a in &self.arrivals {
            if let Some(c) = n.get_mut(usize::from(a.class)) {
                *c += 1;
            }
        }
        n
    }

    /// Offered CPU demand in ns, given a cost per class.
    pub fn demand_ns(&self, cost_per_class: &[u64]) -> u128 {
        self.arrivals
            .iter()
            .map(|a| {
                u128::from(
                    cost_per_class
                        .get(usize::from(a.class))
                        .copied()
                        .unwrap_or(0),
                )
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(rate: f64, secs: f64, seed: u64) -> Schedule {
        Schedule::generate(&Mix::standard(), rate, Duration::from_secs_f64(secs), seed).unwrap()
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        assert_eq!(draw(5_000.0, 0.5, 11), draw(5_000.0, 0.5, 11));
        assert_ne!(
            draw(5_000.0, 0.5, 11).arrivals,
            draw(5_000.0, 0.5, 12).arrivals
        );
    }

    #[test]
    fn arrivals_are_sorted_and_inside_the_window() {
        let s = draw(20_000.0, 0.3, 3);
        assert!(s.arrivals.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
        assert!(s.arrivals.iter().all(|a| a.at_ns < s.duration_ns));
    }

    #[test]
    fn count_matches_the_rate_within_four_sigma() {
        // Poisson: mean = rate × duration, sd = sqrt(mean).
        let s = draw(10_000.0, 2.0, 99);
        let n = s.arrivals.len() as f64;
        assert!((n - 20_000.0).abs() < 4.0 * 20_000f64.sqrt(), "{n}");
    }

    #[test]
    fn inter_arrival_times_look_exponential() {
        // For Exp(λ) the coefficient of variation is 1.
        let s = draw(10_000.0, 2.0, 5);
        let gaps: Vec<f64> = s
            .arrivals
            .windows(2)
            .map(|w| (w[1].at_ns - w[0].at_ns) as f64)
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((mean - 100_000.0).abs() < 3_000.0, "{mean}");
        assert!((var.sqrt() / mean - 1.0).abs() < 0.05);
    }

    #[test]
    fn class_shares_follow_the_weights_and_scaling_stays_in_range() {
        let mix = Mix::standard();
        let s = draw(10_000.0, 2.0, 8);
        let n = s.arrivals.len() as f64;
        for (count, share) in s.class_counts(mix.classes.len()).iter().zip(mix.shares()) {
            assert!((*count as f64 / n - share).abs() < 0.02, "{count} {share}");
        }
        for a in &s.arrivals {
            let (lo, hi) = mix.classes[usize::from(a.class)].scaling;
            assert!(a.scaling >= lo && (a.scaling < hi || lo == hi));
        }
    }

    #[test]
    fn bad_rate_or_mix_is_an_error() {
        let d = Duration::from_secs(1);
        assert!(Schedule::generate(&Mix::standard(), 0.0, d, 1).is_err());
        assert!(Schedule::generate(&Mix::standard(), f64::NAN, d, 1).is_err());
        assert!(Schedule::generate(&Mix { classes: vec![] }, 10.0, d, 1).is_err());
    }

    #[test]
    fn demand_sums_class_costs() {
        let s = draw(1_000.0, 0.5, 2);
        let counts = s.class_counts(4);
        let costs = [1, 10, 100, 1_000];
        let want: u64 = counts.iter().zip(costs).map(|(n, c)| n * c).sum();
        assert_eq!(s.demand_ns(&costs), u128::from(want));
    }
}
