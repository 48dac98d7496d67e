//! The admission rule of the layer (pure): from a [`ClassEstimate`] (of the class, or of
//! the class at the request's size) and a budget, admit or shed with a reason.

use std::time::Duration;

use super::shed::{Shed, ShedReason};
use crate::router::ClassEstimate;

/// How the layer decides; set through [`super::HelixLayer`]'s builder methods.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ShedPolicy {
    /// Pressure score at or above which heavy classes are shed.
    pub(crate) pressure_threshold: f64,
    /// A request whose learned run time or request latency (at its size, when it has
    /// one) reaches this is heavy (ns).
    pub(crate) heavy_ns: u64,
    /// Every `probe_every`-th request a class's learned latency would shed is admitted
    /// anyway, so the latency is measured again once the cause is gone.
    pub(crate) probe_every: u64,
}

impl Default for ShedPolicy {
    fn default() -> Self {
        Self {
            pressure_threshold: 0.9,
            heavy_ns: 1_000_000,
            probe_every: 16,
        }
    }
}

/// Longest `Retry-After` the layer suggests.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

impl ShedPolicy {
    /// `None` to admit, or the [`Shed`] to answer with.
    pub(crate) fn decide(&self, est: &ClassEstimate, budget: Duration) -> Option<Shed> {
        let queued = est
            .cost_p90_ns
            .zip(est.pool_finish_ns)
            .map(|(p90, finish)| finish.max(p90));
        let predicted = est.request_p90_ns.max(queued).max(est.cost_p90_ns)?;
        let heavy = est.cost_ns.max(est.request_ns).unwrap_or(0) >= self.heavy_ns;
        let budget_ns = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
        // Like the router's own admission: a class whose work the router runs is never
        // shed on a prediction while the pool has a free worker and nothing waits (the
        // request starts at once and its run corrects the prediction).
        let starts_now = est.pool_idle && est.cost_samples > 0;
        let reason = if predicted > budget_ns && !starts_now {
            let probe = (est.requests_shed + 1).is_multiple_of(self.probe_every.max(1));
            if probe {
                return None;
            }
            ShedReason::OverBudget {
                predicted: Duration::from_nanos(predicted),
                budget,
            }
        } else if heavy && est.pressure >= self.pressure_threshold {
            ShedReason::Pressure {
                score: est.pressure,
            }
        } else {
            return None;
        };
        let wait = Duration::from_nanos(est.pool_finish_ns.unwrap_or(0));
        let retry_after = Duration::from_secs(wait.as_secs() + 1).min(MAX_RETRY_AFTER);
        Some(Shed {
            class: est.class,
            units: est.units,
            reason,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> ClassEstimate {
        ClassEstimate {
            class: "/hash",
            cost_samples: 0,
            cost_ns: None,
            cost_p90_ns: None,
            request_samples: 0,
            request_ns: None,
            request_p90_ns: None,
            pool_finish_ns: None,
            pool_idle: false,
            requests_shed: 0,
            units: None,
            pressure: 0.0,
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn pool_work_is_not_shed_on_a_prediction_while_the_pool_is_idle() {
        let p = ShedPolicy::default();
        let over = ClassEstimate {
            cost_samples: 40,
            cost_ns: Some(2 * MS),
            cost_p90_ns: Some(3 * MS),
            request_ns: Some(90 * MS),
            request_p90_ns: Some(120 * MS),
            ..est()
        };
        let budget = Duration::from_millis(100);
        assert!(p.decide(&over, budget).is_some(), "busy pool: shed");
        let idle = ClassEstimate {
            pool_idle: true,
            ..over
        };
        assert_eq!(p.decide(&idle, budget), None, "idle pool: it runs");
        // A class the router never ran (its latency is all the layer knows) is still
        // judged by its latency.
        let unrun = ClassEstimate {
            cost_samples: 0,
            ..idle
        };
        assert!(p.decide(&unrun, budget).is_some());
    }

    #[test]
    fn unknown_class_is_admitted() {
        let p = ShedPolicy::default();
        let e = ClassEstimate {
            pressure: 1.0,
            ..est()
        };
        assert_eq!(p.decide(&e, Duration::from_millis(1)), None);
    }

    #[test]
    fn learned_latency_over_budget_sheds_except_probes() {
        let p = ShedPolicy::default();
        let e = ClassEstimate {
            request_ns: Some(30 * MS),
            request_p90_ns: Some(40 * MS),
            ..est()
        };
        assert_eq!(p.decide(&e, Duration::from_millis(50)), None);
        let shed = p.decide(&e, Duration::from_millis(10)).expect("shed");
        assert!(matches!(shed.reason, ShedReason::OverBudget { .. }));
        assert_eq!(shed.retry_after, Duration::from_secs(1));
        let probe = ClassEstimate {
            requests_shed: 15,
            ..e
        };
        assert_eq!(p.decide(&probe, Duration::from_millis(10)), None, "probe");
    }

    #[test]
    fn a_sized_estimate_is_judged_as_given_and_named_in_the_shed() {
        let p = ShedPolicy::default();
        // What `class_estimate_for` gives for a huge request of a class whose small
        // requests take well under a millisecond.
        let huge = ClassEstimate {
            request_ns: Some(400 * MS),
            request_p90_ns: Some(500 * MS),
            units: Some(64 << 20),
            ..est()
        };
        let shed = p.decide(&huge, Duration::from_millis(100)).expect("shed");
        assert_eq!(shed.units, Some(64 << 20));
        assert!(shed.to_string().contains("67108864"), "{shed}");
        let small = ClassEstimate {
            request_ns: Some(MS / 4),
            request_p90_ns: Some(MS / 2),
            units: Some(1_024),
            pressure: 0.95,
            ..est()
        };
        assert_eq!(p.decide(&small, Duration::from_millis(100)), None, "light");
    }

    #[test]
    fn pool_wait_counts_against_the_budget() {
        let p = ShedPolicy::default();
        let e = ClassEstimate {
            cost_ns: Some(5 * MS),
            cost_p90_ns: Some(6 * MS),
            pool_finish_ns: Some(2_500 * MS),
            ..est()
        };
        let shed = p.decide(&e, Duration::from_millis(100)).expect("shed");
        assert_eq!(shed.retry_after, Duration::from_secs(3));
    }

    #[test]
    fn pressure_sheds_heavy_classes_only() {
        let p = ShedPolicy::default();
        let heavy = ClassEstimate {
            request_ns: Some(20 * MS),
            request_p90_ns: Some(25 * MS),
            pressure: 0.95,
            ..est()
        };
        let shed = p.decide(&heavy, Duration::from_secs(1)).expect("shed");
        assert!(matches!(shed.reason, ShedReason::Pressure { .. }));
        let light = ClassEstimate {
            request_ns: Some(50_000),
            request_p90_ns: Some(80_000),
            ..heavy
        };
        assert_eq!(p.decide(&light, Duration::from_secs(1)), None);
    }
}
