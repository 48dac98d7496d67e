//! Shared by the fuzz targets (included with `#[path]`; not a target itself).
#![allow(dead_code)] // each target uses part of it
//! One router + `web::app` per fuzzing process, driven on a current-thread runtime
//! with `tower::ServiceExt::oneshot` (no socket). Building a router starts CPU-pool
//! threads, so it is built once and reused for every input.

use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use helixrouter::config::RouterConfig;
use helixrouter::router::Router;
use helixrouter::web::{self, AppState, MutationPolicy};
use tokio::runtime::Runtime;
use tower::ServiceExt;

pub struct Harness {
    pub rt: Runtime,
    pub router: Router,
    pub app: axum::Router,
}

pub fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let router = rt.block_on(async { Router::new(RouterConfig::default()) });
        let app = web::app(AppState::new(router.clone(), MutationPolicy::Open));
        Harness { rt, router, app }
    })
}

/// Sends one JSON request through the app; returns the status and the body.
pub fn send(method: Method, uri: &str, body: &[u8]) -> (StatusCode, Bytes) {
    send_raw(method, uri, true, body).expect("request")
}

/// Sends one request with any method and URI, as JSON (`json`) or with no content
/// type; `None` when the URI is not one a client could send.
pub fn send_raw(method: Method, uri: &str, json: bool, body: &[u8]) -> Option<(StatusCode, Bytes)> {
    let h = harness();
    let mut req = Request::builder().method(method).uri(uri);
    if json {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(Body::from(body.to_vec())).ok()?;
    Some(h.rt.block_on(async {
        let resp = h.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("response body");
        (status, bytes)
    }))
}

/// The status axum's `Json` extractor + the handler's error mapping give a serde
/// error: syntax or early end → 400, wrong shape/type/unknown field → 422.
pub fn status_of(e: &serde_json::Error) -> StatusCode {
    match e.classify() {
        serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Every error answer is a JSON object with an `error` string.
pub fn assert_error_body(status: StatusCode, body: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {body:?}"));
    assert!(v["error"].is_string(), "{status} body has no error: {v}");
}
