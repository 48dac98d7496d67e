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

/// Seconds as the milliseconds `WorkHint::budget_ms` takes, and as nanoseconds.
const fn ms(secs: u64) -> u64 {
    secs * 1_000
}
const fn ns(secs: u64) -> u64 {
    secs * 1_000_000_000
}

/// The router's own CPU per shed job under overload: the pool's one worker is held by
/// a job planned to run 40 hours, and `queued` jobs wait behind it; each timed job's
/// deadline is later than theirs (so admission sums the work ahead of it, as for a job
/// arriving at a full queue) and its estimated finish is past it, so admission sheds
/// it. Nothing runs: the time is routing, admission and the shed's bookkeeping.
fn shed(c: &mut Criterion) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let mut g = c.benchmark_group("router/shed_on_estimate");
    for queued in [0u64, 500] {
        let rt = rt();
        let router = rt.block_on(async {
            Router::new(RouterConfig {
                cpu_parallelism: 1,
                cpu_queue_cap: 1_024,
                enable_neural: false,
                ..RouterConfig::default()
            })
        });
        let release = Arc::new(AtomicBool::new(false));
        let hold = Arc::clone(&release);
        let blocker = router.clone();
        rt.spawn(async move {
            let hint = WorkHint::new(u64::MAX, ns(144_000)).budget_ms(ms(288_000));
            let _ = blocker
                .run(hint, move || {
                    while !hold.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .await;
        });
        rt.block_on(async {
            while router.stats().cpu_running < 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        // `queued` jobs of 100 s due in 70 h wait behind it.
        for id in 0..queued {
            let r = router.clone();
            rt.spawn(async move {
                let _ = r
                    .run(
                        WorkHint::new(1 << 40 | id, ns(100)).budget_ms(ms(252_000)),
                        || (),
                    )
                    .await;
            });
        }
        rt.block_on(async {
            let t = Instant::now();
            while router.stats().cpu_busy < 1 + queued as usize {
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "the queue never filled: {:?}",
                    router.stats()
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        g.bench_function(BenchmarkId::from_parameter(queued), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for i in 0..iters {
                        // 100,000 s of work due in 71 h behind at least 40 h: shed on its estimate.
                        let hint = WorkHint::new(i, ns(100_000)).budget_ms(ms(255_600));
                        let r = router.run(hint, || ()).await;
                        assert!(r.is_err(), "the timed job must be shed");
                    }
                    t.elapsed()
                })
            })
        });
        release.store(true, Ordering::Relaxed);
        rt.block_on(router.shutdown());
    }
    g.finish();
}

criterion_group!(
    benches,
    submit_inline,
    throughput,
    scaling_sweep,
    batch_flush,
    shed
);
criterion_main!(benches);
