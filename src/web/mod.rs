//! The HTTP edge: axum routes that parse, call the router, and map errors. The
//! dashboard's files (`assets/`) are embedded at build time.
//!
//! [`app`] builds the `axum::Router` (tests drive it without a socket); [`serve`]
//! binds and runs it until a shutdown signal.

mod api;
pub mod auth;
pub mod error;
mod sse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;

use crate::router::Router;
pub use auth::MutationPolicy;
pub use error::AppError;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Time limit for non-streaming requests.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on concurrent SSE clients.
pub const DEFAULT_SSE_LIMIT: usize = 64;

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The router being served.
    pub router: Router,
    /// When the server started (for `/health`).
    pub started: Instant,
    /// Who may call mutating routes.
    pub mutations: MutationPolicy,
    /// Free SSE slots.
    pub sse_slots: Arc<Semaphore>,
    /// The SSE cap.
    pub sse_limit: usize,
    /// Set to `true` when the server begins its graceful shutdown; open SSE streams
    /// end on it (otherwise a connected dashboard would hold the shutdown forever).
    pub closing: Arc<tokio::sync::watch::Sender<bool>>,
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

/// Binds `addr` and serves `router` until SIGINT/SIGTERM, with the mutation policy
/// from `HELIX_API_TOKEN`.
///
/// # Errors
///
/// When the address cannot be bound or the server fails.
pub async fn serve(router: Router, addr: SocketAddr) -> std::io::Result<()> {
    let policy = MutationPolicy::new(
        std::env::var("HELIX_API_TOKEN").ok(),
        addr.ip().is_loopback(),
    );
    let listener = TcpListener::bind(addr).await?;
    serve_on(listener, AppState::new(router, policy), shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` resolves.
///
/// # Errors
///
/// When the server fails.
pub async fn serve_on(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    if matches!(state.mutations, MutationPolicy::Disabled) {
        tracing::warn!(%local, "bound to a non-loopback address without HELIX_API_TOKEN: mutating routes answer 403");
    }
    tracing::info!(%local, "serving HelixRouter");
    let closing = state.closing.clone();
    let shutdown = async move {
        shutdown.await;
        // Ends the SSE streams so the graceful shutdown can finish.
        closing.send_replace(true);
    };
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
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
