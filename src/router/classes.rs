//! Work classes: a bounded table of named classes, each with its learned cost
//! ([`crate::policy::cost`]), its counters and its end-to-end latency window.
//!
//! A class is named by a `&'static str`. The hot path resolves it without hashing the
//! string: a small cache keyed by the string's address gives the class id, checked
//! against the entry's name (a short compare). A miss takes a lock once per distinct
//! address. At most `max_classes` names get their own entry; any further name shares
//! the overflow class (counted), so class names taken from user input cannot grow
//! memory or metric cardinality.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::lock;
use super::stripes::{STRIPES, stripe_index};
use crate::metrics::LatencyWindow;
use crate::policy::cost::{self, CostEstimate, CostState};
use crate::types::Strategy;

/// Runs (and completions) of a class measured in full before sampling starts.
const SAMPLE_ALL: u64 = 64;
/// After [`SAMPLE_ALL`], one run in this many (per thread) updates the learned cost
/// and the class's latency window.
const SAMPLE_EVERY: u32 = 8;

thread_local! {
    static TICK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// True for one call in [`SAMPLE_EVERY`] on this thread.
#[inline]
fn sampled() -> bool {
    TICK.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n % SAMPLE_EVERY == 0
    })
}

/// One thread group's share of a class's counters (all `Relaxed` tallies).
#[repr(align(128))]
#[derive(Debug, Default)]
struct ClassStripe {
    routed: [AtomicU64; Strategy::COUNT],
    completed: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    late: AtomicU64,
    cancelled: AtomicU64,
}

/// Index of a class in its table.
pub(crate) type ClassId = u16;

/// Name of the class that names beyond `max_classes` share.
pub const OVERFLOW_CLASS: &str = "_overflow";

/// Slots of the address cache (a power of two).
const CACHE_SLOTS: usize = 1_024;

/// One class. Every counter is a `Relaxed` tally.
#[derive(Debug)]
pub(crate) struct ClassEntry {
    pub(crate) name: &'static str,
    /// The learner's class slot for this name (`neural_router::class_slot`).
    pub(crate) slot: u8,
    /// Packed [`CostState`]; updated by `record_run` with one compare-and-swap.
    cost: AtomicU64,
    /// Runs folded into `cost`.
    samples: AtomicU64,
    /// `cost`'s typical and high run time in ns (0 before the first run), kept beside
    /// it so the hot path reads a trusted estimate without any log/exp math.
    typical_ns: AtomicU64,
    high_ns: AtomicU64,
    /// The last non-zero hint a caller gave (0 = never one).
    last_hint: AtomicU64,
    /// Routed per strategy.
    /// Counters, one stripe per thread group (like the router's own), so threads
    /// running the same class never write the same cache line.
    stripes: Box<[ClassStripe]>,
    /// End-to-end latency (submission to result) of completed work, sampled: every
    /// completion of the first [`SAMPLE_ALL`], then one in [`SAMPLE_EVERY`] per thread.
    latency: LatencyWindow,
    /// Packed [`CostState`] of whole requests of this class as a caller measured them
    /// (e.g. the tower layer, from request to response); updated by `record_request`.
    pub(crate) request_cost: AtomicU64,
    /// Requests folded into `request_cost`.
    pub(crate) request_samples: AtomicU64,
    /// Requests of this class a caller shed before they ran (`record_request_shed`).
    pub(crate) requests_shed: AtomicU64,
}

impl ClassEntry {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            slot: crate::neural_router::class_slot(name),
            cost: AtomicU64::new(CostState::EMPTY.0),
            samples: AtomicU64::new(0),
            typical_ns: AtomicU64::new(0),
            high_ns: AtomicU64::new(0),
            last_hint: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| ClassStripe::default()).collect(),
            latency: LatencyWindow::default(),
            request_cost: AtomicU64::new(CostState::EMPTY.0),
            request_samples: AtomicU64::new(0),
            requests_shed: AtomicU64::new(0),
        }
    }

    /// What to plan with for work hinted `hint_ns` (0 = unknown).
    #[inline]
    pub(crate) fn estimate(&self, hint_ns: u64, learning: bool) -> CostEstimate {
        if hint_ns != 0 && self.last_hint.load(Relaxed) != hint_ns {
            self.last_hint.store(hint_ns, Relaxed);
        }
        let typical = self.typical_ns.load(Relaxed);
        if learning && typical != 0 && self.samples.load(Relaxed) >= cost::TRUST_SAMPLES {
            // The measurement alone decides (what `blend` returns then, precomputed).
            return CostEstimate {
                policy_ns: typical,
                admit_ns: self.high_ns.load(Relaxed),
                unknown: false,
            };
        }
        cost::blend(
            hint_ns,
            CostState(self.cost.load(Relaxed)),
            self.samples.load(Relaxed),
            learning,
        )
    }

    /// Learned run-time state and its sample count (for `Router::class_estimate`).
    #[inline]
    pub(crate) fn cost_state(&self) -> (CostState, u64) {
        (
            CostState(self.cost.load(Relaxed)),
            self.samples.load(Relaxed),
        )
    }

    /// Folds one measured run time into the learned cost: every run of the first
    /// [`SAMPLE_ALL`], then one in [`SAMPLE_EVERY`] per thread (a shared estimator
    /// written by every run would bounce its cache line between threads).
    #[inline]
    pub(crate) fn record_run(&self, run_ns: u64) {
        if self.samples.load(Relaxed) >= SAMPLE_ALL && !sampled() {
            return;
        }
        let n = self.samples.fetch_add(1, Relaxed);
        // A lost race only means this sample is folded on top of a newer state.
        if let Ok(prev) = self
            .cost
            .fetch_update(Relaxed, Relaxed, |s| Some(CostState(s).update(run_ns, n).0))
        {
            let now = CostState(prev).update(run_ns, n);
            self.typical_ns
                .store(now.typical_ns().unwrap_or(1).max(1), Relaxed);
            self.high_ns
                .store(now.high_ns().unwrap_or(1).max(1), Relaxed);
        }
    }

    #[inline]
    fn stripe(&self) -> &ClassStripe {
        &self.stripes[stripe_index() % self.stripes.len()]
    }

    pub(crate) fn count_routed(&self, strategy: Strategy) {
        self.stripe().routed[strategy.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn record_completed(&self, total_ns: u64, late: bool, now_ns: u64) {
        let st = self.stripe();
        let done = st.completed.fetch_add(1, Relaxed);
        if done < SAMPLE_ALL || sampled() {
            self.latency.record(total_ns, now_ns);
        }
        if late {
            st.late.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn record_failed(&self) {
        self.stripe().failed.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_dropped(&self) {
        self.stripe().dropped.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_cancelled(&self) {
        self.stripe().cancelled.fetch_add(1, Relaxed);
    }

    fn sum(&self, f: impl Fn(&ClassStripe) -> &AtomicU64) -> u64 {
        self.stripes.iter().map(|s| f(s).load(Relaxed)).sum()
    }

    fn stats(&self) -> ClassStats {
        let state = CostState(self.cost.load(Relaxed));
        let samples = self.samples.load(Relaxed);
        let hint = self.last_hint.load(Relaxed);
        let typical = state.typical_ns();
        let summary = self.latency.summary(0.15);
        ClassStats {
            name: self.name.to_string(),
            samples,
            learned_cost_ns: typical,
            cost_p90_ns: state.high_ns(),
            spread: state.spread(),
            hint_ns: (hint != 0).then_some(hint),
            hint_ratio: match (hint, typical) {
                (0, _) | (_, None) => None,
                (h, Some(t)) => Some(h as f64 / t.max(1) as f64),
            },
            mismatch: cost::mismatched(hint, state, samples),
            routed: Strategy::ALL
                .iter()
                .map(|&s| StrategyCount {
                    strategy: s,
                    routed: self.sum(|st| &st.routed[s.index()]),
                })
                .collect(),
            completed: self.sum(|st| &st.completed),
            dropped: self.sum(|st| &st.dropped),
            failed: self.sum(|st| &st.failed),
            late: self.sum(|st| &st.late),
            cancelled: self.sum(|st| &st.cancelled),
            p50_us: (summary.count > 0).then_some(summary.p50_us),
            p99_us: (summary.count > 0).then_some(summary.p99_us),
        }
    }
}

/// Jobs routed to one strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyCount {
    /// The strategy.
    pub strategy: Strategy,
    /// Jobs of the class routed to it.
    pub routed: u64,
}

/// What the router knows about one work class (`RouterStats::classes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    /// The class name ([`OVERFLOW_CLASS`] for names beyond `max_classes`).
    pub name: String,
    /// Measured runs its learned cost is built from.
    pub samples: u64,
    /// Typical run time learned from what ran (ns; a geometric mean, close to the
    /// median), `None` before the first run.
    pub learned_cost_ns: Option<u64>,
    /// About the 90th percentile of the run time (ns): what admission plans with.
    pub cost_p90_ns: Option<u64>,
    /// Multiplicative spread of run times (1.0 = every run the same).
    pub spread: Option<f64>,
    /// The last cost hint callers gave (ns), `None` when they give none.
    pub hint_ns: Option<u64>,
    /// `hint_ns / learned_cost_ns`.
    pub hint_ratio: Option<f64>,
    /// True when the hint is off from the measurement by more than 3× either way
    /// (after enough runs to tell).
    pub mismatch: bool,
    /// Routed per strategy, in [`Strategy::ALL`] order.
    pub routed: Vec<StrategyCount>,
    /// Completed.
    pub completed: u64,
    /// Shed.
    pub dropped: u64,
    /// Panicked.
    pub failed: u64,
    /// Completed over budget.
    pub late: u64,
    /// Never run because the caller stopped waiting before it started.
    pub cancelled: u64,
    /// Median end-to-end latency of completed work (µs).
    pub p50_us: Option<f64>,
    /// 99th percentile end-to-end latency (µs).
    pub p99_us: Option<f64>,
}

/// The bounded table.
#[derive(Debug)]
pub(crate) struct ClassTable {
    /// `max_classes` entries, then the overflow entry; each created on first use.
    entries: Box<[OnceLock<ClassEntry>]>,
    /// Name → id, the slow path; guards creating entries.
    names: Mutex<HashMap<&'static str, ClassId>>,
    /// String address → `(address << 16) | id`, 0 = empty. Any address may be stored
    /// for an id; a hit is confirmed by comparing the entry's name.
    cache: Box<[AtomicU64]>,
    /// Lookups of names that found the table full and went to the overflow class.
    overflowed: AtomicU64,
}

impl ClassTable {
    pub(crate) fn new(max_classes: usize) -> Self {
        let max = max_classes.clamp(1, usize::from(ClassId::MAX) - 1);
        Self {
            entries: (0..=max).map(|_| OnceLock::new()).collect(),
            names: Mutex::new(HashMap::new()),
            cache: (0..CACHE_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            overflowed: AtomicU64::new(0),
        }
    }

    /// Classes this table holds besides the overflow class (= `max_classes`).
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len() - 1
    }

    /// The entry of `id`, once created.
    #[inline]
    pub(crate) fn get(&self, id: ClassId) -> Option<&ClassEntry> {
        self.entries.get(usize::from(id))?.get()
    }

    /// The id of the class named `name`, creating it (or falling back to the overflow
    /// class) on first sight.
    #[inline]
    pub(crate) fn resolve(&self, name: &'static str) -> (ClassId, &ClassEntry) {
        let addr = name.as_ptr() as u64 & ((1 << 48) - 1);
        let slot = &self.cache[(addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize];
        let cached = slot.load(Relaxed);
        if cached != 0 && cached >> 16 == addr {
            let id = (cached & 0xFFFF) as ClassId;
            if let Some(e) = self.get(id)
                && e.name == name
            {
                return (id, e);
            }
        }
        self.resolve_slow(name, slot, addr)
    }

    #[cold]
    fn resolve_slow(
        &self,
        name: &'static str,
        slot: &AtomicU64,
        addr: u64,
    ) -> (ClassId, &ClassEntry) {
        let overflow = self.capacity() as ClassId;
        let id = {
            let mut names = lock(&self.names);
            match names.get(name) {
                Some(&id) => id,
                None if names.len() < self.capacity() => {
                    let id = names.len() as ClassId;
                    names.insert(name, id);
                    id
                }
                None => overflow,
            }
        };
        if id == overflow {
            self.overflowed.fetch_add(1, Relaxed);
            let e = self.entries[usize::from(id)].get_or_init(|| ClassEntry::new(OVERFLOW_CLASS));
            return (id, e);
        }
        let e = self.entries[usize::from(id)].get_or_init(|| ClassEntry::new(name));
        slot.store(addr << 16 | u64::from(id), Relaxed);
        (id, e)
    }

    /// Every class in use, in creation order (the overflow class last).
    pub(crate) fn stats(&self) -> Vec<ClassStats> {
        self.entries
            .iter()
            .filter_map(OnceLock::get)
            .map(ClassEntry::stats)
            .collect()
    }

    /// Lookups that went to the overflow class.
    pub(crate) fn overflowed(&self) -> u64 {
        self.overflowed.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_class_whatever_its_address() {
        let t = ClassTable::new(8);
        let a: &'static str = "thumbnail";
        let b: &'static str = Box::leak(String::from("thumbnail").into_boxed_str());
        assert_ne!(a.as_ptr(), b.as_ptr());
        let (ia, _) = t.resolve(a);
        let (ib, _) = t.resolve(b);
        assert_eq!(ia, ib);
        assert_eq!(t.resolve(a).0, ia, "cached");
        assert_ne!(t.resolve("hash").0, ia);
        assert_eq!(t.stats().len(), 2);
    }

    #[test]
    fn cardinality_is_bounded_under_ten_thousand_names() {
        let t = ClassTable::new(256);
        for i in 0..10_000 {
            let name: &'static str = Box::leak(format!("user-input-{i}").into_boxed_str());
            let (id, e) = t.resolve(name);
            assert!(usize::from(id) <= 256);
            if i >= 256 {
                assert_eq!(e.name, OVERFLOW_CLASS);
            }
        }
        let stats = t.stats();
        assert_eq!(stats.len(), 257, "256 named classes and the overflow class");
        assert_eq!(stats.last().map(|s| s.name.as_str()), Some(OVERFLOW_CLASS));
        assert_eq!(t.overflowed(), 10_000 - 256);
    }

    #[test]
    fn learned_cost_replaces_a_wrong_hint() {
        let t = ClassTable::new(4);
        let (_, e) = t.resolve("resize");
        assert!(e.estimate(0, true).unknown);
        for _ in 0..cost::TRUST_SAMPLES {
            e.record_run(4_700_000);
        }
        let est = e.estimate(10_000, true);
        assert!((4_600_000..=4_800_000).contains(&est.policy_ns), "{est:?}");
        assert_eq!(e.estimate(10_000, false).policy_ns, 10_000, "learning off");
        let s = &t.stats()[0];
        assert!(s.mismatch);
        assert_eq!(s.hint_ns, Some(10_000));
        assert_eq!(s.samples, cost::TRUST_SAMPLES);
    }
}
