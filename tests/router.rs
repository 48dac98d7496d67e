//! Router runtime behaviour: every path, conservation, bounds, isolation, timers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use helixrouter::config::RouterConfig;
use helixrouter::router::{Rejected, Router, WorkHint};
use helixrouter::simulator::{Simulator, SimulatorConfig};
use helixrouter::strategies::execute_job;
use helixrouter::types::{JobKind, Strategy};

use common::job;

fn cfg(par: usize, cap: usize) -> RouterConfig {
    RouterConfig {
        cpu_parallelism: par,
        cpu_queue_cap: cap,
        enable_neural: false,
        ..RouterConfig::default()
    }
}

/// A pool-bound hint (heavy, not batchable) with a generous budget.
fn pool_hint(id: u64) -> WorkHint {
    WorkHint::new(id, 1_000_000).budget_ms(60_000)
}

fn assert_conserved(r: &Router) {
    let s = r.stats();
    assert_eq!(
        s.submitted,
        s.completed + s.dropped + s.failed + s.in_flight,
        "{s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_path_returns_the_kernel_output() {
    let router = Router::new(cfg(2, 64));
    let cases = [
        (job(1, JobKind::HashMix, 1_000, 0.0, 50), Strategy::Inline),
        (
            job(2, JobKind::PrimeCount, 20_000, 0.0, 50),
            Strategy::Spawn,
        ),
        (
            job(3, JobKind::MonteCarloRisk, 200_000, 0.1, 500),
            Strategy::CpuPool,
        ),
        (
            job(4, JobKind::PrimeCount, 200_000, 0.9, 500),
            Strategy::Batch,
        ),
    ];
    for (j, strategy) in cases {
        let expect = execute_job(&j);
        assert_eq!(router.submit(j).await, Some(vec![expect]), "{strategy}");
        assert_eq!(
            router.stats().strategies[strategy.index()].completed,
            1,
            "{strategy}"
        );
    }
    let s = router.stats();
    assert_eq!((s.submitted, s.completed, s.in_flight), (4, 4, 0));
    assert_eq!(router.run(WorkHint::new(9, 100), || 41 + 1).await, Ok(42));
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conservation_under_10k_concurrent_submits_with_concurrent_patches() {
    let router = Router::new(RouterConfig {
        cpu_parallelism: 2,
        cpu_queue_cap: 64,
        ..RouterConfig::default()
    });
    let jobs = Simulator::new(SimulatorConfig {
        seed: 11,
        total_jobs: 10_000,
        ..Default::default()
    })
    .all_jobs();
    let patcher = {
        let r = router.clone();
        tokio::spawn(async move {
            for i in 0..200usize {
                r.update_config(|c| {
                    c.cpu_parallelism = 1 + i % 3;
                    c.cpu_queue_cap = 16 + (i % 4) * 16;
                    c.batch_max_size = 2 + i % 7;
                })
                .unwrap();
                assert_conserved(&r);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|mut j| {
            j.compute_cost /= 20; // keep the test short; routing still spans every strategy
            let r = router.clone();
            tokio::spawn(async move { r.submit(j).await.is_some() })
        })
        .collect();
    let mut ok = 0u64;
    let mut none = 0u64;
    for h in handles {
        if h.await.unwrap() { ok += 1 } else { none += 1 }
    }
    patcher.await.unwrap();
    let s = router.stats();
    assert_eq!(s.submitted, 10_000);
    assert_eq!(s.in_flight, 0, "{s:?}");
    assert_eq!(s.completed, ok);
    assert_eq!(s.dropped + s.failed, none);
    let routed: u64 = s.strategies.iter().map(|x| x.routed).sum();
    assert_eq!(routed, 10_000);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cpu_queue_sheds_instead_of_blocking() {
    let router = Router::new(cfg(1, 2));
    let gate = Arc::new(std::sync::Barrier::new(2));
    // One running (held on a barrier) + two queued fill the pool.
    let mut held = Vec::new();
    {
        let g = gate.clone();
        let r = router.clone();
        held.push(tokio::spawn(async move {
            r.run(pool_hint(1), move || {
                g.wait();
                1
            })
            .await
        }));
    }
    while router.stats().cpu_running < 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for id in 2..=3 {
        let r = router.clone();
        held.push(tokio::spawn(async move {
            r.run(pool_hint(id), move || id as i32).await
        }));
    }
    while router.stats().cpu_queue_depth < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let shed = tokio::time::timeout(Duration::from_secs(2), router.run(pool_hint(4), || 4)).await;
    assert_eq!(
        shed.expect("a full queue must answer at once"),
        Err(Rejected::QueueFull {
            strategy: Strategy::CpuPool
        })
    );
    gate.wait();
    let results: Vec<_> = futures_join(held).await;
    assert_eq!(results, vec![Ok(1), Ok(2), Ok(3)]);
    assert_conserved(&router);
    assert_eq!(router.stats().dropped, 1);
}

async fn futures_join<T: Send + 'static>(hs: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in hs {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_are_isolated_and_counted_as_failed() {
    let router = Router::new(cfg(2, 16));
    let hints = [
        WorkHint::new(1, 100),                                   // inline
        WorkHint::new(2, 20_000),                                // spawn
        pool_hint(3),                                            // cpu pool
        WorkHint::new(4, 100_000).scaling(0.9).budget_ms(5_000), // batch
    ];
    for h in hints {
        let r: Result<u8, _> = router.run(h, || panic!("boom")).await;
        assert_eq!(r, Err(Rejected::Panicked), "{h:?}");
    }
    let s = router.stats();
    assert_eq!(s.failed, 4);
    for st in [
        Strategy::Inline,
        Strategy::Spawn,
        Strategy::CpuPool,
        Strategy::Batch,
    ] {
        assert_eq!(s.strategies[st.index()].failed, 1, "{st}");
    }
    assert_eq!(
        router.run(pool_hint(5), || 5).await,
        Ok(5),
        "router keeps serving"
    );
    assert_conserved(&router);
}

#[tokio::test(start_paused = true)]
async fn batch_flushes_on_size_without_waiting() {
    let router = Router::new(RouterConfig {
        batch_max_size: 4,
        batch_max_delay_ms: 60_000,
        ..cfg(2, 16)
    });
    let hs: Vec<_> = (0..4)
        .map(|i| {
            let r = router.clone();
            tokio::spawn(async move {
                r.run(
                    WorkHint::new(i, 100_000).scaling(0.9).budget_ms(240_000),
                    move || i,
                )
                .await
            })
        })
        .collect();
    let got = futures_join(hs).await;
    assert_eq!(
        got,
        vec![Ok(0), Ok(1), Ok(2), Ok(3)],
        "each caller gets its own result"
    );
    let s = router.stats();
    assert_eq!((s.batch_flushes_full, s.batch_flushes_timer), (1, 0));
    assert_eq!(s.strategies[Strategy::Batch.index()].completed, 4);
}

#[tokio::test(start_paused = true)]
async fn batch_flushes_on_delay() {
    let router = Router::new(RouterConfig {
        batch_max_size: 8,
        batch_max_delay_ms: 10,
        ..cfg(2, 16)
    });
    let r = router.clone();
    let h = tokio::spawn(async move {
        r.run(
            WorkHint::new(1, 100_000).scaling(0.9).budget_ms(5_000),
            || 7,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(9)).await;
    assert!(!h.is_finished(), "flushed before batch_max_delay_ms");
    assert_eq!(router.stats().batch_queue_depth, 1);
    assert_eq!(h.await.unwrap(), Ok(7));
    let s = router.stats();
    assert_eq!((s.batch_flushes_full, s.batch_flushes_timer), (0, 1));
}

/// Runs 12 sleeping pool jobs and returns the highest concurrency observed.
async fn observed_concurrency(router: &Router) -> usize {
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..12)
        .map(|i| {
            let (r, now, max) = (router.clone(), now.clone(), max.clone());
            tokio::spawn(async move {
                r.run(pool_hint(i), move || {
                    let c = now.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(c, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(15));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        })
        .collect();
    for r in futures_join(hs).await {
        r.unwrap();
    }
    max.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizing_cpu_parallelism_changes_observed_concurrency() {
    let router = Router::new(cfg(2, 64));
    assert_eq!(observed_concurrency(&router).await, 2);
    router.update_config(|c| c.cpu_parallelism = 4).unwrap();
    assert_eq!(observed_concurrency(&router).await, 4);
    router.update_config(|c| c.cpu_parallelism = 1).unwrap();
    assert_eq!(observed_concurrency(&router).await, 1);
    let s = router.stats();
    assert_eq!(s.cpu_parallelism, 1);
    assert_eq!(s.dropped, 0, "an idle resized pool must not shed: {s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressure_decays_after_load_stops() {
    let router = Router::new(RouterConfig {
        backpressure_busy_threshold: 4,
        ..cfg(1, 4)
    });
    // Saturate: one blocked worker, a full queue, and a stream of shed jobs.
    let gate = Arc::new(std::sync::Barrier::new(2));
    let g = gate.clone();
    let r = router.clone();
    let blocker = tokio::spawn(async move {
        r.run(pool_hint(0), move || {
            g.wait();
        })
        .await
    });
    for i in 0..2_000 {
        let _ = router
            .run(WorkHint::new(i, 5_000_000).budget_ms(1), || ())
            .await;
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let high = router.stats().pressure.score;
    assert!(high > 0.3, "pressure under load: {high}");
    gate.wait();
    blocker.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let low = router.stats().pressure;
    assert!(low.score < 0.05, "pressure did not decay: {low:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_pressure_blends_and_expires() {
    let router = Router::new(RouterConfig {
        external_pressure_ttl_ms: 300,
        ..cfg(2, 16)
    });
    router.set_external_pressure(0.9).unwrap();
    assert!(router.stats().pressure.score >= 0.9);
    assert!(router.set_external_pressure(1.5).is_err());
    assert!(router.set_external_pressure(f64::NAN).is_err());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let p = router.stats().pressure;
    assert_eq!(p.external, None);
    assert!(p.score < 0.5, "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_loses_no_accounted_job() {
    let router = Router::new(cfg(2, 256));
    let hs: Vec<_> = (0..300u64)
        .map(|i| {
            let r = router.clone();
            let hint = if i % 3 == 0 {
                WorkHint::new(i, 200_000).scaling(0.9).budget_ms(10_000)
            } else {
                pool_hint(i)
            };
            tokio::spawn(async move {
                r.run(hint, move || std::thread::sleep(Duration::from_micros(200)))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = router.shutdown().await;
    assert_eq!(report.abandoned, 0);
    let results = futures_join(hs).await;
    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
    let s = router.stats();
    assert_eq!(s.in_flight, 0);
    assert_eq!(s.submitted, 300);
    assert_eq!(s.completed, ok);
    assert_eq!(s.dropped + s.failed, 300 - ok);
    assert_eq!(
        router.run(WorkHint::new(1, 10), || 1).await,
        Err(Rejected::ShuttingDown)
    );
    let again = router.shutdown().await; // idempotent
    assert_eq!(again.abandoned, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_broadcast_and_logged() {
    let router = Router::new(cfg(2, 16));
    let mut rx = router.subscribe_decisions();
    router
        .submit(job(77, JobKind::HashMix, 500, 0.0, 10))
        .await
        .unwrap();
    let d = rx.recv().await.unwrap();
    assert_eq!(
        (d.job_id, d.strategy, d.kind),
        (77, Strategy::Inline, Some(JobKind::HashMix))
    );
    assert_eq!(router.recent_decisions(10)[0].job_id, 77);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmeetable_budget_is_shed_at_once_when_the_pool_is_busy() {
    let router = Router::new(cfg(1, 64));
    // On an idle pool an estimate alone never sheds: the job runs and is measured.
    let r = router
        .run(WorkHint::new(1, 50_000_000).budget_ms(10), || 7)
        .await;
    assert_eq!(r, Ok(7), "an idle pool runs it");
    // With the only worker busy, 50 ms of work with a 10 ms budget cannot make it.
    let gate = Arc::new(std::sync::Barrier::new(2));
    let g = gate.clone();
    let r2 = router.clone();
    let blocker = tokio::spawn(async move { r2.run(pool_hint(0), move || g.wait()).await });
    while router.stats().cpu_running == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let r = router
        .run(WorkHint::new(2, 50_000_000).budget_ms(10), || 7)
        .await;
    gate.wait();
    assert!(blocker.await.unwrap().is_ok());
    assert!(
        matches!(r, Err(Rejected::BudgetImpossible { budget_ms: 10, .. })),
        "{r:?}"
    );
    assert!(r.unwrap_err().is_shed());
}

#[tokio::test(start_paused = true)]
async fn batch_flushes_when_its_cost_reaches_the_cap() {
    let router = Router::new(RouterConfig {
        batch_max_size: 8,
        batch_max_delay_ms: 60_000,
        batch_max_cost_ns: 2_000_000,
        ..cfg(2, 16)
    });
    let hs: Vec<_> = (0..2)
        .map(|i| {
            let r = router.clone();
            let hint = WorkHint::new(i, 1_500_000).scaling(0.9).budget_ms(240_000);
            tokio::spawn(async move { r.run(hint, move || i).await })
        })
        .collect();
    assert_eq!(futures_join(hs).await, vec![Ok(0), Ok(1)]);
    let s = router.stats();
    assert_eq!(
        (s.batch_flushes_full, s.batch_flushes_timer),
        (1, 0),
        "3 ms of work in a 2 ms batch flushes at once"
    );
}
