//! Hot reload: `router::reload::watch` polling a JSON patch file in real time.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{bounded, router};
use helixrouter::config::RouterConfig;
use helixrouter::router::Router;
use helixrouter::router::reload;

const POLL: Duration = Duration::from_millis(50);

/// Replaces the file's content atomically so the watcher never sees half a write.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Waits (bounded) until `pred` holds for the live config.
async fn until(r: &Router, what: &str, pred: impl Fn(&RouterConfig) -> bool) {
    bounded(5, what, async {
        while !pred(&r.config()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Lets the watcher poll several times, then asserts the config is still `expected`.
async fn stays(r: &Router, expected: &RouterConfig, what: &str) {
    let end = Instant::now() + POLL * 8;
    while Instant::now() < end {
        assert_eq!(&r.config(), expected, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(&r.config(), expected, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_patches_apply_and_invalid_or_missing_files_keep_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("helix.json");
    let r = router();
    let watcher = tokio::spawn(reload::watch(r.clone(), path.clone(), POLL));

    // No file yet: nothing changes.
    let initial = r.config();
    stays(&r, &initial, "no file").await;

    // 1. A valid sparse patch is applied (and only its fields change).
    write_atomic(&path, r#"{"batch_max_size": 16, "cpu_queue_cap": 640}"#);
    until(&r, "valid patch applied", |c| c.batch_max_size == 16).await;
    let applied = RouterConfig {
        batch_max_size: 16,
        cpu_queue_cap: 640,
        ..initial.clone()
    };
    assert_eq!(r.config(), applied);
    bounded(5, "pool resized", async {
        while r.stats().cpu_queue_cap != 640 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    // 2. Malformed JSON (e.g. half a write) is skipped.
    write_atomic(&path, r#"{"batch_max_size": 32, "cpu_queue_cap": "#);
    stays(&r, &applied, "malformed JSON").await;

    // 3. Valid JSON with an unknown field is skipped whole.
    write_atomic(&path, r#"{"batch_max_size": 32, "no_such_knob": 1}"#);
    stays(&r, &applied, "unknown field").await;

    // 4. Valid JSON that fails validation is skipped whole (the valid field too).
    write_atomic(&path, r#"{"batch_max_size": 32, "ema_alpha": 2.5}"#);
    stays(&r, &applied, "patch failing validation").await;

    // 5. Fixing the file applies it.
    write_atomic(&path, r#"{"batch_max_size": 32}"#);
    until(&r, "fixed patch applied", |c| c.batch_max_size == 32).await;
    let fixed = RouterConfig {
        batch_max_size: 32,
        ..applied
    };
    assert_eq!(r.config(), fixed);

    // 6. A deleted file keeps the config.
    std::fs::remove_file(&path).expect("delete");
    stays(&r, &fixed, "deleted file").await;

    // Meanwhile the config moves on by another route (e.g. the API).
    let api = |c: &mut RouterConfig| c.batch_max_size = 4;
    r.update_config(api).expect("api change");
    let moved = r.config();
    stays(&r, &moved, "still deleted").await;

    // 7. Re-creating the file applies it again, even with the same content as before.
    write_atomic(&path, r#"{"batch_max_size": 32}"#);
    until(&r, "re-created file applied", |c| c.batch_max_size == 32).await;
    assert_eq!(r.config(), fixed);

    // Unchanged content is applied once, not on every poll.
    r.update_config(api).expect("api change");
    stays(&r, &moved, "same content is not re-applied").await;

    // The watcher ends with the router.
    r.shutdown().await;
    bounded(5, "watcher stops after shutdown", watcher)
        .await
        .expect("watcher task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_present_at_start_is_applied_on_the_first_poll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("helix.json");
    write_atomic(
        &path,
        r#"{"enable_admission": false, "batch_max_delay_ms": 25}"#,
    );
    let r = router();
    let watcher = tokio::spawn(reload::watch(r.clone(), path, POLL));
    until(&r, "initial file applied", |c| {
        !c.enable_admission && c.batch_max_delay_ms == 25
    })
    .await;
    r.shutdown().await;
    bounded(5, "watcher stops", watcher).await.expect("watcher");
}
