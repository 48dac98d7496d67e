//! The remote round trip on loopback: `Router::run_task` of a trivial task through a
//! real nats-server (Debian's `nats-server`, which `scripts/test.sh` installs; started
//! here on a free loopback port with a temporary store) and an in-process worker.
//! The control measures the same task run locally through `run_task` with no remote
//! configured, so the difference is the remote path's own cost.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use helixrouter::remote::{RemoteConfig, RemoteTask, Worker, WorkerConfig};
use helixrouter::{Router, RouterConfig, WorkHint};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Echo(u64);

impl RemoteTask for Echo {
    const NAME: &'static str = "bench_echo";
    type Output = u64;
    fn run(self) -> u64 {
        self.0.wrapping_mul(3)
    }
}

/// The server and its store directory (removed when dropped, after the server).
struct Nats {
    child: Child,
    _store: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nats() -> (Nats, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let dir = tempfile::tempdir().expect("store dir");
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server on PATH (scripts/test.sh installs Debian's nats-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (
        Nats { child, _store: dir },
        format!("nats://127.0.0.1:{port}"),
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (_nats, url) = start_nats();
    let (router, local) = rt.block_on(async {
        let mut wcfg = WorkerConfig::nats(url.clone());
        wcfg.parallelism = 1;
        wcfg.heartbeat_every = Duration::from_millis(100);
        let worker = Worker::builder(wcfg)
            .register::<Echo>()
            .build()
            .await
            .expect("worker");
        tokio::spawn(worker.run());
        // Send everything the worker can take: no cost floor, always prefer remote.
        let mut rcfg = RemoteConfig::nats(url.clone());
        rcfg.min_cost_ns = 0;
        rcfg.min_cost_over_round_trip = 0;
        rcfg.offload_pressure = 0.0;
        let router = Router::builder(RouterConfig::default())
            .remote(rcfg)
            .register::<Echo>()
            .build()
            .await
            .expect("router");
        let deadline = Instant::now() + Duration::from_secs(10);
        while router.stats().remote.is_none_or(|r| r.workers.is_empty()) {
            assert!(Instant::now() < deadline, "the worker never showed up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let local = Router::builder(RouterConfig::default())
            .build()
            .await
            .expect("local router");
        (router, local)
    });
    let mut g = c.benchmark_group("remote");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("control_run_task_local", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..iters {
                    let _ = local
                        .run_task(WorkHint::new(i, 1_000).budget_ms(1_000), Echo(i))
                        .await;
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("round_trip_p50", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..iters {
                    let out = router
                        .run_task(WorkHint::new(i, 1_000).budget_ms(1_000), Echo(i))
                        .await;
                    assert_eq!(out, Ok(i.wrapping_mul(3)));
                }
                t.elapsed()
            })
        })
    });
    g.finish();
    let s = router.stats().remote.expect("remote stats");
    // Only when the round trips ran (a filter such as `cargo bench -- choose_strategy`
    // skips them).
    let ran = router.stats().submitted > 0;
    assert!(
        !ran || s.completed > 0,
        "the round trips went remote: {s:?}"
    );
    eprintln!(
        "remote round trips: {} completed, overhead p50 {:?} µs p99 {:?} µs",
        s.completed, s.round_trip_p50_us, s.round_trip_p99_us
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
