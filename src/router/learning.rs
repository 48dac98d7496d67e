//! The router's side of learning: a published [`Policy`] read lock-free on the hot
//! path, a bounded channel of outcome samples, and the learner task that owns the
//! [`NeuralRouter`] and republishes its policy.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use super::{Inner, lock};
use crate::config::RouterConfig;
use crate::neural_router::{Context, NeuralConfig, NeuralRouter, Outcome, Policy};
use crate::policy::choose_for_profile;
use crate::types::{JobProfile, Strategy};

/// Outcome samples waiting for the learner at most; beyond this samples are counted
/// as skipped rather than queued.
pub(crate) const SAMPLE_CHANNEL_CAP: usize = 8_192;
/// The learner republishes its policy after this many samples.
const PUBLISH_EVERY: u64 = 64;

/// One outcome for the learner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) ctx: Context,
    pub(crate) strategy: Strategy,
    pub(crate) outcome: Outcome,
}

/// Learning state shared by the router.
pub(crate) struct Learning {
    /// The policy the hot path reads; swapped whole by the learner task.
    pub(crate) policy: ArcSwap<Policy>,
    /// True when the published policy is warmed up (checked before loading it).
    pub(crate) ready: AtomicBool,
    /// Samples to the learner; `try_send` only, never blocks the job.
    pub(crate) tx: mpsc::Sender<Sample>,
    /// Receiver, taken once by the learner task.
    pub(crate) rx: Mutex<Option<mpsc::Receiver<Sample>>>,
    /// The learner; locked by the learner task per batch of samples and by snapshots.
    pub(crate) learner: Mutex<NeuralRouter>,
    /// Samples not delivered because the channel was full.
    pub(crate) skipped: AtomicU64,
}

impl std::fmt::Debug for Learning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learning")
            .field("ready", &self.ready.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// The learner's parameters from the router config.
pub fn neural_config(cfg: &RouterConfig) -> NeuralConfig {
    NeuralConfig {
        epsilon_start: cfg.neural_epsilon,
        epsilon_min: cfg.neural_epsilon_min,
        epsilon_decay: cfg.neural_epsilon_decay,
        learning_rate: cfg.neural_learning_rate,
        warmup_samples: cfg.neural_warmup_samples,
    }
}

/// A fresh learner warm-started to reproduce the heuristic
/// ([`crate::policy::choose_strategy`]) under `cfg`.
pub fn warm_learner(cfg: &RouterConfig) -> NeuralRouter {
    let mut n = NeuralRouter::new(neural_config(cfg), 0x4E45_5552_414C);
    let heuristic_cfg = cfg.clone();
    let agreement = n.warm_start_from_heuristics(move |ctx| {
        let busy = (ctx.queue_fill * heuristic_cfg.backpressure_busy_threshold as f64) as usize;
        let p = JobProfile {
            compute_cost: ctx.compute_cost,
            scaling_potential: ctx.scaling_potential,
            latency_budget_ms: ctx.latency_budget_ms,
        };
        choose_for_profile(&heuristic_cfg, p, busy)
    });
    tracing::debug!(agreement, "neural router warm-started from the heuristic");
    n
}

impl Learning {
    pub(crate) fn new(learner: NeuralRouter) -> Self {
        let (tx, rx) = mpsc::channel(SAMPLE_CHANNEL_CAP);
        let policy = learner.policy();
        Self {
            ready: AtomicBool::new(policy.is_warmed_up()),
            policy: ArcSwap::from_pointee(policy),
            tx,
            rx: Mutex::new(Some(rx)),
            learner: Mutex::new(learner),
            skipped: AtomicU64::new(0),
        }
    }

    /// Hands one outcome to the learner without blocking.
    #[inline]
    pub(crate) fn offer(&self, ctx: Context, strategy: Strategy, outcome: Outcome) {
        if self
            .tx
            .try_send(Sample {
                ctx,
                strategy,
                outcome,
            })
            .is_err()
        {
            self.skipped.fetch_add(1, Relaxed);
        }
    }

    /// Replaces the learner (e.g. weights loaded from disk) and publishes its policy.
    pub(crate) fn replace(&self, learner: NeuralRouter) {
        let policy = learner.policy();
        self.ready.store(policy.is_warmed_up(), Relaxed);
        self.policy.store(Arc::new(policy));
        *lock(&self.learner) = learner;
    }
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A per-thread xorshift64* stream for exploration (seeded from the thread's address
/// space on first use).
#[inline]
pub(crate) fn next_random() -> u64 {
    RNG.with(|c| {
        let mut x = c.get();
        if x == 0 {
            x = (c as *const Cell<u64> as u64) ^ 0x9E37_79B9_7F4A_7C15 | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// Feeds samples to the learner and republishes the policy. Exits when the router is
/// dropped.
pub(crate) async fn learner_task(weak: Weak<Inner>) {
    let rx = match weak.upgrade() {
        Some(inner) => lock(&inner.learning.rx).take(),
        None => return,
    };
    let Some(mut rx) = rx else { return };
    let mut buf = Vec::with_capacity(256);
    let mut since_publish = 0u64;
    loop {
        buf.clear();
        let got = tokio::select! {
            n = rx.recv_many(&mut buf, 256) => n,
            _ = tokio::time::sleep(Duration::from_millis(500)) => 0,
        };
        let Some(inner) = weak.upgrade() else { return };
        if got == 0 && since_publish == 0 {
            continue;
        }
        let mut learner = lock(&inner.learning.learner);
        for s in &buf {
            learner.record_outcome(&s.ctx, s.strategy, s.outcome);
        }
        since_publish += got as u64;
        if since_publish >= PUBLISH_EVERY || got == 0 {
            let policy = learner.policy();
            drop(learner);
            inner.learning.ready.store(policy.is_warmed_up(), Relaxed);
            inner.learning.policy.store(Arc::new(policy));
            since_publish = 0;
        }
    }
}
