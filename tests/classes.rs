//! Work classes and cancellation through the public API: a class's cost is learned
//! from what ran and beats a wrong hint; unknown work takes a safe path; the class
//! table is bounded; a caller that goes away before its work starts cancels it, and
//! conservation counts it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::work::{assert_router_conserved, spin};
use helixrouter::{OVERFLOW_CLASS, Router, RouterConfig, Strategy, WorkHint};

fn cfg() -> RouterConfig {
    RouterConfig {
        enable_neural: false,
        ..RouterConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_hinted_100x_too_low_is_routed_by_its_measured_cost() {
    let r = Router::new(cfg());
    // Really ~2 ms of CPU, hinted as 20 µs: the hint alone would spawn it onto the
    // executor. After a few measured runs it is routed as what it is.
    let hint = |id| {
        WorkHint::new(id, 20_000)
            .class("wrongly_hinted")
            .budget_ms(1_000)
    };
    for id in 0..24 {
        assert!(
            r.run(hint(id), || spin(Duration::from_millis(2)))
                .await
                .is_ok()
        );
    }
    let before = r.recent_decisions(1_000);
    let first = before
        .iter()
        .rev()
        .find(|d| d.job_id == 0)
        .expect("first decision");
    assert_eq!(first.strategy, Strategy::Spawn, "the hint decides at first");
    assert!(
        r.run(hint(100), || spin(Duration::from_millis(2)))
            .await
            .is_ok()
    );
    let d = r
        .recent_decisions(1_000)
        .into_iter()
        .find(|d| d.job_id == 100)
        .expect("decision");
    assert_eq!(
        d.strategy,
        Strategy::CpuPool,
        "measured 2 ms goes to the pool: {d:?}"
    );
    assert_eq!(d.class.as_deref(), Some("wrongly_hinted"));
    assert!(
        d.compute_cost > 1_000_000,
        "planned with the learned cost: {d:?}"
    );
    let s = r.stats();
    let c = s
        .classes
        .iter()
        .find(|c| c.name == "wrongly_hinted")
        .expect("class stats");
    assert!(c.mismatch, "a 100x wrong hint is flagged: {c:?}");
    assert!(c.learned_cost_ns.is_some_and(|n| n > 1_500_000), "{c:?}");
    assert_eq!(c.completed, 25);
    assert_router_conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_cost_starts_on_the_pool_then_runs_where_it_belongs() {
    let r = Router::new(cfg());
    // Tiny work of a class never seen, no cost given: never inline at first.
    let first = r
        .run(WorkHint::of_class("tiny_unknown").id(1), || 1u8)
        .await;
    assert_eq!(first, Ok(1));
    let decision = |id| {
        r.recent_decisions(1_000)
            .into_iter()
            .find(|d| d.job_id == id)
            .expect("decision")
    };
    let d = decision(1);
    assert_eq!(
        d.strategy,
        Strategy::CpuPool,
        "unknown work takes the safe path"
    );
    for id in 2..40 {
        assert!(
            r.run(WorkHint::of_class("tiny_unknown").id(id), || 1u8)
                .await
                .is_ok()
        );
    }
    let d = decision(39);
    assert_eq!(
        d.strategy,
        Strategy::Inline,
        "measured tiny work runs inline: {d:?}"
    );
    assert_router_conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_cardinality_is_bounded() {
    let r = Router::new(RouterConfig {
        max_classes: 16,
        ..cfg()
    });
    for i in 0..200u64 {
        let name: &'static str = Box::leak(format!("user-{i}").into_boxed_str());
        assert!(
            r.run(WorkHint::new(i, 100).class(name), || 0u8)
                .await
                .is_ok()
        );
    }
    let s = r.stats();
    assert_eq!(
        s.classes.len(),
        17,
        "16 named classes and the overflow class"
    );
    assert_eq!(
        s.classes.last().map(|c| c.name.as_str()),
        Some(OVERFLOW_CLASS)
    );
    assert_eq!(s.class_overflow, 200 - 16);
    let err = r
        .update_config(|c| c.max_classes = 32)
        .expect_err("fixed at construction");
    assert_eq!(err.violations()[0].field, "max_classes");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_future_never_runs_its_queued_job_and_is_counted_once() {
    let r = Router::new(RouterConfig {
        cpu_parallelism: 1,
        ..cfg()
    });
    let ran = Arc::new(AtomicU64::new(0));
    // Hold the only pool worker.
    let r2 = r.clone();
    let blocker = tokio::spawn(async move {
        r2.run(WorkHint::new(1, 5_000_000).budget_ms(10_000), || {
            std::thread::sleep(Duration::from_millis(200))
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    // Queued behind it; its caller gives up after 20 ms.
    let flag = ran.clone();
    let queued = r.run(WorkHint::new(2, 5_000_000).budget_ms(10_000), move || {
        flag.fetch_add(1, Ordering::SeqCst);
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(20), queued)
            .await
            .is_err(),
        "still queued"
    );
    assert!(blocker.await.expect("blocker").is_ok());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a cancelled job never runs");
    let s = r.stats();
    assert_eq!(s.cancelled, 1, "{s:?}");
    assert_eq!(s.in_flight, 0);
    assert_router_conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conservation_holds_with_ten_thousand_submits_and_thirty_percent_cancelling() {
    let r = Router::new(RouterConfig {
        cpu_parallelism: 2,
        cpu_queue_cap: 4_096,
        ..cfg()
    });
    let ran = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::with_capacity(10_000);
    for i in 0..10_000u64 {
        let (router, ran) = (r.clone(), ran.clone());
        // A mix of spawned, pooled and batched work; every tenth named class.
        let cost = [20_000, 200_000, 100_000][(i % 3) as usize];
        let scaling = if i % 3 == 2 { 0.9 } else { 0.0 };
        let mut hint = WorkHint::new(i, cost).budget_ms(5_000).scaling(scaling);
        if i % 10 == 0 {
            hint = hint.class("tenth");
        }
        let work = move || {
            ran.fetch_add(1, Ordering::Relaxed);
            spin(Duration::from_micros(20))
        };
        handles.push(tokio::spawn(async move {
            if i % 10 < 3 {
                // 30% of callers give up almost at once.
                tokio::time::timeout(Duration::from_micros(50), router.run(hint, work))
                    .await
                    .is_ok()
            } else {
                router.run(hint, work).await.is_ok()
            }
        }));
        if i % 1_000 == 0 {
            assert_router_conserved(&r);
        }
    }
    for h in handles {
        let _ = h.await.expect("caller");
    }
    // Let the pool and batches drain what was admitted.
    tokio::time::timeout(Duration::from_secs(20), async {
        while r.stats().in_flight > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("drained");
    let s = r.stats();
    assert_router_conserved(&r);
    assert_eq!(s.submitted, 10_000);
    assert_eq!(s.in_flight, 0);
    assert!(
        s.cancelled > 0,
        "some callers went away before their job started: {s:?}"
    );
    assert_eq!(
        ran.load(Ordering::Relaxed),
        s.completed + s.failed,
        "exactly the jobs counted as run ran: none of the cancelled ones"
    );
    r.shutdown().await;
}

/// The spin of a job of `units` (1 µs per 100 units, at least 20 µs).
fn sized(units: u64) -> Duration {
    Duration::from_micros(20 + units / 100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_class_of_many_sizes_routes_each_job_on_its_own_hint() {
    // One class holds 20 µs and 5 ms work with exact per-job hints: once learned, a 5 ms
    // job is still routed as 5 ms (never spawned onto the executor) and a 20 µs job as
    // 20 µs (never shed), whatever the class's typical cost.
    let r = Router::new(cfg());
    for id in 0..64u64 {
        let (ns, d) = if id % 2 == 0 {
            (20_000, Duration::from_micros(20))
        } else {
            (5_000_000, Duration::from_millis(5))
        };
        let hint = WorkHint::new(id, ns).class("mixed").budget_ms(200);
        assert!(r.run(hint, move || spin(d)).await.is_ok(), "job {id}");
    }
    let big = WorkHint::new(1_000, 5_000_000)
        .class("mixed")
        .budget_ms(200);
    assert!(r.run(big, || spin(Duration::from_millis(5))).await.is_ok());
    let small = WorkHint::new(1_001, 20_000).class("mixed").budget_ms(200);
    assert!(
        r.run(small, || spin(Duration::from_micros(20)))
            .await
            .is_ok()
    );
    let recent = r.recent_decisions(16);
    let of = |id| recent.iter().find(|d| d.job_id == id).map(|d| d.strategy);
    assert_eq!(of(1_000), Some(Strategy::CpuPool), "5 ms work on the pool");
    assert_eq!(of(1_001), Some(Strategy::Spawn), "20 µs work spawned");
    let c = r
        .stats()
        .classes
        .into_iter()
        .find(|c| c.name == "mixed")
        .expect("class");
    assert_eq!(c.model, helixrouter::router::CostModel::Ratio);
    assert!(c.residual_spread.is_some_and(|s| s < 2.0), "{c:?}");
    assert!(
        c.spread.is_some_and(|s| s > 4.0),
        "the class's raw spread is wide: {c:?}"
    );
    assert_eq!(c.dropped, 0);
    assert_router_conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sized_work_is_learned_per_unit_and_routed_on_its_own_size() {
    let r = Router::new(cfg());
    for id in 0..160u64 {
        let units = 1_000 << (id % 6); // 1k .. 32k units: 30 µs .. 340 µs
        let hint = WorkHint::of_class("thumbnail")
            .id(id)
            .units(units)
            .budget_ms(500);
        assert!(r.run(hint, move || spin(sized(units))).await.is_ok());
    }
    let c = r
        .stats()
        .classes
        .into_iter()
        .find(|c| c.name == "thumbnail")
        .expect("class");
    assert_eq!(c.model, helixrouter::router::CostModel::Units, "{c:?}");
    let per_unit = c.ns_per_unit.expect("fitted");
    assert!((5.0..=20.0).contains(&per_unit), "~10 ns per unit: {c:?}");
    // A tiny sized job is routed on its own (small) prediction: never the pool's
    // "unknown" path, and its decision plans with far less than a large job's.
    let tiny = WorkHint::of_class("thumbnail")
        .id(9_000)
        .units(0)
        .budget_ms(500);
    assert!(r.run(tiny, || spin(sized(0))).await.is_ok());
    let large = WorkHint::of_class("thumbnail")
        .id(9_001)
        .units(64_000)
        .budget_ms(500);
    assert!(r.run(large, || spin(sized(64_000))).await.is_ok());
    let recent = r.recent_decisions(16);
    let of = |id| {
        recent
            .iter()
            .find(|d| d.job_id == id)
            .expect("logged")
            .clone()
    };
    let (d_tiny, d_large) = (of(9_000), of(9_001));
    assert!(
        d_large.compute_cost > 10 * d_tiny.compute_cost,
        "{d_large:?} vs {d_tiny:?}",
    );
    // Sizes at the extremes neither overflow nor panic.
    for units in [0, u64::MAX] {
        let h = WorkHint::of_class("thumbnail")
            .id(9_002)
            .units(units)
            .budget_ms(500);
        let _ = r.run(h, || 0u64).await;
    }
    assert_router_conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_pool_never_sheds_on_an_estimate_and_a_poisoned_estimate_recovers() {
    let r = Router::new(cfg());
    // A burst of 24 runs 100x slower than the class's real work (20 ms instead of
    // 200 µs) poisons its estimate far past the 10 ms budget.
    let hint = |id| WorkHint::of_class("poisoned").id(id).budget_ms(10);
    for id in 0..24 {
        let _ = r
            .run(hint(id).budget_ms(1_000), || {
                spin(Duration::from_millis(20))
            })
            .await;
    }
    let poisoned = r.class_estimate("poisoned").cost_ns.expect("trusted");
    assert!(poisoned > 10_000_000, "{poisoned}");
    // One job at a time on an idle pool: each runs (never shed on the estimate) and is
    // measured, so the estimate comes back within a bounded number of jobs.
    let mut recovered_after = None;
    for id in 100..164u64 {
        let res = r.run(hint(id), || spin(Duration::from_micros(200))).await;
        assert!(
            res.is_ok(),
            "job {id} shed on an idle pool: {res:?} {:?}",
            r.stats()
        );
        if r.class_estimate("poisoned")
            .cost_ns
            .is_some_and(|c| c < 400_000)
        {
            recovered_after = Some(id - 99);
            break;
        }
    }
    let n = recovered_after.expect("the estimate recovers within 64 jobs");
    assert!(n <= 40, "recovered after {n} jobs");
    assert_router_conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pool_probes_a_class_shed_on_its_estimate() {
    let r = Router::new(RouterConfig {
        cpu_parallelism: 1,
        ..cfg()
    });
    // Teach the class that its work takes 50 ms (too long for its 20 ms budget).
    for id in 0..20 {
        let h = WorkHint::of_class("probed").id(id).budget_ms(1_000);
        let _ = r.run(h, || spin(Duration::from_millis(50))).await;
    }
    // Keep the only worker busy, then send work of the class whose real cost is now
    // 100 µs: most is shed on the stale estimate, some runs anyway as probes.
    let blocker = {
        let r = r.clone();
        tokio::spawn(async move {
            let h = WorkHint::new(999, 80_000_000).budget_ms(10_000);
            r.run(h, || spin(Duration::from_millis(80))).await
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut jobs = Vec::new();
    for id in 100..164 {
        let r = r.clone();
        let h = WorkHint::of_class("probed").id(id).budget_ms(20);
        jobs.push(tokio::spawn(async move {
            r.run(h, || spin(Duration::from_micros(100))).await
        }));
    }
    for j in jobs {
        let _ = j.await;
    }
    assert!(blocker.await.expect("blocker").is_ok());
    let c = r
        .stats()
        .classes
        .into_iter()
        .find(|c| c.name == "probed")
        .expect("class");
    assert!(c.probes >= 1, "{c:?}");
    assert!(c.dropped >= 32, "most of the burst was shed: {c:?}");
    // Each probe's run was measured: the class learns from it.
    assert_eq!(c.samples, 20 + c.probes, "{c:?}");
    assert_router_conserved(&r);
    r.shutdown().await;
}
