//! Bearer-token guard for mutating routes.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::AppError;

/// Who may mutate: decided once at start from the token and the bind address.
#[derive(Clone)]
pub enum MutationPolicy {
    /// Loopback bind and no token: anyone who can reach the socket (this host).
    Open,
    /// `Authorization: Bearer <token>` required.
    Token(String),
    /// Non-loopback bind without a token: mutating routes answer 403.
    Disabled,
}

impl std::fmt::Debug for MutationPolicy {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MutationPolicy::Open => f.write_str("Open"),
            MutationPolicy::Token(_) => f.write_str("Token(<redacted>)"),
            MutationPolicy::Disabled => f.write_str("Disabled"),
        }
    }
}

impl MutationPolicy {
    /// The policy for a token (if any) and whether the bind address is loopback.
    pub fn new(token: Option<String>, loopback: bool) -> Self {
        match token.filter(|t| !t.is_empty()) {
            Some(t) => MutationPolicy::Token(t),
            None if loopback => MutationPolicy::Open,
            None => MutationPolicy::Disabled,
        }
    }
}

/// Middleware: applies [`MutationPolicy`] to the routes it wraps.
pub(crate) async fn require_mutation_rights(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match &state.mutations {
        MutationPolicy::Open => next.run(req).await,
        MutationPolicy::Disabled => AppError::MutationsDisabled.into_response(),
        MutationPolicy::Token(expected) => {
            let given = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                // The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map_or("", |(_, token)| token.trim_start());
            if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
                next.run(req).await
            } else {
                AppError::Unauthorized.into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MutationPolicy;

    #[test]
    fn debug_never_prints_the_token() {
        let p = MutationPolicy::new(Some("s3cret".into()), true);
        assert_eq!(format!("{p:?}"), "Token(<redacted>)");
    }
}
