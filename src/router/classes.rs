//! Work classes: a bounded table of named classes, each with its learned cost
//! ([`crate::policy::cost`]), its counters and its end-to-end latency window.
//!
//! A class is named by a `&'static str`. The hot path resolves it without hashing the
//! string: a small cache keyed by the string's address gives the class id, checked
//! against the entry's name (a short compare). A miss takes a lock once per distinct
//! address of a name that has its own class; names beyond the cap share the overflow
//! class and take the lock on every lookup (they are never cached). At most
//! `max_classes` names get their own entry; any further name shares the overflow class
//! (counted), so class names taken from user input cannot grow memory or metric
//! cardinality.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::ledger::{WorkEnd, WorkLedger, WorkTime};
use super::lock;
use super::stripes::{STRIPES, stripe_index};
use crate::metrics::LatencyWindow;
use crate::policy::cost::{self, CostEstimate, CostModel, CostState, Learned, UnitsFit};
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
    work: WorkLedger,
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
    /// Class model: packed [`CostState`] of `log2(run ns)`; updated by `record_run`
    /// with one compare-and-swap.
    cost: AtomicU64,
    /// Runs folded into `cost` (every measured run of the class is offered to all
    /// three models; this count also gates sampling).
    samples: AtomicU64,
    /// `cost`'s typical and high run time in ns (0 before the first run), kept beside
    /// it so the hot path reads a trusted estimate without any log/exp math.
    typical_ns: AtomicU64,
    high_ns: AtomicU64,
    /// Ratio model: packed [`CostState`] of `log2(measured / hinted)` over runs that
    /// came with a cost hint; written by `record_run`.
    ratio: AtomicU64,
    /// Hinted runs folded into `ratio`.
    ratio_samples: AtomicU64,
    /// [`cost::ratio_factors`] of `ratio` (policy, admit) as two f32 in one word, 0
    /// before the first hinted run; republished by every ratio update so the hot path
    /// makes one load and multiplies instead of exponentiating.
    ratio_factors: AtomicU64,
    /// Units model: the fit, locked only to fold in a sampled run (and by `stats`).
    units_fit: Mutex<UnitsFit>,
    /// The fit as the hot path reads it, published once it has
    /// [`cost::UNITS_TRUST_SAMPLES`] runs: `(fixed, per unit)` and `(policy, admit)`
    /// factors, each pair as two f32 in one word; 0 = not trusted yet.
    units_parts: AtomicU64,
    units_factors: AtomicU64,
    /// The last non-zero hint a caller gave (0 = never one).
    last_hint: AtomicU64,
    /// Jobs of this class admission shed on their estimate (the probe cadence).
    estimate_sheds: AtomicU64,
    /// Set while a probe of this class is in flight (at most one at a time).
    probing: AtomicBool,
    /// Probes run so far.
    probes: AtomicU64,
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
    /// Whole requests that gave a size, as a units fit of their latency (locked per
    /// recorded request of such a class; see `Router::record_request_for`).
    pub(crate) request_units: Mutex<UnitsFit>,
    /// Requests of this class a caller shed before they ran (`record_request_shed`).
    pub(crate) requests_shed: AtomicU64,
}

/// Of the jobs of a class shed on their estimate, one in this many runs anyway as a
/// probe (at most one per class at a time), so an estimate that is too high is
/// measured and corrected instead of shedding the class forever.
pub(crate) const PROBE_EVERY: u64 = 16;

/// Two f32 in one word (`hi` in the high half).
fn pack_f32(hi: f64, lo: f64) -> u64 {
    u64::from((hi as f32).to_bits()) << 32 | u64::from((lo as f32).to_bits())
}

fn unpack_f32(w: u64) -> (f64, f64) {
    (
        f64::from(f32::from_bits((w >> 32) as u32)),
        f64::from(f32::from_bits(w as u32)),
    )
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
            ratio: AtomicU64::new(CostState::EMPTY.0),
            ratio_samples: AtomicU64::new(0),
            ratio_factors: AtomicU64::new(0),
            units_fit: Mutex::new(UnitsFit::default()),
            units_parts: AtomicU64::new(0),
            units_factors: AtomicU64::new(0),
            last_hint: AtomicU64::new(0),
            estimate_sheds: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            probes: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| ClassStripe::default()).collect(),
            latency: LatencyWindow::default(),
            request_cost: AtomicU64::new(CostState::EMPTY.0),
            request_samples: AtomicU64::new(0),
            request_units: Mutex::new(UnitsFit::default()),
            requests_shed: AtomicU64::new(0),
        }
    }

    /// The ratio model's `(policy, admit)` factors and whether any hinted run was
    /// measured (one load).
    #[inline]
    fn ratio(&self) -> ((f64, f64), u64) {
        match self.ratio_factors.load(Relaxed) {
            0 => ((1.0, 1.0), 0),
            w => (unpack_f32(w), 1),
        }
    }

    /// What the class has learned, as [`cost::estimate`] reads it; the units fit only
    /// when `with_units` (a job that gives its size). `ratio_samples` is 0 or 1 (all
    /// the estimate needs to know).
    #[inline]
    pub(crate) fn learned(&self, with_units: bool) -> Learned {
        let units = if with_units {
            match self.units_factors.load(Relaxed) {
                0 => None,
                factors => {
                    let (fixed, per_unit) = unpack_f32(self.units_parts.load(Relaxed));
                    let (p, a) = unpack_f32(factors);
                    Some((fixed, per_unit, p, a))
                }
            }
        } else {
            None
        };
        let (ratio, ratio_samples) = self.ratio();
        Learned {
            typical_ns: self.typical_ns.load(Relaxed),
            high_ns: self.high_ns.load(Relaxed),
            ratio,
            ratio_samples,
            units,
        }
    }

    /// What to plan with for work hinted `hint_ns` (0 = unknown) of size `units`.
    #[inline]
    pub(crate) fn estimate(
        &self,
        hint_ns: u64,
        units: Option<u64>,
        learning: bool,
    ) -> CostEstimate {
        if hint_ns != 0 {
            if self.last_hint.load(Relaxed) != hint_ns {
                self.last_hint.store(hint_ns, Relaxed);
            }
            // A hinted job needs the ratio alone (the common, hot case).
            let (ratio, ratio_samples) = self.ratio();
            let l = Learned {
                ratio,
                ratio_samples,
                ..Learned::default()
            };
            return cost::estimate(hint_ns, units, &l, learning);
        }
        cost::estimate(hint_ns, units, &self.learned(units.is_some()), learning)
    }

    /// `(typical, high)` run time of a job of `units` from the trusted units fit.
    pub(crate) fn units_estimate(&self, units: u64) -> Option<(u64, u64)> {
        let l = self.learned(true);
        l.units?;
        let e = cost::estimate(0, Some(units), &l, true);
        Some((e.policy_ns, e.admit_ns))
    }

    /// Learned run-time state and its sample count (for `Router::class_estimate`).
    #[inline]
    pub(crate) fn cost_state(&self) -> (CostState, u64) {
        (
            CostState(self.cost.load(Relaxed)),
            self.samples.load(Relaxed),
        )
    }

    /// Folds one measured run time into every model the job's facts allow (the class
    /// model always; the ratio with a hint; the units fit with a size): every run of
    /// the first [`SAMPLE_ALL`], then one in [`SAMPLE_EVERY`] per thread (a shared
    /// estimator written by every run would bounce its cache line between threads).
    #[inline]
    pub(crate) fn record_run(&self, run_ns: u64, hint_ns: u64, units: Option<u64>) {
        if self.samples.load(Relaxed) >= SAMPLE_ALL && !sampled() {
            return;
        }
        let n = self.samples.fetch_add(1, Relaxed);
        let x = cost::log2_ns(run_ns);
        // A lost race only means this sample is folded on top of a newer state.
        let mut now = CostState::EMPTY;
        let folded = self.cost.fetch_update(Relaxed, Relaxed, |s| {
            now = CostState(s).update_log2(x, n);
            Some(now.0)
        });
        if folded.is_ok() {
            self.typical_ns
                .store(now.typical_ns().unwrap_or(1).max(1), Relaxed);
            self.high_ns
                .store(now.high_ns().unwrap_or(1).max(1), Relaxed);
        }
        if hint_ns != 0 {
            self.record_ratio(x - cost::log2_ns(hint_ns));
        }
        if let Some(u) = units {
            self.record_units(u, run_ns);
        }
    }

    fn record_ratio(&self, x: f32) {
        let n = self.ratio_samples.fetch_add(1, Relaxed);
        let mut now = CostState::EMPTY;
        let folded = self.ratio.fetch_update(Relaxed, Relaxed, |s| {
            now = CostState(s).update_log2(x, n);
            Some(now.0)
        });
        if folded.is_ok() {
            let (p, a) = cost::ratio_factors(now, n + 1);
            self.ratio_factors.store(pack_f32(p, a).max(1), Relaxed);
        }
    }

    fn record_units(&self, units: u64, run_ns: u64) {
        let mut fit = lock(&self.units_fit);
        fit.update(units, run_ns);
        if fit.samples() < cost::UNITS_TRUST_SAMPLES {
            return;
        }
        if let Some((fixed, per_unit)) = fit.parts() {
            let (p, a) = cost::ratio_factors(fit.residual(), cost::TRUST_SAMPLES);
            self.units_parts.store(pack_f32(fixed, per_unit), Relaxed);
            self.units_factors.store(pack_f32(p, a).max(1), Relaxed);
        }
    }

    /// Counts one job of this class shed on its estimate; true when this one should
    /// run anyway as a probe (one in [`PROBE_EVERY`], at most one in flight). The
    /// caller ends the probe with [`ClassEntry::probe_done`].
    pub(crate) fn take_probe(&self) -> bool {
        let n = self.estimate_sheds.fetch_add(1, Relaxed) + 1;
        if !n.is_multiple_of(PROBE_EVERY) || self.probing.swap(true, Relaxed) {
            return false;
        }
        self.probes.fetch_add(1, Relaxed);
        true
    }

    /// A probe of this class ended (ran, shed or cancelled): the next may start.
    pub(crate) fn probe_done(&self) {
        self.probing.store(false, Relaxed);
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

    /// Moves one routed job of this class from `from` to `to` (see
    /// `Inner::reroute_to_drop`).
    pub(crate) fn reroute(&self, from: Strategy, to: Strategy) {
        let st = self.stripe();
        st.routed[to.index()].fetch_add(1, Relaxed);
        st.routed[from.index()].fetch_sub(1, Relaxed);
    }

    /// Adds `run_ns` of run time that ended as `end`.
    pub(crate) fn record_work(&self, end: WorkEnd, run_ns: u64) {
        self.stripe().work.add(end, run_ns);
    }

    /// Run time of the class's jobs, by how they ended.
    fn work(&self) -> WorkTime {
        self.stripes.iter().map(|st| st.work.snapshot()).sum()
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

    /// The model most of the class's measured runs fed (`Ratio` when they came with
    /// cost hints, `Units` with sizes, else `Class`) and its residual spread.
    fn model_in_use(&self) -> (CostModel, Option<f64>) {
        let ratio_n = self.ratio_samples.load(Relaxed);
        let fit = *lock(&self.units_fit);
        if ratio_n > 0 && ratio_n >= fit.samples() {
            (
                CostModel::Ratio,
                CostState(self.ratio.load(Relaxed)).spread(),
            )
        } else if fit.samples() > 0 {
            (CostModel::Units, fit.residual().spread())
        } else {
            let spread = CostState(self.cost.load(Relaxed)).spread();
            (CostModel::Class, spread)
        }
    }

    fn stats(&self) -> ClassStats {
        let state = CostState(self.cost.load(Relaxed));
        let samples = self.samples.load(Relaxed);
        let hint = self.last_hint.load(Relaxed);
        let ratio = CostState(self.ratio.load(Relaxed));
        let ratio_samples = self.ratio_samples.load(Relaxed);
        let fit = *lock(&self.units_fit);
        let (model, residual_spread) = self.model_in_use();
        let summary = self.latency.summary(0.15);
        ClassStats {
            name: self.name.to_string(),
            samples,
            model,
            learned_cost_ns: state.typical_ns(),
            cost_p90_ns: state.high_ns(),
            spread: state.spread(),
            residual_spread,
            ratio: ratio.parts().map(|(m, _)| f64::from(m).exp2()),
            ratio_samples,
            fixed_ns: fit.parts().map(|p| p.0),
            ns_per_unit: fit.parts().map(|p| p.1),
            units_samples: fit.samples(),
            hint_ns: (hint != 0).then_some(hint),
            hint_ratio: ratio.parts().map(|(m, _)| f64::from(-m).exp2()),
            mismatch: cost::mismatched(ratio, ratio_samples),
            probes: self.probes.load(Relaxed),
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
            work: self.work(),
            p50_us: (summary.count > 0).then_some(summary.p50_us),
            p99_us: (summary.count > 0).then_some(summary.p99_us),
        }
    }
}

/// Jobs routed to one strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StrategyCount {
    /// The strategy.
    pub strategy: Strategy,
    /// Jobs of the class routed to it.
    pub routed: u64,
}

/// What the router knows about one work class (`RouterStats::classes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClassStats {
    /// The class name ([`OVERFLOW_CLASS`] for names beyond `max_classes`).
    pub name: String,
    /// Measured runs its learned cost is built from.
    pub samples: u64,
    /// The cost model most of its measured runs fed: `ratio` (callers give per-job
    /// costs), `units` (callers give per-job sizes) or `class` (neither); see
    /// `crate::policy::cost`.
    pub model: CostModel,
    /// Typical run time of the class's work (ns; a geometric mean, close to the
    /// median), `None` before the first run. What work with no cost and no size is
    /// routed on.
    pub learned_cost_ns: Option<u64>,
    /// About the 90th percentile of the class's run time (ns).
    pub cost_p90_ns: Option<u64>,
    /// Multiplicative spread of the class's run times (1.0 = every run the same).
    pub spread: Option<f64>,
    /// Multiplicative spread of runs around their own prediction under `model` (1.0 =
    /// every job exactly as predicted): what admission plans with.
    pub residual_spread: Option<f64>,
    /// Ratio model: typical measured ÷ hinted cost (1.0 = the hints are exact), `None`
    /// before the first hinted run. Each hinted job is routed on its hint × this.
    pub ratio: Option<f64>,
    /// Hinted runs the ratio is learned from.
    pub ratio_samples: u64,
    /// Units model: the fixed part of a job's cost (ns), `None` before the first run
    /// that gave a size.
    pub fixed_ns: Option<f64>,
    /// Units model: the cost per unit of size (ns).
    pub ns_per_unit: Option<f64>,
    /// Runs with a size the units fit is learned from.
    pub units_samples: u64,
    /// The last cost hint callers gave (ns), `None` when they give none.
    pub hint_ns: Option<u64>,
    /// Typical hinted ÷ measured cost (`1 / ratio`).
    pub hint_ratio: Option<f64>,
    /// True when the hints are off from the measurement by more than 3× either way
    /// (after enough runs to tell).
    pub mismatch: bool,
    /// Jobs shed on their estimate that ran anyway to measure it (one in 16 such
    /// sheds, one at a time), so a wrong estimate corrects itself.
    pub probes: u64,
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
    /// Run time of the class's jobs by how they ended (on time, late, aborted).
    pub work: WorkTime,
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
    fn sized_work_is_routed_on_its_own_size() {
        let t = ClassTable::new(4);
        let (_, e) = t.resolve("compress");
        for i in 0..200u64 {
            let units = 1_024 << (i % 10); // 1 KiB .. 512 KiB
            e.record_run(20_000 + 3 * units, 0, Some(units));
        }
        let small = e.estimate(0, Some(1_024), true);
        let large = e.estimate(0, Some(1 << 20), true);
        assert_eq!(small.model, CostModel::Units);
        assert!((21_000..=25_500).contains(&small.policy_ns), "{small:?}");
        assert!(
            (3_000_000..=3_400_000).contains(&large.policy_ns),
            "{large:?}"
        );
        let s = &t.stats()[0];
        assert_eq!(s.model, CostModel::Units);
        assert!(s.residual_spread.is_some_and(|r| r < 1.05), "{s:?}");
        // Unsized work of the class falls back to the class's typical cost.
        assert_eq!(e.estimate(0, None, true).model, CostModel::Class);
    }

    #[test]
    fn probes_are_one_in_sixteen_and_one_at_a_time() {
        let t = ClassTable::new(4);
        let (_, e) = t.resolve("x");
        let taken: Vec<bool> = (0..PROBE_EVERY * 2).map(|_| e.take_probe()).collect();
        assert_eq!(
            taken.iter().filter(|&&p| p).count(),
            1,
            "the second waits for the first"
        );
        assert!(taken[PROBE_EVERY as usize - 1]);
        e.probe_done();
        let more = (0..PROBE_EVERY).filter(|_| e.take_probe()).count();
        assert_eq!(more, 1);
        assert_eq!(t.stats()[0].probes, 2);
    }

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
        assert!(e.estimate(0, None, true).unknown);
        for _ in 0..cost::TRUST_SAMPLES {
            e.record_run(4_700_000, 10_000, None);
        }
        let est = e.estimate(10_000, None, true);
        assert!((4_600_000..=4_800_000).contains(&est.policy_ns), "{est:?}");
        assert_eq!(
            e.estimate(10_000, None, false).policy_ns,
            10_000,
            "learning off"
        );
        // The hint of another job of the class keeps its own size.
        let big = e.estimate(20_000, None, true);
        assert!((9_200_000..=9_600_000).contains(&big.policy_ns), "{big:?}");
        let s = &t.stats()[0];
        assert!(s.mismatch);
        assert_eq!(
            (s.model, s.hint_ns),
            (CostModel::Ratio, Some(20_000)),
            "the last hint"
        );
        assert_eq!(s.samples, cost::TRUST_SAMPLES);
    }
}
