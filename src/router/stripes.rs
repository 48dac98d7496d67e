//! Per-thread stripes of the hot-path counters and latency windows, so
//! threads submitting at once never write the same cache line. Readers sum or merge
//! the stripes; writers touch only their own.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use super::ledger::WorkLedger;
use crate::metrics::LatencyWindow;
use crate::types::Strategy;

/// Number of stripes (threads map onto them round-robin).
pub(crate) const STRIPES: usize = 16;

/// One thread-group's share of the bookkeeping. Aligned so stripes never share a line.
/// Every counter is `Relaxed`: each is an independent tally, and the stats snapshot
/// reads each strategy's end counters before its `routed` (see `RouterStats`).
#[repr(align(128))]
#[derive(Debug)]
pub(crate) struct Stripe {
    /// Routed per strategy (final strategy after admission), counted when the decision
    /// is made and so before any end counter of the same job; their sum is `submitted`.
    pub(crate) routed: [AtomicU64; Strategy::COUNT],
    /// Dropped per strategy the job had been routed to.
    pub(crate) dropped: [AtomicU64; Strategy::COUNT],
    /// Panicked per strategy.
    pub(crate) failed: [AtomicU64; Strategy::COUNT],
    /// Cancelled per strategy: the caller stopped waiting before the job started.
    pub(crate) cancelled: [AtomicU64; Strategy::COUNT],
    /// Completed over budget (all strategies).
    pub(crate) late: AtomicU64,
    /// Run time per strategy, by how the work ended.
    pub(crate) work: [WorkLedger; Strategy::COUNT],
    /// Latency per strategy; a window's count is that strategy's completions.
    pub(crate) latency: [LatencyWindow; Strategy::COUNT],
    /// This stripe's block of decision-log slots (see `DecisionLog::push`).
    pub(crate) log_cursor: AtomicU64,
}

impl Stripe {
    pub(crate) fn new() -> Self {
        Self {
            routed: Default::default(),
            dropped: Default::default(),
            failed: Default::default(),
            cancelled: Default::default(),
            late: AtomicU64::new(0),
            work: Default::default(),
            latency: std::array::from_fn(|_| LatencyWindow::default()),
            log_cursor: AtomicU64::new(0),
        }
    }
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's stripe index (assigned round-robin on first use).
#[inline]
pub(crate) fn stripe_index() -> usize {
    MY_STRIPE.with(|c| {
        let i = c.get();
        if i != usize::MAX {
            return i;
        }
        let i = NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES;
        c.set(i);
        i
    })
}

/// Sums one counter over the stripes.
pub(crate) fn sum(stripes: &[Stripe], f: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
    stripes.iter().map(|s| f(s).load(Relaxed)).sum()
}

/// Sums a per-strategy counter array over the stripes and strategies.
pub(crate) fn sum_all(
    stripes: &[Stripe],
    f: impl Fn(&Stripe) -> &[AtomicU64; Strategy::COUNT],
) -> u64 {
    stripes
        .iter()
        .flat_map(|s| f(s).iter())
        .map(|c| c.load(Relaxed))
        .sum()
}
