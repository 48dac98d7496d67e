//! The HTTP edge: axum routes that parse, call the router, and map errors. The
//! dashboard's files (`assets/`) are embedded at build time.
//!
//! [`app`] builds the `axum::Router` (tests drive it without a socket); [`serve`]
//! binds and runs it until a shutdown signal; [`serve_on_with`] serves it on a bound
//! listener with explicit connection-level [`ServeLimits`] (slow-loris header
//! timeout, connection cap, write-stall timeout).

mod api;
mod auth;
mod error;
mod prometheus;
mod sse;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::timeout::TimeoutLayer;

use crate::router::Router;
pub use auth::MutationPolicy;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Time limit for non-streaming requests.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on concurrent SSE clients.
pub const DEFAULT_SSE_LIMIT: usize = 64;
/// Default time a client has to send a complete request head (slow-loris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on open connections.
pub const MAX_CONNECTIONS: usize = 1_024;
/// Default time a write to a client may stay blocked before the connection is closed.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful shutdown waits for open connections before dropping them.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Connection-level limits of the server (see [`serve_on_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// A client must deliver a complete request head within this time, counted from
    /// when the server starts waiting for it (connection open, or the end of the
    /// previous response on a keep-alive connection). Closes slow-loris and idle
    /// keep-alive connections.
    pub header_read_timeout: Duration,
    /// Open connections at most; further clients wait in the listen backlog until a
    /// connection closes.
    pub max_connections: usize,
    /// A connection whose writes make no progress for this long (a client that stopped
    /// reading, e.g. a stuck event-stream consumer) is closed, freeing its slots.
    pub write_stall_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            write_stall_timeout: WRITE_STALL_TIMEOUT,
        }
    }
}

/// Shared state of the handlers: build it with [`AppState::new`].
#[derive(Clone, Debug)]
pub struct AppState {
    /// The router being served.
    pub(crate) router: Router,
    /// When the server started (for `/health`).
    pub(crate) started: Instant,
    /// Who may call mutating routes.
    pub(crate) mutations: MutationPolicy,
    /// Free SSE slots: `sse_limit` of them, set together by `new`/`with_sse_limit`.
    pub(crate) sse_slots: Arc<Semaphore>,
    /// The SSE cap (for the 503 message).
    pub(crate) sse_limit: usize,
    /// Set to `true` when the server begins its graceful shutdown; open SSE streams
    /// end on it (otherwise a connected dashboard would hold the shutdown forever).
    pub(crate) closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// State for `router` with the given mutation policy and default limits.
    pub fn new(router: Router, mutations: MutationPolicy) -> Self {
        Self {
            router,
            started: Instant::now(),
            mutations,
            sse_slots: Arc::new(Semaphore::new(DEFAULT_SSE_LIMIT)),
            sse_limit: DEFAULT_SSE_LIMIT,
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Sets the cap on concurrent SSE clients.
    pub fn with_sse_limit(mut self, limit: usize) -> Self {
        self.sse_slots = Arc::new(Semaphore::new(limit));
        self.sse_limit = limit;
        self
    }
}

/// The routes, with the middleware stack declared in one place.
pub fn app(state: AppState) -> axum::Router {
    let mutating = axum::Router::new()
        .route(
            "/api/config",
            post(api::replace_config).patch(api::patch_config),
        )
        .route("/api/telemetry", post(api::telemetry))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_mutation_rights,
        ));
    let reads = axum::Router::new()
        .route("/", get(api::index))
        .route("/assets/app.js", get(api::app_js))
        .route("/assets/style.css", get(api::style_css))
        .route("/health", get(api::health))
        .route("/metrics", get(api::metrics))
        .route("/api/stats", get(api::stats))
        .route("/api/config", get(api::get_config))
        .route("/api/neural", get(api::neural))
        .route("/api/decisions", get(api::recent_decisions))
        .route("/api/openapi.json", get(api::openapi));
    let bounded = reads.merge(mutating).layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        REQUEST_TIMEOUT,
    ));
    // The SSE route is long-lived, so it sits outside the request timeout.
    axum::Router::new()
        .route("/api/stream/decisions", get(sse::decisions))
        .merge(bounded)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Binds `addr` and serves `router` until SIGINT/SIGTERM, with no token: mutating
/// routes are open on a loopback address and disabled (403) on any other. To require a
/// bearer token, serve an [`AppState`] built with [`MutationPolicy::Token`] through
/// `serve_on` (the binary does this with `HELIX_API_TOKEN`).
///
/// # Errors
///
/// When the address cannot be bound or the server fails.
pub async fn serve(router: Router, addr: SocketAddr) -> std::io::Result<()> {
    let policy = MutationPolicy::new(None, addr.ip().is_loopback());
    let listener = TcpListener::bind(addr).await?;
    serve_on(listener, AppState::new(router, policy), shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` resolves, with the default
/// [`ServeLimits`].
///
/// # Errors
///
/// When the server fails.
pub(crate) async fn serve_on(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on_with(listener, state, shutdown, ServeLimits::default()).await
}

/// Serves on an already bound listener until `shutdown` resolves, enforcing `limits`
/// per connection. HTTP/1.1 only. On shutdown: stops accepting, ends the SSE streams,
/// lets in-flight requests finish (at most `DRAIN_TIMEOUT`), then returns.
///
/// # Errors
///
/// When the listener's address cannot be read.
#[tracing::instrument(name = "serve", skip_all)]
pub async fn serve_on_with(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    if matches!(state.mutations, MutationPolicy::Disabled) {
        tracing::warn!(%local, "bound to a non-loopback address without an API token: mutating routes answer 403");
    }
    tracing::info!(%local, ?limits, "serving HelixRouter");
    let closing = state.closing.clone();
    let service = TowerToHyperService::new(app(state));
    let builder = http1_builder(&limits);
    let max_connections = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    // One permit per open connection; after shutdown, holding them all means drained.
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    while let Some((stream, permit)) = next_connection(&listener, &slots, shutdown.as_mut()).await {
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(StallGuard::new(stream, limits.write_stall_timeout));
        let conn = builder.serve_connection(io, service.clone()).into_owned();
        let mut stop = closing.subscribe();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                () = async { let _ = stop.wait_for(|&c| c).await; } => {
                    // Finish the request in flight, then close (idle: close now).
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Ends the SSE streams so the graceful shutdown can finish.
    closing.send_replace(true);
    let drained =
        tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(max_connections as u32)).await;
    if drained.is_err() {
        tracing::warn!(timeout = ?DRAIN_TIMEOUT, "connections still open after the drain timeout; closing them");
    }
    Ok(())
}

/// The HTTP/1.1-only connection builder, with the header read timeout of `limits`.
fn http1_builder(limits: &ServeLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http1_only()
}

/// The next connection to serve, with its slot: waits for a free slot first (past
/// the cap, clients queue in the kernel's backlog instead of costing a task each),
/// then for a client. Accept errors are skipped (a failed connection) or waited out
/// (e.g. out of file descriptors). `None` once `shutdown` resolves.
async fn next_connection(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    mut shutdown: Pin<&mut impl std::future::Future<Output = ()>>,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.ok()?,
            () = &mut shutdown => return None,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => return None,
        };
        match accepted {
            Ok((stream, _peer)) => return Some((stream, permit)),
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::error!(error = %e, "accept failed; retrying in 1 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = &mut shutdown => return None,
                }
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A connection whose writes fail with `TimedOut` once they have been blocked (the
/// peer not reading) for longer than the limit. Progress resets the clock.
struct StallGuard<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> StallGuard<T> {
    fn new(inner: T, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Maps a write-side poll: `Pending` arms (or checks) the stall timer, anything
    /// else disarms it.
    fn guard<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading: write stalled",
            )));
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, polled)
    }
}

/// Resolves on SIGINT (ctrl-c) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}
