//! The run-time ledger conserves time: what the router says its CPU pool spent on
//! on-time, late and aborted work adds up to the CPU time the pool's threads used, as
//! the kernel measured it; a late job's run counts once, as late; work whose caller
//! left is counted as aborted.
//!
//! One test in its own binary, so no other test competes with the pool's threads for
//! the cores while it measures them.

mod common;

use std::time::Duration;

use common::work::{assert_router_conserved, spin};
use helixrouter::{Router, RouterConfig, Strategy, WorkHint};

/// CPU nanoseconds the threads named `helix-cpu-*` of this process have used (the
/// first field of `/proc/self/task/<tid>/schedstat`, the kernel's exact run time).
fn pool_thread_cpu_ns() -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = entry.expect("task entry").path();
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread exited meanwhile
        };
        if !name.starts_with("helix-cpu") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_work_time_adds_up_to_the_pool_threads_cpu_time() {
    let router = Router::new(RouterConfig {
        cpu_parallelism: 2,
        cpu_queue_cap: 1_024,
        enable_neural: false,
        ..RouterConfig::default()
    });
    // Starts the pool's threads, then measures from a quiet pool.
    router
        .run(WorkHint::new(0, 1_000_000).budget_ms(60_000), || ())
        .await
        .expect("warm-up");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = router.stats();
    let cpu_before = pool_thread_cpu_ns();

    // On time: 120 spins of 4 ms, 8 in flight at a time, generous budgets.
    let on_time = (1..=120u64).map(|id| {
        let r = router.clone();
        async move {
            r.run(
                WorkHint::new(id, 4_000_000)
                    .budget_ms(60_000)
                    .class("ledger"),
                || spin(Duration::from_millis(4)),
            )
            .await
        }
    });
    let mut on_time = on_time.collect::<Vec<_>>();
    while !on_time.is_empty() {
        let chunk: Vec<_> = on_time.drain(..on_time.len().min(8)).collect();
        for r in futures_join(chunk).await {
            r.expect("an on-time job runs");
        }
    }

    // Late: 10 jobs that claim 1 ms, run 3 ms, with a 2 ms budget, one at a time (the
    // pool is idle, so each is admitted and finishes over its budget). On a machine
    // so busy that the pool's observed slowdown makes even 1 ms look impossible, some
    // are shed instead: those never run and cost nothing.
    let mut late_runs = 0u64;
    for id in 1_000..1_010u64 {
        let r = router
            .run(WorkHint::new(id, 1_000_000).budget_ms(2), || {
                spin(Duration::from_millis(3))
            })
            .await;
        late_runs += u64::from(r.is_ok());
    }
    assert!(late_runs > 0, "no late job ran");

    // Aborted: the caller of a 40 ms job gives up while it runs.
    let r = router.clone();
    let caller = tokio::spawn(async move {
        r.run(WorkHint::new(2_000, 40_000_000).budget_ms(60_000), || {
            spin(Duration::from_millis(40))
        })
        .await
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        while router.stats().cpu_running == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the aborted job starts");
    caller.abort();
    tokio::time::timeout(Duration::from_secs(5), async {
        while router.stats().cpu_busy > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the aborted job ends");
    tokio::time::sleep(Duration::from_millis(20)).await;

    let cpu_ns = pool_thread_cpu_ns() - cpu_before;
    let after = router.stats();
    assert_router_conserved(&router);
    let pool = |s: &helixrouter::router::RouterStats| {
        s.strategies
            .iter()
            .find(|x| x.strategy == Strategy::CpuPool)
            .expect("a CpuPool row")
            .work
    };
    let (w0, w1) = (pool(&before), pool(&after));
    let on_time_secs = w1.on_time_secs - w0.on_time_secs;
    let late_secs = w1.late_secs - w0.late_secs;
    let aborted_secs = w1.aborted_secs - w0.aborted_secs;
    let ledger = on_time_secs + late_secs + aborted_secs;
    let cpu = cpu_ns as f64 / 1e9;
    assert!(
        (ledger - cpu).abs() <= 0.02 * cpu,
        "ledger {ledger:.4} s (on time {on_time_secs:.4}, late {late_secs:.4}, aborted \
         {aborted_secs:.4}) vs the pool threads' CPU {cpu:.4} s"
    );
    // CPU time: at most the spins' wall time, less only what preemption took.
    assert!(
        (0.40..0.50).contains(&on_time_secs),
        "120 × 4 ms on time, got {on_time_secs}"
    );
    // Each late job counted once, for its whole run.
    assert_eq!(after.late - before.late, late_runs);
    let n = late_runs as f64;
    assert!(
        (0.002 * n..0.0035 * n).contains(&late_secs),
        "{late_runs} × 3 ms late, got {late_secs}"
    );
    assert!(
        (0.030..0.045).contains(&aborted_secs),
        "one 40 ms aborted run, got {aborted_secs}"
    );
    // The class's own ledger holds its on-time work.
    let class = after
        .classes
        .iter()
        .find(|c| c.name == "ledger")
        .expect("the ledger class");
    assert!(
        (class.work.on_time_secs - on_time_secs).abs() < 1e-9
            && class.work.late_secs == 0.0
            && class.work.aborted_secs == 0.0,
        "class ledger {:?} vs pool on time {on_time_secs}",
        class.work
    );
    let wasted = after.work.wasted_share();
    assert!(wasted > 0.0 && wasted < 0.2, "wasted share {wasted}");
}

/// Awaits every future (in order), each on its own task.
async fn futures_join<T: Send + 'static>(
    futs: Vec<impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("job task"));
    }
    out
}
