//! What an admission layer in front of the router (e.g. [`crate::tower`]) reads and
//! writes per request, without a full [`Router::stats`] snapshot: one class's learned
//! run time and request latency, the CPU pool's current wait, the pressure score
//! ([`Router::class_estimate`]); and the request's outcome folded back into its class
//! ([`Router::record_request`], [`Router::record_request_shed`]).
//!
//! Every read is a handful of relaxed atomic loads, except the pool wait, which takes
//! the pool's lock and is only computed for classes whose learned run time reaches the
//! spawn threshold (work the pool would run anyway).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::Router;
use crate::policy::cost::{self, CostState};

/// Request samples before the learned request latency is trusted.
pub const REQUEST_TRUST_SAMPLES: u64 = 8;

/// What the router knows about one class right now ([`Router::class_estimate`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ClassEstimate {
    /// The class as resolved ([`crate::OVERFLOW_CLASS`] beyond `max_classes`).
    pub class: &'static str,
    /// Runs the learned cost is built from.
    pub cost_samples: u64,
    /// Typical run time (ns), once `cost::TRUST_SAMPLES` runs were measured.
    pub cost_ns: Option<u64>,
    /// About the 90th percentile of the run time (ns), once trusted.
    pub cost_p90_ns: Option<u64>,
    /// Requests the request latency is built from ([`Router::record_request`]).
    pub request_samples: u64,
    /// Typical request latency (ns), once [`REQUEST_TRUST_SAMPLES`] were recorded.
    pub request_ns: Option<u64>,
    /// About the 90th percentile of the request latency (ns), once trusted.
    pub request_p90_ns: Option<u64>,
    /// Estimated time until a new run of this class would finish on the CPU pool, queue
    /// wait included (ns); `None` when the class's run time is not known to reach the
    /// spawn threshold.
    pub pool_finish_ns: Option<u64>,
    /// True when the CPU pool has a free worker and nothing waits: work admitted now
    /// starts at once, so an estimate alone should not shed it (it runs, and its run is
    /// measured).
    pub pool_idle: bool,
    /// Requests of this class shed so far by a layer in front of the router
    /// ([`Router::record_request_shed`]).
    pub requests_shed: u64,
    /// The size this estimate is for ([`Router::class_estimate_for`]), `None` for the
    /// class as a whole.
    pub units: Option<u64>,
    /// The router's pressure score in [0, 1].
    pub pressure: f64,
}

impl Router {
    /// The router's current view of `class`: learned run time, learned request latency,
    /// pool wait and pressure. Creates the class on first sight (bounded by
    /// `max_classes`, like [`crate::WorkHint::of_class`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use helixrouter::{Router, RouterConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let router = Router::new(RouterConfig::default());
    /// let est = router.class_estimate("thumbnail");
    /// assert_eq!((est.cost_ns, est.request_ns), (None, None), "nothing learned yet");
    /// # }
    /// ```
    pub fn class_estimate(&self, class: &'static str) -> ClassEstimate {
        self.class_estimate_for(class, None)
    }

    /// [`Router::class_estimate`] for one unit of work of size `units` (bytes of its
    /// body, pixels, rows; see [`crate::WorkHint::units`]). Once the class has learned
    /// how its run time grows with size, `cost_ns` and `cost_p90_ns` are this size's
    /// prediction, `pool_finish_ns` is planned with it, and `request_ns` /
    /// `request_p90_ns` are `None`: the request is judged by its own run time and the
    /// pool's wait, both measured. For work the router does not run itself (no run-time
    /// fit), the latencies recorded with a size ([`Router::record_request_for`]) stand
    /// in once there are enough of them. With `units` `None`, the class's figures.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use helixrouter::{Router, RouterConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let router = Router::new(RouterConfig::default());
    /// for i in 0..64u64 {
    ///     let bytes = 1_024 << (i % 8);
    ///     router.record_request_for("/upload", Some(bytes), Duration::from_nanos(50_000 + 100 * bytes));
    /// }
    /// let small = router.class_estimate_for("/upload", Some(1_024)).request_ns.unwrap();
    /// let large = router.class_estimate_for("/upload", Some(1 << 20)).request_ns.unwrap();
    /// assert!(small < 200_000 && large > 90_000_000, "{small} {large}");
    /// # }
    /// ```
    pub fn class_estimate_for(&self, class: &'static str, units: Option<u64>) -> ClassEstimate {
        let inner = &self.inner;
        let (_, entry) = inner.classes.resolve(class);
        let (state, cost_samples) = entry.cost_state();
        let class_cost = trusted(state, cost_samples, cost::TRUST_SAMPLES);
        let sized_cost = units.and_then(|u| entry.units_estimate(u));
        let cost = sized_cost.or(class_cost);
        let request_samples = entry.request_samples.load(Relaxed);
        let class_request = trusted(
            CostState(entry.request_cost.load(Relaxed)),
            request_samples,
            REQUEST_TRUST_SAMPLES,
        );
        // A sized request whose run time the router has learned for its size is judged
        // by that run time and the pool's wait for it (both measured directly); the
        // request latencies recorded with sizes mix in the queue waits of their moment,
        // so their fit stands in only for work the router does not run itself.
        let request = match (units, sized_cost) {
            (Some(_), Some(_)) => None,
            (Some(u), None) => {
                let fit = *super::lock(&entry.request_units);
                (fit.samples() >= REQUEST_TRUST_SAMPLES)
                    .then(|| fit.estimate(u))
                    .flatten()
                    .or(class_request)
            }
            (None, _) => class_request,
        };
        let pool_finish_ns = cost.and_then(|(typical, _)| {
            (typical >= inner.config.effective().spawn_threshold)
                .then(|| inner.pool.estimate_finish_ns(typical))
        });
        ClassEstimate {
            class: entry.name,
            cost_samples,
            cost_ns: cost.map(|c| c.0),
            cost_p90_ns: cost.map(|c| c.1),
            request_samples,
            request_ns: request.map(|r| r.0),
            request_p90_ns: request.map(|r| r.1),
            pool_finish_ns,
            pool_idle: inner.pool.busy() < inner.config.effective().cpu_parallelism,
            requests_shed: entry.requests_shed.load(Relaxed),
            units,
            pressure: inner.pressure.score(),
        }
    }

    /// Folds one whole request of `class` that took `latency` (from arrival to response,
    /// as the caller measured it) into the class's learned request latency. Lock-free.
    pub fn record_request(&self, class: &'static str, latency: Duration) {
        self.record_request_for(class, None, latency);
    }

    /// [`Router::record_request`] for a request of size `units`: also folded into the
    /// class's fit of request latency against size (which takes a short lock), so
    /// [`Router::class_estimate_for`] can judge each request by its own size.
    pub fn record_request_for(&self, class: &'static str, units: Option<u64>, latency: Duration) {
        let (_, entry) = self.inner.classes.resolve(class);
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let n = entry.request_samples.fetch_add(1, Relaxed);
        // A lost race only folds this sample on top of a newer state.
        let _ = entry
            .request_cost
            .fetch_update(Relaxed, Relaxed, |s| Some(CostState(s).update(ns, n).0));
        if let Some(u) = units {
            super::lock(&entry.request_units).update(u, ns);
        }
    }

    /// Counts one request of `class` shed before it ran (by a layer in front of the
    /// router; the router's own job counters are not touched).
    pub fn record_request_shed(&self, class: &'static str) {
        let (_, entry) = self.inner.classes.resolve(class);
        entry.requests_shed.fetch_add(1, Relaxed);
    }

    /// Requests of `class` shed by a layer in front of the router.
    pub fn requests_shed(&self, class: &'static str) -> u64 {
        let (_, entry) = self.inner.classes.resolve(class);
        entry.requests_shed.load(Relaxed)
    }
}

/// `(typical, high)` of `s` once it holds at least `min` of its `n` samples.
fn trusted(s: CostState, n: u64, min: u64) -> Option<(u64, u64)> {
    if n < min {
        return None;
    }
    Some((s.typical_ns()?, s.high_ns()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RouterConfig;

    #[tokio::test]
    async fn request_latency_is_trusted_after_enough_samples() {
        let router = Router::new(RouterConfig::default());
        for _ in 0..REQUEST_TRUST_SAMPLES - 1 {
            router.record_request("upload", Duration::from_millis(20));
        }
        assert_eq!(router.class_estimate("upload").request_ns, None);
        router.record_request("upload", Duration::from_millis(20));
        let est = router.class_estimate("upload");
        let typical = est.request_ns.expect("trusted now");
        assert!((19_000_000..=21_000_000).contains(&typical), "{est:?}");
        assert!(est.request_p90_ns >= est.request_ns);
        assert_eq!(est.pool_finish_ns, None, "no run time learned");
        router.record_request_shed("upload");
        assert_eq!(router.requests_shed("upload"), 1);
    }
}
