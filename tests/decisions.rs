//! The decision feed tells the truth: each job's record says what happened to it at
//! routing time (ran where, or shed and why), each caller gets the real reason it was
//! refused, and the log holds at most `decision_log_cap` decisions in total.

mod common;

use std::time::Duration;

use common::work::{decision_of, decisions_of, occupy_pool};
use helixrouter::{DecisionSource, Rejected, Router, RouterConfig, Strategy, WorkHint};

fn cfg(parallelism: usize, queue_cap: usize, admission: bool) -> RouterConfig {
    RouterConfig {
        cpu_parallelism: parallelism,
        cpu_queue_cap: queue_cap,
        enable_admission: admission,
        enable_neural: false,
        ..RouterConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_shed_is_recorded_as_drop_with_its_estimate() {
    let router = Router::new(cfg(1, 64, true));
    let blocker = occupy_pool(&router, 1, Duration::from_millis(400)).await;
    // 100 ms of work with a 50 ms budget behind 400 ms of running work: impossible.
    let r = router
        .run(WorkHint::new(2, 100_000_000).budget_ms(50), || 0u8)
        .await;
    match r {
        Err(Rejected::BudgetImpossible {
            estimated_ms,
            budget_ms,
        }) => {
            assert_eq!(budget_ms, 50);
            // The estimate is the router's (running work + own cost), not the few
            // microseconds that had elapsed when it was shed.
            assert!(
                estimated_ms >= 100.0,
                "estimate {estimated_ms} ms should cover the job's own 100 ms"
            );
        }
        other => panic!("expected BudgetImpossible, got {other:?}"),
    }
    let d = decision_of(&router, 2);
    assert_eq!(
        (d.strategy, d.source),
        (Strategy::Drop, DecisionSource::Admission)
    );
    assert_eq!(decision_of(&router, 1).strategy, Strategy::CpuPool);
    assert!(blocker.await.expect("blocker"));
    let s = router.stats();
    assert_eq!(
        s.submitted,
        s.completed + s.dropped + s.failed + s.in_flight
    );
    // The pool counts the refusal by its reason.
    assert_eq!(
        (s.cpu_refused_estimate, s.cpu_refused_queue_full),
        (1, 0),
        "{s:?}"
    );
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pool_queue_is_recorded_as_queue_full() {
    let router = Router::new(cfg(1, 1, false));
    let blocker = occupy_pool(&router, 1, Duration::from_millis(300)).await;
    // Fills the one queue slot.
    let r2 = router.clone();
    let queued = tokio::spawn(async move {
        r2.run(WorkHint::new(2, 1_000_000).budget_ms(60_000), || 2u8)
            .await
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        while router.stats().cpu_queue_depth < 1 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the second job queues");
    let r = router
        .run(WorkHint::new(3, 1_000_000).budget_ms(60_000), || 3u8)
        .await;
    assert_eq!(
        r,
        Err(Rejected::QueueFull {
            strategy: Strategy::CpuPool
        })
    );
    let d = decision_of(&router, 3);
    assert_eq!(
        (d.strategy, d.source),
        (Strategy::Drop, DecisionSource::QueueFull)
    );
    assert_eq!(queued.await.expect("queued job"), Ok(2));
    assert!(blocker.await.expect("blocker"));
    let s = router.stats();
    assert_eq!(
        (s.cpu_refused_queue_full, s.cpu_refused_estimate),
        (1, 0),
        "{s:?}"
    );
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_gives_each_member_the_pools_reason() {
    let router = Router::new(RouterConfig {
        batch_max_size: 2,
        ..cfg(1, 1, false)
    });
    let blocker = occupy_pool(&router, 1, Duration::from_millis(300)).await;
    let r2 = router.clone();
    let queued = tokio::spawn(async move {
        r2.run(WorkHint::new(2, 1_000_000).budget_ms(60_000), || 2u8)
            .await
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        while router.stats().cpu_queue_depth < 1 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the second job queues");
    // Two batchable heavy jobs fill a batch; the pool's queue is full, so it is refused.
    let member = |id| {
        let r = router.clone();
        tokio::spawn(async move {
            r.run(
                WorkHint::new(id, 100_000).budget_ms(60_000).scaling(0.9),
                move || id,
            )
            .await
        })
    };
    let (a, b) = (member(10), member(11));
    for m in [a, b] {
        assert_eq!(
            m.await.expect("member"),
            Err(Rejected::QueueFull {
                strategy: Strategy::Batch
            }),
            "a batch refused for a full queue says so to every member"
        );
    }
    // At routing time both joined a batch; the refusal is the feed's second record.
    let of = decisions_of(&router, 10);
    assert_eq!(of[0].strategy, Strategy::Batch, "{of:?}");
    assert!(
        of.iter()
            .any(|d| d.strategy == Strategy::Drop && d.source == DecisionSource::QueueFull),
        "{of:?}"
    );
    assert_eq!(queued.await.expect("queued job"), Ok(2));
    assert!(blocker.await.expect("blocker"));
    let s = router.stats();
    assert_eq!(
        s.submitted,
        s.completed + s.dropped + s.failed + s.in_flight
    );
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_reroute_is_not_called_admission() {
    let router = Router::new(cfg(2, 64, true));
    // Batchable heavy work whose 5 ms budget the 10 ms batch delay would blow.
    let r = router
        .run(WorkHint::new(5, 100_000).budget_ms(5).scaling(0.9), || 5u8)
        .await;
    assert_eq!(r, Ok(5));
    let d = decision_of(&router, 5);
    assert_eq!(
        (d.strategy, d.source),
        (Strategy::CpuPool, DecisionSource::Rerouted)
    );
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sheds_are_recorded_as_shutdown() {
    let router = Router::new(cfg(2, 64, true));
    router.shutdown().await;
    assert!(router.is_shutting_down());
    assert_eq!(
        router.run(WorkHint::new(9, 100), || 9u8).await,
        Err(Rejected::ShuttingDown)
    );
    let d = decision_of(&router, 9);
    assert_eq!(
        (d.strategy, d.source),
        (Strategy::Drop, DecisionSource::Shutdown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_holds_at_most_its_cap_in_total_and_the_cap_is_not_live_patchable() {
    let router = Router::new(RouterConfig {
        decision_log_cap: 10,
        ..cfg(2, 64, true)
    });
    // Decisions from many threads (the log is split over per-thread rings).
    let mut handles = Vec::new();
    for t in 0..8u64 {
        let r = router.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..100 {
                let id = t * 1_000 + i;
                let _ = r.run(WorkHint::new(id, 50_000), move || id).await;
            }
        }));
    }
    for h in handles {
        h.await.expect("submitter");
    }
    assert_eq!(router.recent_decisions(usize::MAX).len(), 10);

    let err = router
        .update_config(|c| c.decision_log_cap = 20)
        .expect_err("a running router cannot resize its log");
    let fields: Vec<_> = err.violations().iter().map(|v| v.field).collect();
    assert_eq!(fields, ["decision_log_cap"], "{err}");
    assert_eq!(router.config().decision_log_cap, 10, "nothing applied");
    // The same value (e.g. a full config posted back) is fine.
    let same = |c: &mut RouterConfig| {
        c.decision_log_cap = 10;
        c.batch_max_size = 4;
    };
    assert_eq!(
        router
            .update_config(same)
            .expect("unchanged cap")
            .batch_max_size,
        4
    );
    // Too large a cap is refused at validation, so the log stays small.
    let huge = RouterConfig {
        decision_log_cap: 1 << 20,
        ..RouterConfig::default()
    };
    assert!(huge.validate().is_err());
    router.shutdown().await;
}

/// Under 10× overload a shed job never runs: every job's closure ran exactly when the
/// caller got its result, however it was shed (at routing, on admission's estimate,
/// evicted or expired in the queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shed_jobs_never_run_under_tenfold_overload() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let router = Router::new(cfg(2, 256, true));
    // 400 jobs of 1 ms, all at once, with a 20 ms budget: 2 workers finish ~40 in time.
    let ran: Vec<Arc<AtomicBool>> = (0..400).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let handles: Vec<_> = ran
        .iter()
        .enumerate()
        .map(|(i, flag)| {
            let (r, flag) = (router.clone(), Arc::clone(flag));
            tokio::spawn(async move {
                r.run(
                    WorkHint::new(i as u64 + 1, 1_000_000).budget_ms(20),
                    move || {
                        flag.store(true, Ordering::SeqCst);
                        common::work::spin(Duration::from_millis(1))
                    },
                )
                .await
            })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for (h, flag) in handles.into_iter().zip(&ran) {
        let r = h.await.expect("job task");
        let did_run = flag.load(Ordering::SeqCst);
        match r {
            Ok(_) => {
                ok += 1;
                assert!(did_run, "a job that answered Ok never ran");
            }
            Err(e) => {
                shed += 1;
                assert!(e.is_shed(), "{e:?}");
                assert!(!did_run, "a job shed with {e:?} ran anyway");
            }
        }
    }
    assert!(
        shed >= 200,
        "10× overload sheds most jobs: {ok} ok, {shed} shed"
    );
    // About 35 fit on an idle machine; a debug build sharing the cores with other
    // tests fits fewer, but never none.
    assert!(ok >= 5, "and still runs what fits: {ok} ok, {shed} shed");
    let s = router.stats();
    assert_eq!(s.dropped, shed);
    assert_eq!(s.completed, ok);
}
