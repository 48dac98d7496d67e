//! The `helixrouter` binary as a process: start, serve, SIGTERM, weights on disk.

mod common;

use std::time::Duration;

use common::process::{BIN, Proc, free_port};
use common::{SseReader, assert_conserved, bounded};
use helixrouter::neural_router::{NeuralConfig, NeuralRouter};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

async fn get_json(url: &str) -> serde_json::Value {
    let resp = http().get(url).send().await.expect("GET");
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.expect("json")
}

/// Waits until the warm-up of `jobs` jobs has ended (all of them accounted for).
async fn wait_warm_up(p: &Proc, jobs: u64) -> serde_json::Value {
    bounded(15, "warm-up simulation", async {
        loop {
            let s = get_json(&p.url("/api/stats")).await;
            assert_conserved(&s);
            let ended = s["completed"].as_u64().unwrap_or(0)
                + s["dropped"].as_u64().unwrap_or(0)
                + s["failed"].as_u64().unwrap_or(0);
            if ended >= jobs && p.output().contains("Simulation result") {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

fn no_problems_logged(out: &str) -> bool {
    !out.contains("ERROR") && !out.contains("WARN") && !out.contains("panicked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_saves_loadable_weights_and_a_restart_loads_them() {
    let data = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let weights = data.path().join("w.json");
    let w = weights.to_str().expect("utf-8 path");

    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let mut first = Proc::start(
        logs.path(),
        "first",
        &addr,
        &[("HELIX_SIM_JOBS", "50"), ("HELIX_WEIGHTS_PATH", w)],
    );
    first.wait_healthy().await;
    let stats = wait_warm_up(&first, 50).await;
    assert!(stats["submitted"].as_u64().expect("submitted") >= 50);
    let out = first.output();
    assert!(out.contains("Simulation result (50 jobs, seed 7)"), "{out}");
    assert!(out.contains("completed:"), "{out}");
    assert!(
        !weights.exists(),
        "weights are written at shutdown, not before"
    );

    first.terminate().await;
    assert!(
        weights.exists(),
        "no weights file after SIGTERM\n{}",
        first.output()
    );
    assert!(no_problems_logged(&first.output()), "{}", first.output());
    let saved = NeuralRouter::load(&weights, NeuralConfig::default())
        .unwrap_or_else(|e| panic!("saved weights do not load: {e}"));
    assert!(saved.samples() > 0, "the warm-up was learned from");
    let names: Vec<_> = std::fs::read_dir(data.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["w.json"],
        "no temp file left behind by the atomic save"
    );

    // A second start with that file loads it, logs nothing bad and serves.
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let mut second = Proc::start(
        logs.path(),
        "second",
        &addr,
        &[
            ("HELIX_SIM_JOBS", "50"),
            ("HELIX_WEIGHTS_PATH", w),
            ("RUST_LOG", "info"),
        ],
    );
    second.wait_healthy().await;
    wait_warm_up(&second, 50).await;
    let neural = get_json(&second.url("/api/neural")).await;
    assert!(
        neural["sample_count"].as_u64().expect("sample_count") >= saved.samples(),
        "the learner starts from the saved samples: {neural}"
    );
    let out = second.output();
    assert!(out.contains("neural weights loaded"), "{out}");
    assert!(no_problems_logged(&out), "{out}");
    second.terminate().await;
    let resaved = NeuralRouter::load(&weights, NeuralConfig::default()).expect("reload");
    assert!(resaved.samples() >= saved.samples());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_weights_file_falls_back_to_a_warm_start() {
    let data = tempfile::tempdir().expect("tempdir");
    let weights = data.path().join("w.json");
    std::fs::write(&weights, b"\x00\xffgarbage{\"not\": weights\x13\x37").expect("write");
    let w = weights.to_str().expect("utf-8 path");
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let mut p = Proc::start(
        data.path(),
        "corrupt",
        &addr,
        &[("HELIX_SIM_JOBS", "50"), ("HELIX_WEIGHTS_PATH", w)],
    );
    p.wait_healthy().await;
    let s = wait_warm_up(&p, 50).await;
    assert!(s["completed"].as_u64().expect("completed") > 0, "{s}");
    let out = p.output();
    assert!(out.contains("ignoring unusable weights file"), "{out}");
    assert!(!out.contains("ERROR") && !out.contains("panicked"), "{out}");
    p.terminate().await;
    NeuralRouter::load(&weights, NeuralConfig::default())
        .expect("the corrupt file was replaced by good weights at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_every_flag_with_its_env_var() {
    let out = bounded(
        15,
        "--help",
        tokio::process::Command::new(BIN).arg("--help").output(),
    )
    .await
    .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env) in [
        ("--addr", "HELIX_HTTP_ADDR"),
        ("--sim-jobs", "HELIX_SIM_JOBS"),
        ("--sim-seed", "HELIX_SIM_SEED"),
        ("--config-path", "HELIX_CONFIG_PATH"),
        ("--weights-path", "HELIX_WEIGHTS_PATH"),
        ("--api-token", "HELIX_API_TOKEN"),
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
        assert!(
            help.contains(&format!("env: {env}")),
            "{env} missing from\n{help}"
        );
    }
    for default in ["127.0.0.1:8080", "200", "7", "helix_weights.json"] {
        assert!(
            help.contains(&format!("default: {default}")),
            "{default}\n{help}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_only_with_a_config_file_that_is_hot_reloaded() {
    let data = tempfile::tempdir().expect("tempdir");
    let cfg = data.path().join("helix.json");
    std::fs::write(&cfg, r#"{"batch_max_size": 20}"#).expect("write");
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let w = data.path().join("w.json");
    let mut p = Proc::start(
        data.path(),
        "reload",
        &addr,
        &[
            ("HELIX_SIM_JOBS", "0"),
            ("HELIX_CONFIG_PATH", cfg.to_str().expect("path")),
            ("HELIX_RELOAD_SECS", "1"),
            ("HELIX_WEIGHTS_PATH", w.to_str().expect("path")),
        ],
    );
    p.wait_healthy().await;
    let c = get_json(&p.url("/api/config")).await;
    assert_eq!(c["batch_max_size"], 20, "config file applied at start");

    // An invalid edit is ignored with a warning naming the problem.
    let tmp = data.path().join("helix.tmp");
    std::fs::write(&tmp, r#"{"batch_max_size": 0}"#).expect("write");
    std::fs::rename(&tmp, &cfg).expect("rename");
    bounded(10, "warning about the invalid file", async {
        while !p.output().contains("batch_max_size") {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(get_json(&p.url("/api/config")).await["batch_max_size"], 20);

    std::fs::write(&tmp, r#"{"batch_max_size": 24}"#).expect("write");
    std::fs::rename(&tmp, &cfg).expect("rename");
    bounded(10, "hot reload", async {
        while get_json(&p.url("/api/config")).await["batch_max_size"] != 24 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    // Serve only: no warm-up and no live load.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = get_json(&p.url("/api/stats")).await;
    assert_eq!(s["submitted"], 0, "{s}");
    assert!(!p.output().contains("Simulation result"));
    p.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_bind_address_decide_who_may_mutate() {
    let data = tempfile::tempdir().expect("tempdir");
    let w = data.path().join("w.json");
    let w = w.to_str().expect("path");
    // Loopback with HELIX_API_TOKEN: bearer token required.
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let mut p = Proc::start(
        data.path(),
        "token",
        &addr,
        &[
            ("HELIX_SIM_JOBS", "0"),
            ("HELIX_API_TOKEN", "s3cret"),
            ("HELIX_WEIGHTS_PATH", w),
        ],
    );
    p.wait_healthy().await;
    let patch = |auth: Option<&str>| {
        let mut req = http()
            .patch(p.url("/api/config"))
            .json(&serde_json::json!({"batch_max_size": 12}));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        req.send()
    };
    assert_eq!(patch(None).await.expect("patch").status(), 401);
    assert_eq!(patch(Some("nope")).await.expect("patch").status(), 401);
    assert_eq!(patch(Some("s3cret")).await.expect("patch").status(), 200);
    assert_eq!(get_json(&p.url("/api/config")).await["batch_max_size"], 12);
    assert!(!p.output().contains("s3cret"), "the token is never logged");
    p.terminate().await;

    // Non-loopback without a token: mutations answer 403 and a warning is logged.
    let port = free_port("0.0.0.0");
    let mut q = Proc::start(
        data.path(),
        "open",
        &format!("0.0.0.0:{port}"),
        &[("HELIX_SIM_JOBS", "0"), ("HELIX_WEIGHTS_PATH", w)],
    );
    q.wait_healthy().await;
    let resp = http()
        .patch(q.url("/api/config"))
        .json(&serde_json::json!({"batch_max_size": 12}))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 403);
    assert_eq!(get_json(&q.url("/api/stats")).await["submitted"], 0);
    assert!(q.output().contains("non-loopback"), "{}", q.output());
    q.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_even_with_an_event_stream_open() {
    let data = tempfile::tempdir().expect("tempdir");
    let w = data.path().join("w.json");
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let mut p = Proc::start(
        data.path(),
        "sse",
        &addr,
        &[
            ("HELIX_SIM_JOBS", "20"),
            ("HELIX_LIVE_RATE", "50"),
            ("HELIX_WEIGHTS_PATH", w.to_str().expect("path")),
        ],
    );
    p.wait_healthy().await;
    let c = reqwest::Client::new();
    let resp = bounded(
        5,
        "open stream",
        c.get(p.url("/api/stream/decisions")).send(),
    )
    .await
    .expect("stream");
    assert_eq!(resp.status(), 200);
    let mut sse = SseReader::new(resp);
    let ev = sse.next_event(10).await;
    assert!(ev.id.is_some(), "live decisions flow: {ev:?}");
    // A dashboard is still connected when the operator stops the service.
    p.terminate().await;
    assert!(w.exists(), "weights saved\n{}", p.output());
    drop(sse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_flags_act_and_reject_zero() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = tempfile::tempdir().expect("tempdir");
    let w = data.path().join("w.json");
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let mut p = Proc::start(
        data.path(),
        "limits",
        &addr,
        &[
            ("HELIX_SIM_JOBS", "0"),
            ("HELIX_HEADER_TIMEOUT_SECS", "1"),
            ("HELIX_WEIGHTS_PATH", w.to_str().expect("path")),
        ],
    );
    p.wait_healthy().await;
    // A slow-loris request head is cut off after about the configured second.
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("partial head");
    let t = std::time::Instant::now();
    let mut buf = Vec::new();
    bounded(
        8,
        "server closes the slow connection",
        s.read_to_end(&mut buf),
    )
    .await
    .ok();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        t.elapsed()
    );
    p.terminate().await;

    let out = std::process::Command::new(BIN)
        .env("HELIX_MAX_CONNECTIONS", "0")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max-connections"), "{err}");
}
