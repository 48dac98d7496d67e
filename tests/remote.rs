//! Remote workers against a real nats-server (started per test on a free loopback
//! port with a temporary store): round trip, tiny work stays local, no workers falls
//! back at once, duplicates deduped, expired jobs skipped, malformed messages counted,
//! a worker killed mid-task, a server restart, and conservation under load with a
//! worker killed halfway.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use helixrouter::remote::{DemoJob, RemoteConfig, RemoteTask, Worker, WorkerConfig};
use helixrouter::{Job, JobKind, Router, RouterConfig, Strategy, WorkHint};
use serde::{Deserialize, Serialize};

use common::nats::NatsServer;
use common::process::BIN;
use common::work::{decision_of, occupy_pool};

/// Spins for `micros` of CPU; counts its runs.
#[derive(Debug, Serialize, Deserialize)]
struct Spin {
    micros: u64,
    tag: u64,
}

static SPIN_RUNS: AtomicU64 = AtomicU64::new(0);

impl RemoteTask for Spin {
    const NAME: &'static str = "spin";
    type Output = u64;
    fn run(self) -> u64 {
        SPIN_RUNS.fetch_add(1, Ordering::SeqCst);
        let t = Instant::now();
        let mut x = self.tag;
        while t.elapsed() < Duration::from_micros(self.micros) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        self.tag
    }
}

/// The wire format as a worker written in another language sees it (the remote
/// module's docs): literal names, so a change to the protocol fails here.
mod wire {
    pub const STREAM: &str = "HELIX_JOBS";
    pub const HEARTBEAT_SUBJECT: &str = "helix.workers.heartbeat";
    pub const H_JOB: &str = "Helix-Job";
    pub const H_REPLY: &str = "Helix-Reply";
    pub const H_DEADLINE: &str = "Helix-Deadline-Ms";
    pub const H_STATUS: &str = "Helix-Status";
    pub const H_RUN_NS: &str = "Helix-Run-Ns";

    pub fn job_subject(task: &str) -> String {
        format!("helix.jobs.{task}")
    }

    pub fn consumer_name(task: &str) -> String {
        format!("helix-task-{task}")
    }
}

fn router_cfg(parallelism: usize) -> RouterConfig {
    RouterConfig {
        cpu_parallelism: parallelism,
        enable_neural: false,
        ..RouterConfig::default()
    }
}

async fn remote_router(nats: &NatsServer, parallelism: usize) -> Router {
    Router::builder(router_cfg(parallelism))
        .remote(RemoteConfig::nats(nats.url()))
        .register::<Spin>()
        .register::<DemoJob>()
        .build()
        .await
        .expect("router with remote")
}

fn worker_cfg(nats: &NatsServer) -> WorkerConfig {
    let mut cfg = WorkerConfig::nats(nats.url());
    cfg.parallelism = 1;
    cfg.ack_wait = Duration::from_secs(1);
    cfg.heartbeat_every = Duration::from_millis(200);
    cfg
}

/// Starts an in-process worker serving `Spin`; stops when the returned sender drops.
async fn spin_worker(nats: &NatsServer) -> tokio::sync::oneshot::Sender<()> {
    let worker = Worker::builder(worker_cfg(nats))
        .register::<Spin>()
        .build()
        .await
        .expect("worker");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(worker.run_until(async move {
        let _ = rx.await;
    }));
    tx
}

/// A `helixrouter worker` process serving the demo kinds.
/// A worker process killed (SIGKILL) and reaped when dropped, so a failing test leaves
/// no worker behind.
struct WorkerProc(Child);

impl std::ops::Deref for WorkerProc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for WorkerProc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker_process(nats: &NatsServer) -> WorkerProc {
    WorkerProc(
        Command::new(BIN)
            .args([
                "worker",
                "--nats",
                &nats.url(),
                "--parallelism",
                "1",
                "--ack-wait-secs",
                "1",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("worker process"),
    )
}

/// Waits until the router sees `n` live workers.
async fn wait_workers(r: &Router, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = r.stats().remote.expect("remote stats");
        if s.workers.len() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "workers never seen: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
async fn heavy_work_goes_remote_when_it_finishes_sooner_there_and_tiny_work_never_does() {
    let nats = NatsServer::start();
    let _worker = spin_worker(&nats).await;
    let r = remote_router(&nats, 1).await;
    wait_workers(&r, 1).await;
    let blocker = occupy_pool(&r, 9_999, Duration::from_millis(1_500)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // 5 ms of work, 500 ms budget: the local pool is busy for 1.5 s, a worker is idle.
    let out = r
        .run_task(
            WorkHint::new(1, 5_000_000).budget_ms(500),
            Spin {
                micros: 5_000,
                tag: 41,
            },
        )
        .await;
    assert_eq!(out, Ok(41));
    assert_eq!(decision_of(&r, 1).strategy, Strategy::Remote);
    // Tiny work runs locally whatever the pool's state.
    let tiny = r
        .run_task(
            WorkHint::new(2, 1_000).budget_ms(500),
            Spin { micros: 1, tag: 7 },
        )
        .await;
    assert_eq!(tiny, Ok(7));
    assert_ne!(decision_of(&r, 2).strategy, Strategy::Remote);
    let s = r.stats().remote.expect("remote stats");
    assert_eq!((s.sent, s.completed), (1, 1), "{s:?}");
    assert!(s.round_trip_p50_us.is_some());
    assert!(blocker.await.expect("blocker"));
    // An idle local pool wins: it has no round trip.
    let idle = r
        .run_task(
            WorkHint::new(3, 5_000_000).budget_ms(500),
            Spin {
                micros: 5_000,
                tag: 3,
            },
        )
        .await;
    assert_eq!(idle, Ok(3));
    assert_ne!(decision_of(&r, 3).strategy, Strategy::Remote);
    // The pool would make the budget (busy for 200 ms of 500) but the idle worker
    // finishes sooner: remote.
    let blocker = occupy_pool(&r, 9_999, Duration::from_millis(200)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let sooner = r
        .run_task(
            WorkHint::new(4, 5_000_000).budget_ms(500),
            Spin {
                micros: 5_000,
                tag: 4,
            },
        )
        .await;
    assert_eq!(sooner, Ok(4));
    assert_eq!(decision_of(&r, 4).strategy, Strategy::Remote);
    assert!(blocker.await.expect("blocker"));
    conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_workers_remote_is_unavailable_and_work_runs_locally_at_once() {
    let nats = NatsServer::start();
    let r = remote_router(&nats, 1).await;
    let t = Instant::now();
    let out = r
        .run_task(
            WorkHint::new(1, 5_000_000).budget_ms(2_000),
            Spin {
                micros: 5_000,
                tag: 3,
            },
        )
        .await;
    assert_eq!(out, Ok(3));
    assert_ne!(decision_of(&r, 1).strategy, Strategy::Remote);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "it waited on a missing worker"
    );
    assert_eq!(r.stats().remote.map(|s| s.sent), Some(0));
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_result_is_counted_and_the_job_completes_once() {
    let nats = NatsServer::start();
    let r = remote_router(&nats, 1).await;
    // A hand-made worker that answers every job twice (as a redelivery would).
    let client = async_nats::connect(nats.url()).await.expect("client");
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(wire::STREAM).await.expect("stream");
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            "helix-task-spin",
            pull::Config {
                durable_name: Some(wire::consumer_name("spin")),
                filter_subject: wire::job_subject("spin"),
                ..Default::default()
            },
        )
        .await
        .expect("consumer");
    let hb = serde_json::json!({
        "worker": "double",
        "parallelism": 1,
        "running": 0,
        "queued": 0,
        "tasks": ["spin"],
    });
    let beat = client.clone();
    let beats = tokio::spawn(async move {
        for _ in 0..200 {
            let _ = beat
                .publish(
                    wire::HEARTBEAT_SUBJECT,
                    serde_json::to_vec(&hb).unwrap().into(),
                )
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let answer = client.clone();
    let double = tokio::spawn(async move {
        let mut msgs = consumer.messages().await.expect("messages");
        let msg = msgs.next().await.expect("a job").expect("job");
        let h = msg.headers.clone().expect("headers");
        let reply = h.get(wire::H_REPLY).expect("reply").as_str().to_string();
        let job = h.get(wire::H_JOB).expect("job id").as_str().to_string();
        let task: serde_json::Value = serde_json::from_slice(&msg.payload).expect("task json");
        for _ in 0..2 {
            let mut rh = async_nats::HeaderMap::new();
            rh.insert(wire::H_JOB, job.as_str());
            rh.insert(wire::H_STATUS, "ok");
            rh.insert(wire::H_RUN_NS, "5000000");
            let body = serde_json::to_vec(&task["tag"]).unwrap();
            answer
                .publish_with_headers(reply.clone(), rh, body.into())
                .await
                .expect("publish");
        }
        answer.flush().await.expect("flush");
        msg.ack().await.expect("ack");
    });
    wait_workers(&r, 1).await;
    let blocker = occupy_pool(&r, 9_999, Duration::from_millis(1_500)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = r
        .run_task(
            WorkHint::new(1, 5_000_000).budget_ms(800),
            Spin {
                micros: 5_000,
                tag: 99,
            },
        )
        .await;
    assert_eq!(out, Ok(99));
    double.await.expect("double answerer");
    let deadline = Instant::now() + Duration::from_secs(5);
    while r.stats().remote.map_or(0, |s| s.duplicates) == 0 {
        assert!(
            Instant::now() < deadline,
            "the second result was never counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = r.stats();
    let strat = &s.strategies[Strategy::Remote.index()];
    assert_eq!(strat.completed, 1, "completed exactly once");
    assert_eq!(s.remote.as_ref().map(|x| x.duplicates), Some(1));
    beats.abort();
    assert!(blocker.await.expect("blocker"));
    conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_received_past_its_deadline_is_acked_and_reported_expired_not_run() {
    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.expect("client");
    let js = jetstream::new(client.clone());
    // The worker creates the stream and its consumer.
    let worker = Worker::builder(worker_cfg(&nats))
        .register::<Spin>()
        .build()
        .await
        .expect("worker");
    let mut results = client.subscribe("helix.results.test").await.expect("sub");
    let mut h = async_nats::HeaderMap::new();
    h.insert(wire::H_JOB, "1");
    h.insert(wire::H_REPLY, "helix.results.test");
    h.insert(wire::H_DEADLINE, "1000"); // long past
    let before = SPIN_RUNS.load(Ordering::SeqCst);
    let body = serde_json::to_vec(&Spin { micros: 1, tag: 5 }).unwrap();
    js.publish_with_headers(wire::job_subject("spin"), h, body.into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = rx.await;
    }));
    let msg = tokio::time::timeout(Duration::from_secs(10), results.next())
        .await
        .expect("an answer within 10 s")
        .expect("message");
    let status = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(wire::H_STATUS))
        .map(|v| v.as_str().to_string());
    assert_eq!(status.as_deref(), Some("expired"));
    assert_eq!(
        SPIN_RUNS.load(Ordering::SeqCst),
        before,
        "an expired job is not run"
    );
    // Acked: the stream is empty (work-queue retention removes acked jobs).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut stream = js.get_stream(wire::STREAM).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 0);
    drop(stop);
    running.await.expect("worker task").expect("worker ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_counted_and_never_break_anything() {
    let nats = NatsServer::start();
    let _worker = spin_worker(&nats).await;
    let r = remote_router(&nats, 1).await;
    wait_workers(&r, 1).await;
    let subject = r.stats().remote.expect("remote").results_subject;
    let client = async_nats::connect(nats.url()).await.expect("client");
    // Garbage results: no headers, a bad status, a bad id, an unknown id.
    client
        .publish(subject.clone(), "junk".into())
        .await
        .unwrap();
    for (job, status) in [("1", "weird"), ("x", "ok"), ("424242", "ok")] {
        let mut h = async_nats::HeaderMap::new();
        h.insert(wire::H_JOB, job);
        h.insert(wire::H_STATUS, status);
        client
            .publish_with_headers(subject.clone(), h, "{".into())
            .await
            .unwrap();
    }
    // Garbage heartbeats and a garbage job (no headers) for the worker.
    client
        .publish(wire::HEARTBEAT_SUBJECT, "not json".into())
        .await
        .unwrap();
    client
        .publish(
            wire::HEARTBEAT_SUBJECT,
            r#"{"worker":"","parallelism":0,"running":0,"queued":0,"tasks":[]}"#.into(),
        )
        .await
        .unwrap();
    let js = jetstream::new(client.clone());
    js.publish(wire::job_subject("spin"), vec![0xFFu8, 0, 1].into())
        .await
        .unwrap()
        .await
        .unwrap();
    client.flush().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = r.stats().remote.expect("remote");
        if s.malformed >= 5 && s.duplicates >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not all counted: {s:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Everything still works.
    let blocker = occupy_pool(&r, 9_999, Duration::from_millis(1_000)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = r
        .run_task(
            WorkHint::new(1, 5_000_000).budget_ms(500),
            Spin {
                micros: 2_000,
                tag: 8,
            },
        )
        .await;
    assert_eq!(out, Ok(8));
    assert!(blocker.await.expect("blocker"));
    conserved(&r);
    r.shutdown().await;
}

fn heavy_demo(id: u64, budget_ms: u64) -> (WorkHint, DemoJob) {
    let job = Job {
        id,
        kind: JobKind::PrimeCount,
        inputs: vec![id, 3],
        compute_cost: 40_000_000,
        scaling_potential: 0.0,
        latency_budget_ms: budget_ms,
    };
    (WorkHint::from(&job), DemoJob(job))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_is_replaced_and_the_job_completes_once() {
    let nats = NatsServer::start();
    let r = remote_router(&nats, 1).await;
    let mut first = worker_process(&nats);
    wait_workers(&r, 1).await;
    // The budget leaves room for two redeliveries (ack_wait 1 s) and a worker process
    // starting on a busy machine; the pool stays occupied past it, so local never fits.
    let blocker = occupy_pool(&r, 9_999, Duration::from_secs(8)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r2 = r.clone();
    let job = tokio::spawn(async move {
        let (hint, task) = heavy_demo(1, 6_000);
        r2.run_task(hint, task).await
    });
    // Let the job reach the worker, then kill the worker mid-task.
    tokio::time::sleep(Duration::from_millis(25)).await;
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let mut second = worker_process(&nats);
    let out = tokio::time::timeout(Duration::from_secs(14), job)
        .await
        .expect("the job ends")
        .expect("task");
    assert!(matches!(out, Ok(helixrouter::Output::U64(_))), "{out:?}");
    assert_eq!(decision_of(&r, 1).strategy, Strategy::Remote);
    let s = r.stats();
    assert_eq!(s.strategies[Strategy::Remote.index()].completed, 1);
    second.kill().ok();
    let _ = second.wait();
    assert!(blocker.await.expect("blocker"));
    conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_survived() {
    let mut nats = NatsServer::start();
    let _worker = spin_worker(&nats).await;
    let r = remote_router(&nats, 1).await;
    wait_workers(&r, 1).await;
    nats.kill();
    // While the server is down, remote is unavailable: work runs locally at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while r.stats().remote.is_some_and(|s| s.connected) {
        assert!(Instant::now() < deadline, "disconnect never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = r
        .run_task(
            WorkHint::new(1, 5_000_000).budget_ms(1_000),
            Spin {
                micros: 1_000,
                tag: 1,
            },
        )
        .await;
    assert_eq!(out, Ok(1));
    assert_ne!(decision_of(&r, 1).strategy, Strategy::Remote);
    nats.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !r.stats().remote.is_some_and(|s| s.connected) {
        assert!(Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_workers(&r, 1).await;
    // Remote works again (the worker's pull was recreated).
    let blocker = occupy_pool(&r, 9_999, Duration::from_millis(2_000)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut ok = false;
    for id in 2..40 {
        let out = r
            .run_task(
                WorkHint::new(id, 5_000_000).budget_ms(600),
                Spin {
                    micros: 2_000,
                    tag: id,
                },
            )
            .await;
        if out == Ok(id) && decision_of(&r, id).strategy == Strategy::Remote {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ok,
        "no remote completion after the restart: {:?}\n{}",
        r.stats().remote,
        nats.logs()
    );
    assert!(blocker.await.expect("blocker"));
    conserved(&r);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conservation_holds_under_5000_run_tasks_with_a_worker_killed_halfway() {
    let nats = NatsServer::start();
    let r = remote_router(&nats, 1).await;
    let mut a = worker_process(&nats);
    let mut b = worker_process(&nats);
    wait_workers(&r, 2).await;
    let mut handles = Vec::with_capacity(5_000);
    for i in 0..5_000u64 {
        let r = r.clone();
        handles.push(tokio::spawn(async move {
            let job = Job {
                id: i,
                kind: JobKind::PrimeCount,
                inputs: vec![i, 3],
                compute_cost: 6_000_000,
                scaling_potential: 0.0,
                latency_budget_ms: 1_500,
            };
            r.run_task(WorkHint::from(&job), DemoJob(job)).await
        }));
        if i == 2_500 {
            a.kill().expect("SIGKILL");
        }
        // Offered over ~2.5 s, so the kill lands while remote work is in flight.
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut ended = 0u64;
    for h in handles {
        let out = tokio::time::timeout(Duration::from_secs(30), h)
            .await
            .expect("every run_task ends")
            .expect("task");
        match out {
            Ok(_) | Err(_) => ended += 1,
        }
    }
    assert_eq!(ended, 5_000);
    let _ = a.wait();
    b.kill().ok();
    let _ = b.wait();
    let s = r.stats();
    assert_eq!(s.submitted, 5_000, "{s:?}");
    assert_eq!(s.in_flight, 0, "{s:?}");
    conserved(&r);
    let remote = s.remote.expect("remote");
    let st = &s.strategies[Strategy::Remote.index()];
    assert_eq!(
        st.routed,
        st.completed + st.dropped + st.failed + st.cancelled
    );
    assert!(remote.sent > 20, "work went remote: {remote:?}");
    eprintln!(
        "5000 run_tasks: completed {} dropped {} failed {}; remote sent {} completed {} timed out {} duplicates {} redelivered {}",
        s.completed,
        s.dropped,
        s.failed,
        remote.sent,
        remote.completed,
        remote.timed_out,
        remote.duplicates,
        remote.redelivered
    );
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_metrics_pass_promtool() {
    let nats = NatsServer::start();
    let _worker = spin_worker(&nats).await;
    let r = remote_router(&nats, 1).await;
    wait_workers(&r, 1).await;
    let blocker = occupy_pool(&r, 9_999, Duration::from_millis(800)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = r
        .run_task(
            WorkHint::new(1, 5_000_000).budget_ms(500),
            Spin {
                micros: 2_000,
                tag: 2,
            },
        )
        .await;
    assert_eq!(out, Ok(2));
    assert!(blocker.await.expect("blocker"));
    let app = helixrouter::web::app(helixrouter::web::AppState::new(
        r.clone(),
        helixrouter::web::MutationPolicy::Open,
    ));
    let reply = common::send(&app, common::get("/metrics")).await;
    let text = reply.text();
    for family in [
        "helix_remote_sent_total 1",
        "helix_remote_completed_total 1",
        "helix_remote_workers 1",
        "helix_routed_total{strategy=\"remote\"} 1",
    ] {
        assert!(text.contains(family), "{family} missing from\n{text}");
    }
    let mut f = tempfile::NamedTempFile::new().expect("temp");
    std::io::Write::write_all(&mut f, text.as_bytes()).expect("write");
    let check = Command::new(std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into()))
        .args(["check", "metrics"])
        .stdin(Stdio::from(std::fs::File::open(f.path()).expect("open")))
        .output()
        .expect("promtool (scripts/test.sh installs Debian's prometheus package)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        check.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
    r.shutdown().await;
}
