//! Route handlers: parse, call the router, map errors. Nothing else.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::AppError;
use super::prometheus::{NeuralFigures, render};
use crate::config::{RouterConfig, RouterConfigPatch};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const OPENAPI_JSON: &str = include_str!("openapi.json");

pub(crate) async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

pub(crate) async fn app_js() -> Response {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS).into_response()
}

pub(crate) async fn style_css() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLE_CSS).into_response()
}

pub(crate) async fn openapi() -> Response {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

pub(crate) async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "uptime_secs": state.started.elapsed().as_secs() }))
}

pub(crate) async fn stats(State(state): State<AppState>) -> Json<crate::router::RouterStats> {
    Json(state.router.stats())
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
    let stats = state.router.stats();
    let n = state.router.neural_snapshot();
    let figures = NeuralFigures {
        samples: n.sample_count,
        avg_reward: n.avg_reward,
        epsilon: n.epsilon,
    };
    let text = render(&stats, figures).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

pub(crate) async fn get_config(State(state): State<AppState>) -> Json<RouterConfig> {
    Json(state.router.config())
}

pub(crate) async fn replace_config(
    State(state): State<AppState>,
    body: Result<Json<RouterConfig>, JsonRejection>,
) -> Result<Json<RouterConfig>, AppError> {
    let Json(cfg) = body?;
    let applied = state.router.set_config(cfg)?;
    tracing::info!("config replaced via POST /api/config");
    Ok(Json(applied))
}

pub(crate) async fn patch_config(
    State(state): State<AppState>,
    body: Result<Json<RouterConfigPatch>, JsonRejection>,
) -> Result<Json<RouterConfig>, AppError> {
    let Json(patch) = body?;
    let merged = state.router.patch_config(&patch)?;
    tracing::info!(?patch, "config patched via PATCH /api/config");
    Ok(Json(merged))
}

/// `POST /api/telemetry` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Telemetry {
    pressure: f64,
}

pub(crate) async fn telemetry(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    // Parsed as a value first: malformed JSON stays a 400, and only an object is
    // accepted (serde alone would also take `[0.5]`).
    let Json(value) = body?;
    let unprocessable = |message: String| AppError::Body {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        message,
    };
    if !value.is_object() {
        return Err(unprocessable(
            "telemetry body must be a JSON object like {\"pressure\": 0.5}".into(),
        ));
    }
    let t: Telemetry =
        serde_json::from_value(value).map_err(|e| unprocessable(format!("telemetry body: {e}")))?;
    state.router.set_external_pressure(t.pressure)?;
    Ok(Json(
        json!({ "accepted": t.pressure, "pressure": state.router.stats().pressure }),
    ))
}

pub(crate) async fn neural(
    State(state): State<AppState>,
) -> Json<crate::neural_router::NeuralSnapshot> {
    Json(state.router.neural_snapshot())
}

/// `GET /api/decisions?limit=N` query.
#[derive(Debug, Deserialize)]
pub(crate) struct Limit {
    limit: Option<usize>,
}

pub(crate) async fn recent_decisions(
    State(state): State<AppState>,
    Query(q): Query<Limit>,
) -> Json<Vec<crate::types::RoutingDecision>> {
    Json(
        state
            .router
            .recent_decisions(q.limit.unwrap_or(100).min(10_000)),
    )
}
