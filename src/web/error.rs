//! One error type for every handler, mapped to a status code and a JSON body.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::ConfigError;

/// What went wrong in a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// The body was not usable JSON of the expected shape (400, 413, 415 or 422).
    #[error("{message}")]
    Body {
        /// The status chosen from the rejection.
        status: StatusCode,
        /// What was wrong.
        message: String,
    },
    /// The values broke validation rules (422); each field is named.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No or wrong bearer token (401).
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// Mutations are disabled: non-loopback bind without `HELIX_API_TOKEN` (403).
    #[error(
        "mutating routes are disabled: the server is bound to a non-loopback address without HELIX_API_TOKEN"
    )]
    MutationsDisabled,
    /// Too many concurrent SSE clients (503).
    #[error("too many concurrent event-stream clients (limit {0})")]
    TooManyStreams(usize),
    /// Something on our side failed (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        let status = match &r {
            JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            other => other.status(),
        };
        AppError::Body {
            status,
            message: r.body_text(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            AppError::Body { status, message } => (*status, json!({ "error": message })),
            AppError::Config(ConfigError::Invalid(v)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": self.to_string(), "violations": v }),
            ),
            AppError::Config(ConfigError::Parse(e)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": e.to_string() }),
            ),
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({ "error": self.to_string() }),
            ),
            AppError::MutationsDisabled => {
                (StatusCode::FORBIDDEN, json!({ "error": self.to_string() }))
            }
            AppError::TooManyStreams(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": self.to_string() }),
            ),
            AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": self.to_string() }),
            ),
        };
        let mut resp = (status, Json(body)).into_response();
        if matches!(self, AppError::Unauthorized) {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
