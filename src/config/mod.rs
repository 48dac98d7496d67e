//! Router configuration: [`RouterConfig`] with its defaults and validation, the
//! sparse [`RouterConfigPatch`], and JSON parsing. Pure: no tokio, no I/O.
//!
//! A config is always applied whole or not at all: [`RouterConfig::apply`] builds a
//! new value and validates it before anyone can see it.

pub(crate) mod autoscale;
mod error;
mod patch;
mod validate;

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Violation};

/// Declares [`RouterConfig`] and [`RouterConfigPatch`] from one field list so the two
/// can never drift apart.
macro_rules! config_struct {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty ),+ $(,)?) => {
        /// Every tunable of the router. Serialised as JSON with these field names;
        /// unknown fields are rejected.
        ///
        /// # Examples
        ///
        /// ```
        /// use helixrouter::config::RouterConfig;
        /// let cfg = RouterConfig::default();
        /// assert_eq!(cfg.inline_threshold, 8_000);
        /// assert!(cfg.validate().is_ok());
        /// ```
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct RouterConfig {
            $( $(#[$doc])* pub $field: $ty, )+
        }

        /// A sparse update of [`RouterConfig`] in its JSON form (the HTTP `PATCH
        /// /api/config` body, the watched config file): only the fields present change;
        /// unknown fields are rejected. Built with [`RouterConfigPatch::from_json`] or
        /// serde; from Rust code, change a running router's config with
        /// `Router::update_config` instead.
        ///
        /// # Examples
        ///
        /// ```
        /// use helixrouter::config::{RouterConfig, RouterConfigPatch};
        /// let patch: RouterConfigPatch = serde_json::from_str(r#"{"batch_max_size": 16}"#).unwrap();
        /// let cfg = RouterConfig::default().apply(&patch).unwrap();
        /// assert_eq!(cfg.batch_max_size, 16);
        /// ```
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RouterConfigPatch {
            $( $(#[$doc])* #[serde(default, skip_serializing_if = "Option::is_none")] pub(crate) $field: Option<$ty>, )+
        }

        impl RouterConfigPatch {
            /// Writes every `Some` field into `cfg` (unvalidated; see [`RouterConfig::apply`]).
            pub(crate) fn merge_into(&self, cfg: &mut RouterConfig) {
                $( if let Some(v) = &self.$field { cfg.$field = v.clone(); } )+
            }

            /// True when no field is set.
            pub fn is_empty(&self) -> bool {
                true $( && self.$field.is_none() )+
            }
        }
    };
}

config_struct! {
    /// Jobs with `compute_cost` (ns) at or below this run inline.
    inline_threshold: u64,
    /// Jobs with `compute_cost` (ns) below this are spawned; above go to the pool or a batch.
    spawn_threshold: u64,
    /// CPU pool workers running at once.
    cpu_parallelism: usize,
    /// CPU pool jobs waiting at most (beyond this, jobs are shed).
    cpu_queue_cap: usize,
    /// Niceness (0..=19) of CPU pool threads, so the async workers win the cores when
    /// both want them (keeps executor latency low under overload; 19 measured best in
    /// the overload harness). Applies to workers started after a change.
    cpu_pool_nice: u8,
    /// CPU pool occupancy (running + queued) at which the backpressure gate closes.
    backpressure_busy_threshold: usize,
    /// A batch is flushed when it holds this many jobs.
    batch_max_size: usize,
    /// A batch is flushed when its oldest job has waited this long (ms).
    batch_max_delay_ms: u64,
    /// A batch is flushed when its jobs' estimated cost reaches this (ns): a batch runs
    /// as one uninterruptible pool task, so this bounds how long it holds a worker.
    batch_max_cost_ns: u64,
    /// Jobs waiting per kind in the batch queues at most.
    batch_queue_cap: usize,
    /// Smoothing factor of the latency EMA, in (0, 1].
    ema_alpha: f64,
    /// Relative step of the adaptive spawn threshold, in (0, 1].
    adaptive_step: f64,
    /// CPU pool p95 latency budget (ms) used by the adaptive threshold.
    cpu_p95_budget_ms: u64,
    /// The adaptive threshold rises when pool p95 exceeds `cpu_p95_budget_ms` × this (>= 1).
    adaptive_p95_threshold_factor: f64,
    /// Whether `maybe_adapt_threshold` may move the spawn threshold.
    enable_adaptive_threshold: bool,
    /// Shed jobs whose estimated completion time exceeds their latency budget.
    enable_admission: bool,
    /// Let the learned model override the heuristic once warmed up.
    enable_neural: bool,
    /// Initial exploration rate of the neural router, in [0, 1].
    neural_epsilon: f64,
    /// Floor of the exploration rate, in [0, neural_epsilon].
    neural_epsilon_min: f64,
    /// Multiplicative epsilon decay per learned sample, in (0, 1].
    neural_epsilon_decay: f64,
    /// Learning rate of the neural router, in (0, 1].
    neural_learning_rate: f64,
    /// Samples before the neural router may override the heuristic.
    neural_warmup_samples: u64,
    /// Let `autoscale_tick` resize the live CPU pool.
    enable_autoscaler: bool,
    /// Autoscaler observation ring buffer length (>= 2).
    autoscale_window: usize,
    /// How far ahead the autoscaler forecasts (s).
    autoscale_horizon_secs: u64,
    /// Minimum time between two autoscaler changes (s).
    autoscale_cooldown_secs: u64,
    /// Lower bound for `cpu_parallelism` chosen by the autoscaler.
    autoscale_min_parallelism: usize,
    /// Upper bound for `cpu_parallelism` chosen by the autoscaler.
    autoscale_max_parallelism: usize,
    /// Lower bound for `cpu_queue_cap` chosen by the autoscaler.
    autoscale_min_queue_cap: usize,
    /// Upper bound for `cpu_queue_cap` chosen by the autoscaler.
    autoscale_max_queue_cap: usize,
    /// How long an external pressure signal stays in force (ms).
    external_pressure_ttl_ms: u64,
    /// Routing decisions kept in the in-memory log, in total (at most
    /// [`MAX_DECISION_LOG`]). Set when the router is built: a running router rejects a
    /// change with a violation naming this field.
    decision_log_cap: usize,
    /// Learn each work class's cost from what ran and let it outweigh the caller's
    /// hint (see `policy::cost`). Off: hints are used as given.
    enable_cost_learning: bool,
    /// Distinct work classes tracked at most (names beyond share one overflow class).
    /// Set when the router is built, like `decision_log_cap`; at most [`MAX_CLASSES`].
    max_classes: usize,
}

/// Cores available to this process (at least 1).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for RouterConfig {
    fn default() -> Self {
        let cores = available_cores();
        Self {
            inline_threshold: 8_000,
            spawn_threshold: 60_000,
            cpu_parallelism: cores,
            cpu_queue_cap: 512,
            cpu_pool_nice: 19,
            backpressure_busy_threshold: 512,
            batch_max_size: 8,
            batch_max_delay_ms: 10,
            batch_max_cost_ns: 2_000_000,
            batch_queue_cap: 1_024,
            ema_alpha: 0.15,
            adaptive_step: 0.10,
            cpu_p95_budget_ms: 200,
            adaptive_p95_threshold_factor: 1.5,
            enable_adaptive_threshold: true,
            enable_admission: true,
            enable_neural: true,
            neural_epsilon: 0.2,
            neural_epsilon_min: 0.02,
            neural_epsilon_decay: 0.999,
            neural_learning_rate: 0.05,
            neural_warmup_samples: 200,
            enable_autoscaler: true,
            autoscale_window: 30,
            autoscale_horizon_secs: 30,
            autoscale_cooldown_secs: 30,
            autoscale_min_parallelism: 1,
            autoscale_max_parallelism: cores.max(1) * 2,
            autoscale_min_queue_cap: 64,
            autoscale_max_queue_cap: 4_096,
            external_pressure_ttl_ms: 5_000,
            decision_log_cap: 256,
            enable_cost_learning: true,
            max_classes: 256,
        }
    }
}

impl RouterConfig {
    /// Returns a new config with `patch` applied, validated; `self` is untouched.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the merged config breaks a rule; nothing is applied.
    pub fn apply(&self, patch: &RouterConfigPatch) -> Result<RouterConfig, ConfigError> {
        let mut next = self.clone();
        patch.merge_into(&mut next);
        next.validate()?;
        Ok(next)
    }

    /// Parses a whole config from JSON (missing fields take their defaults) and validates it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] for malformed JSON or unknown fields,
    /// [`ConfigError::Invalid`] for values that break a rule.
    pub fn from_json(s: &str) -> Result<RouterConfig, ConfigError> {
        let cfg: RouterConfig = serde_json::from_str(s).map_err(ConfigError::Parse)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Largest accepted `cpu_parallelism`.
pub const MAX_PARALLELISM: usize = 1_024;
/// Largest accepted queue or batch capacity.
pub const MAX_QUEUE: usize = 1 << 20;
/// Largest accepted `max_classes`.
pub const MAX_CLASSES: usize = 4_096;
/// Largest accepted `decision_log_cap` (decisions kept in memory, about 40 bytes each).
pub const MAX_DECISION_LOG: usize = 65_536;

#[cfg(test)]
mod tests;
