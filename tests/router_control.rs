//! Control plane: the autoscaler acts on the live pool; the adaptive threshold rises
//! under a slow pool and returns when it recovers.

use std::time::Duration;

use helixrouter::config::RouterConfig;
use helixrouter::router::{Router, WorkHint};

fn pool_job(router: &Router, id: u64, sleep: Duration) -> tokio::task::JoinHandle<bool> {
    let r = router.clone();
    tokio::spawn(async move {
        r.run(WorkHint::new(id, 1_000_000).budget_ms(30_000), move || {
            std::thread::sleep(sleep)
        })
        .await
        .is_ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_grows_the_live_pool_under_a_ramp() {
    let router = Router::new(RouterConfig {
        cpu_parallelism: 1,
        cpu_queue_cap: 4_096,
        autoscale_min_parallelism: 1,
        autoscale_max_parallelism: 8,
        autoscale_max_queue_cap: 4_096,
        autoscale_cooldown_secs: 1,
        autoscale_window: 8,
        enable_neural: false,
        ..RouterConfig::default()
    });
    let first = router.autoscale_tick();
    assert!(!first.changed || first.parallelism >= 1);
    let mut id = 0;
    let mut handles = Vec::new();
    // Ramp the offered rate of 2 ms pool jobs: 10, 20, .. 80 per 100 ms tick.
    for step in 1..=8u64 {
        for _ in 0..step * 10 {
            id += 1;
            handles.push(pool_job(&router, id, Duration::from_millis(2)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        router.autoscale_tick();
    }
    let s = router.stats();
    let rec = s.autoscaler.clone().expect("a recommendation was made");
    assert!(rec.forecast.is_some(), "{rec:?}");
    assert!(
        s.cpu_parallelism > 1,
        "pool not grown: parallelism {} ({})",
        s.cpu_parallelism,
        rec.reason
    );
    assert!(s.cpu_parallelism <= 8);
    assert_eq!(
        router.config().cpu_parallelism,
        s.cpu_parallelism,
        "config and live pool agree"
    );
    for h in handles {
        assert!(h.await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_recommends_but_does_not_act_when_disabled() {
    let router = Router::new(RouterConfig {
        cpu_parallelism: 3,
        cpu_queue_cap: 64,
        enable_autoscaler: false,
        autoscale_min_parallelism: 1,
        autoscale_max_parallelism: 2,
        enable_neural: false,
        ..RouterConfig::default()
    });
    let rec = router.autoscale_tick();
    assert!(rec.parallelism <= 2, "{rec:?}");
    assert_eq!(router.stats().cpu_parallelism, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_threshold_rises_under_slow_pool_and_returns() {
    let router = Router::new(RouterConfig {
        cpu_parallelism: 2,
        cpu_queue_cap: 1_024,
        cpu_p95_budget_ms: 5,
        adaptive_p95_threshold_factor: 1.0,
        // This test is about the threshold logic, not thread priority: a niced pool on
        // a busy CI machine could make even the fast phase look slow.
        cpu_pool_nice: 0,
        adaptive_step: 0.5,
        enable_neural: false,
        ..RouterConfig::default()
    });
    let base = router.config().spawn_threshold;
    let slow: Vec<_> = (0..20)
        .map(|i| pool_job(&router, i, Duration::from_millis(12)))
        .collect();
    for h in slow {
        assert!(h.await.unwrap());
    }
    let raised = router.maybe_adapt_threshold();
    assert!(raised > base, "{raised} <= {base}");
    assert_eq!(router.stats().adaptive_spawn_threshold, raised);
    let raised_more = router.maybe_adapt_threshold();
    assert!(raised_more > raised);
    // A healthy pool: enough fast samples to fill the 512-sample window.
    for chunk in 0..12 {
        let fast: Vec<_> = (0..50)
            .map(|i| pool_job(&router, 1_000 + chunk * 50 + i, Duration::ZERO))
            .collect();
        for h in fast {
            assert!(h.await.unwrap());
        }
    }
    let mut t = router.maybe_adapt_threshold();
    assert!(t < raised_more);
    for _ in 0..10 {
        t = router.maybe_adapt_threshold();
    }
    assert_eq!(t, base, "threshold returns to the configured value");
    assert_eq!(
        router.config().spawn_threshold,
        base,
        "the configured value is untouched"
    );
}
