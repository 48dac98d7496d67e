//! Any request to `web::app`: arbitrary method, path and query, content type and body.
//! Whatever arrives, the answer is never a 5xx, and an error the API itself gives (a
//! 4xx other than the router's own 404/405) is a JSON object with an `error` string.
//! Streams (`/api/stream/...`) are left out: they never end by design.
#![no_main]

#[path = "../common/http.rs"]
mod http;

use axum::http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;

const METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PATCH,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
];

/// Known paths first, so the fuzzer reaches the handlers and not only the 404.
const PATHS: [&str; 12] = [
    "/",
    "/health",
    "/metrics",
    "/api/stats",
    "/api/config",
    "/api/neural",
    "/api/decisions",
    "/api/telemetry",
    "/api/openapi.json",
    "/assets/app.js",
    "/assets/style.css",
    "/api/",
];

fuzz_target!(|data: &[u8]| {
    let [m, p, json, rest @ ..] = data else {
        return;
    };
    // The rest splits at the first NUL: a suffix for the path (query, extra segments),
    // then the body.
    let (suffix, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(suffix) = std::str::from_utf8(suffix) else {
        return;
    };
    let uri = format!("{}{suffix}", PATHS[usize::from(*p) % PATHS.len()]);
    if uri.starts_with("/api/stream") {
        return;
    }
    let method = METHODS[usize::from(*m) % METHODS.len()].clone();
    let Some((status, reply)) = http::send_raw(method, &uri, json % 2 == 0, body) else {
        return; // not a valid request line: hyper would refuse it before the app
    };
    assert!(!status.is_server_error(), "{status} for {uri:?}");
    let api = uri.starts_with("/api/") && !matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    );
    if status.is_client_error() && api && !reply.is_empty() {
        http::assert_error_body(status, &reply);
    }
});
