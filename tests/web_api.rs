//! The HTTP edge driven without a socket (`web::app` + `tower::ServiceExt::oneshot`):
//! every route, the status-code table and the token rules.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Reply, app_with, assert_conserved, get, json_req, router, run_all_strategies, send};
use helixrouter::config::RouterConfig;
use helixrouter::web::MutationPolicy;
use serde_json::{Value, json};

fn violations(r: &Reply) -> Vec<(String, String)> {
    let body = r.json();
    body["violations"]
        .as_array()
        .unwrap_or_else(|| panic!("no violations array in {body}"))
        .iter()
        .map(|v| {
            (
                v["field"].as_str().expect("field").to_string(),
                v["rule"].as_str().expect("rule").to_string(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- routes

#[tokio::test]
async fn health_reports_ok_and_uptime() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let reply = send(&app, get("/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type().starts_with("application/json"));
    let v = reply.json();
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 2, "exactly status and uptime_secs: {v}");
    assert_eq!(v["status"], "ok");
    assert!(
        v["uptime_secs"].is_u64(),
        "uptime_secs is a whole number: {v}"
    );
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_is_json_that_conserves_jobs() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let done = run_all_strategies(&r, 3).await;
    assert_eq!(done, 12);
    let reply = send(&app, get("/api/stats")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let s = reply.json();
    assert_conserved(&s);
    assert_eq!(s["submitted"], 12);
    assert_eq!(s["completed"], 12);
    let strategies = s["strategies"].as_array().expect("strategies");
    assert_eq!(
        strategies.len(),
        6,
        "inline, spawn, cpu_pool, batch, drop, remote"
    );
    for name in ["inline", "spawn", "cpu_pool", "batch"] {
        let st = strategies
            .iter()
            .find(|x| x["strategy"] == name)
            .unwrap_or_else(|| panic!("no {name} in {s}"));
        assert_eq!(st["completed"], 3, "{name}: {st}");
        assert!(st["latency"]["p50_us"].as_f64().expect("p50") > 0.0);
    }
    for k in [
        "pressure",
        "cpu_busy",
        "cpu_parallelism",
        "adaptive_spawn_threshold",
    ] {
        assert!(!s[k].is_null(), "missing {k}: {s}");
    }
    r.shutdown().await;
}

#[tokio::test]
async fn config_get_round_trips_through_post() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let got = send(&app, get("/api/config")).await;
    assert_eq!(got.status, StatusCode::OK);
    let cfg: RouterConfig = serde_json::from_slice(&got.body).expect("RouterConfig");
    assert_eq!(cfg, r.config());
    let back = send(&app, json_req("POST", "/api/config", got.body.clone())).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());
    let cfg2: RouterConfig = serde_json::from_slice(&back.body).expect("RouterConfig");
    assert_eq!(cfg2, cfg);
    assert_eq!(r.config(), cfg);
    r.shutdown().await;
}

#[tokio::test]
async fn patch_merges_sparse_fields_and_applies_them() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let before = r.config();
    let reply = send(
        &app,
        json_req(
            "PATCH",
            "/api/config",
            r#"{"batch_max_size": 16, "ema_alpha": 0.3, "cpu_queue_cap": 700}"#,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let merged: RouterConfig = serde_json::from_slice(&reply.body).expect("RouterConfig");
    let expected = RouterConfig {
        batch_max_size: 16,
        ema_alpha: 0.3,
        cpu_queue_cap: 700,
        ..before
    };
    assert_eq!(merged, expected, "only the patched fields change");
    assert_eq!(r.config(), expected, "the merged config is in force");
    assert_eq!(r.stats().cpu_queue_cap, 700, "the live pool was resized");
    // An empty patch is valid and changes nothing.
    let empty = send(&app, json_req("PATCH", "/api/config", "{}")).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(r.config(), expected);
    r.shutdown().await;
}

#[tokio::test]
async fn post_replaces_the_whole_config() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let patched = send(
        &app,
        json_req("PATCH", "/api/config", r#"{"batch_max_size": 16}"#),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK);
    let whole = RouterConfig {
        inline_threshold: 5_000,
        spawn_threshold: 90_000,
        cpu_parallelism: 2,
        enable_neural: false,
        ..RouterConfig::default()
    };
    let reply = send(
        &app,
        json_req(
            "POST",
            "/api/config",
            serde_json::to_vec(&whole).expect("ser"),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let applied: RouterConfig = serde_json::from_slice(&reply.body).expect("RouterConfig");
    assert_eq!(applied, whole);
    assert_eq!(r.config(), whole);
    assert_eq!(
        r.config().batch_max_size,
        RouterConfig::default().batch_max_size
    );
    assert_eq!(r.stats().cpu_parallelism, 2, "the live pool was resized");
    // POST is whole, not sparse: missing fields take their defaults.
    let partial = send(
        &app,
        json_req("POST", "/api/config", r#"{"batch_max_size": 12}"#),
    )
    .await;
    assert_eq!(partial.status, StatusCode::OK, "{}", partial.text());
    assert_eq!(
        r.config(),
        RouterConfig {
            batch_max_size: 12,
            ..RouterConfig::default()
        }
    );
    r.shutdown().await;
}

#[tokio::test]
async fn telemetry_pressure_shows_in_stats() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let reply = send(
        &app,
        json_req("POST", "/api/telemetry", r#"{"pressure": 0.7}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let v = reply.json();
    assert_eq!(v["accepted"], 0.7);
    let stats = send(&app, get("/api/stats")).await.json();
    let p = &stats["pressure"];
    assert_eq!(p["external"], 0.7, "{p}");
    assert!(p["score"].as_f64().expect("score") >= 0.7 - 1e-9, "{p}");
    assert!(r.stats().pressure.score >= 0.7 - 1e-9);
    // Bounds are inclusive.
    for ok in ["0", "0.0", "1", "1.0"] {
        let body = format!(r#"{{"pressure": {ok}}}"#);
        let reply = send(&app, json_req("POST", "/api/telemetry", body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{ok}: {}", reply.text());
    }
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neural_snapshot_has_its_shape() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    run_all_strategies(&r, 2).await;
    let reply = send(&app, get("/api/neural")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let v = reply.json();
    assert!(v["sample_count"].is_u64(), "{v}");
    assert!(v["avg_reward"].is_number(), "{v}");
    let eps = v["epsilon"].as_f64().expect("epsilon");
    assert!((0.0..=1.0).contains(&eps));
    assert!(v["warmed_up"].is_boolean());
    let features = v["feature_names"].as_array().expect("feature_names");
    let strategies = v["strategies"].as_array().expect("strategies");
    let weights = v["weights"].as_array().expect("weights");
    assert!(!features.is_empty());
    assert_eq!(
        weights.len(),
        strategies.len(),
        "one weight row per strategy"
    );
    for row in weights {
        assert_eq!(row.as_array().expect("row").len(), features.len());
    }
    assert!(
        v["per_kind"].as_array().is_some_and(|k| !k.is_empty()),
        "{v}"
    );
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_with_the_named_families() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let done = run_all_strategies(&r, 2).await;
    let reply = send(&app, get("/metrics")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let ct = reply.content_type();
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(ct.contains("version=0.0.4"), "{ct}");
    let text = reply.text();
    for family in [
        "# TYPE helix_completed_total counter",
        "# TYPE helix_dropped_total counter",
        "# TYPE helix_failed_total counter",
        "# TYPE helix_routed_total counter",
        "# TYPE helix_job_duration_seconds histogram",
        "# TYPE helix_latency_p95_seconds gauge",
        "# TYPE helix_pressure gauge",
        "# TYPE helix_cpu_busy gauge",
        "# TYPE helix_cpu_queue_depth gauge",
        "# TYPE helix_adaptive_spawn_threshold gauge",
        "# TYPE helix_neural_samples_total counter",
        "# TYPE helix_neural_avg_reward gauge",
        "# TYPE helix_neural_epsilon gauge",
        "# HELP helix_completed_total ",
    ] {
        assert!(text.contains(family), "missing `{family}` in\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l == format!("helix_completed_total {done}")),
        "helix_completed_total should be {done}:\n{text}"
    );
    assert!(
        text.contains(r#"helix_routed_total{strategy="cpu_pool"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"helix_job_duration_seconds_count{strategy="batch"} 2"#),
        "{text}"
    );
    // The run-time ledger: one series per strategy and end, the pool's on-time work
    // as /api/stats reports it.
    assert!(
        text.contains("# TYPE helix_work_seconds_total counter"),
        "{text}"
    );
    let pool_on_time = r
        .stats()
        .strategies
        .iter()
        .find(|s| s.strategy == helixrouter::Strategy::CpuPool)
        .map(|s| s.work.on_time_secs)
        .expect("a cpu_pool row");
    assert!(pool_on_time > 0.0, "the pool ran two jobs on time");
    let line = text
        .lines()
        .find(|l| l.starts_with(r#"helix_work_seconds_total{strategy="cpu_pool",end="on_time"}"#))
        .unwrap_or_else(|| panic!("no pool on-time work series in\n{text}"));
    let shown: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a value");
    assert_eq!(shown, pool_on_time, "{line}");
    assert!(
        !text.contains("_ms"),
        "no millisecond units in metric names"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn dashboard_assets_and_openapi_are_served() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let index = send(&app, get("/")).await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(
        index.content_type().starts_with("text/html"),
        "{}",
        index.content_type()
    );
    assert!(index.text().to_ascii_lowercase().contains("<html"));

    let js = send(&app, get("/assets/app.js")).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(
        js.content_type().contains("javascript"),
        "{}",
        js.content_type()
    );
    assert!(!js.body.is_empty());

    let css = send(&app, get("/assets/style.css")).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.content_type().starts_with("text/css"));

    let api = send(&app, get("/api/openapi.json")).await;
    assert_eq!(api.status, StatusCode::OK);
    assert!(api.content_type().starts_with("application/json"));
    let doc = api.json();
    assert!(doc["openapi"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/health",
        "/metrics",
        "/api/stats",
        "/api/config",
        "/api/telemetry",
        "/api/neural",
        "/api/stream/decisions",
    ] {
        assert!(paths.contains_key(p), "openapi lacks {p}");
    }
    let missing = send(&app, get("/nope")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_decisions_are_listed_newest_first_and_limited() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    run_all_strategies(&r, 2).await;
    let all = send(&app, get("/api/decisions")).await;
    assert_eq!(all.status, StatusCode::OK);
    let v = all.json();
    let list = v.as_array().expect("array");
    assert_eq!(list.len(), 8, "{v}");
    let limited = send(&app, get("/api/decisions?limit=3")).await.json();
    let limited = limited.as_array().expect("array");
    assert_eq!(limited.len(), 3);
    assert_eq!(limited[0]["job_id"], list[0]["job_id"]);
    r.shutdown().await;
}

#[tokio::test]
async fn gets_never_mutate_and_mutating_routes_refuse_get() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let before = r.config();
    for uri in [
        "/",
        "/health",
        "/metrics",
        "/api/stats",
        "/api/config",
        "/api/neural",
    ] {
        assert_eq!(send(&app, get(uri)).await.status, StatusCode::OK, "{uri}");
    }
    assert_eq!(r.config(), before);
    assert_eq!(r.stats().pressure.external, None);
    let t = send(&app, get("/api/telemetry")).await;
    assert_eq!(t.status, StatusCode::METHOD_NOT_ALLOWED);
    let del = Request::builder()
        .method("DELETE")
        .uri("/api/config")
        .body(Body::empty())
        .expect("req");
    assert_eq!(send(&app, del).await.status, StatusCode::METHOD_NOT_ALLOWED);
    r.shutdown().await;
}

// ---------------------------------------------------------------- status codes

#[tokio::test]
async fn malformed_json_is_400() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    for (method, uri, cut) in [
        ("PATCH", "/api/config", r#"{"batch_max_size": "#),
        ("POST", "/api/config", r#"{"batch_max_size": 16"#),
        ("POST", "/api/telemetry", r#"{"pressure": "#),
    ] {
        for body in [cut, "not json", "", "{,}", "[1, 2"] {
            let reply = send(&app, json_req(method, uri, body)).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{method} {uri} {body:?}: {}",
                reply.text()
            );
            assert!(reply.json()["error"].is_string());
        }
    }
    r.shutdown().await;
}

#[tokio::test]
async fn missing_or_wrong_content_type_is_415() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    for (method, uri, body) in [
        ("PATCH", "/api/config", r#"{"batch_max_size": 16}"#),
        ("POST", "/api/config", r#"{"batch_max_size": 16}"#),
        ("POST", "/api/telemetry", r#"{"pressure": 0.5}"#),
    ] {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut b = Request::builder().method(method).uri(uri);
            if let Some(ct) = ct {
                b = b.header(header::CONTENT_TYPE, ct);
            }
            let reply = send(&app, b.body(Body::from(body)).expect("req")).await;
            assert_eq!(
                reply.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {uri} {ct:?}: {}",
                reply.text()
            );
        }
    }
    assert_eq!(r.config().batch_max_size, 8, "nothing was applied");
    assert_eq!(r.stats().pressure.external, None, "nothing was applied");
    r.shutdown().await;
}

/// A valid patch padded with whitespace to exactly `len` bytes.
fn padded_patch(len: usize) -> String {
    let core = r#"{"batch_max_size": 16}"#;
    let mut s = String::from(&core[..core.len() - 1]);
    s.push_str(&" ".repeat(len - core.len()));
    s.push('}');
    assert_eq!(s.len(), len);
    s
}

#[tokio::test]
async fn body_over_64_kib_is_413_and_at_the_limit_is_accepted() {
    // The documented limit (README, SECURITY.md), not the constant it is built from.
    const LIMIT: usize = 64 * 1024;
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let over = send(
        &app,
        json_req("PATCH", "/api/config", padded_patch(LIMIT + 1)),
    )
    .await;
    assert_eq!(
        over.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        over.text()
    );
    assert_eq!(r.config().batch_max_size, 8, "nothing was applied");
    for uri in ["/api/config", "/api/telemetry"] {
        let big = send(&app, json_req("POST", uri, padded_patch(200 * 1024))).await;
        assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
    }
    let at = send(&app, json_req("PATCH", "/api/config", padded_patch(LIMIT))).await;
    assert_eq!(at.status, StatusCode::OK, "{}", at.text());
    assert_eq!(r.config().batch_max_size, 16);
    r.shutdown().await;
}

#[tokio::test]
async fn invalid_values_are_422_naming_every_field_and_rule() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let before = r.config();
    let reply = send(
        &app,
        json_req(
            "PATCH",
            "/api/config",
            r#"{"batch_max_size": 0, "ema_alpha": 2.0}"#,
        ),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text()
    );
    assert!(reply.content_type().starts_with("application/json"));
    let v = violations(&reply);
    assert!(
        v.iter()
            .any(|(f, rule)| f == "batch_max_size" && rule.contains(">= 1")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|(f, rule)| f == "ema_alpha" && rule.contains("(0, 1]")),
        "{v:?}"
    );
    let body = reply.json();
    let first = &body["violations"][0];
    assert!(
        first["value"].is_string(),
        "the rejected value is reported: {body}"
    );
    assert_eq!(r.config(), before);

    // A cross-field rule names the field it constrains.
    let cross = send(
        &app,
        json_req(
            "PATCH",
            "/api/config",
            r#"{"inline_threshold": 100000, "spawn_threshold": 50000}"#,
        ),
    )
    .await;
    assert_eq!(cross.status, StatusCode::UNPROCESSABLE_ENTITY);
    let v = violations(&cross);
    assert!(
        v.iter()
            .any(|(f, rule)| f == "inline_threshold" && rule.contains("spawn_threshold")),
        "{v:?}"
    );

    // POST validates too.
    let post = send(
        &app,
        json_req("POST", "/api/config", r#"{"cpu_parallelism": 0}"#),
    )
    .await;
    assert_eq!(post.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        violations(&post)
            .iter()
            .any(|(f, _)| f == "cpu_parallelism")
    );
    assert_eq!(r.config(), before);
    r.shutdown().await;
}

#[tokio::test]
async fn unknown_or_mistyped_fields_are_422_naming_them() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let before = r.config();
    for (method, body, name) in [
        (
            "PATCH",
            r#"{"batch_max_size": 16, "bogus_knob": 1}"#,
            "bogus_knob",
        ),
        ("POST", r#"{"bogus_knob": 1}"#, "bogus_knob"),
        (
            "PATCH",
            r#"{"batch_max_size": "sixteen"}"#,
            "batch_max_size",
        ),
    ] {
        let reply = send(&app, json_req(method, "/api/config", body)).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {body}: {}",
            reply.text()
        );
        let err = reply.json()["error"].as_str().expect("error").to_string();
        assert!(err.contains(name), "error should name {name}: {err}");
    }
    assert_eq!(r.config(), before);
    r.shutdown().await;
}

#[tokio::test]
async fn telemetry_outside_unit_interval_or_not_a_number_is_rejected() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    for bad in ["1.5", "-0.1", "1.0000001", "1e308"] {
        let body = format!(r#"{{"pressure": {bad}}}"#);
        let reply = send(&app, json_req("POST", "/api/telemetry", body)).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            reply.text()
        );
        let v = violations(&reply);
        assert!(v.iter().any(|(f, _)| f == "pressure"), "{bad}: {v:?}");
    }
    for bad in [
        r#"{"pressure": "high"}"#,
        r#"{"pressure": null}"#,
        r#"{"pressure": NaN}"#,
        r#"{"pressure": [0.5]}"#,
        r#"{}"#,
        r#"{"pressure": 0.5, "extra": 1}"#,
    ] {
        let reply = send(&app, json_req("POST", "/api/telemetry", bad)).await;
        assert!(
            reply.status.is_client_error(),
            "{bad}: {} {}",
            reply.status,
            reply.text()
        );
    }
    assert_eq!(r.stats().pressure.external, None, "nothing was accepted");
    r.shutdown().await;
}

#[tokio::test]
async fn a_rejected_patch_changes_nothing() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    let before = r.config();
    let reply = send(
        &app,
        json_req(
            "PATCH",
            "/api/config",
            r#"{"batch_max_size": 32, "cpu_queue_cap": 900, "neural_epsilon": 7.0}"#,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let v = violations(&reply);
    assert_eq!(v.len(), 1, "only the bad field is a violation: {v:?}");
    assert_eq!(v[0].0, "neural_epsilon");
    assert_eq!(
        r.config(),
        before,
        "all or nothing: the valid fields were not applied"
    );
    assert_eq!(r.stats().cpu_queue_cap, before.cpu_queue_cap);
    let got: RouterConfig =
        serde_json::from_slice(&send(&app, get("/api/config")).await.body).expect("cfg");
    assert_eq!(got, before);
    r.shutdown().await;
}

// ---------------------------------------------------------------- token rules

fn with_auth(mut req: Request<Body>, auth: Option<&str>) -> Request<Body> {
    if let Some(a) = auth {
        req.headers_mut()
            .insert(header::AUTHORIZATION, a.parse().expect("header value"));
    }
    req
}

fn mutations() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("PATCH", "/api/config", r#"{"batch_max_size": 16}"#),
        ("POST", "/api/config", r#"{"batch_max_size": 16}"#),
        ("POST", "/api/telemetry", r#"{"pressure": 0.4}"#),
    ]
}

#[tokio::test]
async fn token_policy_requires_the_exact_bearer_token() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Token("s3cret".into()));
    let before = r.config();
    for (method, uri, body) in mutations() {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("Bearer "),
            Some("s3cret"),
            Some("Basic czNjcmV0"),
        ] {
            let reply = send(&app, with_auth(json_req(method, uri, body), auth)).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} {auth:?}"
            );
            assert_eq!(
                reply
                    .headers
                    .get(header::WWW_AUTHENTICATE)
                    .map(|v| v.as_bytes()),
                Some(&b"Bearer"[..])
            );
            assert!(reply.json()["error"].is_string());
        }
    }
    assert_eq!(r.config(), before, "no unauthorised request was applied");
    assert_eq!(r.stats().pressure.external, None);
    // The guard runs before the body is looked at: a bad body without a token is 401.
    let reply = send(&app, json_req("PATCH", "/api/config", "{not json")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    for (method, uri, body) in mutations() {
        let reply = send(
            &app,
            with_auth(json_req(method, uri, body), Some("Bearer s3cret")),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} {uri}: {}",
            reply.text()
        );
    }
    assert_eq!(r.config().batch_max_size, 16);
    assert_eq!(r.stats().pressure.external, Some(0.4));
    // With the token, validation still applies.
    let bad = send(
        &app,
        with_auth(
            json_req("PATCH", "/api/config", r#"{"batch_max_size": 0}"#),
            Some("Bearer s3cret"),
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    r.shutdown().await;
}

#[tokio::test]
async fn reads_need_no_token() {
    let r = router();
    for policy in [
        MutationPolicy::Token("s3cret".into()),
        MutationPolicy::Disabled,
    ] {
        let app = app_with(&r, policy.clone());
        for uri in [
            "/",
            "/health",
            "/metrics",
            "/api/stats",
            "/api/config",
            "/api/neural",
            "/api/decisions",
            "/api/openapi.json",
            "/assets/app.js",
        ] {
            let reply = send(&app, get(uri)).await;
            assert_eq!(reply.status, StatusCode::OK, "{policy:?} GET {uri}");
        }
    }
    r.shutdown().await;
}

#[tokio::test]
async fn disabled_policy_forbids_every_mutation() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Disabled);
    let before = r.config();
    for (method, uri, body) in mutations() {
        for auth in [None, Some("Bearer anything")] {
            let reply = send(&app, with_auth(json_req(method, uri, body), auth)).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{method} {uri} {auth:?}"
            );
            let err = reply.json()["error"].as_str().expect("error").to_string();
            assert!(err.contains("HELIX_API_TOKEN"), "{err}");
        }
    }
    assert_eq!(r.config(), before);
    assert_eq!(r.stats().pressure.external, None);
    r.shutdown().await;
}

#[test]
fn mutation_policy_is_derived_from_token_and_bind_address() {
    assert!(matches!(
        MutationPolicy::new(None, false),
        MutationPolicy::Disabled
    ));
    assert!(matches!(
        MutationPolicy::new(None, true),
        MutationPolicy::Open
    ));
    assert!(matches!(
        MutationPolicy::new(Some(String::new()), true),
        MutationPolicy::Open
    ));
    assert!(matches!(
        MutationPolicy::new(Some(String::new()), false),
        MutationPolicy::Disabled
    ));
    for loopback in [true, false] {
        match MutationPolicy::new(Some("s3cret".into()), loopback) {
            MutationPolicy::Token(t) => assert_eq!(t, "s3cret"),
            other => panic!("expected Token, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn open_policy_accepts_mutations_without_a_header() {
    let r = router();
    let app = app_with(&r, MutationPolicy::new(None, true));
    for (method, uri, body) in mutations() {
        let reply = send(&app, json_req(method, uri, body)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} {uri}: {}",
            reply.text()
        );
    }
    let v: Value = send(&app, get("/api/config")).await.json();
    assert_eq!(v["batch_max_size"], json!(16));
    r.shutdown().await;
}

#[tokio::test]
async fn telemetry_must_be_an_object() {
    let r = router();
    let app = app_with(&r, MutationPolicy::Open);
    for body in ["[0.5]", "0.5", "\"0.5\""] {
        let reply = send(&app, json_req("POST", "/api/telemetry", body)).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.text()
        );
    }
    assert_eq!(r.stats().pressure.external, None, "nothing was applied");
}
