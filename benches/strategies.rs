//! Kernel cost calibration: each kernel at several costs. Criterion's time per
//! iteration divided by the cost is the ns-per-unit ratio (1.0 = perfectly calibrated);
//! the ratio is also printed once per case from a direct measurement.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use helixrouter::strategies::{hashmix, montecarlo_risk, primecount};

const INPUTS: [u64; 4] = [12_345, 67_890, 424_242, 999];

fn ratio(f: &dyn Fn(u64) -> u64, cost: u64) -> f64 {
    let reps = (50_000_000 / cost).clamp(3, 10_000);
    let t = Instant::now();
    for _ in 0..reps {
        black_box(f(black_box(cost)));
    }
    t.elapsed().as_nanos() as f64 / reps as f64 / cost as f64
}

fn bench(c: &mut Criterion) {
    type Kernel = (&'static str, fn(u64) -> u64, &'static [u64]);
    let kernels: [Kernel; 3] = [
        (
            "hashmix",
            |c| hashmix(&INPUTS, c),
            &[1_000, 100_000, 5_000_000, 50_000_000],
        ),
        (
            "primecount",
            |c| primecount(&INPUTS, c),
            &[1_000, 100_000, 5_000_000, 50_000_000],
        ),
        (
            "montecarlo",
            |c| montecarlo_risk(7, &INPUTS, c).to_bits(),
            &[1_000, 100_000, 5_000_000, 50_000_000],
        ),
    ];
    let mut g = c.benchmark_group("strategies");
    g.sample_size(10);
    for (name, f, costs) in kernels {
        for &cost in costs {
            eprintln!(
                "calibration {name} cost={cost}ns: {:.2} ns of wall time per unit of cost",
                ratio(&f, cost)
            );
            g.bench_with_input(BenchmarkId::new(name, cost), &cost, |b, &cost| {
                b.iter(|| f(black_box(cost)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
