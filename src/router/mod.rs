//! The router: a cheap-to-clone handle over shared state that decides, dispatches and
//! records every unit of work.
//!
//! Per job: one config load (`arc_swap`), the decision (`policy::decide` on the view
//! `route.rs` gives it), dispatch with budget-aware admission (`dispatch.rs`), and
//! relaxed-atomic bookkeeping (`record.rs`). Background tasks (batch flusher, pressure
//! ticker, learner) hold weak references and stop with the router.
//!
//! `Router`'s methods live with their concern, one `impl Router` block per file:
//!
//! | file | methods |
//! |---|---|
//! | `mod.rs` | construction (`new`, `try_new`), `subscribe_decisions`, `recent_decisions`, `neural_snapshot`, weights, `is_shutting_down` |
//! | `builder.rs` | `builder` and `RouterBuilder` (learner, remote, registered tasks) |
//! | `dispatch.rs` | running work: `run`, `submit`, `submit_one` |
//! | `remote_dispatch.rs` | `run_task` (feature `remote`) |
//! | `control.rs` | the control plane: `config`, `set_config`, `update_config`, `patch_config`, `set_external_pressure`, the ticks, `shutdown` |
//! | `estimate.rs` | what a layer in front reads and writes per request: `class_estimate(_for)`, `record_request(_for)`, request sheds |
//! | `stats.rs` | `stats` |
//!
//! `Inner`, the state behind the handle, is in owned parts where an invariant spans
//! fields: `ConfigCell` (`config_cell.rs`), `Feed` (`feed.rs`), `Pressure`
//! (`pressure.rs`), the pool, the batcher, the class table and the learner.

mod batch;
mod builder;
mod classes;
mod config_cell;
mod control;
mod cpu_pool;
mod decision_log;
mod dispatch;
mod error;
mod estimate;
mod feed;
mod hint;
mod job;
mod learning;
mod ledger;
mod pressure;
mod record;
pub mod reload;
#[cfg(feature = "remote")]
mod remote_dispatch;
mod route;
mod stats;
mod stripes;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use crate::config::{ConfigError, RouterConfig};
use crate::neural_router::{NeuralRouter, NeuralSnapshot, WeightsError};
use crate::types::RoutingDecision;

use batch::Batcher;
use classes::ClassTable;
use config_cell::ConfigCell;
use cpu_pool::CpuPool;
use feed::Feed;
use learning::Learning;
use pressure::Pressure;
use stripes::{STRIPES, Stripe};

pub use crate::autoscaler::{Forecast, Recommendation};
pub use crate::metrics::{LatencySummary, PressureSnapshot};
pub use crate::policy::cost::CostModel;
pub use builder::{BuildError, RouterBuilder};
pub use classes::{ClassStats, OVERFLOW_CLASS, StrategyCount};
pub use control::ShutdownReport;
pub use error::Rejected;
pub use estimate::{ClassEstimate, REQUEST_TRUST_SAMPLES};
pub use hint::WorkHint;
pub use learning::{neural_config, warm_learner};
pub use ledger::WorkTime;
pub use stats::{RouterStats, StrategyStats};

pub(crate) use crate::sync::lock;

/// Counters that are not per-thread (rarely written). All `Relaxed` tallies.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Estimated ns of spawned work not yet finished. Added when a job is spawned,
    /// subtracted when its task ends.
    pub(crate) spawn_outstanding_ns: AtomicU64,
    /// Batches flushed because they reached `batch_max_size`.
    pub(crate) batch_flushes_full: AtomicU64,
    /// Batches flushed by the timer (`batch_max_delay_ms`) or at shutdown.
    pub(crate) batch_flushes_timer: AtomicU64,
}

/// Shared state behind [`Router`].
pub(crate) struct Inner {
    /// The configured and the effective config, and the adaptive spawn threshold.
    pub(crate) config: ConfigCell,
    /// The CPU pool; resized by `install`, closed by `shutdown` and on drop.
    pub(crate) pool: CpuPool,
    /// Batch queues; pushed by `run`, drained by the flusher and by full batches.
    pub(crate) batcher: Batcher,
    /// Tallies that are not per-thread (spawned backlog, batch flushes).
    pub(crate) counters: Counters,
    /// Hot-path counters and latency windows, one stripe per thread group.
    pub(crate) stripes: Box<[Stripe]>,
    /// The decision log and the broadcast feed; written by `log_decision`.
    pub(crate) feed: Feed,
    /// Work classes (`max_classes` and the overflow class): learned costs, counters.
    pub(crate) classes: ClassTable,
    /// The pressure score: written by the ticker and `set_external_pressure`.
    pub(crate) pressure: Pressure,
    /// Set once by `shutdown`; new work is rejected after it.
    pub(crate) shutting_down: AtomicBool,
    /// When the router was built (the ticks' and the autoscaler's clock).
    pub(crate) epoch: Instant,
    /// `epoch` on the hot path's clock (quanta).
    pub(crate) clock_epoch: quanta::Instant,
    /// `epoch` as Unix milliseconds (the decision log's timestamps).
    pub(crate) epoch_unix_ms: u64,
    /// The ticks' state: last tick's counters, the autoscaler, the adaptive threshold.
    pub(crate) control: Mutex<control::ControlState>,
    /// The learner and its published policy.
    pub(crate) learning: Learning,
    /// The remote side, set once by `RouterBuilder::build` when remote is configured.
    #[cfg(feature = "remote")]
    pub(crate) remote: std::sync::OnceLock<Arc<crate::remote::Remote>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Workers drain what is queued and exit; do not block the dropping thread.
        self.pool.close(Duration::ZERO);
    }
}

/// The routing engine. Cheap to clone (an `Arc` inside); clones share everything.
///
/// # Examples
///
/// ```
/// use helixrouter::{Router, RouterConfig, WorkHint};
/// use helixrouter::types::{Job, JobKind};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let router = Router::new(RouterConfig::default());
/// let job = Job { id: 1, kind: JobKind::HashMix, inputs: vec![1, 2, 3], compute_cost: 2_000,
///                 scaling_potential: 0.1, latency_budget_ms: 10 };
/// assert_eq!(router.submit(job).await.map(|v| v.len()), Some(1));
///
/// let sum = router.run(WorkHint::new(2, 500), || (1..=10u64).sum::<u64>()).await;
/// assert_eq!(sum, Ok(55));
/// router.shutdown().await;
/// # }
/// ```
#[derive(Clone)]
pub struct Router {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("cpu_busy", &self.inner.pool.busy())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Builds a router and spawns its background tasks on the current Tokio runtime.
    ///
    /// # Panics
    ///
    /// When `cfg` fails [`RouterConfig::validate`] (use [`Router::try_new`] to get the
    /// error instead) or when called outside a Tokio runtime.
    pub fn new(cfg: RouterConfig) -> Router {
        match Self::try_new(cfg) {
            Ok(r) => r,
            Err(e) => panic!("Router::new: {e}"),
        }
    }

    /// Builds a router from a validated config.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming each broken field.
    pub fn try_new(cfg: RouterConfig) -> Result<Router, ConfigError> {
        cfg.validate()?;
        let learner = learning::warm_learner(&cfg);
        Self::with_learner(cfg, learner)
    }

    /// Builds a router whose neural router starts from `learner` (e.g. weights loaded
    /// with [`NeuralRouter::load`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming each broken field.
    pub(crate) fn with_learner(
        cfg: RouterConfig,
        learner: NeuralRouter,
    ) -> Result<Router, ConfigError> {
        cfg.validate()?;
        let epoch_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let inner = Arc::new(Inner {
            pool: CpuPool::new(cfg.cpu_parallelism, cfg.cpu_queue_cap, cfg.cpu_pool_nice),
            batcher: Batcher::new(),
            counters: Counters::default(),
            stripes: (0..STRIPES).map(|_| Stripe::new()).collect(),
            feed: Feed::new(cfg.decision_log_cap),
            classes: ClassTable::new(cfg.max_classes),
            pressure: Pressure::new(),
            shutting_down: AtomicBool::new(false),
            epoch: Instant::now(),
            clock_epoch: quanta::Instant::now(),
            epoch_unix_ms,
            control: Mutex::new(control::ControlState::new(&cfg)),
            learning: Learning::new(learner),
            #[cfg(feature = "remote")]
            remote: std::sync::OnceLock::new(),
            config: ConfigCell::new(cfg),
        });
        let router = Router { inner };
        router.spawn_background();
        Ok(router)
    }

    fn spawn_background(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(control::batch_flusher(weak.clone()));
        tokio::spawn(control::pressure_ticker(weak.clone()));
        tokio::spawn(learning::learner_task(weak));
    }

    /// A receiver of every subsequent [`RoutingDecision`], each with its feed position
    /// (`seq`). While nobody subscribes the router skips sending them; the decisions made
    /// meanwhile are counted into the next positions, so a client that reconnects sees
    /// how many it missed.
    pub fn subscribe_decisions(&self) -> broadcast::Receiver<RoutingDecision> {
        self.inner.feed.subscribe(self.inner.routed_total())
    }

    /// True once [`Router::shutdown`] has begun (new work is then rejected).
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Relaxed)
    }

    /// The neural router's weights and learning figures.
    pub fn neural_snapshot(&self) -> NeuralSnapshot {
        let mut snap = lock(&self.inner.learning.learner).snapshot();
        snap.warmed_up = snap.warmed_up && self.inner.config.configured().enable_neural;
        snap
    }

    /// Saves the neural router's weights atomically (temp file, fsync, rename).
    ///
    /// # Errors
    ///
    /// [`WeightsError`] when the file cannot be written.
    pub fn save_weights(&self, path: &std::path::Path) -> Result<(), WeightsError> {
        lock(&self.inner.learning.learner).save(path)
    }

    /// Replaces the neural router's state with weights loaded from `path`.
    ///
    /// # Errors
    ///
    /// [`WeightsError`] for a missing, corrupt, truncated or mismatched file; the
    /// current learner is kept.
    pub fn load_weights(&self, path: &std::path::Path) -> Result<(), WeightsError> {
        let cfg = learning::neural_config(&self.inner.config.configured());
        let learner = NeuralRouter::load(path, cfg)?;
        self.inner.learning.replace(learner);
        Ok(())
    }

    /// The last routing decisions, newest first: at most `limit`, and at most
    /// `decision_log_cap` in all.
    pub fn recent_decisions(&self, limit: usize) -> Vec<RoutingDecision> {
        let classes = &self.inner.classes;
        self.inner
            .feed
            .recent(limit, |id| classes.get(id).map(|c| c.name))
    }
}
