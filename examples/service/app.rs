//! The example service's routes, shared by `main.rs` and `tests/service_example.rs`.
//!
//! `POST /hash` (argon2 hash of the body, then verify: tens of ms), `POST /compress`
//! (zstd of the body, checked by decompressing), `POST /decompress` (at most
//! [`MAX_DECOMPRESSED`] bytes out), `GET /json` (cheap). Each handler runs its work
//! through one [`Mode`]; `/compress` and `/decompress` give the router the size their
//! work grows with ([`WorkHint::units`]): the body's length, the content's length.

use std::io::Read as _;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use helixrouter::tower::{
    BUDGET_HEADER, BoxError, Classification, Classify, DEFAULT_MAX_PATHS, HelixLayer,
    PathClassifier, budget_from_headers, handle_error,
};
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

/// Largest request body every route reads (bytes): axum's default, set explicitly so
/// [`MAX_DECOMPRESSED`] can be stated against it. Larger bodies get 413 from axum.
pub const MAX_BODY: usize = 2 << 20;

/// Most bytes `/decompress` produces: 8 MiB, four times [`MAX_BODY`]. A body whose zstd
/// frames declare more content is refused with 413 from their headers alone, before
/// anything is allocated or decompressed; a body whose frames declare no size is
/// decompressed through a stream cut at this bound (413 past it), with a window of at
/// most [`MAX_WINDOW_LOG`]. Without the bound a 61 KB frame of zeros made the service
/// allocate and send 2 GB (a decompression bomb).
pub const MAX_DECOMPRESSED: usize = 8 << 20;

/// Largest zstd window `/decompress` accepts, as a power of two: 2^23 = 8 MiB, the
/// output bound (no window larger than the whole output is ever needed), instead of
/// zstd's 128 MiB default for frames that do not declare their size. Frames asking for
/// more are answered 400 with zstd's message.
pub const MAX_WINDOW_LOG: u32 = 23;

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

/// Runs `work` (of size `units`, when it has one) the way `mode` says; `Err` is the 503
/// to answer.
async fn run<T: Send + 'static>(
    st: &AppState,
    class: &'static str,
    headers: &HeaderMap,
    units: Option<u64>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    match st.mode {
        Mode::Helix => {
            let hint = WorkHint::of_class(class).budget_ms(budget(headers).as_millis() as u64);
            let hint = match units {
                Some(n) => hint.units(n),
                None => hint,
            };
            st.router
                .run(hint, work)
                .await
                .map_err(|e| unavailable(e.to_string()))
        }
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
    match run(&st, "/hash", &headers, None, move || hash_and_verify(&body)).await {
        Ok((hash, verified)) => Json(json!({ "hash": hash, "verified": verified })).into_response(),
        Err(res) => res,
    }
}

async fn compress(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // The work grows with the body.
    let units = Some(body.len() as u64);
    let work = move || {
        let packed = zstd::encode_all(&body[..], 3).unwrap_or_default();
        let roundtrip = zstd::decode_all(&packed[..]).is_ok_and(|back| back == body);
        (body.len(), packed.len(), roundtrip)
    };
    match run(&st, "/compress", &headers, units, work).await {
        Ok((original, compressed, roundtrip)) => Json(json!({
            "original": original, "compressed": compressed, "roundtrip": roundtrip,
        }))
        .into_response(),
        Err(res) => res,
    }
}

/// What the zstd frames of a body declare about their content, read from their headers
/// alone: nothing is decompressed or allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    /// The sizes the frames declare, summed (saturating). When over
    /// [`MAX_DECOMPRESSED`], the frames after the one that crossed it are not read.
    pub bytes: u64,
    /// Whether every frame read declares its size (skippable frames declare 0).
    pub complete: bool,
}

/// Reads the header of each zstd frame of `body` ([`zstd::zstd_safe::get_frame_content_size`])
/// and walks to the next one by its block headers
/// ([`zstd::zstd_safe::find_frame_compressed_size`]). `Err` for a body that is not a
/// sequence of whole zstd frames (empty, truncated, trailing bytes).
pub fn declared_size(mut body: &[u8]) -> Result<Declared, String> {
    use zstd::zstd_safe;
    if body.is_empty() {
        return Err("empty body".into());
    }
    let mut declared = Declared {
        bytes: 0,
        complete: true,
    };
    while !body.is_empty() {
        match zstd_safe::get_frame_content_size(body) {
            Ok(Some(n)) => declared.bytes = declared.bytes.saturating_add(n),
            Ok(None) => declared.complete = false,
            Err(e) => return Err(e.to_string()),
        }
        if declared.bytes > MAX_DECOMPRESSED as u64 {
            return Ok(declared);
        }
        let len = zstd_safe::find_frame_compressed_size(body)
            .map_err(|code| zstd_safe::get_error_name(code).to_owned())?;
        // A frame is never empty; `get` keeps a surprise from panicking or looping.
        body = body
            .get(len.max(1)..)
            .ok_or_else(|| "truncated frame".to_owned())?;
    }
    Ok(declared)
}

/// Why a body could not be decompressed.
#[derive(Debug)]
pub enum DecompressError {
    /// Its content runs past [`MAX_DECOMPRESSED`].
    TooLarge,
    /// zstd refused it (corrupt, or a window over [`MAX_WINDOW_LOG`]).
    Malformed(std::io::Error),
}

/// Decompresses every frame of `body`, reading at most [`MAX_DECOMPRESSED`] + 1 bytes of
/// output (one past the bound tells it was crossed) with a window of at most
/// 2^[`MAX_WINDOW_LOG`]. The output buffer starts at `capacity` (the declared size when
/// every frame declares one) and otherwise grows by doubling, so it stays under twice
/// the bound.
pub fn decompress_bounded(body: &[u8], capacity: usize) -> Result<Vec<u8>, DecompressError> {
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(body).map_err(DecompressError::Malformed)?;
    decoder
        .window_log_max(MAX_WINDOW_LOG)
        .map_err(DecompressError::Malformed)?;
    let mut out = Vec::with_capacity(capacity.min(MAX_DECOMPRESSED + 1));
    decoder
        .take(MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(DecompressError::Malformed)?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(DecompressError::TooLarge);
    }
    Ok(out)
}

async fn decompress(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let too_large = |what: String| (StatusCode::PAYLOAD_TOO_LARGE, what).into_response();
    let declared = match declared_size(&body) {
        Ok(d) => d,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not zstd: {e}")).into_response(),
    };
    if declared.bytes > MAX_DECOMPRESSED as u64 {
        return too_large(format!(
            "the zstd frames declare {} bytes of content; this service decompresses at most {MAX_DECOMPRESSED} bytes",
            declared.bytes
        ));
    }
    // The work grows with the output: its size is the content's, when declared.
    let units = declared.complete.then_some(declared.bytes);
    let capacity = units.map_or(64 << 10, |n| n as usize);
    match run(&st, "/decompress", &headers, units, move || {
        decompress_bounded(&body, capacity)
    })
    .await
    {
        Ok(Ok(raw)) => raw.into_response(),
        Ok(Err(DecompressError::TooLarge)) => too_large(format!(
            "the content runs past {MAX_DECOMPRESSED} bytes, the most this service decompresses"
        )),
        Ok(Err(DecompressError::Malformed(e))) => {
            (StatusCode::BAD_REQUEST, format!("not zstd: {e}")).into_response()
        }
        Err(res) => res,
    }
}

async fn json_route(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let work = || json!({ "ok": true, "items": (0..16).collect::<Vec<u32>>() });
    match run(&st, "/json", &headers, None, work).await {
        Ok(v) => Json(v).into_response(),
        Err(res) => res,
    }
}

/// Requests the `tower-shed` baseline lets run at once.
pub fn tower_shed_limit() -> usize {
    2 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `HelixLayer`'s classifier: [`PathClassifier`] (route path, budget header,
/// `content-length` as the request's size), except that `/decompress` gets no size from
/// the layer: its work grows with its output, which only its frames tell (the handler
/// gives the router that size), not with the compressed length the header carries.
pub fn classifier() -> impl Fn(&Request<Body>) -> Classification + Clone + Send + Sync + 'static {
    let paths = PathClassifier::new(DEFAULT_MAX_PATHS).default_budget(DEFAULT_BUDGET);
    move |req: &Request<Body>| {
        let mut c = paths.classify(req);
        if c.class == "/decompress" {
            c.units = None;
        }
        c
    }
}

/// The service in `mode`, with its middleware stack.
pub fn app(mode: Mode, router: Router) -> axum::Router {
    let routes = axum::Router::new()
        .route("/hash", post(hash))
        .route("/compress", post(compress))
        .route("/decompress", post(decompress))
        .route("/json", get(json_route))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState {
            mode,
            router: router.clone(),
        });
    match mode {
        Mode::Helix => routes.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_error))
                .layer(HelixLayer::with_classifier(router, classifier())),
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
