//! Bounded batch queues, one per built-in kind and one that every user closure shares
//! (work classes do not get queues of their own). A batch is flushed when it reaches
//! `batch_max_size` (by the submitter that filled it) or when its oldest entry has
//! waited `batch_max_delay_ms` (by the flusher task, round-robin across queues).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

// The batch clock is Tokio's so flush-on-delay is testable with paused time.
use tokio::time::Instant;

use super::job::QueuedJob;

/// Batch classes: the three built-in kinds and user closures.
pub(crate) const CLASSES: usize = 4;

/// When a class queue is flushed or full.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub(crate) max_size: usize,
    pub(crate) max_cost_ns: u64,
    pub(crate) queue_cap: usize,
}

/// One waiting job.
pub(crate) struct BatchEntry {
    pub(crate) enqueued: Instant,
    /// Real-time deadline (the pool's clock).
    pub(crate) deadline: std::time::Instant,
    pub(crate) est_ns: u64,
    /// `est_ns` rests on measured runs (see `PoolTask::learned`).
    pub(crate) learned: bool,
    pub(crate) job: QueuedJob,
}

/// One class's waiting entries and their summed estimated cost.
#[derive(Default)]
struct ClassQueue {
    entries: VecDeque<BatchEntry>,
    /// Sum of `est_ns` over `entries`.
    cost_ns: u64,
}

impl ClassQueue {
    /// Removes the oldest `n` entries.
    fn take(&mut self, n: usize) -> Vec<BatchEntry> {
        let batch: Vec<_> = self.entries.drain(..n.min(self.entries.len())).collect();
        self.cost_ns = self
            .cost_ns
            .saturating_sub(batch.iter().map(|e| e.est_ns).sum());
        batch
    }
}

/// The queues. Each is bounded by `batch_queue_cap`.
pub(crate) struct Batcher {
    queues: [Mutex<ClassQueue>; CLASSES],
    /// Entries waiting across all classes (gauge; `Relaxed`).
    depth: AtomicUsize,
    /// Where the next round-robin flush pass starts, so no class is always first.
    rr: AtomicUsize,
    /// Wakes the flusher when a queue gets a new oldest entry or on shutdown.
    pub(crate) wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("depth", &self.depth())
            .finish()
    }
}

impl Batcher {
    pub(crate) fn new() -> Self {
        Self {
            queues: std::array::from_fn(|_| Mutex::new(ClassQueue::default())),
            depth: AtomicUsize::new(0),
            rr: AtomicUsize::new(0),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub(crate) fn depth(&self) -> usize {
        self.depth.load(Relaxed)
    }

    fn lock(&self, class: usize) -> std::sync::MutexGuard<'_, ClassQueue> {
        super::lock(&self.queues[class % CLASSES])
    }

    /// Queues `entry`. Returns a batch to flush when this entry filled one (`max_size`
    /// entries, or `max_cost_ns` of estimated work: a batch is one uninterruptible pool
    /// task, so it must stay short), or the entry back when the class queue is at `cap`.
    pub(crate) fn push(
        &self,
        class: usize,
        entry: BatchEntry,
        limits: BatchLimits,
    ) -> Result<Option<Vec<BatchEntry>>, BatchEntry> {
        let mut q = self.lock(class);
        if q.entries.len() >= limits.queue_cap {
            return Err(entry);
        }
        let was_empty = q.entries.is_empty();
        q.cost_ns = q.cost_ns.saturating_add(entry.est_ns);
        q.entries.push_back(entry);
        self.depth.fetch_add(1, Relaxed);
        if q.entries.len() >= limits.max_size || q.cost_ns >= limits.max_cost_ns {
            let batch = q.take(limits.max_size);
            self.depth.fetch_sub(batch.len(), Relaxed);
            return Ok(Some(batch));
        }
        drop(q);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(None)
    }

    /// When the next class becomes due, if any entry waits.
    pub(crate) fn next_due(&self, delay: Duration) -> Option<Instant> {
        (0..CLASSES)
            .filter_map(|c| self.lock(c).entries.front().map(|e| e.enqueued + delay))
            .min()
    }

    /// Takes every due batch (oldest entry waited `delay`), at most `max_size` entries
    /// each, visiting classes round-robin. With `all`, takes everything (shutdown).
    pub(crate) fn take_due(
        &self,
        now: Instant,
        delay: Duration,
        max_size: usize,
        all: bool,
    ) -> Vec<Vec<BatchEntry>> {
        let start = self.rr.fetch_add(1, Relaxed);
        let mut out = Vec::new();
        for i in 0..CLASSES {
            let mut q = self.lock((start + i) % CLASSES);
            while q
                .entries
                .front()
                .is_some_and(|e| all || e.enqueued + delay <= now)
            {
                let batch = q.take(max_size.max(1));
                self.depth.fetch_sub(batch.len(), Relaxed);
                out.push(batch);
            }
        }
        out
    }
}
