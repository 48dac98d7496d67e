//! A bounded, lock-free log of the last routing decisions: [`DecisionLogs`] splits a
//! total capacity over a few rings so threads rarely write the same one.
//!
//! Each slot is a tiny seqlock of atomics: writers bump the version to odd, store the
//! packed fields, then bump it to even; readers retry a slot whose version changed or
//! is odd. Writing costs a handful of relaxed stores and one `fetch_add`, no lock and
//! no allocation.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::types::{DecisionSource, JobKind, RoutingDecision, Strategy};

use super::stripes::STRIPES;

const SOURCES: [DecisionSource; 6] = [
    DecisionSource::Heuristic,
    DecisionSource::Neural,
    DecisionSource::Rerouted,
    DecisionSource::Admission,
    DecisionSource::QueueFull,
    DecisionSource::Shutdown,
];

#[derive(Debug, Default)]
struct Slot {
    version: AtomicU64,
    job_id: AtomicU64,
    cost: AtomicU64,
    /// strategy (3 bits) | source (3) | kind+1 (2) | pressure in 1/1000 (10) | cpu_busy (rest)
    meta: AtomicU64,
    timestamp_ms: AtomicU64,
}

/// The rings, `decision_log_cap` slots in total.
#[derive(Debug)]
pub(crate) struct DecisionLogs {
    /// At most [`STRIPES`] rings; stripe `i` writes ring `i % len`.
    rings: Box<[DecisionLog]>,
}

impl DecisionLogs {
    /// Rings holding `total` decisions together (at least one slot).
    pub(crate) fn new(total: usize) -> Self {
        let total = total.max(1);
        let n = total.min(STRIPES);
        let rings = (0..n)
            .map(|i| DecisionLog::new(total / n + usize::from(i < total % n)))
            .collect();
        Self { rings }
    }

    /// The ring that stripe `stripe` writes.
    #[inline]
    pub(crate) fn ring(&self, stripe: usize) -> &DecisionLog {
        &self.rings[stripe % self.rings.len()]
    }

    /// Slots over all rings (= the configured total).
    pub(crate) fn capacity(&self) -> usize {
        self.rings.iter().map(|r| r.slots.len()).sum()
    }

    /// The most recent decisions over all rings, newest first, at most `limit`.
    pub(crate) fn recent(&self, limit: usize) -> Vec<RoutingDecision> {
        let mut all: Vec<RoutingDecision> =
            self.rings.iter().flat_map(|r| r.recent(limit)).collect();
        all.sort_by_key(|d| std::cmp::Reverse(d.timestamp_ms));
        all.truncate(limit);
        all
    }
}

/// One ring. Aligned so the write cursors of neighbouring rings never share a line.
#[repr(align(128))]
#[derive(Debug)]
pub(crate) struct DecisionLog {
    slots: Box<[Slot]>,
    next: AtomicUsize,
}

impl DecisionLog {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            slots: (0..cap.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Records a decision (its `seq` is not kept).
    #[inline]
    pub(crate) fn push(&self, d: &RoutingDecision) {
        let RoutingDecision {
            job_id,
            kind,
            strategy,
            source,
            compute_cost: cost,
            pressure,
            cpu_busy,
            timestamp_ms,
            seq: _,
        } = *d;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let s = &self.slots[i];
        let v = s.version.load(Ordering::Relaxed);
        // Odd version: a write is in progress. Release on the data stores below is not
        // needed for them; the fence orders the odd marker before the data.
        s.version.store(v.wrapping_add(1) | 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        let kind_bits = kind.map_or(0, |k| k.index() as u64 + 1);
        let source_bits = SOURCES.iter().position(|x| *x == source).unwrap_or(0) as u64;
        let pressure_bits = (pressure.clamp(0.0, 1.0) * 1000.0) as u64;
        let meta = strategy.index() as u64
            | source_bits << 3
            | kind_bits << 6
            | pressure_bits << 8
            | (cpu_busy.min(1 << 40) as u64) << 18;
        s.job_id.store(job_id, Ordering::Relaxed);
        s.cost.store(cost, Ordering::Relaxed);
        s.meta.store(meta, Ordering::Relaxed);
        s.timestamp_ms.store(timestamp_ms, Ordering::Relaxed);
        s.version.store((v | 1).wrapping_add(1), Ordering::Release);
    }

    /// The most recent decisions, newest first, at most `limit`.
    pub(crate) fn recent(&self, limit: usize) -> Vec<RoutingDecision> {
        let n = self.next.load(Ordering::Acquire);
        let len = self.slots.len();
        let take = n.min(len).min(limit);
        let mut out = Vec::with_capacity(take);
        for back in 1..=take {
            let s = &self.slots[(n - back) % len];
            for _ in 0..4 {
                let v1 = s.version.load(Ordering::Acquire);
                if v1 & 1 == 1 {
                    std::hint::spin_loop();
                    continue;
                }
                let (job_id, cost, meta, ts) = (
                    s.job_id.load(Ordering::Relaxed),
                    s.cost.load(Ordering::Relaxed),
                    s.meta.load(Ordering::Relaxed),
                    s.timestamp_ms.load(Ordering::Relaxed),
                );
                std::sync::atomic::fence(Ordering::Acquire);
                if s.version.load(Ordering::Relaxed) != v1 {
                    continue;
                }
                if let Some(d) = unpack(job_id, cost, meta, ts) {
                    out.push(d);
                }
                break;
            }
        }
        out
    }
}

fn unpack(job_id: u64, cost: u64, meta: u64, ts: u64) -> Option<RoutingDecision> {
    let strategy = Strategy::from_index((meta & 7) as usize)?;
    let source = *SOURCES.get(((meta >> 3) & 7) as usize)?;
    let kind = match (meta >> 6) & 3 {
        0 => None,
        k => Some(JobKind::ALL[(k - 1) as usize]),
    };
    Some(RoutingDecision {
        job_id,
        kind,
        strategy,
        source,
        compute_cost: cost,
        pressure: ((meta >> 8) & 1023) as f64 / 1000.0,
        cpu_busy: (meta >> 18) as usize,
        timestamp_ms: ts,
        seq: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: u64) -> RoutingDecision {
        RoutingDecision {
            job_id: id,
            kind: Some(JobKind::PrimeCount),
            strategy: Strategy::CpuPool,
            source: DecisionSource::Neural,
            compute_cost: id * 10,
            pressure: 0.5,
            cpu_busy: 3,
            timestamp_ms: 1_000 + id,
            seq: Some(id),
        }
    }

    #[test]
    fn keeps_the_last_entries_newest_first() {
        let log = DecisionLog::new(4);
        for id in 0..10u64 {
            log.push(&decision(id));
        }
        let r = log.recent(100);
        assert_eq!(r.iter().map(|d| d.job_id).collect::<Vec<_>>(), [9, 8, 7, 6]);
        assert_eq!(r[0].kind, Some(JobKind::PrimeCount));
        assert_eq!(r[0].strategy, Strategy::CpuPool);
        assert_eq!(r[0].source, DecisionSource::Neural);
        assert_eq!(r[0].compute_cost, 90);
        assert_eq!(r[0].pressure, 0.5);
        assert_eq!(r[0].cpu_busy, 3);
        assert_eq!(r[0].timestamp_ms, 1_009);
        assert_eq!(r[0].seq, None, "the log does not keep feed positions");
    }

    #[test]
    fn user_work_has_no_kind() {
        let log = DecisionLog::new(2);
        log.push(&RoutingDecision {
            kind: None,
            strategy: Strategy::Drop,
            source: DecisionSource::Shutdown,
            ..decision(1)
        });
        assert_eq!(log.recent(1)[0].kind, None);
        assert_eq!(log.recent(1)[0].source, DecisionSource::Shutdown);
    }

    #[test]
    fn every_source_round_trips() {
        let log = DecisionLog::new(SOURCES.len());
        for source in SOURCES {
            log.push(&RoutingDecision {
                source,
                ..decision(1)
            });
        }
        let mut got: Vec<_> = log.recent(SOURCES.len()).iter().map(|d| d.source).collect();
        got.reverse();
        assert_eq!(got, SOURCES);
    }

    #[test]
    fn total_capacity_is_what_was_configured() {
        for total in [1, 5, 15, 16, 17, 256, 1_000] {
            let logs = DecisionLogs::new(total);
            assert_eq!(logs.capacity(), total, "total {total}");
            // Every stripe writes some ring, and the union never holds more than the total.
            for stripe in 0..STRIPES {
                for id in 0..(2 * total as u64) {
                    logs.ring(stripe).push(&decision(id));
                }
            }
            assert_eq!(logs.recent(usize::MAX).len(), total, "total {total}");
        }
    }
}
