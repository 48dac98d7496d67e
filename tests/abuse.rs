//! Abuse: what a hostile or broken client can send, and what the service must answer.
//! Missing/wrong tokens, oversized, deep and huge JSON, non-finite numbers, event-stream
//! floods past the cap, slow-loris headers and bodies, connection floods, and readers
//! that stop reading. Each test is bounded in time and checks that nothing changed that
//! should not have.

mod common;

use common::{Server, bounded, client};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use helixrouter::config::RouterConfig;
use helixrouter::router::{Router, WorkHint};
use helixrouter::web::{self, AppState, BODY_LIMIT, MutationPolicy, ServeLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

const TOKEN: &str = "s3cret-token-value";

fn router() -> Router {
    Router::new(RouterConfig {
        enable_neural: false,
        ..RouterConfig::default()
    })
}

/// The mutating routes, each with a valid body.
fn mutating_routes() -> [(&'static str, &'static str, &'static str); 3] {
    [
        ("POST", "/api/config", r#"{"batch_max_size": 3}"#),
        ("PATCH", "/api/config", r#"{"batch_max_size": 3}"#),
        ("POST", "/api/telemetry", r#"{"pressure": 0.75}"#),
    ]
}

fn req(method: &str, uri: &str, auth: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(body.into()).expect("request")
}

async fn send(app: &axum::Router, r: Request<Body>) -> (StatusCode, Bytes, header::HeaderMap) {
    let resp = bounded(10, "oneshot", app.clone().oneshot(r))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, body, headers)
}

fn error_text(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body:?}"));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error string in {v}"))
        .to_string()
}

/// Nothing a refused request could have changed did change.
fn assert_untouched(r: &Router, cfg: &RouterConfig) {
    assert_eq!(&r.config(), cfg, "a refused request changed the config");
    assert_eq!(
        r.stats().pressure.external,
        None,
        "a refused request set external pressure"
    );
}

// ---------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn every_mutating_route_refuses_a_missing_or_wrong_token() {
    let r = router();
    let app = web::app(AppState::new(
        r.clone(),
        MutationPolicy::Token(TOKEN.into()),
    ));
    let cfg = r.config();
    let wrong = [
        None,
        Some(String::new()),
        Some("Bearer".to_string()),
        Some("Bearer ".to_string()),
        Some("Bearer wrong".to_string()),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {TOKEN} ")),
        Some(format!("Bearer  x{TOKEN}")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
        Some(format!("Token {TOKEN}")),
    ];
    for (method, path, body) in mutating_routes() {
        for auth in &wrong {
            let (status, text, headers) =
                send(&app, req(method, path, auth.as_deref(), body)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}"
            );
            assert_eq!(
                headers.get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()),
                Some(&b"Bearer"[..]),
                "401 without a challenge"
            );
            assert!(error_text(&text).contains("token"));
            assert_untouched(&r, &cfg);
        }
        // The token is checked before the body is even parsed: junk gets 401 too.
        let (status, _, _) = send(&app, req(method, path, None, "{not json")).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} junk body"
        );
    }
    // Reads stay open; the right token works on every mutating route.
    for path in ["/api/config", "/api/stats", "/metrics", "/health"] {
        let (status, _, _) = send(&app, req("GET", path, None, Body::empty())).await;
        assert_eq!(status, StatusCode::OK, "GET {path}");
    }
    for (method, path, body) in mutating_routes() {
        let auth = format!("Bearer {TOKEN}");
        let (status, text, _) = send(&app, req(method, path, Some(&auth), body)).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {text:?}");
    }
    assert_eq!(r.config().batch_max_size, 3);
    assert_eq!(r.stats().pressure.external, Some(0.75));
    r.shutdown().await;
}

#[tokio::test]
async fn cross_site_form_and_text_bodies_are_refused_with_415() {
    // What a cross-site page can send without a CORS preflight: never accepted.
    let r = router();
    let app = web::app(AppState::new(r.clone(), MutationPolicy::Open));
    let cfg = r.config();
    for (method, path, body) in mutating_routes() {
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let mut b = Request::builder().method(method).uri(path);
            if let Some(ct) = ct {
                b = b.header(header::CONTENT_TYPE, ct);
            }
            let (status, text, _) = send(&app, b.body(Body::from(body)).expect("request")).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {path} as {ct:?}"
            );
            error_text(&text);
            assert_untouched(&r, &cfg);
        }
    }
    r.shutdown().await;
}

#[tokio::test]
async fn mutations_disabled_answer_403_even_with_a_token() {
    let r = router();
    let app = web::app(AppState::new(r.clone(), MutationPolicy::Disabled));
    let cfg = r.config();
    for (method, path, body) in mutating_routes() {
        for auth in [None, Some(format!("Bearer {TOKEN}"))] {
            let (status, text, _) = send(&app, req(method, path, auth.as_deref(), body)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
            assert!(error_text(&text).contains("HELIX_API_TOKEN"));
            assert_untouched(&r, &cfg);
        }
    }
    let (status, _, _) = send(&app, req("GET", "/api/config", None, Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    r.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Bodies: oversized, deep, huge, non-finite
// ---------------------------------------------------------------------------------

/// `body` padded with trailing whitespace (still valid JSON) to exactly `len` bytes.
fn padded(body: &str, len: usize) -> Vec<u8> {
    let mut v = body.as_bytes().to_vec();
    v.resize(len, b' ');
    v
}

#[tokio::test]
async fn bodies_over_64_kib_get_413_and_at_the_limit_are_accepted() {
    let r = router();
    let app = web::app(AppState::new(r.clone(), MutationPolicy::Open));
    let cfg = r.config();
    // The documented limit (README, SECURITY.md), not the constant it is built from.
    const LIMIT: usize = 64 * 1024;
    for (method, path, body) in mutating_routes() {
        for len in [LIMIT + 1, LIMIT + 4096, 8 << 20] {
            let (status, text, _) = send(&app, req(method, path, None, padded(body, len))).await;
            assert_eq!(
                status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{method} {path} {len} B"
            );
            error_text(&text);
            assert_untouched(&r, &cfg);
            // Streamed (no length known up front): refused all the same.
            let chunks = padded(body, len)
                .chunks(8 * 1024)
                .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>();
            let stream = Body::from_stream(futures_util::stream::iter(chunks));
            let (status, _, _) = send(&app, req(method, path, None, stream)).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "streamed {len} B");
            assert_untouched(&r, &cfg);
        }
    }
    // Exactly at the limit: a valid body is accepted.
    let (status, text, _) = send(
        &app,
        req(
            "PATCH",
            "/api/config",
            None,
            padded(r#"{"batch_max_size": 5}"#, LIMIT),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text:?}");
    assert_eq!(r.config().batch_max_size, 5);
    let (status, _, _) = send(
        &app,
        req(
            "POST",
            "/api/telemetry",
            None,
            padded(r#"{"pressure": 0.25}"#, LIMIT),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    r.shutdown().await;
}

#[tokio::test]
async fn deep_json_is_refused_without_overflowing_the_stack() {
    let r = router();
    let app = web::app(AppState::new(r.clone(), MutationPolicy::Open));
    let cfg = r.config();
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let objects = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
    // Under the body limit, so the parser sees them (serde_json stops at depth 128).
    let under_limit = [
        arrays(30_000),
        objects(10_000),
        format!(r#"{{"pressure": {}}}"#, arrays(30_000)),
        format!(r#"{{"batch_max_size": {}}}"#, arrays(30_000)),
        arrays(129),
    ];
    for (method, path, _) in mutating_routes() {
        for body in &under_limit {
            assert!(body.len() <= BODY_LIMIT);
            let (status, text, _) = send(&app, req(method, path, None, body.clone())).await;
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {path} depth {}: {status}",
                body.len() / 2
            );
            error_text(&text);
            assert_untouched(&r, &cfg);
        }
        // 100 k levels: refused by size before any parsing.
        let (status, _, _) = send(&app, req(method, path, None, arrays(100_000))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }
    // The service still answers.
    let (status, _, _) = send(&app, req("GET", "/api/stats", None, Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    r.shutdown().await;
}

#[tokio::test]
async fn huge_json_near_the_limit_is_parsed_or_refused_quickly() {
    let r = router();
    let app = web::app(AppState::new(r.clone(), MutationPolicy::Open));
    let cfg = r.config();
    // ~60 KiB of unknown fields: refused (unknown field), fast.
    let mut many = String::from("{");
    let mut i = 0;
    while many.len() < 60 * 1024 {
        many.push_str(&format!(r#""f{i}": {i}, "#));
        i += 1;
    }
    many.push_str(r#""end": 0}"#);
    // A 60 000-digit number, a 60 KiB string, a 60 KiB array of numbers.
    let long_number = format!(r#"{{"pressure": 0.{}}}"#, "3".repeat(60_000));
    let long_int = format!(r#"{{"batch_max_size": {}}}"#, "9".repeat(60_000));
    let long_string = format!(r#"{{"pressure": "{}"}}"#, "x".repeat(60_000));
    let long_array = format!(r#"{{"pressure": [{}0]}}"#, "0,".repeat(30_000));
    for (method, path, _) in mutating_routes() {
        for body in [&many, &long_int, &long_string, &long_array] {
            let started = Instant::now();
            let (status, text, _) = send(&app, req(method, path, None, body.clone())).await;
            assert!(status.is_client_error(), "{method} {path}: {status}");
            assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE, "under the limit");
            error_text(&text);
            assert!(started.elapsed() < Duration::from_secs(2), "slow to refuse");
            assert_untouched(&r, &cfg);
        }
    }
    // A long but valid decimal is a number like any other.
    let (status, text, _) = send(&app, req("POST", "/api/telemetry", None, long_number)).await;
    assert_eq!(status, StatusCode::OK, "{text:?}");
    let p = r.stats().pressure.external.expect("accepted");
    assert!((p - 1.0 / 3.0).abs() < 1e-9, "{p}");
    r.shutdown().await;
}

#[tokio::test]
async fn non_finite_and_out_of_range_numbers_are_refused() {
    let r = router();
    let app = web::app(AppState::new(r.clone(), MutationPolicy::Open));
    let cfg = r.config();
    let telemetry = [
        "1e999",
        "-1e999",
        "NaN",
        "-NaN",
        "Infinity",
        "-Infinity",
        "inf",
        "\"NaN\"",
        "\"Infinity\"",
        "1.5",
        "-0.5",
        "1e308",
        "-1e-400x",
        "null",
        "true",
        "0x1",
    ];
    for v in telemetry {
        let body = format!(r#"{{"pressure": {v}}}"#);
        let (status, text, _) = send(&app, req("POST", "/api/telemetry", None, body)).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "pressure {v}: {status}"
        );
        error_text(&text);
        assert_untouched(&r, &cfg);
    }
    // In range but written oddly: fine.
    for (v, want) in [("1e-400", 0.0), ("-0.0", 0.0), ("1E0", 1.0), ("5e-1", 0.5)] {
        let body = format!(r#"{{"pressure": {v}}}"#);
        let (status, _, _) = send(&app, req("POST", "/api/telemetry", None, body)).await;
        assert_eq!(status, StatusCode::OK, "pressure {v}");
        assert_eq!(r.stats().pressure.external, Some(want));
    }
    r.set_external_pressure(0.0).expect("reset");

    let cfg = r.config();
    let fields = [
        ("ema_alpha", "1e999"),
        ("ema_alpha", "NaN"),
        ("adaptive_step", "-Infinity"),
        ("neural_learning_rate", "1e-999"),
        ("adaptive_p95_threshold_factor", "1e308"),
        ("neural_epsilon", "-0.1"),
        ("cpu_parallelism", "1e3"),
        ("inline_threshold", "18446744073709551616"),
        ("cpu_pool_nice", "256"),
    ];
    for (method, path) in [("PATCH", "/api/config"), ("POST", "/api/config")] {
        for (field, v) in fields {
            let body = format!(r#"{{"{field}": {v}}}"#);
            let (status, text, _) = send(&app, req(method, path, None, body)).await;
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {field} = {v}: {status}"
            );
            let v: serde_json::Value = serde_json::from_slice(&text).expect("JSON error");
            if status == StatusCode::UNPROCESSABLE_ENTITY && v.get("violations").is_some() {
                assert!(
                    v["violations"]
                        .as_array()
                        .expect("violations")
                        .iter()
                        .any(|x| x["field"] == field),
                    "{field} not named: {v}"
                );
            }
            assert_eq!(r.config(), cfg, "{method} {field} = {v} changed the config");
        }
    }
    r.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Real sockets: SSE cap, slow-loris, connection cap, slow body, stalled readers
// ---------------------------------------------------------------------------------

/// Reads until the peer closes or `limit` passes; returns what was read and whether
/// the connection was closed by the server.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return (got, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_connections_past_the_cap_get_503() {
    const LIMIT: usize = 5;
    let r = router();
    let server = Server::start_with(
        AppState::new(r.clone(), MutationPolicy::Open).with_sse_limit(LIMIT),
        ServeLimits::default(),
    )
    .await;
    let c = client();
    // 30 at once.
    let attempts = (0..30).map(|_| c.get(server.url("/api/stream/decisions")).send());
    let responses = bounded(
        15,
        "30 SSE requests",
        futures_util::future::join_all(attempts),
    )
    .await;
    let mut open = Vec::new();
    let mut refused = 0;
    for resp in responses {
        let resp = resp.expect("SSE request");
        match resp.status() {
            reqwest::StatusCode::OK => {
                assert!(
                    resp.headers()[header::CONTENT_TYPE.as_str()]
                        .to_str()
                        .expect("ct")
                        .starts_with("text/event-stream")
                );
                open.push(resp);
            }
            reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                let text = resp.text().await.expect("503 body");
                assert!(error_text(text.as_bytes()).contains(&format!("limit {LIMIT}")));
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((open.len(), refused), (LIMIT, 30 - LIMIT));
    // The open streams carry events.
    let _ = r.run(WorkHint::new(1, 1_000), || 1).await;
    let mut first = open.pop().expect("an open stream");
    let chunk = bounded(5, "an SSE event", first.chunk())
        .await
        .expect("stream")
        .expect("a chunk");
    assert!(String::from_utf8_lossy(&chunk).contains("data:"));
    // Hanging up frees a slot (noticed when the server next writes to it).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        let _ = r.run(WorkHint::new(2, 1_000), || 1).await;
        let resp = c
            .get(server.url("/api/stream/decisions"))
            .send()
            .await
            .expect("SSE retry");
        if resp.status() == reqwest::StatusCode::OK {
            break resp;
        }
        assert!(
            Instant::now() < deadline,
            "slot not freed after a client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    open.push(again);
    // Other routes are unaffected by the full SSE cap.
    let st = c.get(server.url("/api/stats")).send().await.expect("stats");
    assert_eq!(st.status(), reqwest::StatusCode::OK);
    // Shutdown ends the open streams instead of waiting for the clients.
    server.stop().await;
    for mut s in open {
        bounded(5, "stream end at shutdown", async {
            while let Ok(Some(_)) = s.chunk().await {}
        })
        .await;
    }
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_are_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(600);
    let r = router();
    let server = Server::start_with(
        AppState::new(r.clone(), MutationPolicy::Open),
        ServeLimits {
            header_read_timeout: timeout,
            ..ServeLimits::default()
        },
    )
    .await;

    // 40 attackers: a request line, then one header byte every 100 ms, forever.
    let mut attackers = Vec::new();
    for k in 0..40 {
        let addr = server.addr;
        attackers.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .expect("request line");
            let mut sent = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if s.write_all(b"a").await.is_err() {
                    break;
                }
                sent += 1;
                let mut probe = [0u8; 512];
                match tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => {} // e.g. a 408 before the close
                    Err(_) => {}
                }
                assert!(sent < 200, "attacker {k} still connected after 20 s");
            }
            started.elapsed()
        }));
    }
    // Silent ones: connect and send nothing at all.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(TcpStream::connect(server.addr).await.expect("connect"));
    }

    // Meanwhile, honest clients are served promptly.
    let c = client();
    for _ in 0..10 {
        let t = Instant::now();
        let resp = c.get(server.url("/health")).send().await.expect("health");
        assert_eq!(resp.status(), reqwest::StatusCode::OK);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "honest client waited {:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for a in attackers {
        let lived = bounded(15, "slow-loris attacker cut off", a)
            .await
            .expect("attacker");
        assert!(
            lived < timeout + Duration::from_secs(2),
            "slow-loris connection lived {lived:?} (header timeout {timeout:?})"
        );
    }
    for mut s in silent {
        let (_, closed) = read_until_closed(&mut s, timeout + Duration::from_secs(3)).await;
        assert!(closed, "a silent connection was not closed");
    }

    // A long-lived event stream is not a slow head: it outlives the header timeout.
    let mut sse = c
        .get(server.url("/api/stream/decisions"))
        .send()
        .await
        .expect("SSE");
    assert_eq!(sse.status(), reqwest::StatusCode::OK);
    tokio::time::sleep(timeout * 3).await;
    let _ = r.run(WorkHint::new(1, 1_000), || 1).await;
    let chunk = bounded(5, "an event after the header timeout", sse.chunk())
        .await
        .expect("stream still open")
        .expect("a chunk");
    assert!(String::from_utf8_lossy(&chunk).contains("data:"));
    drop(sse);

    // An idle keep-alive connection is closed too after one complete request.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let t = Instant::now();
    let (got, closed) = read_until_closed(&mut s, timeout + Duration::from_secs(3)).await;
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{got:?}"
    );
    assert!(closed, "idle keep-alive connection kept open");
    assert!(t.elapsed() < timeout + Duration::from_secs(2));
    server.stop().await;
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let r = router();
    let server = Server::start_with(
        AppState::new(r.clone(), MutationPolicy::Open),
        ServeLimits {
            max_connections: 4,
            header_read_timeout: Duration::from_secs(30),
            ..ServeLimits::default()
        },
    )
    .await;
    let mut hogs = Vec::new();
    for _ in 0..4 {
        hogs.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    // Give the server time to accept all four.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fifth connection is queued by the kernel, not served.
    let mut fifth = TcpStream::connect(server.addr).await.expect("connect");
    fifth
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let (got, closed) = read_until_closed(&mut fifth, Duration::from_millis(700)).await;
    assert!(got.is_empty() && !closed, "served past the cap: {got:?}");
    // One hog leaves: the fifth is served.
    drop(hogs.pop());
    let (got, _) = read_until_closed(&mut fifth, Duration::from_secs(5)).await;
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "fifth client not served after a slot freed: {got:?}"
    );
    drop(hogs);
    server.stop().await;
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_gets_408_within_the_request_timeout() {
    let r = router();
    let cfg = r.config();
    let server = Server::start_with(
        AppState::new(r.clone(), MutationPolicy::Open),
        ServeLimits::default(),
    )
    .await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(
        b"PATCH /api/config HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"batch_",
    )
    .await
    .expect("partial request");
    let t = Instant::now();
    let (got, _) = read_until_closed(&mut s, web::REQUEST_TIMEOUT + Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(t.elapsed() < web::REQUEST_TIMEOUT + Duration::from_secs(3));
    assert_eq!(r.config(), cfg);
    server.stop().await;
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_reader_that_stops_reading_is_disconnected() {
    let r = router();
    let server = Server::start_with(
        AppState::new(r.clone(), MutationPolicy::Open).with_sse_limit(1),
        ServeLimits {
            write_stall_timeout: Duration::from_millis(500),
            ..ServeLimits::default()
        },
    )
    .await;
    // Takes the only slot, reads nothing, and keeps its socket open.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4_096).expect("SO_RCVBUF");
    let mut stuck = socket.connect(server.addr).await.expect("connect");
    stuck
        .write_all(b"GET /api/stream/decisions HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    // Make sure it holds the slot before probing (else a probe could take it first and
    // the stuck client would get the 503): read its status line, then nothing more.
    let mut head = [0u8; 12];
    bounded(5, "stuck client's status line", stuck.read_exact(&mut head))
        .await
        .expect("status line");
    assert_eq!(
        &head, b"HTTP/1.1 200",
        "the stuck client did not get the stream"
    );
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(5);
    while c
        .get(server.url("/api/stream/decisions"))
        .send()
        .await
        .expect("probe")
        .status()
        == reqwest::StatusCode::OK
    {
        assert!(
            Instant::now() < deadline,
            "the stuck client never got the slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Decisions flow until its socket is full; then its writes stall and it is cut.
    let started = Instant::now();
    let freed = bounded(20, "stalled reader disconnected", async {
        let mut i = 0u64;
        loop {
            for _ in 0..2_000 {
                let _ = r.run(WorkHint::new(i, 1_000), || 0).await;
                i += 1;
            }
            let resp = c
                .get(server.url("/api/stream/decisions"))
                .send()
                .await
                .expect("probe");
            if resp.status() == reqwest::StatusCode::OK {
                return resp;
            }
        }
    })
    .await;
    println!("stalled reader cut after {:?}", started.elapsed());
    drop(freed);
    drop(stuck);
    server.stop().await;
    r.shutdown().await;
}
