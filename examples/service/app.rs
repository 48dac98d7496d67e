//! The example service's routes, shared by `main.rs` and `tests/service_example.rs`.
//!
//! `POST /hash` (argon2 hash of the body, then verify: tens of ms), `POST /compress`
//! (zstd of the body, checked by decompressing), `POST /decompress`, `GET /json`
//! (cheap). Each handler runs its work through one [`Mode`].

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use helixrouter::tower::{BUDGET_HEADER, BoxError, HelixLayer, budget_from_headers, handle_error};
use helixrouter::{Router, WorkHint};
use serde_json::json;
use tower::ServiceBuilder;

/// How handlers run their CPU work and what sits in front of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `router.run(WorkHint::of_class(..))` behind `HelixLayer`.
    Helix,
    /// `tokio::task::spawn_blocking`, nothing in front.
    SpawnBlocking,
    /// `spawn_blocking` behind tower's `ConcurrencyLimitLayer` + `LoadShedLayer`,
    /// added with `Router::layer`, so each route gets its own limit (what axum does
    /// with a layer on a router).
    TowerShed,
    /// The same two layers around the whole router: one limit shared by every route.
    TowerShedGlobal,
}

impl Mode {
    /// `helix`, `spawn_blocking`, `tower-shed` or `tower-shed-global`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "helix" => Some(Mode::Helix),
            "spawn_blocking" => Some(Mode::SpawnBlocking),
            "tower-shed" => Some(Mode::TowerShed),
            "tower-shed-global" => Some(Mode::TowerShedGlobal),
            _ => None,
        }
    }
}

/// Budget of requests that carry no `x-request-budget-ms`.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(250);

#[derive(Clone)]
struct AppState {
    mode: Mode,
    router: Router,
}

/// The request's budget: its `x-request-budget-ms` header (the one `HelixLayer`
/// admits by), else [`DEFAULT_BUDGET`].
fn budget(headers: &HeaderMap) -> Duration {
    budget_from_headers(headers, &HeaderName::from_static(BUDGET_HEADER)).unwrap_or(DEFAULT_BUDGET)
}

/// Runs `work` the way `mode` says; `Err` is the 503 to answer.
async fn run<T: Send + 'static>(
    st: &AppState,
    class: &'static str,
    headers: &HeaderMap,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    match st.mode {
        Mode::Helix => st
            .router
            .run(
                WorkHint::of_class(class).budget_ms(budget(headers).as_millis() as u64),
                work,
            )
            .await
            .map_err(|e| unavailable(e.to_string())),
        Mode::SpawnBlocking | Mode::TowerShed | Mode::TowerShedGlobal => {
            tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| unavailable(e.to_string()))
        }
    }
}

/// Argon2id (19 MiB, 2 passes) of `password`, then verified against its own hash.
pub fn hash_and_verify(password: &[u8]) -> (String, bool) {
    use argon2::password_hash::rand_core::OsRng;
    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    let argon = argon2::Argon2::default();
    let salt = SaltString::generate(&mut OsRng);
    let Ok(hash) = argon.hash_password(password, &salt) else {
        return (String::new(), false);
    };
    let phc = hash.to_string();
    let ok = PasswordHash::new(&phc).is_ok_and(|h| argon.verify_password(password, &h).is_ok());
    (phc, ok)
}

async fn hash(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match run(&st, "/hash", &headers, move || hash_and_verify(&body)).await {
        Ok((hash, verified)) => Json(json!({ "hash": hash, "verified": verified })).into_response(),
        Err(res) => res,
    }
}

async fn compress(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let work = move || {
        let packed = zstd::encode_all(&body[..], 3).unwrap_or_default();
        let roundtrip = zstd::decode_all(&packed[..]).is_ok_and(|back| back == body);
        (body.len(), packed.len(), roundtrip)
    };
    match run(&st, "/compress", &headers, work).await {
        Ok((original, compressed, roundtrip)) => Json(json!({
            "original": original, "compressed": compressed, "roundtrip": roundtrip,
        }))
        .into_response(),
        Err(res) => res,
    }
}

async fn decompress(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match run(&st, "/decompress", &headers, move || {
        zstd::decode_all(&body[..])
    })
    .await
    {
        Ok(Ok(raw)) => raw.into_response(),
        Ok(Err(e)) => (StatusCode::BAD_REQUEST, format!("not zstd: {e}")).into_response(),
        Err(res) => res,
    }
}

async fn json_route(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let work = || json!({ "ok": true, "items": (0..16).collect::<Vec<u32>>() });
    match run(&st, "/json", &headers, work).await {
        Ok(v) => Json(v).into_response(),
        Err(res) => res,
    }
}

/// Requests the `tower-shed` baseline lets run at once.
pub fn tower_shed_limit() -> usize {
    2 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The service in `mode`, with its middleware stack.
pub fn app(mode: Mode, router: Router) -> axum::Router {
    let routes = axum::Router::new()
        .route("/hash", post(hash))
        .route("/compress", post(compress))
        .route("/decompress", post(decompress))
        .route("/json", get(json_route))
        .with_state(AppState {
            mode,
            router: router.clone(),
        });
    match mode {
        Mode::Helix => routes.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_error))
                .layer(HelixLayer::new(router).default_budget(DEFAULT_BUDGET)),
        ),
        Mode::SpawnBlocking => routes,
        // The same stack both ways; only where it is applied differs.
        Mode::TowerShed => routes.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(unavailable))
                .layer(tower::load_shed::LoadShedLayer::new())
                .layer(tower::limit::ConcurrencyLimitLayer::new(tower_shed_limit())),
        ),
        Mode::TowerShedGlobal => axum::Router::new().fallback_service(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(unavailable))
                .layer(tower::load_shed::LoadShedLayer::new())
                .layer(tower::limit::ConcurrencyLimitLayer::new(tower_shed_limit()))
                .service(routes),
        ),
    }
}

/// A shed (or any error of the tower stack) answered with a 503.
async fn unavailable(_: BoxError) -> StatusCode {
    StatusCode::SERVICE_UNAVAILABLE
}
