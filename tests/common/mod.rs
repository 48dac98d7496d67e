//! Helpers shared by the HTTP service tests: routers, jobs, requests, servers.
#![allow(dead_code)]

pub mod nats;
pub mod process;
pub mod work;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use helixrouter::config::RouterConfig;
use helixrouter::router::Router;
use helixrouter::types::{Job, JobKind, Strategy};
use helixrouter::web::{self, AppState, MutationPolicy};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// A config whose routing is the deterministic heuristic on the hints as given: no
/// learned overrides and no learned costs (in a debug build the kernels run far slower
/// than their calibrated cost, so a learned cost would move the test jobs between
/// strategies depending on the machine).
pub fn heuristic_cfg() -> RouterConfig {
    RouterConfig {
        enable_neural: false,
        enable_cost_learning: false,
        ..RouterConfig::default()
    }
}

/// A router on the current runtime with [`heuristic_cfg`].
pub fn router() -> Router {
    Router::new(heuristic_cfg())
}

/// A built-in job with inputs derived from its id.
pub fn job(id: u64, kind: JobKind, cost: u64, sp: f32, budget: u64) -> Job {
    Job {
        id,
        kind,
        inputs: vec![id, 2, 3, 4],
        compute_cost: cost,
        scaling_potential: sp,
        latency_budget_ms: budget,
    }
}

/// One job per executing strategy, as the default heuristic routes them.
pub fn strategy_jobs(base: u64) -> [(Job, Strategy); 4] {
    [
        (
            job(base, JobKind::HashMix, 1_000, 0.0, 50),
            Strategy::Inline,
        ),
        (
            job(base + 1, JobKind::PrimeCount, 20_000, 0.0, 50),
            Strategy::Spawn,
        ),
        (
            job(base + 2, JobKind::MonteCarloRisk, 200_000, 0.1, 500),
            Strategy::CpuPool,
        ),
        (
            job(base + 3, JobKind::PrimeCount, 200_000, 0.9, 500),
            Strategy::Batch,
        ),
    ]
}

/// Runs `rounds` × one job of each executing strategy; returns how many completed.
pub async fn run_all_strategies(router: &Router, rounds: u64) -> u64 {
    let mut done = 0;
    for r in 0..rounds {
        for (job, _) in strategy_jobs(1_000 + r * 10) {
            if router.submit(job).await.is_some() {
                done += 1;
            }
        }
    }
    done
}

/// Fails the test when `fut` takes longer than `secs`.
pub async fn bounded<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s: {what}"),
    }
}

/// A request with a JSON content type.
pub fn json_req(method: &str, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("request")
}

/// A GET request.
pub fn get(uri: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("request")
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics with the body text when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The content type, or "".
    pub fn content_type(&self) -> String {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

/// Sends `req` through `app` without a socket.
pub async fn send(app: &axum::Router, req: Request<Body>) -> Reply {
    let resp = bounded(10, "oneshot request", app.clone().oneshot(req))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body,
    }
}

/// The app over `router` with `policy`.
pub fn app_with(router: &Router, policy: MutationPolicy) -> axum::Router {
    web::app(AppState::new(router.clone(), policy))
}

/// A real server on 127.0.0.1:0; stop it with [`Server::stop`].
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Binds port 0 and serves `state` with the default limits.
    pub async fn start(state: AppState) -> Server {
        Self::start_with(state, web::ServeLimits::default()).await
    }

    /// Binds port 0 and serves `state` with `limits`.
    pub async fn start_with(state: AppState, limits: web::ServeLimits) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let task = tokio::spawn(web::serve_on_with(listener, state, shutdown, limits));
        Server {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signals shutdown and waits (bounded) for the server to finish cleanly.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let r = bounded(20, "graceful server shutdown", task).await;
            r.expect("server task").expect("server result");
        }
    }
}

/// A reqwest client with a bounded request timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Asserts the stats identity `submitted == completed + dropped + failed + in_flight`.
pub fn assert_conserved(s: &serde_json::Value) {
    let n = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("stats field {k} is not a u64: {s}"))
    };
    assert_eq!(
        n("submitted"),
        n("completed") + n("dropped") + n("failed") + n("cancelled") + n("in_flight"),
        "conservation identity broken: {s}"
    );
}

/// One server-sent event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    /// True for a comment-only block (keep-alive).
    pub comment_only: bool,
}

/// Reads server-sent events from a reqwest byte stream.
pub struct SseReader {
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> SseReader {
        SseReader {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    fn parse(block: &str) -> SseEvent {
        let mut ev = SseEvent::default();
        let mut data = Vec::new();
        let mut fields = 0;
        for line in block.lines() {
            if line.starts_with(':') {
                continue;
            }
            fields += 1;
            let (k, v) = line.split_once(':').unwrap_or((line, ""));
            let v = v.strip_prefix(' ').unwrap_or(v);
            match k {
                "id" => ev.id = Some(v.to_string()),
                "event" => ev.event = Some(v.to_string()),
                "data" => data.push(v.to_string()),
                _ => {}
            }
        }
        ev.data = data.join("\n");
        ev.comment_only = fields == 0;
        ev
    }

    /// The next event (keep-alive comments included), or `None` when the stream ended.
    pub async fn next_any(&mut self) -> Option<SseEvent> {
        use futures_util::StreamExt;
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                return Some(Self::parse(&block));
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Some(Err(e)) => panic!("SSE stream error: {e}"),
                None => return None,
            }
        }
    }

    /// The next event that is not a keep-alive comment; fails the test after `secs`.
    pub async fn next_event(&mut self, secs: u64) -> SseEvent {
        bounded(secs, "next SSE event", async {
            loop {
                match self.next_any().await {
                    Some(ev) if ev.comment_only => continue,
                    Some(ev) => return ev,
                    None => panic!("SSE stream ended"),
                }
            }
        })
        .await
    }
}
