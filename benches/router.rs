//! Router hot-path benchmarks. Jobs are distinct and built outside the timed loop
//! (no result cache to hit); a control benchmark runs the same kernels without the
//! router so the router's own overhead is the difference.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use helixrouter::config::RouterConfig;
use helixrouter::router::{Router, WorkHint};
use helixrouter::simulator::{Simulator, SimulatorConfig};
use helixrouter::strategies::execute_job;
use helixrouter::types::{Job, JobKind};

fn tiny_jobs(n: u64, salt: u64) -> Vec<Job> {
    (0..n)
        .map(|i| Job {
            id: salt.wrapping_mul(1_000_003).wrapping_add(i),
            kind: JobKind::HashMix,
            inputs: vec![i, i ^ salt, i.wrapping_mul(31), 7],
            compute_cost: 100,
            scaling_potential: 0.1,
            latency_budget_ms: 5,
        })
        .collect()
}

/// Awaits `f(job)` for each job in turn and returns the total time (jobs were built
/// before the clock starts).
fn time_each<Fut: std::future::Future>(
    rt: &tokio::runtime::Runtime,
    jobs: Vec<Job>,
    mut f: impl FnMut(Job) -> Fut,
) -> Duration {
    rt.block_on(async {
        let t = Instant::now();
        for j in jobs {
            black_box(f(j).await);
        }
        t.elapsed()
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn submit_inline(c: &mut Criterion) {
    let rt = rt();
    let router = rt.block_on(async { Router::new(RouterConfig::default()) });
    let mut g = c.benchmark_group("router");
    let mut salt = 0;
    g.bench_function("control_kernel_only", |b| {
        b.iter_custom(|iters| {
            salt += 1;
            let jobs = tiny_jobs(iters, salt);
            let t = Instant::now();
            for j in jobs {
                black_box(execute_job(black_box(&j)));
            }
            t.elapsed()
        })
    });
    g.bench_function("submit_inline", |b| {
        b.iter_custom(|iters| {
            salt += 1;
            time_each(&rt, tiny_jobs(iters, salt), |j| router.submit(j))
        })
    });
    g.bench_function("submit_one_inline", |b| {
        b.iter_custom(|iters| {
            salt += 1;
            time_each(&rt, tiny_jobs(iters, salt), |j| router.submit_one(j))
        })
    });
    g.bench_function("run_closure_inline", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..iters {
                    black_box(
                        router
                            .run(WorkHint::new(i, 100), move || black_box(i).wrapping_mul(3))
                            .await
                            .ok(),
                    );
                }
                t.elapsed()
            })
        })
    });
    // The same with a named class: class lookup, learned-cost read, run-time
    // measurement and the class's counters (what a user naming classes pays).
    g.bench_function("run_closure_inline_class", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..iters {
                    black_box(
                        router
                            .run(WorkHint::new(i, 100).class("bench_tiny"), move || {
                                black_box(i).wrapping_mul(3)
                            })
                            .await
                            .ok(),
                    );
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

/// Two OS threads submitting distinct tiny jobs to one shared router.
fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let router = rt.block_on(async { Router::new(RouterConfig::default()) });
    let mut g = c.benchmark_group("router");
    g.throughput(Throughput::Elements(2));
    let mut salt = 1_000;
    g.bench_function("throughput_2_threads", |b| {
        b.iter_custom(|iters| {
            salt += 2;
            let barrier = std::sync::Barrier::new(2);
            let took: Vec<Duration> = std::thread::scope(|s| {
                let hs: Vec<_> = [salt, salt + 1]
                    .into_iter()
                    .map(|salt| {
                        let (router, barrier) = (router.clone(), &barrier);
                        s.spawn(move || {
                            // Built on the submitting thread (outside the timed part) so
                            // freeing them does not cross malloc arenas.
                            let jobs = tiny_jobs(iters, salt);
                            let local = rt_local();
                            barrier.wait();
                            local.block_on(async {
                                let t = Instant::now();
                                for j in jobs {
                                    black_box(router.submit_one(j).await);
                                }
                                t.elapsed()
                            })
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().expect("thread")).collect()
            });
            took.into_iter().max().unwrap_or_default()
        })
    });
    g.finish();
}

fn rt_local() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn scaling_sweep(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let router = rt.block_on(async { Router::new(RouterConfig::default()) });
    let mut g = c.benchmark_group("router/scaling_sweep");
    g.sample_size(10);
    for n in [10usize, 100, 500] {
        let jobs: Vec<Job> = Simulator::new(SimulatorConfig {
            seed: n as u64,
            total_jobs: n,
            ..Default::default()
        })
        .all_jobs()
        .into_iter()
        .map(|mut j| {
            j.compute_cost /= 10; // keep one iteration short
            j.latency_budget_ms *= 10;
            j
        })
        .collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &jobs, |b, jobs| {
            b.to_async(&rt).iter(|| async {
                let hs: Vec<_> = jobs
                    .iter()
                    .cloned()
                    .map(|j| {
                        let r = router.clone();
                        tokio::spawn(async move { r.submit(j).await })
                    })
                    .collect();
                for h in hs {
                    black_box(h.await.ok());
                }
            })
        });
    }
    g.finish();
}

fn batch_flush(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let router = rt.block_on(async {
        Router::new(RouterConfig {
            batch_max_size: 8,
            enable_neural: false,
            ..RouterConfig::default()
        })
    });
    let mut g = c.benchmark_group("router");
    g.throughput(Throughput::Elements(8));
    g.bench_function("batch_flush_8", |b| {
        b.to_async(&rt).iter(|| async {
            let hs: Vec<_> = (0..8u64)
                .map(|i| {
                    let r = router.clone();
                    let hint = WorkHint::new(i, 100_000).scaling(0.9).budget_ms(1_000);
                    tokio::spawn(async move { r.run(hint, move || black_box(i) + 1).await })
                })
                .collect();
            for h in hs {
                black_box(h.await.ok());
            }
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    submit_inline,
    throughput,
    scaling_sweep,
    batch_flush
);
criterion_main!(benches);
