//! The machine's capacity for the mix: each class's real CPU cost measured on this
//! machine, and from it the arrival rate that offers exactly `cores` seconds of CPU per
//! second (load 1×).

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::stats::nearest_rank;
use super::workload::Mix;

/// Measured cost of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassCost {
    /// Class name.
    pub class: String,
    /// The caller's estimate (the hint the router gets), ns.
    pub nominal_ns: u64,
    /// Lower quartile of the timed samples: the wall time of one job on one core, ns.
    /// (The lower quartile rather than the median, because other processes on a shared
    /// machine only ever make a sample slower.) The capacity and the bound use it.
    pub measured_ns: u64,
    /// Timed samples behind `measured_ns`.
    pub samples: u32,
}

/// What load 1× means on this machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Cores the executors may use (the Tokio workers, the pools and the bound's cores).
    pub cores: usize,
    /// Per class, in mix order.
    pub classes: Vec<ClassCost>,
    /// Throughput per core with all `cores` cores running the mix, relative to one core
    /// alone (1.0 = the cores are independent and free). Informative only: the capacity
    /// is defined as `cores` full cores. A value well below 1 means the cores are shared
    /// (another process, SMT siblings, the hypervisor), so every executor will look
    /// worse against the bound than on a machine of its own.
    pub parallel_efficiency: f64,
    /// Mean measured cost of a job of the mix, ns.
    pub mean_cost_ns: f64,
    /// Jobs per second that need `cores` seconds of CPU per second: the 1× rate.
    pub jobs_per_sec: f64,
}

impl Capacity {
    /// Times every class on the calling thread (about `per_class` each, at least five
    /// samples) and derives the 1× rate from those costs: `cores` seconds of CPU per
    /// second. Then runs the whole mix on `cores` threads at once (for `per_class` times
    /// the number of classes) to report how free the cores really are
    /// ([`Capacity::parallel_efficiency`]).
    pub fn measure(mix: &Mix, cores: usize, per_class: Duration) -> Capacity {
        let timed: Vec<(u64, u32)> = mix
            .classes
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                // Batch cheap jobs so one sample lasts at least ~50 µs.
                let batch = (50_000 / c.cost_ns.max(1)).clamp(1, 1_000);
                let mut samples = Vec::new();
                let start = Instant::now();
                let mut seed = 0x5eed_0000 + ci as u64 * 1_000_003;
                // One warm-up sample, not kept.
                for round in 0..=10_000u32 {
                    let t = Instant::now();
                    for _ in 0..batch {
                        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        black_box(c.execute(black_box(seed)));
                    }
                    let ns = t.elapsed().as_nanos() as u64 / batch;
                    if round > 0 {
                        samples.push(ns);
                    }
                    if samples.len() >= 5 && start.elapsed() >= per_class {
                        break;
                    }
                }
                samples.sort_unstable();
                (
                    nearest_rank(&samples, 25.0).unwrap_or(c.cost_ns).max(1),
                    samples.len() as u32,
                )
            })
            .collect();
        let single: Vec<u64> = timed.iter().map(|&(ns, _)| ns).collect();
        let efficiency = parallel_efficiency(
            mix,
            cores,
            &single,
            per_class.saturating_mul(mix.classes.len() as u32),
        );
        let classes = mix
            .classes
            .iter()
            .zip(&timed)
            .map(|(c, &(measured_ns, samples))| ClassCost {
                class: c.name.clone(),
                nominal_ns: c.cost_ns,
                measured_ns,
                samples,
            })
            .collect();
        Self::from_costs(mix, cores, classes, efficiency)
    }

    /// Capacity from the nominal costs (no measurement): for tests and dry runs.
    pub fn nominal(mix: &Mix, cores: usize) -> Capacity {
        let classes = mix
            .classes
            .iter()
            .map(|c| ClassCost {
                class: c.name.clone(),
                nominal_ns: c.cost_ns,
                measured_ns: c.cost_ns.max(1),
                samples: 0,
            })
            .collect();
        Self::from_costs(mix, cores, classes, 1.0)
    }

    fn from_costs(
        mix: &Mix,
        cores: usize,
        classes: Vec<ClassCost>,
        parallel_efficiency: f64,
    ) -> Capacity {
        let costs: Vec<f64> = classes.iter().map(|c| c.measured_ns as f64).collect();
        let mean_cost_ns = mix.mean_cost_ns(&costs).max(1.0);
        Capacity {
            cores,
            classes,
            parallel_efficiency,
            mean_cost_ns,
            jobs_per_sec: cores as f64 * 1e9 / mean_cost_ns,
        }
    }

    /// Arrival rate (jobs/s) of an offered load given as a multiple of capacity.
    pub fn rate_for(&self, load: f64) -> f64 {
        self.jobs_per_sec * load
    }

    /// Measured cost per class (ns), in mix order.
    pub fn measured_costs(&self) -> Vec<u64> {
        self.classes.iter().map(|c| c.measured_ns).collect()
    }
}

/// Runs the mix (weighted round robin) on `cores` threads for `dur` and compares the
/// work done with what the single-core costs predict. Clamped to [0.05, 1].
fn parallel_efficiency(mix: &Mix, cores: usize, single_ns: &[u64], dur: Duration) -> f64 {
    // A cycle of class indices in proportion to the weights (each class at least once).
    let cycle: Vec<usize> = mix
        .shares()
        .iter()
        .enumerate()
        .flat_map(|(i, s)| std::iter::repeat_n(i, ((s * 40.0).round() as usize).max(1)))
        .collect();
    let per_thread: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores.max(1))
            .map(|t| {
                let cycle = &cycle;
                scope.spawn(move || {
                    let start = Instant::now();
                    let mut predicted_ns = 0u128;
                    let mut seed = 0xeff1_c1e7 + t as u64 * 7_919;
                    'run: loop {
                        for &ci in cycle {
                            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                            black_box(mix.classes[ci].execute(black_box(seed)));
                            predicted_ns += u128::from(single_ns.get(ci).copied().unwrap_or(0));
                            if start.elapsed() >= dur {
                                break 'run;
                            }
                        }
                    }
                    predicted_ns as f64 / start.elapsed().as_nanos().max(1) as f64
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(1.0))
            .collect()
    });
    let mean = per_thread.iter().sum::<f64>() / per_thread.len().max(1) as f64;
    if mean.is_finite() {
        mean.clamp(0.05, 1.0)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_capacity_of_the_standard_mix() {
        let cap = Capacity::nominal(&Mix::standard(), 2);
        assert!((cap.mean_cost_ns - 565_400.0).abs() < 1.0);
        assert!((cap.jobs_per_sec - 2e9 / 565_400.0).abs() < 1e-6);
        assert!((cap.rate_for(4.0) - 4.0 * cap.jobs_per_sec).abs() < 1e-9);
    }

    #[test]
    fn measurement_is_positive_and_ordered_by_cost() {
        let mut mix = Mix::standard();
        for c in &mut mix.classes {
            c.cost_ns /= 50; // keep the test fast
        }
        let cap = Capacity::measure(&mix, 1, Duration::from_millis(5));
        assert!(
            cap.classes
                .iter()
                .all(|c| c.measured_ns > 0 && c.samples >= 5)
        );
        assert!(cap.classes[0].measured_ns < cap.classes[3].measured_ns);
    }
}
