//! Mapping a request to its class and budget: the [`Classify`] trait, the default
//! [`PathClassifier`] (route path as class, budget from headers) and the header parsers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::{HeaderMap, HeaderName, Request};

/// Class of every path beyond [`PathClassifier`]'s cap (or longer than
/// [`MAX_PATH_LEN`]).
pub const OTHER_PATH_CLASS: &str = "_other_path";

/// Paths longer than this (bytes) are not interned.
pub const MAX_PATH_LEN: usize = 128;

/// The header [`PathClassifier`] reads a budget from (milliseconds) when the request has
/// no `grpc-timeout`.
pub const BUDGET_HEADER: &str = "x-request-budget-ms";

/// Maps a request to `(class, budget)`.
///
/// Implemented for every `Fn(&Request<B>) -> (&'static str, Duration) + Clone`, so
/// `HelixLayer::with_classifier(router, |req| ...)` takes a closure.
pub trait Classify<B> {
    /// The request's class and latency budget.
    fn classify(&self, req: &Request<B>) -> (&'static str, Duration);
}

impl<B, F> Classify<B> for F
where
    F: Fn(&Request<B>) -> (&'static str, Duration),
{
    fn classify(&self, req: &Request<B>) -> (&'static str, Duration) {
        self(req)
    }
}

/// The default classifier: the request path is the class (each distinct path interned
/// once, at most `max_paths` of them, then [`OTHER_PATH_CLASS`]); the budget comes from
/// `grpc-timeout`, else the budget header (`x-request-budget-ms` unless configured),
/// else the configured default.
///
/// Paths with identifiers in them (`/users/17`) would each take a slot: for those give
/// the layer a classifier that names the route instead
/// (`HelixLayer::with_classifier`).
#[derive(Debug, Clone)]
pub struct PathClassifier {
    paths: Arc<Interner>,
    /// Header read for a budget in milliseconds.
    pub(crate) header: HeaderName,
    /// Budget of requests that carry none.
    pub(crate) default_budget: Duration,
}

impl PathClassifier {
    /// At most `max_paths` classes, budgets from `x-request-budget-ms`, 1 s by default.
    pub fn new(max_paths: usize) -> Self {
        Self {
            paths: Arc::new(Interner::new(max_paths)),
            header: HeaderName::from_static(BUDGET_HEADER),
            default_budget: Duration::from_secs(1),
        }
    }
}

impl<B> Classify<B> for PathClassifier {
    fn classify(&self, req: &Request<B>) -> (&'static str, Duration) {
        let class = self.paths.intern(req.uri().path());
        let budget =
            budget_from_headers(req.headers(), &self.header).unwrap_or(self.default_budget);
        (class, budget)
    }
}

/// A bounded set of leaked path strings: each distinct path is leaked once, at most
/// `cap` of them.
#[derive(Debug)]
struct Interner {
    cap: usize,
    /// Path → its leaked copy. Read-locked per request, write-locked once per new path.
    names: RwLock<HashMap<Box<str>, &'static str>>,
}

impl Interner {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            names: RwLock::new(HashMap::new()),
        }
    }

    fn intern(&self, path: &str) -> &'static str {
        if path.len() > MAX_PATH_LEN {
            return OTHER_PATH_CLASS;
        }
        // No holder panics while holding the lock (map operations only).
        if let Some(&name) = self
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return name;
        }
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&name) = names.get(path) {
            return name;
        }
        if names.len() >= self.cap {
            return OTHER_PATH_CLASS;
        }
        let name: &'static str = Box::leak(path.into());
        names.insert(path.into(), name);
        name
    }
}

/// The budget a request carries: `grpc-timeout` (gRPC's `<digits><H|M|S|m|u|n>`), else
/// `header` as whole milliseconds. `None` when neither is present and valid.
pub fn budget_from_headers(headers: &HeaderMap, header: &HeaderName) -> Option<Duration> {
    if let Some(d) = headers
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
    {
        return Some(d);
    }
    let ms: u64 = headers.get(header)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// Parses a `grpc-timeout` value: at most 8 digits and a unit (`H` hours, `M` minutes,
/// `S` seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at_checked(v.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3_600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("50m"), Some(Duration::from_millis(50)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3_600)));
        assert_eq!(parse_grpc_timeout("100u"), Some(Duration::from_micros(100)));
        for bad in ["", "m", "123456789m", "5x", "-5m", "5 m"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn grpc_timeout_wins_over_the_budget_header() {
        let header = HeaderName::from_static(BUDGET_HEADER);
        let mut h = HeaderMap::new();
        assert_eq!(budget_from_headers(&h, &header), None);
        h.insert(BUDGET_HEADER, "25".parse().unwrap());
        assert_eq!(
            budget_from_headers(&h, &header),
            Some(Duration::from_millis(25))
        );
        h.insert("grpc-timeout", "7m".parse().unwrap());
        assert_eq!(
            budget_from_headers(&h, &header),
            Some(Duration::from_millis(7))
        );
    }

    #[test]
    fn paths_are_interned_once_and_bounded() {
        let c = PathClassifier::new(2);
        let req = |p: &str| Request::get(p).body(()).unwrap();
        let a = Classify::classify(&c, &req("/a")).0;
        let again = Classify::classify(&c, &req("/a")).0;
        assert_eq!(a, "/a");
        assert_eq!(a.as_ptr(), again.as_ptr(), "leaked once");
        assert_eq!(Classify::classify(&c, &req("/b")).0, "/b");
        assert_eq!(Classify::classify(&c, &req("/c")).0, OTHER_PATH_CLASS);
        let long = format!("/{}", "x".repeat(MAX_PATH_LEN));
        assert_eq!(Classify::classify(&c, &req(&long)).0, OTHER_PATH_CLASS);
        assert_eq!(Classify::classify(&c, &req("/a")).1, Duration::from_secs(1));
    }
}
