//! Work shared by the router tests: spins, a pool blocker, the decision log, the
//! conservation check.

use std::time::Duration;

use helixrouter::{Router, RoutingDecision, Strategy, WorkHint};

/// Burns the CPU for `d` (not a sleep: the pool's speed and the learned costs see it).
pub fn spin(d: Duration) -> u64 {
    let t = std::time::Instant::now();
    let mut x = 1u64;
    while t.elapsed() < d {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    x
}

/// Every job the router was given is accounted for exactly once.
pub fn assert_router_conserved(r: &Router) {
    let s = r.stats();
    assert_eq!(
        s.submitted,
        s.completed + s.dropped + s.failed + s.cancelled + s.in_flight,
        "{s:?}"
    );
}

/// The logged decision of job `id`. A pool job can start before its submitter has
/// logged the decision, so wait a little for it.
/// The first decision recorded for job `id` (what happened when it was routed; a job
/// shed later in a queue has a second record, see [`decisions_of`]).
pub fn decision_of(router: &Router, id: u64) -> RoutingDecision {
    decisions_of(router, id).remove(0)
}

/// Every decision recorded for job `id`, oldest first (waits for at least one).
pub fn decisions_of(router: &Router, id: u64) -> Vec<RoutingDecision> {
    for _ in 0..200 {
        let mut of: Vec<RoutingDecision> = router
            .recent_decisions(10_000)
            .into_iter()
            .filter(|d| d.job_id == id)
            .collect();
        if !of.is_empty() {
            // Routing comes first: a job's second record is always a later `drop`.
            of.sort_by_key(|d| d.strategy == Strategy::Drop);
            return of;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no decision recorded for job {id}")
}

/// Starts a pool job that holds the only worker for `hold`; returns once it runs.
pub async fn occupy_pool(
    router: &Router,
    id: u64,
    hold: Duration,
) -> tokio::task::JoinHandle<bool> {
    let r = router.clone();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let h = tokio::spawn(async move {
        r.run(
            WorkHint::new(id, hold.as_nanos() as u64).budget_ms(60_000),
            move || {
                let _ = started_tx.send(());
                std::thread::sleep(hold)
            },
        )
        .await
        .is_ok()
    });
    tokio::time::timeout(Duration::from_secs(5), started_rx)
        .await
        .expect("the blocker starts within 5 s")
        .expect("blocker started");
    h
}
