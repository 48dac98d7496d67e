//! `choose_strategy` per branch of the decision tree, with a control benchmark.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use helixrouter::choose_strategy;
use helixrouter::config::RouterConfig;
use helixrouter::types::{Job, JobKind, Strategy};

fn job(cost: u64, sp: f32) -> Job {
    Job {
        id: 1,
        kind: JobKind::HashMix,
        inputs: vec![1, 2, 3, 4],
        compute_cost: cost,
        scaling_potential: sp,
        latency_budget_ms: 10,
    }
}

fn bench(c: &mut Criterion) {
    let cfg = RouterConfig::default();
    let gate = cfg.backpressure_busy_threshold;
    let cases = [
        ("inline", job(100, 0.1), 0, Strategy::Inline),
        ("spawn", job(20_000, 0.1), 0, Strategy::Spawn),
        ("cpu_pool", job(1_000_000, 0.1), 0, Strategy::CpuPool),
        ("batch", job(1_000_000, 0.9), 0, Strategy::Batch),
        ("drop", job(1_000_000, 0.1), gate, Strategy::Drop),
    ];
    let mut g = c.benchmark_group("choose_strategy");
    // Control: the cost of passing the inputs through black_box alone.
    g.bench_function("control_black_box", |b| {
        b.iter(|| black_box((black_box(&cfg), black_box(&cases[0].1), black_box(0usize))))
    });
    for (name, job, busy, expect) in &cases {
        assert_eq!(choose_strategy(&cfg, job, *busy), *expect, "{name}");
        g.bench_function(*name, |b| {
            b.iter(|| choose_strategy(black_box(&cfg), black_box(job), black_box(*busy)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
