//! Per-class bounded batch queues. A batch is flushed when it reaches
//! `batch_max_size` (by the submitter that filled it) or when its oldest entry has
//! waited `batch_max_delay_ms` (by the flusher task, round-robin across classes).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

// The batch clock is Tokio's so flush-on-delay is testable with paused time.
use tokio::time::Instant;

use super::Exec;

/// Batch classes: the three built-in kinds and user closures.
pub(crate) const CLASSES: usize = 4;

/// One waiting job.
pub(crate) struct BatchEntry {
    pub(crate) enqueued: Instant,
    /// Real-time deadline (the pool's clock).
    pub(crate) deadline: std::time::Instant,
    pub(crate) est_ns: u64,
    pub(crate) job: Box<dyn FnOnce(Exec) + Send>,
}

/// The queues. Each is bounded by `batch_queue_cap`.
pub(crate) struct Batcher {
    queues: [Mutex<VecDeque<BatchEntry>>; CLASSES],
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
            queues: std::array::from_fn(|_| Mutex::new(VecDeque::new())),
            depth: AtomicUsize::new(0),
            rr: AtomicUsize::new(0),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub(crate) fn depth(&self) -> usize {
        self.depth.load(Relaxed)
    }

    fn lock(&self, class: usize) -> std::sync::MutexGuard<'_, VecDeque<BatchEntry>> {
        self.queues[class % CLASSES]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `entry`. Returns a full batch to flush when this entry completed one, or
    /// the entry back when the class queue is at `cap`.
    pub(crate) fn push(
        &self,
        class: usize,
        entry: BatchEntry,
        max_size: usize,
        cap: usize,
    ) -> Result<Option<Vec<BatchEntry>>, BatchEntry> {
        let mut q = self.lock(class);
        if q.len() >= cap {
            return Err(entry);
        }
        let was_empty = q.is_empty();
        q.push_back(entry);
        self.depth.fetch_add(1, Relaxed);
        if q.len() >= max_size {
            let batch: Vec<_> = q.drain(..max_size).collect();
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
            .filter_map(|c| self.lock(c).front().map(|e| e.enqueued + delay))
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
            while q.front().is_some_and(|e| all || e.enqueued + delay <= now) {
                let n = q.len().min(max_size.max(1));
                let batch: Vec<_> = q.drain(..n).collect();
                self.depth.fetch_sub(batch.len(), Relaxed);
                out.push(batch);
            }
        }
        out
    }
}
