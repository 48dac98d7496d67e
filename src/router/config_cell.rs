//! The router's config as shared state: what the operator configured and what the hot
//! path reads (the same with the adaptive spawn threshold applied), both swapped whole.
//! Every change goes through a [`ConfigWrite`], which holds the writers' lock, so
//! read-modify-write changes never interleave and the two configs never disagree.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::{ArcSwap, Guard};

use super::lock;
use crate::config::RouterConfig;

#[derive(Debug)]
pub(crate) struct ConfigCell {
    /// What the operator configured (validated).
    configured: ArcSwap<RouterConfig>,
    /// `configured` with the adaptive spawn threshold applied; what the hot path loads.
    effective: ArcSwap<RouterConfig>,
    /// Serialises writers.
    write: Mutex<()>,
    /// The adaptive spawn threshold (≥ the configured one).
    adaptive_spawn: AtomicU64,
}

/// The right to change the config: holds the writers' lock while it lives.
pub(crate) struct ConfigWrite<'a> {
    cell: &'a ConfigCell,
    _lock: MutexGuard<'a, ()>,
}

impl ConfigCell {
    pub(crate) fn new(cfg: RouterConfig) -> Self {
        Self {
            adaptive_spawn: AtomicU64::new(cfg.spawn_threshold),
            effective: ArcSwap::from_pointee(cfg.clone()),
            configured: ArcSwap::from_pointee(cfg),
            write: Mutex::new(()),
        }
    }

    /// The config the hot path routes with (one snapshot per job).
    #[inline]
    pub(crate) fn effective(&self) -> Guard<Arc<RouterConfig>> {
        self.effective.load()
    }

    /// The config as configured (without the adaptive threshold).
    pub(crate) fn configured(&self) -> Arc<RouterConfig> {
        self.configured.load_full()
    }

    /// Takes the writers' lock.
    pub(crate) fn write(&self) -> ConfigWrite<'_> {
        ConfigWrite {
            cell: self,
            _lock: lock(&self.write),
        }
    }
}

impl ConfigWrite<'_> {
    /// The configured config now (no other writer can change it while `self` lives).
    pub(crate) fn current(&self) -> Arc<RouterConfig> {
        self.cell.configured.load_full()
    }

    /// The adaptive spawn threshold in force (never below the configured one).
    pub(crate) fn adaptive_spawn(&self, cfg: &RouterConfig) -> u64 {
        self.cell
            .adaptive_spawn
            .load(Relaxed)
            .max(cfg.spawn_threshold)
    }

    /// Sets the adaptive spawn threshold and republishes the effective config.
    pub(crate) fn set_adaptive_spawn(&self, threshold: u64) {
        self.cell.adaptive_spawn.store(threshold, Relaxed);
        self.publish(&self.current());
    }

    /// Installs a validated config: the adaptive threshold restarts from the configured
    /// one when it fell below it or adaptation is off; both configs are republished.
    pub(crate) fn install(&self, cfg: RouterConfig) {
        let adaptive = self.cell.adaptive_spawn.load(Relaxed);
        if adaptive < cfg.spawn_threshold || !cfg.enable_adaptive_threshold {
            self.cell.adaptive_spawn.store(cfg.spawn_threshold, Relaxed);
        }
        self.publish(&cfg);
        self.cell.configured.store(Arc::new(cfg));
    }

    fn publish(&self, cfg: &RouterConfig) {
        let mut eff = cfg.clone();
        eff.spawn_threshold = self.adaptive_spawn(cfg);
        self.cell.effective.store(Arc::new(eff));
    }
}
