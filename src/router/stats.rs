//! The stats snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

use super::ledger::WorkTime;
use super::stripes::{Stripe, sum};
use super::{Inner, Router};
use crate::metrics::{LatencySummary, LatencyWindow, PressureSnapshot};
use crate::types::Strategy;

/// Per-strategy figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StrategyStats {
    /// The strategy.
    pub strategy: Strategy,
    /// Jobs routed to it.
    pub routed: u64,
    /// Jobs it completed.
    pub completed: u64,
    /// Jobs shed after being routed to it (queue full, deadline, or `Drop` itself).
    pub dropped: u64,
    /// Jobs that panicked.
    pub failed: u64,
    /// Jobs whose caller stopped waiting before they started (they never ran).
    pub cancelled: u64,
    /// Latency of completed jobs.
    pub latency: LatencySummary,
    /// Run time of its jobs by how they ended (for `Remote`, as the workers reported).
    pub work: WorkTime,
}

/// A point-in-time snapshot.
/// `submitted == completed + dropped + failed + cancelled + in_flight`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RouterStats {
    /// Seconds since the router was built.
    pub uptime_secs: f64,
    /// Jobs submitted.
    pub submitted: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Jobs shed.
    pub dropped: u64,
    /// Jobs that panicked.
    pub failed: u64,
    /// Jobs whose caller stopped waiting before they started (they never ran).
    pub cancelled: u64,
    /// Jobs admitted and not yet ended.
    pub in_flight: u64,
    /// Completed jobs that finished over their latency budget.
    pub late: u64,
    /// Run time of all jobs by how they ended, summed over the strategies: the share
    /// wasted on late or aborted work is `work.wasted_share()`.
    pub work: WorkTime,
    /// Per strategy, in [`Strategy::ALL`] order.
    pub strategies: Vec<StrategyStats>,
    /// Pressure and its components.
    pub pressure: PressureSnapshot,
    /// CPU pool tasks running + queued.
    pub cpu_busy: usize,
    /// CPU pool tasks running.
    pub cpu_running: usize,
    /// CPU pool tasks queued.
    pub cpu_queue_depth: usize,
    /// Live CPU pool parallelism.
    pub cpu_parallelism: usize,
    /// Live CPU pool queue cap.
    pub cpu_queue_cap: usize,
    /// Observed actual / estimated run time of pool work.
    pub cpu_slowdown: f64,
    /// Pool tasks shed in the queue because they could no longer meet their deadline.
    pub cpu_shed_in_queue: usize,
    /// Queued pool tasks shed to make room for shorter ones with earlier deadlines.
    pub cpu_evicted: u64,
    /// Pool tasks refused at submission because the queue was full (a batch counts
    /// once).
    pub cpu_refused_queue_full: u64,
    /// Pool tasks refused at submission because admission estimated they would finish
    /// past their deadline (a batch counts once).
    pub cpu_refused_estimate: u64,
    /// Jobs waiting in batch queues.
    pub batch_queue_depth: usize,
    /// Batches flushed because they were full.
    pub batch_flushes_full: u64,
    /// Batches flushed by the delay timer (or at shutdown).
    pub batch_flushes_timer: u64,
    /// Outcome samples the learner did not get because its channel was full.
    pub learning_samples_skipped: u64,
    /// The spawn threshold in force (configured, raised by adaptation).
    pub adaptive_spawn_threshold: u64,
    /// True once `shutdown` began.
    pub shutting_down: bool,
    /// The autoscaler's last recommendation (None before the first `autoscale_tick`).
    pub autoscaler: Option<crate::autoscaler::Recommendation>,
    /// Work classes in use, in first-seen order (the overflow class last, if used).
    pub classes: Vec<super::ClassStats>,
    /// Lookups of class names beyond `max_classes`, which share the overflow class.
    pub class_overflow: u64,
    /// The remote side, when the router was built with one (always `None` without
    /// the `remote` feature; the field exists either way).
    pub remote: Option<crate::types::RemoteStats>,
}

impl Router {
    /// Takes a snapshot. `submitted` is the sum of `routed`; each strategy's end counters
    /// are read before its `routed`, so `in_flight` is never negative and the
    /// conservation identity holds for every snapshot.
    pub fn stats(&self) -> RouterStats {
        let inner = &*self.inner;
        let alpha = inner.config.configured().ema_alpha;
        let per = |f: fn(&Stripe, usize) -> &AtomicU64, i: usize| -> u64 {
            inner.stripes.iter().map(|st| f(st, i).load(Relaxed)).sum()
        };
        // Per strategy, end counters first and `routed` last: a job is routed (and so
        // submitted) before it can end, under the same strategy, so in_flight below is
        // never negative and the identity holds for every snapshot.
        let strategies: Vec<StrategyStats> = Strategy::ALL
            .iter()
            .map(|&s| {
                let i = s.index();
                let windows: Vec<&LatencyWindow> =
                    inner.stripes.iter().map(|st| &st.latency[i]).collect();
                let latency = LatencyWindow::merged_summary(&windows, alpha);
                StrategyStats {
                    strategy: s,
                    completed: latency.count,
                    dropped: per(|st, i| &st.dropped[i], i),
                    failed: per(|st, i| &st.failed[i], i),
                    cancelled: per(|st, i| &st.cancelled[i], i),
                    routed: per(|st, i| &st.routed[i], i),
                    latency,
                    work: inner.stripes.iter().map(|st| st.work[i].snapshot()).sum(),
                }
            })
            .collect();
        let completed: u64 = strategies.iter().map(|s| s.completed).sum();
        let dropped: u64 = strategies.iter().map(|s| s.dropped).sum();
        let failed: u64 = strategies.iter().map(|s| s.failed).sum();
        let cancelled: u64 = strategies.iter().map(|s| s.cancelled).sum();
        let late = sum(&inner.stripes, |st| &st.late);
        let work: WorkTime = strategies.iter().map(|s| s.work).sum();
        let submitted: u64 = strategies.iter().map(|s| s.routed).sum();
        let (cpu_parallelism, cpu_queue_cap, cpu_slowdown) = inner.pool.shape();
        let (cpu_refused_queue_full, cpu_refused_estimate) = inner.pool.refused();
        RouterStats {
            uptime_secs: inner.epoch.elapsed().as_secs_f64(),
            submitted,
            completed,
            dropped,
            failed,
            cancelled,
            in_flight: submitted.saturating_sub(completed + dropped + failed + cancelled),
            late,
            work,
            strategies,
            pressure: inner.pressure.snapshot(),
            cpu_busy: inner.pool.busy(),
            cpu_running: inner.pool.running(),
            cpu_queue_depth: inner.pool.queued(),
            cpu_parallelism,
            cpu_queue_cap,
            cpu_slowdown,
            cpu_shed_in_queue: inner.pool.shed_in_queue(),
            cpu_evicted: inner.pool.evicted(),
            cpu_refused_queue_full,
            cpu_refused_estimate,
            batch_queue_depth: inner.batcher.depth(),
            batch_flushes_full: inner.counters.batch_flushes_full.load(Relaxed),
            batch_flushes_timer: inner.counters.batch_flushes_timer.load(Relaxed),
            learning_samples_skipped: inner.learning.skipped.load(Relaxed),
            adaptive_spawn_threshold: inner.config.effective().spawn_threshold,
            shutting_down: inner.shutting_down.load(Relaxed),
            autoscaler: self.autoscaler_last(),
            classes: inner.classes.stats(),
            class_overflow: inner.classes.overflowed(),
            remote: remote_stats(inner),
        }
    }
}

/// The remote side's figures, when the router has one.
#[cfg(feature = "remote")]
fn remote_stats(inner: &Inner) -> Option<crate::types::RemoteStats> {
    inner.remote.get().map(|r| r.stats())
}

/// Without the `remote` feature there is no remote side.
#[cfg(not(feature = "remote"))]
fn remote_stats(_: &Inner) -> Option<crate::types::RemoteStats> {
    None
}
