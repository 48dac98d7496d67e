//! Mapping a request to its class, budget and size: the [`Classify`] trait and its
//! [`Classification`], the default [`PathClassifier`] (route path as class, budget from
//! headers, size from `content-length`) and the header parsers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::{HeaderMap, HeaderName, Request};

/// Class of every path beyond [`PathClassifier`]'s cap (or longer than
/// `MAX_PATH_LEN`).
pub const OTHER_PATH_CLASS: &str = "_other_path";

/// Paths longer than this (bytes) are not interned.
pub(crate) const MAX_PATH_LEN: usize = 128;

/// The header [`PathClassifier`] reads a budget from (milliseconds) when the request has
/// no `grpc-timeout`.
pub const BUDGET_HEADER: &str = "x-request-budget-ms";

/// Largest `content-length` [`units_from_content_length`] takes as a request's size
/// (1 TiB); a larger value is treated as absent. No body a layer admits is that large,
/// and a made-up length must not drag the class's size fit around.
pub(crate) const MAX_CONTENT_LENGTH_UNITS: u64 = 1 << 40;

/// What a [`Classify`] makes of one request: its class, its latency budget and, when
/// known, its size.
///
/// With `units`, the layer judges the request by what its class has learned for that
/// size ([`crate::Router::class_estimate_for`]) and records its latency with the size
/// ([`crate::Router::record_request_for`]); without, by the class as a whole. Give the
/// layer the same size the handler gives the router ([`crate::WorkHint::units`]) for
/// the same class, or none: the class fits one cost per unit.
///
/// A `(class, budget)` pair converts into a classification without a size, so a
/// classifier closure may return either.
///
/// ```
/// use std::time::Duration;
/// use helixrouter::tower::Classification;
///
/// let c = Classification::new("/upload", Duration::from_millis(50)).units(4_096);
/// assert_eq!((c.class, c.units), ("/upload", Some(4_096)));
/// let plain: Classification = ("/json", Duration::from_millis(50)).into();
/// assert_eq!(plain.units, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Classification {
    /// The request's class (a route, a gRPC method).
    pub class: &'static str,
    /// The request's latency budget.
    pub budget: Duration,
    /// The request's size in whatever its work grows with (bytes of its body, rows),
    /// `None` when unknown. `0` is a size (an empty body), not "unknown".
    pub units: Option<u64>,
}

impl Classification {
    /// A request of `class` with `budget` and no size.
    pub fn new(class: &'static str, budget: Duration) -> Self {
        Self {
            class,
            budget,
            units: None,
        }
    }

    /// Sets the request's size (see [`Classification::units`](#structfield.units)).
    #[must_use]
    pub fn units(mut self, n: u64) -> Self {
        self.units = Some(n);
        self
    }
}

impl From<(&'static str, Duration)> for Classification {
    fn from((class, budget): (&'static str, Duration)) -> Self {
        Self::new(class, budget)
    }
}

/// Maps a request to its [`Classification`]: class, budget and optional size.
///
/// Implemented for every `Fn(&Request<B>) -> R + Clone` where `R:
/// Into<Classification>`, so `HelixLayer::with_classifier(router, |req| ...)` takes a
/// closure returning either a `(&'static str, Duration)` pair (no size) or a
/// [`Classification`].
///
/// ```
/// use std::time::Duration;
/// use helixrouter::tower::{Classification, Classify, units_from_content_length};
///
/// let by_route = |req: &http::Request<()>| {
///     let c = Classification::new("/thumbnail", Duration::from_millis(80));
///     match units_from_content_length(req.headers()) {
///         Some(bytes) => c.units(bytes),
///         None => c,
///     }
/// };
/// let req = http::Request::post("/thumbnail/17").header("content-length", "2048").body(()).unwrap();
/// assert_eq!(by_route.classify(&req).units, Some(2_048));
/// ```
pub trait Classify<B> {
    /// The request's class, latency budget and size.
    fn classify(&self, req: &Request<B>) -> Classification;
}

impl<B, F, R> Classify<B> for F
where
    F: Fn(&Request<B>) -> R,
    R: Into<Classification>,
{
    fn classify(&self, req: &Request<B>) -> Classification {
        self(req).into()
    }
}

/// The default classifier: the request path is the class (each distinct path interned
/// once, at most `max_paths` of them, then [`OTHER_PATH_CLASS`]); the budget comes from
/// `grpc-timeout`, else the budget header (`x-request-budget-ms` unless configured),
/// else the configured default; the size is the body's `content-length` in bytes when
/// the request carries a valid one ([`units_from_content_length`]).
///
/// Paths with identifiers in them (`/users/17`) would each take a slot: for those give
/// the layer a classifier that names the route instead
/// (`HelixLayer::with_classifier`). A route whose work does not grow with its body's
/// length, or whose handler gives the router another size for the same class (a
/// decompressor sizes its work by its output), should get no size from the layer: wrap
/// this classifier in a closure that clears `units` for it.
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

    /// Budget of requests that carry none (default 1 s).
    #[must_use]
    pub fn default_budget(mut self, budget: Duration) -> Self {
        self.default_budget = budget;
        self
    }

    /// Header read for a budget in milliseconds (default [`BUDGET_HEADER`]).
    #[must_use]
    pub fn budget_header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }
}

impl<B> Classify<B> for PathClassifier {
    fn classify(&self, req: &Request<B>) -> Classification {
        let class = self.paths.intern(req.uri().path());
        let budget =
            budget_from_headers(req.headers(), &self.header).unwrap_or(self.default_budget);
        Classification {
            class,
            budget,
            units: units_from_content_length(req.headers()),
        }
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

/// The request body's length from its `content-length` header, as a size for the
/// layer: only 1 to 13 ASCII digits (optionally surrounded by spaces) of at most
/// `MAX_CONTENT_LENGTH_UNITS`; anything else (absent, not a number, signed, a list,
/// larger) is `None`, never an error.
pub fn units_from_content_length(headers: &HeaderMap) -> Option<u64> {
    let v = headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim();
    // 13 digits reach 10^13 > MAX_CONTENT_LENGTH_UNITS: no overflow, bounded work.
    if v.is_empty() || v.len() > 13 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>()
        .ok()
        .filter(|&n| n <= MAX_CONTENT_LENGTH_UNITS)
}

/// Parses a `grpc-timeout` value: at most 8 digits and a unit (`H` hours, `M` minutes,
/// `S` seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds).
pub(crate) fn parse_grpc_timeout(v: &str) -> Option<Duration> {
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
        let a = Classify::classify(&c, &req("/a")).class;
        let again = Classify::classify(&c, &req("/a")).class;
        assert_eq!(a, "/a");
        assert_eq!(a.as_ptr(), again.as_ptr(), "leaked once");
        assert_eq!(Classify::classify(&c, &req("/b")).class, "/b");
        assert_eq!(Classify::classify(&c, &req("/c")).class, OTHER_PATH_CLASS);
        let long = format!("/{}", "x".repeat(MAX_PATH_LEN));
        assert_eq!(Classify::classify(&c, &req(&long)).class, OTHER_PATH_CLASS);
        assert_eq!(
            Classify::classify(&c, &req("/a")).budget,
            Duration::from_secs(1)
        );
    }

    fn content_length(v: Option<&str>) -> Option<u64> {
        let mut h = HeaderMap::new();
        if let Some(v) = v {
            h.insert(http::header::CONTENT_LENGTH, v.parse().unwrap());
        }
        units_from_content_length(&h)
    }

    #[test]
    fn content_length_is_a_size_when_it_is_a_bounded_number() {
        assert_eq!(content_length(None), None, "missing");
        assert_eq!(
            content_length(Some("0")),
            Some(0),
            "an empty body has a size"
        );
        assert_eq!(content_length(Some("65536")), Some(65_536));
        assert_eq!(content_length(Some(" 42 ")), Some(42), "surrounding spaces");
        assert_eq!(
            content_length(Some("1099511627776")),
            Some(MAX_CONTENT_LENGTH_UNITS),
            "the bound itself"
        );
        for bad in [
            "",
            "abc",
            "12abc",
            "-1",
            "+5",
            "1.5",
            "0x10",
            "42, 42",
            "1 2",
            "1099511627777",        // one over the bound
            "99999999999999",       // 14 digits
            "18446744073709551616", // u64::MAX + 1
            "999999999999999999999999999999999999999999",
        ] {
            assert_eq!(content_length(Some(bad)), None, "{bad:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_bytes(b"4\xff2").unwrap(),
        );
        assert_eq!(units_from_content_length(&h), None, "not ASCII");
    }

    #[test]
    fn path_classifier_takes_the_size_from_content_length() {
        let c = PathClassifier::new(8).default_budget(Duration::from_millis(250));
        let sized = Request::post("/compress")
            .header("content-length", "2048")
            .header(BUDGET_HEADER, "40")
            .body(())
            .unwrap();
        assert_eq!(
            Classify::classify(&c, &sized),
            Classification::new("/compress", Duration::from_millis(40)).units(2_048)
        );
        let no_length = Request::post("/compress").body(()).unwrap();
        assert_eq!(
            Classify::classify(&c, &no_length),
            Classification::new("/compress", Duration::from_millis(250))
        );
        let huge = Request::post("/compress")
            .header("content-length", "18446744073709551616")
            .body(())
            .unwrap();
        assert_eq!(Classify::classify(&c, &huge).units, None);
    }

    #[test]
    fn closures_returning_a_pair_or_a_classification_classify() {
        let pair = |_: &Request<()>| ("/pair", Duration::from_millis(5));
        let sized = |_: &Request<()>| Classification::new("/sized", Duration::ZERO).units(7);
        let req = Request::get("/").body(()).unwrap();
        assert_eq!(
            pair.classify(&req),
            Classification::new("/pair", Duration::from_millis(5))
        );
        assert_eq!(sized.classify(&req).units, Some(7));
    }
}
