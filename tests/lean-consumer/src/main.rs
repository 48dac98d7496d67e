//! Uses helixrouter as a library user with `default-features = false` would: the root
//! re-exports, a closure through `Router::run`, a clean shutdown. Exits non-zero when
//! anything is off. `scripts/test.sh` runs it and checks its dependency tree.

use helixrouter::{Rejected, Router, RouterConfig, WorkHint};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let router = Router::try_new(RouterConfig::default())?;
    let mut sum = 0u64;
    for id in 0..1_000u64 {
        // Costs from 1 µs to 1 ms: inline, spawned and pooled work.
        let cost = 1_000 * (1 + id % 1_000);
        let hint = WorkHint::new(id, cost).budget_ms(1_000);
        match router.run(hint, move || id * 2).await {
            Ok(v) => sum += v,
            Err(Rejected::Panicked) => return Err("work panicked".into()),
            Err(shed) => return Err(format!("job {id} shed on an idle router: {shed}").into()),
        }
    }
    let stats = router.stats();
    let report = router.shutdown().await;
    if sum != (0..1_000u64).map(|i| i * 2).sum::<u64>() || stats.completed != 1_000 {
        return Err(format!("wrong results: sum {sum}, stats {stats:?}").into());
    }
    // The stats have the same fields with or without features: no remote side here.
    if stats.remote.is_some() {
        return Err("a router without the remote feature reports a remote side".into());
    }
    if report.abandoned != 0 {
        return Err(format!("shutdown abandoned {} jobs", report.abandoned).into());
    }
    println!("lean consumer: 1000 closures routed and run, conservation holds");
    Ok(())
}
