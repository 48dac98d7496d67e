//! A bounded, lock-free log of the last routing decisions: one ring of exactly
//! `decision_log_cap` slots.
//!
//! Writers claim slots in small blocks (one shared `fetch_add` per block, then a
//! compare-and-swap on a cursor in the writer's own stripe), so threads deciding at once
//! rarely touch the same cache line. Each slot is a tiny seqlock of atomics: writers
//! bump the version to odd, store the packed fields, then bump it to even; readers skip
//! a slot whose version changed or is odd. No lock, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};

use std::borrow::Cow;

use super::classes::ClassId;
use crate::types::{DecisionSource, JobKind, RoutingDecision, Strategy};

const SOURCES: [DecisionSource; 8] = [
    DecisionSource::Heuristic,
    DecisionSource::Neural,
    DecisionSource::Rerouted,
    DecisionSource::Admission,
    DecisionSource::QueueFull,
    DecisionSource::Shutdown,
    DecisionSource::Evicted,
    DecisionSource::Expired,
];

/// Largest block of slots a writer claims at once.
const MAX_BLOCK: u64 = 64;
/// Bits of a block cursor that count the slots left in its block.
const LEFT_BITS: u32 = 8;

#[derive(Debug, Default)]
struct Slot {
    version: AtomicU64,
    job_id: AtomicU64,
    cost: AtomicU64,
    /// strategy (3 bits) | source (3) | kind+1 (2) | pressure in 1/1000 (10) | cpu_busy (rest)
    meta: AtomicU64,
    timestamp_ms: AtomicU64,
    /// Class id + 1 (0 = no class).
    class: AtomicU64,
}

/// The ring.
#[derive(Debug)]
pub(crate) struct DecisionLog {
    slots: Box<[Slot]>,
    /// Next unclaimed slot number (grows forever; the slot is `number % len`).
    claimed: AtomicU64,
    /// Slots claimed per block: small enough that writers' open blocks never hold a
    /// large share of the ring.
    block: u64,
}

impl DecisionLog {
    /// A ring of exactly `cap` slots (at least one).
    pub(crate) fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            slots: (0..cap).map(|_| Slot::default()).collect(),
            claimed: AtomicU64::new(0),
            block: (cap as u64 / 4).clamp(1, MAX_BLOCK),
        }
    }

    /// Slots in the ring.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The next slot number for a writer whose block cursor is `cursor` (slot number
    /// << [`LEFT_BITS`] | slots left). The cursor lives in the writer's stripe, so the
    /// compare-and-swap is uncontended unless threads share a stripe.
    #[inline]
    fn claim(&self, cursor: &AtomicU64) -> u64 {
        let mut cur = cursor.load(Ordering::Relaxed);
        loop {
            let left = cur & ((1 << LEFT_BITS) - 1);
            if left == 0 {
                let base = self.claimed.fetch_add(self.block, Ordering::Relaxed);
                let next = (base + 1) << LEFT_BITS | (self.block - 1);
                // A racing writer on the same stripe may have refilled it: either way
                // this slot is ours and the block stays consistent.
                let _ = cursor.compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed);
                return base;
            }
            let slot = cur >> LEFT_BITS;
            let next = (slot + 1) << LEFT_BITS | (left - 1);
            match cursor.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return slot,
                Err(now) => cur = now,
            }
        }
    }

    /// Records a decision of work of `class` in a slot claimed through `cursor` (its
    /// `class` name and `seq` are not read: the id is kept, the position is not).
    #[inline]
    pub(crate) fn push(&self, cursor: &AtomicU64, d: &RoutingDecision, class: Option<ClassId>) {
        let RoutingDecision {
            job_id,
            kind,
            strategy,
            source,
            compute_cost: cost,
            pressure,
            cpu_busy,
            timestamp_ms,
            ..
        } = *d;
        let i = (self.claim(cursor) % self.slots.len() as u64) as usize;
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
        s.class
            .store(class.map_or(0, |c| u64::from(c) + 1), Ordering::Relaxed);
        s.version.store((v | 1).wrapping_add(1), Ordering::Release);
    }

    /// The most recent decisions, newest first, at most `limit`. Writers claim slots
    /// in blocks, so slot order is not time order: every written slot is read and the
    /// result sorted by time.
    pub(crate) fn recent(
        &self,
        limit: usize,
        class_name: impl Fn(ClassId) -> Option<&'static str>,
    ) -> Vec<RoutingDecision> {
        let mut out = Vec::with_capacity(self.slots.len().min(limit));
        for s in self.slots.iter() {
            for _ in 0..4 {
                let v1 = s.version.load(Ordering::Acquire);
                if v1 == 0 {
                    break; // never written
                }
                if v1 & 1 == 1 {
                    std::hint::spin_loop();
                    continue;
                }
                let (job_id, cost, meta, ts, class) = (
                    s.job_id.load(Ordering::Relaxed),
                    s.cost.load(Ordering::Relaxed),
                    s.meta.load(Ordering::Relaxed),
                    s.timestamp_ms.load(Ordering::Relaxed),
                    s.class.load(Ordering::Relaxed),
                );
                std::sync::atomic::fence(Ordering::Acquire);
                if s.version.load(Ordering::Relaxed) != v1 {
                    continue;
                }
                if let Some(mut d) = unpack(job_id, cost, meta, ts) {
                    d.class = class
                        .checked_sub(1)
                        .and_then(|c| class_name(c as ClassId))
                        .map(Cow::Borrowed);
                    out.push(d);
                }
                break;
            }
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.timestamp_ms));
        out.truncate(limit);
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
        class: None,
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
            class: None,
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
        let cursor = AtomicU64::new(0);
        for id in 0..10u64 {
            log.push(&cursor, &decision(id), None);
        }
        let r = log.recent(100, |_| None);
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
        let cursor = AtomicU64::new(0);
        log.push(
            &cursor,
            &RoutingDecision {
                kind: None,
                strategy: Strategy::Drop,
                source: DecisionSource::Shutdown,
                ..decision(1)
            },
            Some(3),
        );
        let d = &log.recent(1, |c| (c == 3).then_some("resize"))[0];
        assert_eq!(d.class.as_deref(), Some("resize"), "the class id is kept");
        assert_eq!(log.recent(1, |_| None)[0].kind, None);
        assert_eq!(log.recent(1, |_| None)[0].source, DecisionSource::Shutdown);
    }

    #[test]
    fn every_source_round_trips() {
        let log = DecisionLog::new(SOURCES.len());
        let cursor = AtomicU64::new(0);
        for (i, source) in SOURCES.into_iter().enumerate() {
            log.push(
                &cursor,
                &RoutingDecision {
                    source,
                    ..decision(i as u64)
                },
                None,
            );
        }
        let mut got: Vec<_> = log
            .recent(SOURCES.len(), |_| None)
            .iter()
            .map(|d| d.source)
            .collect();
        got.reverse();
        assert_eq!(got, SOURCES);
    }

    #[test]
    fn many_writers_fill_exactly_the_capacity_and_no_more() {
        for cap in [1, 5, 10, 16, 17, 256, 1_000] {
            let log = DecisionLog::new(cap);
            assert_eq!(log.capacity(), cap);
            // Sixteen writers (cursors) interleaved, as threads on their stripes would be.
            let cursors: Vec<AtomicU64> = (0..16).map(|_| AtomicU64::new(0)).collect();
            for id in 0..(40 * cap as u64) {
                log.push(&cursors[(id % 16) as usize], &decision(id), None);
            }
            assert_eq!(log.recent(usize::MAX, |_| None).len(), cap, "cap {cap}");
        }
    }

    #[test]
    fn concurrent_writers_lose_nothing_but_the_oldest() {
        let log = std::sync::Arc::new(DecisionLog::new(64));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let cursor = AtomicU64::new(0);
                    for i in 0..1_000 {
                        log.push(&cursor, &decision(t * 10_000 + i), None);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("writer");
        }
        let r = log.recent(usize::MAX, |_| None);
        assert_eq!(r.len(), 64);
        assert!(r.windows(2).all(|w| w[0].timestamp_ms >= w[1].timestamp_ms));
    }
}
