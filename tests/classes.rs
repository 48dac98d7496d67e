//! Work classes and cancellation through the public API: a class's cost is learned
//! from what ran and beats a wrong hint; unknown work takes a safe path; the class
//! table is bounded; a caller that goes away before its work starts cancels it, and
//! conservation counts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use helixrouter::{OVERFLOW_CLASS, Router, RouterConfig, Strategy, WorkHint};

fn cfg() -> RouterConfig {
    RouterConfig {
        enable_neural: false,
        ..RouterConfig::default()
    }
}

fn spin(d: Duration) -> u64 {
    let t = std::time::Instant::now();
    let mut x = 1u64;
    while t.elapsed() < d {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    x
}

fn conserved(r: &Router) {
    let s = r.stats();
    assert_eq!(
        s.submitted,
        s.completed + s.dropped + s.failed + s.cancelled + s.in_flight,
        "{s:?}"
    );
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
    conserved(&r);
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
    conserved(&r);
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
        .patch_config(&helixrouter::RouterConfigPatch {
            max_classes: Some(32),
            ..Default::default()
        })
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
    conserved(&r);
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
            conserved(&r);
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
    conserved(&r);
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
