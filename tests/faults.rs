//! Faults: the router must keep serving and account for every job exactly once when
//! jobs panic, the config changes at 100 Hz under load, event-stream clients stop
//! reading, the weights file or the config file is broken, and the process is sent
//! SIGTERM in the middle of overload. Every test is bounded in time.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

mod common;

use common::process::Proc;
use common::{Server, bounded};
use helixrouter::config::{RouterConfig, RouterConfigPatch};
use helixrouter::neural_router::{NeuralRouter, WeightsError};
use helixrouter::router::reload::{ReloadEvent, ReloadState, apply_event, watch};
use helixrouter::router::{Rejected, Router, RouterStats, WorkHint, neural_config};
use helixrouter::simulator::{Simulator, SimulatorConfig};
use helixrouter::types::Strategy;
use helixrouter::web::{AppState, MutationPolicy};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const PLANTED: &str = "faults: planted panic";

/// Silences the thousands of planted panics; any other panic still prints.
fn quiet_planted_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PLANTED) {
                default(info);
            }
        }));
    });
}

/// Fails the test when `fut` takes longer than `secs`.
fn heuristic() -> RouterConfig {
    RouterConfig {
        enable_neural: false,
        ..RouterConfig::default()
    }
}

/// Outcomes as the callers saw them.
#[derive(Debug, Default)]
struct Tally {
    ok: AtomicU64,
    shed: AtomicU64,
    panicked: AtomicU64,
}

impl Tally {
    fn record<T>(&self, r: &Result<T, Rejected>) {
        match r {
            Ok(_) => self.ok.fetch_add(1, Relaxed),
            Err(Rejected::Panicked) => self.panicked.fetch_add(1, Relaxed),
            Err(_) => self.shed.fetch_add(1, Relaxed),
        };
    }

    fn total(&self) -> u64 {
        self.ok.load(Relaxed) + self.shed.load(Relaxed) + self.panicked.load(Relaxed)
    }
}

/// After shutdown: nothing in flight, every job ended once, and the router's counts
/// are exactly what the callers saw.
fn assert_accounted(s: &RouterStats, t: &Tally) {
    assert_eq!(s.in_flight, 0, "in flight after shutdown: {s:?}");
    assert_eq!(
        s.submitted,
        s.completed + s.dropped + s.failed,
        "conservation broken: {s:?}"
    );
    assert_eq!(s.submitted, t.total(), "submitted vs callers");
    assert_eq!(s.completed, t.ok.load(Relaxed), "completed vs callers' Ok");
    assert_eq!(s.dropped, t.shed.load(Relaxed), "dropped vs callers' shed");
    assert_eq!(
        s.failed,
        t.panicked.load(Relaxed),
        "failed vs callers' Panicked"
    );
}

/// A hint per strategy class (under the default heuristic config), by `i % 4`.
fn hint_for(i: u64, budget_ms: u64) -> WorkHint {
    match i % 4 {
        0 => WorkHint::new(i, 1_000),                // inline
        1 => WorkHint::new(i, 20_000),               // spawn
        2 => WorkHint::new(i, 200_000).scaling(0.2), // cpu pool
        _ => WorkHint::new(i, 200_000).scaling(0.9), // batch
    }
    .budget_ms(budget_ms)
}

fn strategy_stats(s: &RouterStats, which: Strategy) -> &helixrouter::router::StrategyStats {
    s.strategies
        .iter()
        .find(|x| x.strategy == which)
        .expect("every strategy has stats")
}

// ---------------------------------------------------------------------------------
// Jobs that panic at a high rate
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_jobs_are_counted_as_failed_and_the_router_keeps_serving() {
    quiet_planted_panics();
    const JOBS: u64 = 20_000;
    let router = Router::new(heuristic());
    let tally = Arc::new(Tally::default());
    let wrong = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(256));
    bounded(60, "20k jobs, 30% panicking", async {
        let mut handles = Vec::with_capacity(JOBS as usize);
        for i in 0..JOBS {
            let permit = permits.clone().acquire_owned().await.expect("permit");
            let (r, t, w) = (router.clone(), tally.clone(), wrong.clone());
            // 3 in 10 panic, spread over every strategy class (i % 4).
            let planted = i % 10 < 3;
            handles.push(tokio::spawn(async move {
                let res = r
                    .run(hint_for(i, 10_000), move || {
                        if planted {
                            std::panic::panic_any(PLANTED);
                        }
                        i * 3
                    })
                    .await;
                // A planted job never succeeds; a healthy one never reports a panic and
                // returns its own value (even when batched next to a panicking job).
                let ok = match &res {
                    Ok(v) => !planted && *v == i * 3,
                    Err(Rejected::Panicked) => planted,
                    Err(_) => true,
                };
                if !ok {
                    w.fetch_add(1, Relaxed);
                }
                t.record(&res);
                drop(permit);
            }));
        }
        for h in handles {
            h.await.expect("caller task");
        }
    })
    .await;

    assert_eq!(wrong.load(Relaxed), 0, "a job got another's outcome");
    let panicked = tally.panicked.load(Relaxed);
    let shed = tally.shed.load(Relaxed);
    // Generous budgets and 256 outstanding: (almost) nothing is shed, so (almost)
    // every planted panic ran and was caught.
    assert!(shed <= JOBS / 100, "unexpected shedding: {shed}");
    assert!(panicked >= 6_000 - shed, "panics caught: {panicked}");
    let s = router.stats();
    for which in [
        Strategy::Inline,
        Strategy::Spawn,
        Strategy::CpuPool,
        Strategy::Batch,
    ] {
        let st = strategy_stats(&s, which);
        assert!(
            st.failed > 0 && st.completed > 0,
            "{which}: panics must be caught and healthy jobs complete there too: {st:?}"
        );
    }

    // Still serving, on every path.
    for i in 0..4 {
        let v = bounded(
            10,
            "job after the panics",
            router.run(hint_for(i, 10_000), || 7),
        )
        .await;
        assert_eq!(v, Ok(7));
        tally.ok.fetch_add(1, Relaxed);
    }
    let report = bounded(15, "shutdown", router.shutdown()).await;
    assert_eq!(report.abandoned, 0);
    assert_accounted(&router.stats(), &tally);
}

// ---------------------------------------------------------------------------------
// Config patched at 100 Hz during load
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_patched_at_100_hz_under_load_is_always_whole_and_loses_no_job() {
    let router = Router::new(heuristic());
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));

    // Load: 4 submitters, 64 outstanding each, a mix of every strategy.
    let mut load = Vec::new();
    for g in 0..4u64 {
        let (r, t, stop) = (router.clone(), tally.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(64));
            let mut i = g;
            let mut tasks = tokio::task::JoinSet::new();
            while !stop.load(Relaxed) {
                let permit = permits.clone().acquire_owned().await.expect("permit");
                let (r, t) = (r.clone(), t.clone());
                let id = i;
                tasks.spawn(async move {
                    let res = r.run(hint_for(id, 50), move || id).await;
                    t.record(&res);
                    drop(permit);
                });
                i += 4;
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }));
    }

    // Observer: every config it reads is valid, and counters never go backwards.
    let observer = {
        let (r, stop) = (router.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = r.stats();
            let mut reads = 0u64;
            while !stop.load(Relaxed) {
                let cfg = r.config();
                assert!(
                    cfg.validate().is_ok(),
                    "an invalid config was visible: {cfg:?}"
                );
                let s = r.stats();
                assert!(
                    s.completed + s.dropped + s.failed <= s.submitted,
                    "more jobs ended than were submitted: {s:?}"
                );
                assert!(
                    s.submitted >= last.submitted
                        && s.completed >= last.completed
                        && s.dropped >= last.dropped,
                    "a counter went backwards"
                );
                last = s;
                reads += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            reads
        })
    };

    // The patcher: 100 Hz for 2 s; every fifth patch is invalid and must change nothing.
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let (mut applied, mut refused) = (0u32, 0u32);
    let mut expected = router.config();
    for n in 0..200u64 {
        tick.tick().await;
        let patch: RouterConfigPatch = match n % 5 {
            0 => serde_json::from_value(serde_json::json!({
                "cpu_parallelism": 1 + n % 4, "cpu_queue_cap": 64 + 32 * (n % 7)
            })),
            1 => serde_json::from_value(serde_json::json!({ "batch_max_size": 1 + n % 16 })),
            2 => serde_json::from_value(serde_json::json!({
                "inline_threshold": 2_000 + 100 * (n % 50), "enable_admission": n % 2 == 0
            })),
            3 => serde_json::from_value(serde_json::json!({
                "batch_max_delay_ms": 1 + n % 20, "backpressure_busy_threshold": 64 + n
            })),
            _ => serde_json::from_value(serde_json::json!({
                "cpu_parallelism": 2, "inline_threshold": 1_000_000
            })),
        }
        .expect("patch json");
        let before = router.config();
        match router.patch_config(&patch) {
            Ok(merged) => {
                assert_eq!(merged, before.apply(&patch).expect("valid on its base"));
                expected = merged;
                applied += 1;
            }
            Err(e) => {
                assert_eq!(n % 5, 4, "a valid patch was refused: {e}");
                assert!(!e.violations().is_empty());
                assert_eq!(
                    router.config(),
                    before,
                    "a refused patch changed the config"
                );
                refused += 1;
            }
        }
    }
    stop.store(true, Relaxed);
    for h in load {
        bounded(20, "load generators finish", h)
            .await
            .expect("load task");
    }
    let reads = bounded(5, "observer", observer).await.expect("observer");
    assert_eq!((applied, refused), (160, 40));
    assert!(reads > 50, "observer barely ran: {reads}");
    assert_eq!(
        router.config(),
        expected,
        "the last applied patch is in force"
    );
    let s = router.stats();
    assert_eq!(
        (s.cpu_parallelism, s.cpu_queue_cap),
        (expected.cpu_parallelism, expected.cpu_queue_cap),
        "the live pool follows the config"
    );
    assert!(tally.total() > 1_000, "too little load: {}", tally.total());
    let report = bounded(15, "shutdown", router.shutdown()).await;
    assert_eq!(report.abandoned, 0);
    assert_accounted(&router.stats(), &tally);
}

// ---------------------------------------------------------------------------------
// Event-stream clients that connect and never read
// ---------------------------------------------------------------------------------

/// Opens the decision stream and sends the request, then never reads a byte. Its
/// receive buffer is small, so the server's writes block after a few KiB (on loopback
/// the default buffers would otherwise absorb tens of MiB first).
async fn silent_sse_client(addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4_096).expect("SO_RCVBUF");
    let mut s = socket.connect(addr).await.expect("connect");
    s.write_all(
        b"GET /api/stream/decisions HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await
    .expect("send request");
    s
}

async fn sse_status(addr: std::net::SocketAddr) -> reqwest::StatusCode {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    c.get(format!("http://{addr}/api/stream/decisions"))
        .send()
        .await
        .expect("SSE request")
        .status()
}

async fn run_tiny_jobs(router: &Router, n: u64) -> Duration {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(128));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let p = permits.clone().acquire_owned().await.expect("permit");
        let r = router.clone();
        set.spawn(async move {
            let v = r
                .run(WorkHint::new(i, 1_000).budget_ms(1_000), move || i)
                .await;
            drop(p);
            v
        });
    }
    while let Some(r) = set.join_next().await {
        assert!(r.expect("task").is_ok(), "a tiny job was not completed");
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_clients_that_never_read_do_not_slow_routing() {
    const LIMIT: usize = 8;
    const JOBS: u64 = 60_000;
    let router = Router::new(heuristic());
    let state = AppState::new(router.clone(), MutationPolicy::Open).with_sse_limit(LIMIT);
    let server = Server::start(state).await;

    // Baseline with nobody subscribed.
    let baseline = bounded(60, "baseline jobs", run_tiny_jobs(&router, JOBS)).await;

    // LIMIT clients take every slot and then never read.
    let mut silent = Vec::new();
    for _ in 0..LIMIT {
        silent.push(silent_sse_client(server.addr).await);
    }
    // They hold the slots: one more is refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = sse_status(server.addr).await;
        if st == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "silent clients never took the slots ({st})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Until their sockets fill, the streams encode and write events like any reader
    // (CPU the two cores share with routing). Prime them, then measure the same work
    // with 8 subscribers whose sockets are full and stay full.
    bounded(
        60,
        "priming the silent clients",
        run_tiny_jobs(&router, JOBS),
    )
    .await;
    let with_silent = bounded(
        60,
        "jobs with silent SSE clients",
        run_tiny_jobs(&router, JOBS),
    )
    .await;
    println!(
        "{JOBS} tiny jobs: {baseline:?} without subscribers, {with_silent:?} with {LIMIT} silent ones"
    );
    // Routing never waits for a subscriber (the broadcast drops for laggards and a
    // blocked stream is not polled), so the time stays that of no subscriber; the
    // bound is loose for a shared 2-core machine running other tests.
    assert!(
        with_silent < baseline * 3 + Duration::from_secs(1),
        "silent subscribers slowed routing: {baseline:?} -> {with_silent:?}"
    );
    // Still connected and holding their slots.
    assert_eq!(
        sse_status(server.addr).await,
        reqwest::StatusCode::SERVICE_UNAVAILABLE
    );
    let s = router.stats();
    assert_eq!(s.completed, 3 * JOBS, "every job completed: {s:?}");
    assert_eq!(
        s.submitted,
        s.completed + s.dropped + s.failed + s.in_flight
    );

    // Hanging up frees the slots again (noticed at the next write).
    drop(silent);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A few decisions make the server write, and so notice the closed sockets.
        let _ = router.run(WorkHint::new(1, 1_000), || 0).await;
        if sse_status(server.addr).await == reqwest::StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots were not freed after the clients left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
    bounded(15, "shutdown", router.shutdown()).await;
    let s = router.stats();
    assert_eq!(s.in_flight, 0);
    assert_eq!(s.submitted, s.completed + s.dropped + s.failed);
}

// ---------------------------------------------------------------------------------
// Weights file: corrupt, truncated, wrong shape, unwritable directory
// ---------------------------------------------------------------------------------

fn weights_json(router: &Router, dir: &Path) -> String {
    let p = dir.join("good.json");
    router.save_weights(&p).expect("save good weights");
    std::fs::read_to_string(&p).expect("read good weights")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_weights_files_are_refused_and_the_current_learner_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = Router::new(RouterConfig::default());
    // Give the learner something of its own to lose.
    for i in 0..2_000u64 {
        let _ = router.run(hint_for(i, 1_000), || 1u8).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let good = weights_json(&router, dir.path());
    let before = router.neural_snapshot();

    let mut doc: serde_json::Value = serde_json::from_str(&good).expect("weights are JSON");
    let mut wrong_rows = doc.clone();
    wrong_rows["weights"]
        .as_array_mut()
        .expect("weights rows")
        .pop();
    let mut wrong_features = doc.clone();
    wrong_features["n_features"] = serde_json::json!(3);
    let mut short_row = doc.clone();
    short_row["weights"][0]
        .as_array_mut()
        .expect("a weights row")
        .truncate(2);
    let mut nan = doc.clone();
    nan["weights"][1][0] = serde_json::Value::Null;
    doc["format_version"] = serde_json::json!(99);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00not json at all{{{".to_vec()),
        ("not utf-8", b"\xff\xfe{\"format_version\": 1}".to_vec()),
        ("empty", Vec::new()),
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        ("one byte short", good.as_bytes()[..good.len() - 1].to_vec()),
        ("wrong row count", wrong_rows.to_string().into_bytes()),
        (
            "wrong feature count",
            wrong_features.to_string().into_bytes(),
        ),
        ("short row", short_row.to_string().into_bytes()),
        ("non-finite weight", nan.to_string().into_bytes()),
        ("future version", doc.to_string().into_bytes()),
        ("an array", b"[1, 2, 3]".to_vec()),
    ];
    for (name, bytes) in &cases {
        let p = dir.path().join(format!("{}.json", name.replace(' ', "_")));
        std::fs::write(&p, bytes).expect("write case");
        let err = router
            .load_weights(&p)
            .expect_err(&format!("{name}: a broken weights file was accepted"));
        match (*name, &err) {
            (
                "garbage" | "empty" | "truncated" | "one byte short" | "an array" | "not utf-8",
                WeightsError::Parse(_),
            )
            | (
                "wrong row count" | "wrong feature count" | "short row",
                WeightsError::Shape { .. },
            )
            | ("non-finite weight", WeightsError::NonFinite { .. })
            | ("future version", WeightsError::Version { .. }) => {}
            _ => panic!("{name}: unexpected error kind {err:?}"),
        }
        assert!(!err.to_string().is_empty());
        // Standalone loading refuses it the same way.
        assert!(NeuralRouter::load(&p, neural_config(&RouterConfig::default())).is_err());
    }
    let missing = router.load_weights(&dir.path().join("nope.json"));
    assert!(
        matches!(missing, Err(WeightsError::Io { .. })),
        "{missing:?}"
    );
    assert_eq!(
        router.neural_snapshot(),
        before,
        "a refused file changed the live learner"
    );

    // Unwritable: the parent "directory" is a regular file (works even as root).
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("write plain file");
    let err = router
        .save_weights(&file.join("weights.json"))
        .expect_err("saving under a regular file must fail");
    assert!(matches!(err, WeightsError::Io { .. }), "{err:?}");
    // The target is a directory: the rename fails, and no temporary file is left.
    let target_dir = dir.path().join("is-a-dir");
    std::fs::create_dir(&target_dir).expect("mkdir");
    std::fs::write(target_dir.join("keep"), b"x").expect("fill dir");
    let err = router
        .save_weights(&target_dir)
        .expect_err("saving over a directory must fail");
    assert!(matches!(err, WeightsError::Io { .. }), "{err:?}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // A failed save leaves an existing good file untouched and the router working.
    let keep = dir.path().join("good.json");
    assert_eq!(std::fs::read_to_string(&keep).expect("good file"), good);
    assert_eq!(router.neural_snapshot(), before);
    router
        .load_weights(&keep)
        .expect("the good file still loads");
    assert_eq!(
        router.run(WorkHint::new(9, 1_000), || 5).await,
        Ok(5),
        "router serves after the failures"
    );
    router.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Config file: deleted, garbage, half-written
// ---------------------------------------------------------------------------------

/// Writes the file in place (not atomically) so a reader can see partial content.
fn write_in_place(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .expect("open config file");
    f.write_all(bytes).expect("write config file");
    f.sync_all().expect("sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_deleted_garbage_or_half_written_keeps_the_live_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("helix.json");
    let router = Router::new(heuristic());
    let mut state = ReloadState::default();
    let poll = |state: &mut ReloadState| {
        let ev = state.observe(std::fs::read_to_string(&path));
        let kind = match &ev {
            ReloadEvent::Unchanged => "unchanged",
            ReloadEvent::Patch(_) => "patch",
            ReloadEvent::Invalid(_) => "invalid",
            ReloadEvent::Missing(_) => "missing",
        };
        apply_event(&router, &path, ev);
        kind
    };

    // Missing from the start: reported once, config untouched.
    let initial = router.config();
    assert_eq!(poll(&mut state), "missing");
    assert_eq!(poll(&mut state), "unchanged");
    assert_eq!(router.config(), initial);

    let full = br#"{"batch_max_size": 12, "cpu_queue_cap": 300}"#;
    write_in_place(&path, full);
    assert_eq!(poll(&mut state), "patch");
    let applied = router.config();
    assert_eq!((applied.batch_max_size, applied.cpu_queue_cap), (12, 300));

    // Half-written: the writer has flushed the first half only.
    let next = br#"{"batch_max_size": 4, "cpu_queue_cap": 128}"#;
    write_in_place(&path, &next[..next.len() / 2]);
    assert_eq!(poll(&mut state), "invalid");
    assert_eq!(router.config(), applied, "half a file was applied");
    write_in_place(&path, next);
    assert_eq!(poll(&mut state), "patch");
    let applied = router.config();
    assert_eq!((applied.batch_max_size, applied.cpu_queue_cap), (4, 128));

    // Garbage, binary junk, an unknown field, and a whole-but-invalid patch.
    for junk in [
        &b"\x00\x01\x02garbage"[..],
        b"\xff\xfe\xfd",
        b"{\"batch_max_size\": 5, \"nonsense\": 1}",
        b"{\"inline_threshold\": 900000}",
        b"[]",
        b"",
    ] {
        write_in_place(&path, junk);
        let kind = poll(&mut state);
        assert!(
            kind == "invalid" || kind == "patch" || kind == "missing",
            "{kind} for {junk:?}"
        );
        assert_eq!(router.config(), applied, "junk {junk:?} changed the config");
    }

    // Deleted while running: kept; restored: applied again.
    std::fs::remove_file(&path).expect("delete");
    assert_eq!(poll(&mut state), "missing");
    assert_eq!(router.config(), applied);
    write_in_place(&path, full);
    assert_eq!(poll(&mut state), "patch");
    assert_eq!(router.config().batch_max_size, 12);

    // The same through the polling task itself, at 20 ms.
    let watcher = tokio::spawn(watch(
        router.clone(),
        path.clone(),
        Duration::from_millis(20),
    ));
    let wait_for = |want: usize| {
        let r = router.clone();
        async move {
            bounded(5, "watch applies the file", async {
                while r.config().batch_max_size != want {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
        }
    };
    write_in_place(&path, br#"{"batch_max_size": 6}"#);
    wait_for(6).await;
    write_in_place(&path, br#"{"batch_max_size": "#);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        router.config().batch_max_size,
        6,
        "half-written file applied"
    );
    std::fs::remove_file(&path).expect("delete");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        router.config().batch_max_size,
        6,
        "deleted file changed the config"
    );
    // Atomic replace (temp + rename), as editors and config managers do.
    let tmp = dir.path().join(".helix.json.tmp");
    std::fs::write(&tmp, br#"{"batch_max_size": 9}"#).expect("tmp");
    std::fs::rename(&tmp, &path).expect("rename");
    wait_for(9).await;
    assert!(router.config().validate().is_ok());

    router.shutdown().await;
    bounded(5, "watch stops after shutdown", watcher)
        .await
        .expect("watch task");
}

// ---------------------------------------------------------------------------------
// SIGTERM in the middle of overload, on the real binary
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_2x_overload_exits_0_drains_and_writes_complete_weights() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weights = dir.path().join("weights.json");
    // A corrupt file in place: the binary must start anyway and replace it on exit.
    std::fs::write(&weights, b"{\"format_version\": 1, \"weights\": [[0.1, ").expect("seed");

    // 2x the cores by the jobs' own declared cost (the debug build's kernels are
    // slower still, so the real overload is higher).
    let sample = Simulator::new(SimulatorConfig {
        seed: 8,
        total_jobs: 20_000,
        ..SimulatorConfig::default()
    })
    .all_jobs();
    let mean_cost_ns =
        sample.iter().map(|j| j.compute_cost as f64).sum::<f64>() / sample.len() as f64;
    let cores = helixrouter::config::available_cores() as f64;
    let rate = (2.0 * cores * 1e9 / mean_cost_ns).ceil() as u64;

    let rate_s = rate.to_string();
    let weights_s = weights.to_string_lossy().into_owned();
    let mut p = Proc::start(
        dir.path(),
        "overload",
        "127.0.0.1:0",
        &[
            ("HELIX_SIM_JOBS", "40"),
            ("HELIX_LIVE_RATE", &rate_s),
            ("HELIX_TICK_SECS", "1"),
            ("HELIX_WEIGHTS_PATH", &weights_s),
            ("RUST_LOG", "info"),
        ],
    );
    // The address it bound (port 0 → printed on stdout).
    let addr = p.listening_addr().await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let stats = |c: reqwest::Client, a: String| async move {
        c.get(format!("http://{a}/api/stats"))
            .send()
            .await
            .expect("stats request")
            .json::<serde_json::Value>()
            .await
            .expect("stats json")
    };

    // Wait until the live load is shedding: the router is past its capacity.
    let first = bounded(60, "live load reaches overload", async {
        loop {
            let s = stats(client.clone(), addr.clone()).await;
            if s["dropped"].as_u64().unwrap_or(0) > 100
                && s["submitted"].as_u64().unwrap_or(0) > 2_000
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let during = stats(client.clone(), addr.clone()).await;
    let n = |s: &serde_json::Value, k: &str| s[k].as_u64().expect("u64 field");
    assert!(
        n(&during, "submitted") > n(&first, "submitted"),
        "live load stopped"
    );
    assert!(
        n(&during, "dropped") > n(&first, "dropped"),
        "not shedding: not overloaded"
    );
    // Most of the overload is shed at once, so a single snapshot can catch a moment with
    // nothing running: sample until one shows work in flight, then send SIGTERM.
    let mut last = during;
    let busy = |s: &serde_json::Value| n(s, "in_flight") > 0 || n(s, "cpu_busy") > 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !busy(&last) {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing in flight for 10 s of overload: {last}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        last = stats(client.clone(), addr.clone()).await;
    }

    // SIGTERM mid-overload.
    p.sigterm();
    let status = p.wait_exit(30).await;
    let log = p.output();
    assert!(
        status.success(),
        "exit status {status:?} after SIGTERM\n{log}"
    );
    assert!(!log.contains("panicked"), "a panic was logged\n{log}");
    // Drained: nothing abandoned in flight, the pool stopped, weights saved.
    assert!(
        log.contains("abandoned: 0") && log.contains("pool_stopped: true"),
        "shutdown did not drain every job\n{log}"
    );
    assert!(
        log.contains("neural weights saved"),
        "weights not saved\n{log}"
    );
    let loaded = NeuralRouter::load(&weights, neural_config(&RouterConfig::default()))
        .unwrap_or_else(|e| panic!("weights file is not complete: {e}\n{log}"));
    assert!(loaded.samples() > 0, "saved weights carry no learning");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary weights files left: {leftovers:?}"
    );
}
