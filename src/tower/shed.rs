//! The typed error of a shed request and its HTTP and gRPC answers.

use std::fmt;
use std::time::Duration;

/// Why a request was shed.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ShedReason {
    /// The class's learned latency cannot fit the request's budget.
    OverBudget {
        /// What the class is expected to take now (learned request latency, or learned
        /// run time plus the CPU pool's current wait, whichever is larger).
        predicted: Duration,
        /// The request's budget.
        budget: Duration,
    },
    /// The router's pressure is at or above the layer's threshold and the class is heavy.
    Pressure {
        /// The pressure score in [0, 1].
        score: f64,
    },
}

/// A request the [`super::HelixLayer`] shed before it reached the inner service.
///
/// The layer's error type is [`super::BoxError`]; callers find this one with
/// `err.is::<Shed>()` or `err.downcast::<Shed>()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Shed {
    /// The request's class.
    pub class: &'static str,
    /// The request's size, when its classifier gave one (what it was judged by).
    pub units: Option<u64>,
    /// Why it was shed.
    pub reason: ShedReason,
    /// When a retry could fit (whole seconds, at least one).
    pub retry_after: Duration,
}

impl fmt::Display for Shed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request of class `{}`", self.class)?;
        if let Some(units) = self.units {
            write!(f, " of size {units}")?;
        }
        write!(f, " shed: ")?;
        match self.reason {
            ShedReason::OverBudget { predicted, budget } => write!(
                f,
                "predicted latency {predicted:?} does not fit the budget {budget:?}"
            )?,
            ShedReason::Pressure { score } => {
                write!(f, "pressure {score:.2} is at or above the threshold")?;
            }
        }
        write!(f, "; retry after {}s", self.retry_after.as_secs())
    }
}

impl std::error::Error for Shed {}

impl Shed {
    /// An HTTP `503 Service Unavailable` with `Retry-After` and the reason as text.
    pub fn http_response<B: From<String>>(&self) -> http::Response<B> {
        let mut res = http::Response::new(B::from(self.to_string()));
        *res.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        let h = res.headers_mut();
        h.insert(http::header::RETRY_AFTER, self.retry_after.as_secs().into());
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        res
    }

    /// A gRPC "trailers-only" answer with status `RESOURCE_EXHAUSTED` (8): HTTP 200,
    /// `content-type: application/grpc`, `grpc-status: 8`, `grpc-message` and
    /// `retry-after` headers, an empty body.
    pub fn grpc_response<B: Default>(&self) -> http::Response<B> {
        let mut res = http::Response::new(B::default());
        let h = res.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        h.insert("grpc-status", http::HeaderValue::from_static("8"));
        // The message is ASCII built from a `&'static str` class and numbers; a class
        // name with bytes invalid in a header leaves the message out.
        if let Ok(v) = http::HeaderValue::from_str(&self.to_string()) {
            h.insert("grpc-message", v);
        }
        h.insert(http::header::RETRY_AFTER, self.retry_after.as_secs().into());
        res
    }
}

#[cfg(feature = "server")]
impl axum::response::IntoResponse for Shed {
    fn into_response(self) -> axum::response::Response {
        self.http_response::<String>().map(axum::body::Body::from)
    }
}

/// For axum's `HandleErrorLayer`: a [`Shed`] becomes its 503, any other error of the
/// inner stack a 500 naming it.
#[cfg(feature = "server")]
pub async fn handle_error(err: super::BoxError) -> axum::response::Response {
    use axum::response::IntoResponse;
    match err.downcast::<Shed>() {
        Ok(shed) => shed.into_response(),
        Err(other) => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("unhandled error: {other}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shed() -> Shed {
        Shed {
            class: "/hash",
            units: None,
            reason: ShedReason::OverBudget {
                predicted: Duration::from_millis(40),
                budget: Duration::from_millis(5),
            },
            retry_after: Duration::from_secs(2),
        }
    }

    #[test]
    fn http_answer_is_503_with_retry_after() {
        let res = shed().http_response::<String>();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[http::header::RETRY_AFTER], "2");
        assert!(res.body().contains("/hash"), "{}", res.body());
    }

    #[test]
    fn grpc_answer_is_resource_exhausted() {
        let res = shed().grpc_response::<()>();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["grpc-status"], "8");
        assert!(res.headers().contains_key("grpc-message"));
    }
}
