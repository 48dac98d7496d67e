//! Feature `tower`: [`HelixLayer`], a tower layer that admits or sheds each HTTP or gRPC
//! request up front from what the router has learned about its class.
//!
//! Per request: the classifier gives a [`Classification`] — class, budget and optional
//! size (by default the route path, a budget from `grpc-timeout` or
//! `x-request-budget-ms`, and the body's `content-length` as its size);
//! [`Router::class_estimate_for`] gives the class's learned request latency and learned
//! run time (for that size once the class has learned how they grow with it, else the
//! class's own), the CPU pool's wait and the pressure; the request is shed with a typed
//! [`Shed`] error when the predicted latency cannot fit the budget, or when pressure is
//! at or above the threshold and the request is heavy. So a class holding small and
//! huge requests sheds its huge ones first. Admitted requests are timed to their
//! response and folded back into the class with their size
//! ([`Router::record_request_for`]).
//!
//! Readiness is the inner service's alone: the layer reserves nothing in `poll_ready`
//! and polls no semaphore, so it spends none of tokio's cooperative budget there.
//!
//! ```
//! use std::time::Duration;
//! use helixrouter::tower::{HelixLayer, Shed};
//! use helixrouter::{Router, RouterConfig};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let router = Router::new(RouterConfig::default());
//! let layer = HelixLayer::new(router).default_budget(Duration::from_millis(50));
//! let mut svc = layer.layer(service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>("ok")
//! }));
//! let req = http::Request::get("/json").body(()).unwrap();
//! assert_eq!(svc.ready().await.unwrap().call(req).await.unwrap(), "ok");
//! # }
//! ```

mod classify;
mod future;
mod policy;
mod shed;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use ::tower::{Layer, Service};
use http::{HeaderName, Request};

use crate::Router;
pub use classify::{
    BUDGET_HEADER, Classification, Classify, OTHER_PATH_CLASS, PathClassifier, budget_from_headers,
    units_from_content_length,
};
use future::InFlight;
pub use future::ResponseFuture;
use policy::ShedPolicy;
#[cfg(feature = "server")]
pub use shed::handle_error;
pub use shed::{Shed, ShedReason};

/// The layer's error type: the inner service's error or a [`Shed`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Distinct paths the default classifier gives their own class.
pub const DEFAULT_MAX_PATHS: usize = 64;

/// Admits or sheds requests per class and budget from the router's learned state.
#[derive(Debug, Clone)]
pub struct HelixLayer<C = PathClassifier> {
    router: Router,
    classifier: C,
    policy: ShedPolicy,
    /// Admitted requests not yet answered, shared by every service this layer made.
    in_flight: Arc<AtomicUsize>,
}

impl HelixLayer<PathClassifier> {
    /// A layer classifying by route path ([`PathClassifier`], [`DEFAULT_MAX_PATHS`]).
    pub fn new(router: Router) -> Self {
        Self::with_classifier(router, PathClassifier::new(DEFAULT_MAX_PATHS))
    }

    /// Budget of requests that carry none (default 1 s).
    #[must_use]
    pub fn default_budget(mut self, budget: Duration) -> Self {
        self.classifier = self.classifier.default_budget(budget);
        self
    }

    /// Header read for a budget in milliseconds (default [`BUDGET_HEADER`]).
    #[must_use]
    pub fn budget_header(mut self, header: HeaderName) -> Self {
        self.classifier = self.classifier.budget_header(header);
        self
    }

    /// At most `max_paths` paths get their own class (default [`DEFAULT_MAX_PATHS`]).
    #[must_use]
    pub fn max_paths(mut self, max_paths: usize) -> Self {
        self.classifier = PathClassifier::new(max_paths)
            .budget_header(self.classifier.header.clone())
            .default_budget(self.classifier.default_budget);
        self
    }
}

impl<C> HelixLayer<C> {
    /// A layer with a custom classifier: a [`Classify`], e.g. a closure
    /// `|req: &http::Request<B>| -> (&'static str, Duration)` (no size) or
    /// `-> Classification` (with [`Classification::units`] when the request's size is
    /// known).
    pub fn with_classifier(router: Router, classifier: C) -> Self {
        Self {
            router,
            classifier,
            policy: ShedPolicy::default(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Pressure score at or above which heavy classes are shed (default 0.9).
    #[must_use]
    pub fn pressure_threshold(mut self, score: f64) -> Self {
        self.policy.pressure_threshold = score;
        self
    }

    /// Learned run time or request latency (for the request's size, when it has one)
    /// from which a request counts as heavy (default 1 ms).
    #[must_use]
    pub fn heavy_cost(mut self, cost: Duration) -> Self {
        self.policy.heavy_ns = u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// Admitted requests not yet answered (or dropped), across the services this layer
    /// made.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Relaxed)
    }
}

impl<S, C: Clone> Layer<S> for HelixLayer<C> {
    type Service = HelixService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        HelixService {
            inner,
            router: self.router.clone(),
            classifier: self.classifier.clone(),
            policy: self.policy,
            in_flight: self.in_flight.clone(),
        }
    }
}

/// The service [`HelixLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct HelixService<S, C = PathClassifier> {
    inner: S,
    router: Router,
    classifier: C,
    policy: ShedPolicy,
    /// Incremented by each admitted `call`, decremented when its [`ResponseFuture`]
    /// completes or is dropped (`InFlight`).
    in_flight: Arc<AtomicUsize>,
}

impl<S, C> HelixService<S, C> {
    /// Admitted requests not yet answered (or dropped).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Relaxed)
    }
}

impl<S, C, B> Service<Request<B>> for HelixService<S, C>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    C: Classify<B>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner service's readiness only: nothing of ours to reserve.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Classification {
            class,
            budget,
            units,
        } = self.classifier.classify(&req);
        let est = self.router.class_estimate_for(class, units);
        if let Some(shed) = self.policy.decide(&est, budget) {
            self.router.record_request_shed(est.class);
            return ResponseFuture::shed(shed);
        }
        let guard = InFlight::start(
            self.router.clone(),
            est.class,
            units,
            self.in_flight.clone(),
        );
        ResponseFuture::running(self.inner.call(req), guard)
    }
}
