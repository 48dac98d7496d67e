//! The control plane of the router: config changes applied whole to the live pool,
//! the adaptive spawn threshold, external pressure, shutdown, and the background loops.

use std::sync::Weak;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config_cell::ConfigWrite;
use super::{Inner, Router, lock};
use crate::autoscaler::{Autoscaler, AutoscalerConfig, Observation, PoolSize, Recommendation};
use crate::config::{ConfigError, RouterConfig, RouterConfigPatch};
use crate::metrics::PressureInputs;
use crate::types::Strategy;

/// Upper bound of the adaptive spawn threshold, as a multiple of the configured one.
pub(crate) const MAX_ADAPTIVE_FACTOR: u64 = 16;
/// How often the pressure ticker folds counters into the pressure score.
pub(crate) const PRESSURE_TICK: Duration = Duration::from_millis(50);

/// The counters as the previous pressure tick read them.
#[derive(Debug, Clone, Copy)]
struct TickCounters {
    at: Instant,
    submitted: u64,
    dropped: u64,
    completed: u64,
    late: u64,
}

/// Mutable control-plane state (ticks, not the hot path).
#[derive(Debug)]
pub(crate) struct ControlState {
    /// Counter values at the previous pressure tick; written by `pressure_tick`.
    last_tick: TickCounters,
    /// The forecaster, rebuilt when its config fields change.
    autoscaler: Autoscaler,
    /// (time, pool tasks accepted) at the previous autoscale tick.
    last_autoscale: Option<(f64, u64)>,
}

impl ControlState {
    pub(crate) fn new(cfg: &RouterConfig) -> Self {
        Self {
            last_tick: TickCounters {
                at: Instant::now(),
                submitted: 0,
                dropped: 0,
                completed: 0,
                late: 0,
            },
            autoscaler: Autoscaler::new(autoscaler_config(cfg)),
            last_autoscale: None,
        }
    }
}

/// The autoscaler's parameters from the router config.
pub(crate) fn autoscaler_config(cfg: &RouterConfig) -> AutoscalerConfig {
    AutoscalerConfig {
        window: cfg.autoscale_window,
        horizon_secs: cfg.autoscale_horizon_secs as f64,
        min_parallelism: cfg.autoscale_min_parallelism,
        max_parallelism: cfg.autoscale_max_parallelism,
        min_queue_cap: cfg.autoscale_min_queue_cap,
        max_queue_cap: cfg.autoscale_max_queue_cap,
        cooldown_secs: cfg.autoscale_cooldown_secs as f64,
        ..AutoscalerConfig::default()
    }
}

/// What `shutdown` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Jobs still in flight when the timeout expired (0 = fully drained).
    pub abandoned: u64,
    /// True when the pool's workers all exited in time.
    pub pool_stopped: bool,
}

impl Router {
    /// The configuration in force (as configured; see `stats().adaptive_spawn_threshold`
    /// for the adapted spawn threshold).
    pub fn config(&self) -> RouterConfig {
        RouterConfig::clone(&self.inner.config.configured())
    }

    /// Replaces the whole config after validating it; resizes the live pool.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming each broken field (including a changed
    /// `decision_log_cap`, which is fixed when the router is built); nothing is applied.
    pub fn set_config(&self, cfg: RouterConfig) -> Result<RouterConfig, ConfigError> {
        self.update_config(|c| *c = cfg)
    }

    /// Changes the config: `change` edits a copy of the current config, which is
    /// validated and installed whole; returns it. Concurrent changes (this, `set_config`,
    /// `patch_config`, a reloaded file) never interleave.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming each broken field, and each field a running
    /// router cannot change (`decision_log_cap`, `max_classes`);
    /// nothing is applied.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use helixrouter::{Router, RouterConfig};
    /// let router = Router::new(RouterConfig::default());
    /// let cfg = router.update_config(|c| c.batch_max_size = 16).expect("valid");
    /// assert_eq!(router.config().batch_max_size, 16);
    /// assert!(router.update_config(|c| c.cpu_parallelism = 0).is_err());
    /// assert_eq!(router.config(), cfg, "nothing applied");
    /// router.shutdown().await;
    /// # }
    /// ```
    pub fn update_config(
        &self,
        change: impl FnOnce(&mut RouterConfig),
    ) -> Result<RouterConfig, ConfigError> {
        let w = self.inner.config.write();
        let mut next = RouterConfig::clone(&w.current());
        change(&mut next);
        next.validate()?;
        self.inner.check_live(&next)?;
        self.inner.install(&w, next.clone());
        Ok(next)
    }

    /// Applies a sparse patch (the JSON form of a change) to the current config,
    /// validates the result and installs it whole; returns the merged config.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming each broken field (including a changed
    /// `decision_log_cap`, which is fixed when the router is built); nothing is applied.
    pub fn patch_config(&self, patch: &RouterConfigPatch) -> Result<RouterConfig, ConfigError> {
        self.update_config(|c| patch.merge_into(c))
    }

    /// Injects an upstream pressure signal in [0, 1]; it blends as `max(internal,
    /// external)` until `external_pressure_ttl_ms` passes.
    ///
    /// # Errors
    ///
    /// When `pressure` is not a finite number in [0, 1].
    pub fn set_external_pressure(&self, pressure: f64) -> Result<(), ConfigError> {
        if !(pressure.is_finite() && (0.0..=1.0).contains(&pressure)) {
            return Err(ConfigError::Invalid(vec![crate::config::Violation::new(
                "pressure",
                "must be a finite number in [0, 1]",
                pressure,
            )]));
        }
        let ttl = self.inner.config.configured().external_pressure_ttl_ms as f64 / 1e3;
        let now = self.inner.epoch.elapsed().as_secs_f64();
        self.inner.pressure.set_external(pressure, now, ttl);
        Ok(())
    }

    /// Raises the spawn threshold by `adaptive_step` when the CPU pool's p95 exceeds
    /// `cpu_p95_budget_ms × adaptive_p95_threshold_factor` (so more medium work stays
    /// off the pool), and moves it back toward the configured value by the same step
    /// once the p95 is within budget. Returns the threshold in force.
    pub fn maybe_adapt_threshold(&self) -> u64 {
        let w = self.inner.config.write();
        let cfg = w.current();
        let current = w.adaptive_spawn(&cfg);
        if !cfg.enable_adaptive_threshold {
            w.set_adaptive_spawn(cfg.spawn_threshold);
            return cfg.spawn_threshold;
        }
        let windows: Vec<_> = self
            .inner
            .stripes
            .iter()
            .map(|s| &s.latency[Strategy::CpuPool.index()])
            .collect();
        let p95_ms = crate::metrics::LatencyWindow::merged_p95_ns(&windows) as f64 / 1e6;
        let limit = cfg.cpu_p95_budget_ms as f64 * cfg.adaptive_p95_threshold_factor;
        let next = if p95_ms > limit {
            let raised = (current as f64 * (1.0 + cfg.adaptive_step)).ceil() as u64;
            raised.min(cfg.spawn_threshold.saturating_mul(MAX_ADAPTIVE_FACTOR))
        } else if p95_ms <= cfg.cpu_p95_budget_ms as f64 {
            let lowered = (current as f64 / (1.0 + cfg.adaptive_step)).floor() as u64;
            lowered.max(cfg.spawn_threshold)
        } else {
            current
        };
        if next != current {
            tracing::info!(
                p95_ms,
                limit_ms = limit,
                from = current,
                to = next,
                "adaptive spawn threshold moved"
            );
        }
        w.set_adaptive_spawn(next);
        next
    }

    /// Feeds the autoscaler one observation (pool arrivals per second since the last
    /// tick and the pool's observed service time), asks it for a recommendation and,
    /// when `enable_autoscaler` is on and the recommendation changes the size, applies
    /// it to the live pool through the validated config path. Call it periodically (the
    /// binary does every 10 s). Returns the recommendation.
    pub fn autoscale_tick(&self) -> Recommendation {
        let inner = &*self.inner;
        let now = inner.epoch.elapsed().as_secs_f64();
        let cfg = inner.config.configured();
        let accepted = inner.pool.accepted();
        let service = inner.pool.service_secs();
        let mut ctl = lock(&inner.control);
        let wanted = autoscaler_config(&cfg);
        if *ctl.autoscaler.config() != wanted.sanitized() {
            ctl.autoscaler = Autoscaler::new(wanted);
        }
        if let Some((t0, a0)) = ctl.last_autoscale
            && now > t0
        {
            let rate = accepted.saturating_sub(a0) as f64 / (now - t0);
            ctl.autoscaler.observe(Observation {
                at_secs: now,
                arrival_rate: rate,
                mean_service_secs: service,
            });
        }
        ctl.last_autoscale = Some((now, accepted));
        let current = PoolSize {
            parallelism: cfg.cpu_parallelism,
            queue_cap: cfg.cpu_queue_cap,
        };
        let rec = ctl.autoscaler.recommend(now, current);
        drop(ctl);
        if rec.changed && cfg.enable_autoscaler {
            let patch = RouterConfigPatch {
                cpu_parallelism: Some(rec.parallelism),
                cpu_queue_cap: Some(rec.queue_cap),
                ..RouterConfigPatch::default()
            };
            match self.patch_config(&patch) {
                Ok(_) => tracing::info!(
                    parallelism = rec.parallelism,
                    queue_cap = rec.queue_cap,
                    reason = %rec.reason,
                    "autoscaler resized the cpu pool"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, reason = %rec.reason, "autoscaler recommendation rejected by validation")
                }
            }
        } else {
            tracing::debug!(reason = %rec.reason, "autoscaler: no change");
        }
        rec
    }

    /// The autoscaler's last recommendation, if it has made one.
    pub fn autoscaler_last(&self) -> Option<Recommendation> {
        lock(&self.inner.control)
            .autoscaler
            .last_recommendation()
            .cloned()
    }

    /// Stops admitting (new work gets [`Rejected::ShuttingDown`](super::Rejected)),
    /// flushes batches, waits up to 10 s for in-flight work, then stops the pool.
    /// Idempotent.
    pub async fn shutdown(&self) -> ShutdownReport {
        self.shutdown_with_timeout(Duration::from_secs(10)).await
    }

    /// [`Router::shutdown`] with an explicit drain timeout.
    #[tracing::instrument(name = "router_shutdown", skip(self))]
    pub async fn shutdown_with_timeout(&self, timeout: Duration) -> ShutdownReport {
        let deadline = tokio::time::Instant::now() + timeout;
        let first = !self.inner.shutting_down.swap(true, Relaxed);
        if first {
            tracing::info!("router shutting down: draining in-flight work");
        }
        self.inner.batcher.wake.notify_one();
        let cfg = self.inner.config.configured();
        for batch in self.inner.batcher.take_due(
            tokio::time::Instant::now(),
            Duration::ZERO,
            cfg.batch_max_size,
            true,
        ) {
            self.inner
                .counters
                .batch_flushes_timer
                .fetch_add(1, Relaxed);
            self.flush_batch(batch, false);
        }
        while self.inner.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let abandoned = self.inner.in_flight();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let pool = self.inner.pool.clone();
        let pool_stopped = tokio::task::spawn_blocking(move || pool.close(left))
            .await
            .unwrap_or(false);
        if abandoned > 0 {
            tracing::warn!(abandoned, "shutdown timed out with work in flight");
        }
        ShutdownReport {
            abandoned,
            pool_stopped,
        }
    }
}

impl Inner {
    /// Rejects a valid config that a running router cannot apply: the decision log's
    /// size and the class table's are fixed at construction.
    fn check_live(&self, next: &RouterConfig) -> Result<(), ConfigError> {
        let fixed = [
            (
                "decision_log_cap",
                self.feed.capacity(),
                next.decision_log_cap,
            ),
            ("max_classes", self.classes.capacity(), next.max_classes),
        ];
        let v: Vec<_> = fixed
            .into_iter()
            .filter(|&(_, built, wanted)| built != wanted)
            .map(|(field, built, wanted)| {
                crate::config::Violation::new(
                    field,
                    format!("cannot change on a running router (it has {built}); set it when building the router"),
                    wanted,
                )
            })
            .collect();
        if v.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(v))
        }
    }

    /// Installs a validated config under the writers' lock `w`: the live pool is
    /// resized, both configs republished, and the batch flusher woken (its delay may
    /// have changed).
    pub(crate) fn install(&self, w: &ConfigWrite<'_>, cfg: RouterConfig) {
        self.pool
            .resize(cfg.cpu_parallelism, cfg.cpu_queue_cap, cfg.cpu_pool_nice);
        w.install(cfg);
        self.batcher.wake.notify_one();
    }

    fn pressure_tick(&self) {
        let now = Instant::now();
        let (submitted, completed, dropped, _) = self.totals();
        let late = super::stripes::sum(&self.stripes, |s| &s.late);
        self.feed.refresh_listening();
        let (par, cap, _) = self.pool.shape();
        let this = TickCounters {
            at: now,
            submitted,
            dropped,
            completed,
            late,
        };
        let prev = std::mem::replace(&mut lock(&self.control).last_tick, this);
        let inputs = PressureInputs {
            saturation: self.pool.running() as f64 / par.max(1) as f64,
            queue_fill: self.pool.queued() as f64 / cap.max(1) as f64,
            submitted: submitted.saturating_sub(prev.submitted),
            dropped: dropped.saturating_sub(prev.dropped),
            completed: completed.saturating_sub(prev.completed),
            late: late.saturating_sub(prev.late),
            dt_secs: now.duration_since(prev.at).as_secs_f64(),
        };
        self.pressure
            .tick(inputs, self.epoch.elapsed().as_secs_f64());
    }
}

/// Flushes batches whose oldest entry has waited `batch_max_delay_ms`, round-robin
/// across classes. Exits when the router is dropped.
pub(crate) async fn batch_flusher(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let cfg = inner.config.configured();
        let delay = Duration::from_millis(cfg.batch_max_delay_ms);
        let due = inner.batcher.next_due(delay);
        let router = Router { inner };
        let notified = router.inner.batcher.wake.notified();
        match due {
            Some(at) if at <= tokio::time::Instant::now() => {
                let now = tokio::time::Instant::now();
                let batches = router
                    .inner
                    .batcher
                    .take_due(now, delay, cfg.batch_max_size, false);
                for b in batches {
                    router
                        .inner
                        .counters
                        .batch_flushes_timer
                        .fetch_add(1, Relaxed);
                    router.flush_batch(b, cfg.enable_admission);
                }
                continue;
            }
            Some(at) => {
                // The wait is bounded by the batch delay, so the strong reference
                // held here does not keep a dropped router alive for long.
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = notified => {}
                }
            }
            None => {
                // Wake periodically too, so a dropped router is noticed.
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        }
    }
}

/// Folds counters into the pressure score every [`PRESSURE_TICK`], so pressure decays
/// even when no job arrives. Exits when the router is dropped.
pub(crate) async fn pressure_ticker(weak: Weak<Inner>) {
    let mut tick = tokio::time::interval(PRESSURE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        inner.pressure_tick();
    }
}
