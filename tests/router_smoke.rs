use helixrouter::config::RouterConfig;
use helixrouter::router::{Router, WorkHint};
use helixrouter::strategies::execute_job;
use helixrouter::types::{Job, JobKind, Strategy};

fn job(id: u64, kind: JobKind, cost: u64, sp: f32, budget: u64) -> Job {
    Job {
        id,
        kind,
        inputs: vec![id, 2, 3, 4],
        compute_cost: cost,
        scaling_potential: sp,
        latency_budget_ms: budget,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_path_returns_the_kernel_output() {
    let router = Router::new(RouterConfig {
        cpu_parallelism: 2,
        ..RouterConfig::default()
    });
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
        let got = router.submit(j).await;
        assert_eq!(got, Some(vec![expect]), "{strategy}");
        let s = router.stats();
        assert_eq!(
            s.strategies[strategy.index()].completed,
            1,
            "{strategy}: {s:?}"
        );
    }
    let s = router.stats();
    assert_eq!(s.submitted, 4);
    assert_eq!(s.completed, 4);
    assert_eq!(s.in_flight, 0);
    assert_eq!(router.run(WorkHint::new(9, 100), || 41 + 1).await, Ok(42));
    router.shutdown().await;
}
