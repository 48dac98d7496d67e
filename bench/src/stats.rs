//! Statistics of a step: nearest-rank percentiles, the per-job outcome accounting and
//! the per-class figures. Pure: the driver hands over raw outcomes and samples.

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use super::workload::Mix;

/// The nearest-rank percentile of sorted samples: the smallest sample such that at
/// least `p`% of the samples are at or below it (rank `⌈p/100 · n⌉`, 1-based).
/// `None` for no samples; `p` is clamped to [0, 100] and `p = 0` gives the minimum.
///
/// # Examples
///
/// ```
/// use helix_overload::stats::nearest_rank;
/// let s = [10, 20, 30, 40, 50];
/// assert_eq!(nearest_rank(&s, 50.0), Some(30));
/// assert_eq!(nearest_rank(&s, 99.0), Some(50));
/// assert_eq!(nearest_rank(&s, 20.0), Some(10));
/// assert_eq!(nearest_rank::<u64>(&[], 50.0), None);
/// ```
pub fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let p = if p.is_nan() {
        100.0
    } else {
        p.clamp(0.0, 100.0)
    };
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// Count, median, 99th percentile and maximum of a set of samples, in the unit named
/// by the field that holds it (`_ms`, `_us`). `None` when there were no samples.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Quantiles {
    /// Samples.
    pub count: u64,
    /// Nearest-rank median.
    pub p50: Option<f64>,
    /// Nearest-rank 99th percentile.
    pub p99: Option<f64>,
    /// Largest sample.
    pub max: Option<f64>,
}

impl Quantiles {
    /// Sorts `samples_ns` in place and summarises them, dividing by `unit_ns` (1e6 for
    /// milliseconds, 1e3 for microseconds).
    pub fn of_ns(samples_ns: &mut [u64], unit_ns: f64) -> Quantiles {
        samples_ns.sort_unstable();
        let conv = |v: Option<u64>| v.map(|x| x as f64 / unit_ns);
        Quantiles {
            count: samples_ns.len() as u64,
            p50: conv(nearest_rank(samples_ns, 50.0)),
            p99: conv(nearest_rank(samples_ns, 99.0)),
            max: conv(samples_ns.last().copied()),
        }
    }
}

/// How one offered job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Completed within its budget (counted in goodput).
    OnTime,
    /// Completed over its budget.
    Late,
    /// Shed by the executor (rejected, never run).
    Dropped,
    /// Panicked or its task was lost.
    Failed,
    /// Not completed by the step's cutoff (last arrival + largest budget + grace); it
    /// was abandoned and is necessarily over budget.
    Unfinished,
}

/// Outcome counts. Conservation: `on_time + late + dropped + failed + unfinished ==
/// offered`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Jobs in the schedule.
    pub offered: u64,
    /// Completed within budget.
    pub on_time: u64,
    /// Completed over budget.
    pub late: u64,
    /// Shed.
    pub dropped: u64,
    /// Panicked / lost.
    pub failed: u64,
    /// Abandoned at the cutoff.
    pub unfinished: u64,
}

impl Tally {
    /// Counts one offered job.
    pub fn add(&mut self, o: Outcome) {
        self.offered += 1;
        match o {
            Outcome::OnTime => self.on_time += 1,
            Outcome::Late => self.late += 1,
            Outcome::Dropped => self.dropped += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Unfinished => self.unfinished += 1,
        }
    }

    /// True when every offered job is counted exactly once.
    pub fn conserves(&self) -> bool {
        self.on_time + self.late + self.dropped + self.failed + self.unfinished == self.offered
    }

    /// Completed jobs (on time or late).
    pub fn completed(&self) -> u64 {
        self.on_time + self.late
    }

    /// `part / offered`, 0 when nothing was offered.
    pub fn share(&self, part: u64) -> f64 {
        if self.offered == 0 {
            0.0
        } else {
            part as f64 / self.offered as f64
        }
    }
}

/// Figures for one job class under one executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassFigures {
    /// Class name.
    pub class: String,
    /// Outcome counts for the class.
    pub tally: Tally,
    /// Latency of completed jobs (on time and late), ms from the scheduled arrival.
    pub latency_ms: Quantiles,
}

/// Per-job outcome accounting of one executor on one schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeFigures {
    /// Outcome counts over all classes.
    pub tally: Tally,
    /// Latency of all completed jobs, ms.
    pub latency_ms: Quantiles,
    /// Per class, in mix order.
    pub classes: Vec<ClassFigures>,
}

/// Summarises per-job results (`(outcome, latency_ns)`, indexed like the schedule's
/// arrivals; latency is ignored unless the job completed).
///
/// # Panics
///
/// Never: jobs whose class is not in the mix are counted in the total only.
pub fn summarize(mix: &Mix, schedule: &Schedule, results: &[(Outcome, u64)]) -> OutcomeFigures {
    let k = mix.classes.len();
    let mut tally = Tally::default();
    let mut class_tally = vec![Tally::default(); k];
    let mut all_lat = Vec::with_capacity(results.len());
    let mut class_lat: Vec<Vec<u64>> = vec![Vec::new(); k];
    for (a, &(o, lat)) in schedule.arrivals.iter().zip(results) {
        tally.add(o);
        let c = usize::from(a.class);
        if let Some(t) = class_tally.get_mut(c) {
            t.add(o);
        }
        if matches!(o, Outcome::OnTime | Outcome::Late) {
            all_lat.push(lat);
            if let Some(v) = class_lat.get_mut(c) {
                v.push(lat);
            }
        }
    }
    let classes = mix
        .classes
        .iter()
        .zip(class_tally)
        .zip(class_lat.iter_mut())
        .map(|((c, tally), lat)| ClassFigures {
            class: c.name.clone(),
            tally,
            latency_ms: Quantiles::of_ns(lat, 1e6),
        })
        .collect();
    OutcomeFigures {
        tally,
        latency_ms: Quantiles::of_ns(&mut all_lat, 1e6),
        classes,
    }
}

/// Decides on-time vs late for a completed job.
#[inline]
pub fn completed_outcome(latency_ns: u64, budget_ns: u64) -> Outcome {
    if latency_ns <= budget_ns {
        Outcome::OnTime
    } else {
        Outcome::Late
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::schedule::Arrival;

    #[test]
    fn nearest_rank_matches_the_textbook_examples() {
        // Wikipedia's nearest-rank examples.
        let s = [15, 20, 35, 40, 50];
        assert_eq!(nearest_rank(&s, 5.0), Some(15));
        assert_eq!(nearest_rank(&s, 30.0), Some(20));
        assert_eq!(nearest_rank(&s, 40.0), Some(20));
        assert_eq!(nearest_rank(&s, 50.0), Some(35));
        assert_eq!(nearest_rank(&s, 100.0), Some(50));
        let t = [3, 6, 7, 8, 8, 10, 13, 15, 16, 20];
        assert_eq!(nearest_rank(&t, 25.0), Some(7));
        assert_eq!(nearest_rank(&t, 50.0), Some(8));
        assert_eq!(nearest_rank(&t, 75.0), Some(15));
        assert_eq!(nearest_rank(&t, 0.0), Some(3));
        assert_eq!(nearest_rank(&[7], 99.0), Some(7));
    }

    #[test]
    fn p99_of_a_hundred_is_the_99th_value() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&s, 99.0), Some(99));
        let s: Vec<u64> = (1..=1000).collect();
        assert_eq!(nearest_rank(&s, 99.0), Some(990));
    }

    #[test]
    fn quantiles_convert_units_and_handle_empty() {
        let mut v = vec![3_000_000, 1_000_000, 2_000_000];
        let q = Quantiles::of_ns(&mut v, 1e6);
        assert_eq!(q.count, 3);
        assert_eq!(q.p50, Some(2.0));
        assert_eq!(q.p99, Some(3.0));
        assert_eq!(q.max, Some(3.0));
        assert_eq!(Quantiles::of_ns(&mut [], 1e6), Quantiles::default());
    }

    #[test]
    fn tally_conserves_and_shares() {
        let mut t = Tally::default();
        for o in [
            Outcome::OnTime,
            Outcome::OnTime,
            Outcome::Late,
            Outcome::Dropped,
            Outcome::Failed,
            Outcome::Unfinished,
        ] {
            t.add(o);
        }
        assert!(t.conserves());
        assert_eq!(t.completed(), 3);
        assert!((t.share(t.on_time) - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(Tally::default().share(0), 0.0);
        let broken = Tally {
            offered: 3,
            on_time: 1,
            ..Tally::default()
        };
        assert!(!broken.conserves());
    }

    #[test]
    fn budget_boundary_is_on_time() {
        assert_eq!(completed_outcome(2_000_000, 2_000_000), Outcome::OnTime);
        assert_eq!(completed_outcome(2_000_001, 2_000_000), Outcome::Late);
    }

    #[test]
    fn summarize_splits_by_class_and_ignores_latency_of_shed_jobs() {
        let mix = Mix::standard();
        let arr = |class| Arrival {
            at_ns: 0,
            class,
            seed: 0,
            scaling: 0.0,
        };
        let schedule = Schedule {
            rate_per_sec: 1.0,
            duration_ns: 1,
            seed: 0,
            arrivals: vec![arr(0), arr(0), arr(3), arr(3), arr(3)],
        };
        let results = [
            (Outcome::OnTime, 1_000_000),
            (Outcome::Dropped, 999_000_000),
            (Outcome::Late, 300_000_000),
            (Outcome::OnTime, 100_000_000),
            (Outcome::Unfinished, 0),
        ];
        let f = summarize(&mix, &schedule, &results);
        assert!(f.tally.conserves());
        assert_eq!(f.tally.offered, 5);
        assert_eq!(f.tally.on_time, 2);
        assert_eq!(f.latency_ms.count, 3);
        assert_eq!(f.latency_ms.max, Some(300.0));
        assert_eq!(f.classes[0].tally.dropped, 1);
        assert_eq!(f.classes[0].latency_ms.p99, Some(1.0));
        assert_eq!(f.classes[3].tally.unfinished, 1);
        assert_eq!(f.classes[3].latency_ms.p50, Some(100.0));
        assert_eq!(f.classes[1].tally.offered, 0);
        let per_class: u64 = f.classes.iter().map(|c| c.tally.offered).sum();
        assert_eq!(per_class, f.tally.offered);
    }

    proptest! {
        #[test]
        fn nearest_rank_is_a_sample_with_enough_mass_below(mut v in prop::collection::vec(0u64..1000, 1..200), p in 0.0f64..=100.0) {
            v.sort_unstable();
            let x = nearest_rank(&v, p).unwrap();
            let at_or_below = v.iter().filter(|&&y| y <= x).count() as f64;
            let below = v.iter().filter(|&&y| y < x).count() as f64;
            prop_assert!(at_or_below >= p / 100.0 * v.len() as f64 - 1e-9);
            prop_assert!(below < (p / 100.0 * v.len() as f64).max(1.0));
        }
    }
}
