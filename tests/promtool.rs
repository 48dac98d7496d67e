//! `promtool check metrics` on the live `/metrics` output of a real server.
//! promtool is required (CI installs Debian's `prometheus` package): a missing
//! promtool fails this test rather than skipping it.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Server, bounded, client, router, run_all_strategies};
use helixrouter::router::WorkHint;
use helixrouter::web::{AppState, MutationPolicy};

fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string())
}

/// Runs `promtool check metrics < file`; returns (success, stdout, stderr).
fn check(file: &std::path::Path) -> (bool, String, String) {
    let input = std::fs::File::open(file).expect("metrics file");
    let out = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::from(input))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{} check metrics` ({e}); install promtool (Debian: apt-get install prometheus)",
                promtool()
            )
        });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn promtool_flags_a_known_bad_exposition() {
    // Guards the check itself: promtool must complain about a counter without
    // `_total`, a millisecond unit and a missing HELP, or the live check proves nothing.
    let mut f = tempfile::NamedTempFile::new().expect("temp");
    f.write_all(b"# TYPE helix_latency_p95_ms gauge\nhelix_latency_p95_ms 3\n# HELP helix_completed Jobs.\n# TYPE helix_completed counter\nhelix_completed 1\n")
        .expect("write");
    let (ok, stdout, stderr) = check(f.path());
    let said = format!("{stdout}{stderr}");
    assert!(
        !ok || !said.trim().is_empty(),
        "promtool accepted a bad exposition"
    );
    assert!(said.contains("helix_completed"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_pass_promtool_without_complaint() {
    let r = router();
    let server = Server::start(AppState::new(r.clone(), MutationPolicy::Open)).await;
    // Every executing strategy has histogram data, and there are some drops too.
    assert_eq!(run_all_strategies(&r, 5).await, 20);
    r.set_external_pressure(0.3).expect("pressure");
    let _ = r.run(WorkHint::new(99, 100), || 1).await;
    let s = r.stats();
    for st in &s.strategies[..4] {
        assert!(st.latency.count > 0, "{:?} has no data", st.strategy);
    }

    let text = bounded(10, "GET /metrics", async {
        client()
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    })
    .await;
    assert!(text.contains("helix_job_duration_seconds_bucket"), "{text}");
    assert!(text.contains(r#"le="+Inf""#), "{text}");

    let mut f = tempfile::NamedTempFile::new().expect("temp");
    f.write_all(text.as_bytes()).expect("write");
    f.flush().expect("flush");
    let (ok, stdout, stderr) = check(f.path());
    assert!(
        ok,
        "promtool check metrics failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nmetrics:\n{text}"
    );
    assert!(
        stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool complained\nstdout:\n{stdout}\nstderr:\n{stderr}\nmetrics:\n{text}"
    );

    server.stop().await;
    r.shutdown().await;
}
