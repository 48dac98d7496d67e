//! [`RouterConfig::validate`]: the rules as tables of bounds (a lower bound, an upper
//! bound, or a range for a float), checked in the order their violations are listed.

use super::autoscale::{AutoscaleSizes, SizeField, SizeRule, SizeRules};
use super::{
    ConfigError, MAX_CLASSES, MAX_DECISION_LOG, MAX_PARALLELISM, MAX_QUEUE, RouterConfig, Violation,
};

/// A lower bound: `field`, holding `value`, must be at least `least`, which is a
/// constant or (when `of` is set) the value of the field `of` names.
#[derive(Debug, Clone, Copy)]
struct AtLeast {
    field: &'static str,
    value: u64,
    least: u64,
    of: Option<&'static str>,
}

impl AtLeast {
    /// `field` must be at least 1.
    fn one(field: &'static str, value: u64) -> Self {
        AtLeast {
            field,
            value,
            least: 1,
            of: None,
        }
    }

    /// `field` must be at least the field `of`, which holds `least`.
    fn other_field(field: &'static str, value: usize, of: &'static str, least: usize) -> Self {
        AtLeast {
            field,
            value: value as u64,
            least: least as u64,
            of: Some(of),
        }
    }

    fn check(&self) -> Option<Violation> {
        (self.value < self.least).then(|| {
            let rule = match self.of {
                None => format!("must be >= {}", self.least),
                Some(of) => format!("must be >= {of} ({})", self.least),
            };
            Violation::new(self.field, rule, self.value)
        })
    }
}

impl From<SizeRule> for AtLeast {
    fn from(rule: SizeRule) -> Self {
        AtLeast {
            field: rule.field.router_name(),
            value: rule.value as u64,
            least: rule.least as u64,
            of: rule.of.map(SizeField::router_name),
        }
    }
}

/// An upper bound: `(field, value, most)`; it keeps a typo from allocating the machine
/// away.
type AtMost = (&'static str, u64, u64);

fn check_at_most(&(field, value, most): &AtMost) -> Option<Violation> {
    (value > most).then(|| Violation::new(field, format!("must be <= {most}"), value))
}

/// A float range: `field`, holding `value`, must be a finite number from `lo` (itself
/// excluded when `lo_open`) to `hi` included; `hi_of` names the field `hi` comes from,
/// if it is not a constant.
#[derive(Debug, Clone, Copy)]
struct FiniteIn {
    field: &'static str,
    value: f64,
    lo: f64,
    lo_open: bool,
    hi: f64,
    hi_of: Option<&'static str>,
}

impl FiniteIn {
    /// `field` must be in `(0, 1]`.
    fn unit_open(field: &'static str, value: f64) -> Self {
        FiniteIn {
            lo_open: true,
            ..FiniteIn::closed(field, value, 0.0, 1.0)
        }
    }

    /// `field` must be in `[lo, hi]`.
    fn closed(field: &'static str, value: f64, lo: f64, hi: f64) -> Self {
        FiniteIn {
            field,
            value,
            lo,
            lo_open: false,
            hi,
            hi_of: None,
        }
    }

    fn check(&self) -> Option<Violation> {
        let above_lo = if self.lo_open {
            self.value > self.lo
        } else {
            self.value >= self.lo
        };
        if self.value.is_finite() && above_lo && self.value <= self.hi {
            return None;
        }
        let open = if self.lo_open { '(' } else { '[' };
        let hi = match self.hi_of {
            Some(of) => format!("{of} ({})", self.hi),
            None => self.hi.to_string(),
        };
        let rule = format!("must be a finite number in {open}{}, {hi}]", self.lo);
        Some(Violation::new(self.field, rule, self.value))
    }
}

impl RouterConfig {
    /// Checks every rule and reports every broken one.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] listing each field and the rule it broke.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sizes = self.autoscale_sizes().rules();
        let capacities = [
            AtLeast::other_field(
                "cpu_queue_cap",
                self.cpu_queue_cap,
                "cpu_parallelism",
                self.cpu_parallelism,
            ),
            AtLeast::other_field(
                "batch_queue_cap",
                self.batch_queue_cap,
                "batch_max_size",
                self.batch_max_size,
            ),
            sizes.window.into(),
        ];
        // Each autoscaler maximum at least its minimum, the queue's also at least the
        // workers'.
        let autoscale_maximums = [
            sizes.max_parallelism,
            sizes.max_queue_cap,
            sizes.max_queue_cap_workers,
        ]
        .map(AtLeast::from);
        // Checked, and so listed, in this order.
        let v: Vec<Violation> = (self.minimums(&sizes).iter().filter_map(AtLeast::check))
            .chain(self.threshold_order())
            .chain(capacities.iter().filter_map(AtLeast::check))
            .chain(self.float_ranges().iter().filter_map(FiniteIn::check))
            .chain(autoscale_maximums.iter().filter_map(AtLeast::check))
            .chain(self.maximums().iter().filter_map(check_at_most))
            .collect();
        if v.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(v))
        }
    }

    /// The autoscaler's pool-size fields, held to the rules in `config::autoscale`.
    fn autoscale_sizes(&self) -> AutoscaleSizes {
        AutoscaleSizes {
            window: self.autoscale_window,
            min_parallelism: self.autoscale_min_parallelism,
            max_parallelism: self.autoscale_max_parallelism,
            min_queue_cap: self.autoscale_min_queue_cap,
            max_queue_cap: self.autoscale_max_queue_cap,
        }
    }

    /// Counts, sizes and durations that must be at least 1.
    fn minimums(&self, sizes: &SizeRules) -> [AtLeast; 18] {
        [
            AtLeast::one("inline_threshold", self.inline_threshold),
            AtLeast::one("spawn_threshold", self.spawn_threshold),
            AtLeast::one("cpu_parallelism", self.cpu_parallelism as u64),
            AtLeast::one("cpu_queue_cap", self.cpu_queue_cap as u64),
            AtLeast::one(
                "backpressure_busy_threshold",
                self.backpressure_busy_threshold as u64,
            ),
            AtLeast::one("batch_max_size", self.batch_max_size as u64),
            AtLeast::one("batch_max_delay_ms", self.batch_max_delay_ms),
            AtLeast::one("batch_max_cost_ns", self.batch_max_cost_ns),
            AtLeast::one("batch_queue_cap", self.batch_queue_cap as u64),
            AtLeast::one("cpu_p95_budget_ms", self.cpu_p95_budget_ms),
            AtLeast::one("neural_warmup_samples", self.neural_warmup_samples),
            AtLeast::one("autoscale_horizon_secs", self.autoscale_horizon_secs),
            AtLeast::one("autoscale_cooldown_secs", self.autoscale_cooldown_secs),
            sizes.min_parallelism.into(),
            sizes.min_queue_cap.into(),
            AtLeast::one("external_pressure_ttl_ms", self.external_pressure_ttl_ms),
            AtLeast::one("decision_log_cap", self.decision_log_cap as u64),
            AtLeast::one("max_classes", self.max_classes as u64),
        ]
    }

    /// `inline_threshold` must be below `spawn_threshold`.
    fn threshold_order(&self) -> Option<Violation> {
        (self.inline_threshold >= self.spawn_threshold).then(|| {
            Violation::new(
                "inline_threshold",
                format!(
                    "must be less than spawn_threshold ({})",
                    self.spawn_threshold
                ),
                self.inline_threshold,
            )
        })
    }

    /// Rates, factors and probabilities.
    fn float_ranges(&self) -> [FiniteIn; 7] {
        [
            FiniteIn::unit_open("ema_alpha", self.ema_alpha),
            FiniteIn::unit_open("adaptive_step", self.adaptive_step),
            FiniteIn::unit_open("neural_epsilon_decay", self.neural_epsilon_decay),
            FiniteIn::unit_open("neural_learning_rate", self.neural_learning_rate),
            FiniteIn::closed("neural_epsilon", self.neural_epsilon, 0.0, 1.0),
            FiniteIn {
                hi_of: Some("neural_epsilon"),
                ..FiniteIn::closed(
                    "neural_epsilon_min",
                    self.neural_epsilon_min,
                    0.0,
                    self.neural_epsilon,
                )
            },
            FiniteIn::closed(
                "adaptive_p95_threshold_factor",
                self.adaptive_p95_threshold_factor,
                1.0,
                100.0,
            ),
        ]
    }

    /// Upper bounds of sizes, the nice level and the batch delay.
    fn maximums(&self) -> [AtMost; 11] {
        let size = |field, value: usize, most: usize| (field, value as u64, most as u64);
        [
            size("cpu_parallelism", self.cpu_parallelism, MAX_PARALLELISM),
            size("cpu_queue_cap", self.cpu_queue_cap, MAX_QUEUE),
            size("batch_max_size", self.batch_max_size, MAX_QUEUE),
            size("batch_queue_cap", self.batch_queue_cap, MAX_QUEUE),
            size("decision_log_cap", self.decision_log_cap, MAX_DECISION_LOG),
            size("max_classes", self.max_classes, MAX_CLASSES),
            size("autoscale_window", self.autoscale_window, 4_096),
            size(
                "autoscale_max_parallelism",
                self.autoscale_max_parallelism,
                MAX_PARALLELISM,
            ),
            size(
                "autoscale_max_queue_cap",
                self.autoscale_max_queue_cap,
                MAX_QUEUE,
            ),
            ("cpu_pool_nice", u64::from(self.cpu_pool_nice), 19),
            ("batch_max_delay_ms", self.batch_max_delay_ms, 60_000),
        ]
    }
}
