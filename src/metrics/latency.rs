//! A fixed-size latency window per strategy plus cumulative histogram buckets.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Samples kept per window (the last `WINDOW` latencies).
pub(crate) const WINDOW: usize = 512;

/// Upper bounds (seconds) of the cumulative histogram buckets: 1 µs × 10^(k/3)
/// from 1 µs to 10 s, so histograms from many instances aggregate.
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) const BUCKET_BOUNDS_SECS: [f64; 22] = [
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1,
    0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];
const BOUNDS_NS: [u64; 22] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// `FIRST_AT_LEAST[k]`: the index of the first bound ≥ 2^k (22 when none is). Consecutive
/// bounds differ by at least 2×, so `[2^k, 2^(k+1))` holds at most one bound, and a
/// sample's bucket is `FIRST_AT_LEAST[log2(ns)]` plus one when it is above that bound:
/// one table read and one compare instead of a binary search on the hot path.
const FIRST_AT_LEAST: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut k = 0;
    while k < 64 {
        let p = 1u64 << k;
        let mut b = 0;
        while b < BOUNDS_NS.len() && BOUNDS_NS[b] < p {
            b += 1;
        }
        t[k] = b as u8;
        k += 1;
    }
    t
};

/// The histogram bucket of a sample of `ns` (≥ 1): the number of bounds below it
/// (`BOUNDS_NS.len()` is the +Inf bucket).
#[inline]
fn bucket_of(ns: u64) -> usize {
    let b = FIRST_AT_LEAST[ns.ilog2() as usize] as usize;
    if b < BOUNDS_NS.len() && BOUNDS_NS[b] < ns {
        b + 1
    } else {
        b
    }
}

/// Latency samples of one strategy: the last [`WINDOW`] values in a ring written with
/// relaxed atomics (no lock), a cumulative histogram, a count and a sum.
///
/// Concurrent writers may interleave so a read can see a slot a moment old; the
/// summary is statistical, never torn (each slot is one `AtomicU64`).
#[derive(Debug)]
pub(crate) struct LatencyWindow {
    /// Ring of samples in nanoseconds (0 = empty). Written by `record`, read by `summary`.
    samples: Box<[AtomicU64]>,
    /// When each sample was recorded (ns on the caller's clock), so windows of several
    /// writers (stripes) can be merged newest-first.
    times: Box<[AtomicU64]>,
    /// Total samples ever recorded; the next slot is `next % WINDOW`. `Relaxed`: it only
    /// spreads writers over slots and counts, it orders nothing else.
    next: AtomicUsize,
    /// Cumulative sum of recorded nanoseconds (for the histogram's `_sum`).
    sum_ns: AtomicU64,
    /// Non-cumulative bucket counts; index `BOUNDS_NS.len()` is the +Inf bucket.
    buckets: [AtomicU64; 23],
}

impl Default for LatencyWindow {
    fn default() -> Self {
        Self {
            samples: (0..WINDOW).map(|_| AtomicU64::new(0)).collect(),
            times: (0..WINDOW).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicUsize::new(0),
            sum_ns: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A read-time summary of a `LatencyWindow`. Times are in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Samples ever recorded.
    pub count: u64,
    /// Samples currently in the window.
    pub window: usize,
    /// Median of the window (µs).
    pub p50_us: f64,
    /// 95th percentile of the window (µs).
    pub p95_us: f64,
    /// 99th percentile of the window (µs).
    pub p99_us: f64,
    /// Exponential moving average over the window, oldest first, with `ema_alpha` (µs).
    pub ema_us: f64,
    /// Minimum of the window (µs).
    pub min_us: f64,
    /// Maximum of the window (µs).
    pub max_us: f64,
    /// Cumulative sum of all samples (s), for the Prometheus histogram.
    pub sum_secs: f64,
    /// Cumulative bucket counts matching `BUCKET_BOUNDS_SECS` (last = +Inf).
    pub buckets: Vec<u64>,
}

impl LatencyWindow {
    /// Records one latency `ns` observed at time `at_ns` (any monotonic clock shared by
    /// the windows that are merged). Lock-free: three relaxed read-modify-writes.
    #[inline]
    pub(crate) fn record(&self, ns: u64, at_ns: u64) {
        let ns = ns.max(1);
        let i = self.next.fetch_add(1, Relaxed);
        self.samples[i % WINDOW].store(ns, Relaxed);
        self.times[i % WINDOW].store(at_ns, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
    }

    /// Samples ever recorded.
    #[inline]
    pub(crate) fn count(&self) -> u64 {
        self.next.load(Relaxed) as u64
    }

    /// (time, sample) pairs currently in the window.
    fn timed(&self, out: &mut Vec<(u64, u64)>) {
        let n = self.next.load(Relaxed);
        for i in n.saturating_sub(WINDOW)..n {
            let v = self.samples[i % WINDOW].load(Relaxed);
            if v > 0 {
                out.push((self.times[i % WINDOW].load(Relaxed), v));
            }
        }
    }

    /// The 95th percentile of the merged window of `parts`, in nanoseconds (0 when empty).
    pub(crate) fn merged_p95_ns(parts: &[&LatencyWindow]) -> u64 {
        let mut v: Vec<u64> = Self::newest(parts).into_iter().map(|(_, x)| x).collect();
        v.sort_unstable();
        percentile(&v, 0.95)
    }

    /// The newest [`WINDOW`] samples across `parts`, oldest first.
    fn newest(parts: &[&LatencyWindow]) -> Vec<(u64, u64)> {
        let mut all = Vec::with_capacity(WINDOW * parts.len().min(4));
        for p in parts {
            p.timed(&mut all);
        }
        all.sort_unstable_by_key(|&(t, _)| t);
        let skip = all.len().saturating_sub(WINDOW);
        all.split_off(skip)
    }

    /// Summary of this window alone.
    pub(crate) fn summary(&self, ema_alpha: f64) -> LatencySummary {
        Self::merged_summary(&[self], ema_alpha)
    }

    /// Summary of several windows written by different threads: the newest [`WINDOW`]
    /// samples across them (by record time), and their summed counts and histograms.
    /// `ema_alpha` weights the EMA (newest sample weight), computed oldest first.
    pub(crate) fn merged_summary(parts: &[&LatencyWindow], ema_alpha: f64) -> LatencySummary {
        let ordered: Vec<u64> = Self::newest(parts).into_iter().map(|(_, x)| x).collect();
        let ema = ordered
            .iter()
            .skip(1)
            .fold(ordered.first().copied().unwrap_or(0) as f64, |e, &x| {
                ema_alpha * x as f64 + (1.0 - ema_alpha) * e
            });
        let mut sorted = ordered;
        sorted.sort_unstable();
        let mut cumulative = 0;
        let buckets = (0..BOUNDS_NS.len() + 1)
            .map(|b| {
                cumulative += parts
                    .iter()
                    .map(|p| p.buckets[b].load(Relaxed))
                    .sum::<u64>();
                cumulative
            })
            .collect::<Vec<_>>();
        let us = |ns: u64| ns as f64 / 1_000.0;
        LatencySummary {
            count: parts.iter().map(|p| p.count()).sum(),
            window: sorted.len(),
            p50_us: us(percentile(&sorted, 0.50)),
            p95_us: us(percentile(&sorted, 0.95)),
            p99_us: us(percentile(&sorted, 0.99)),
            ema_us: ema / 1_000.0,
            min_us: us(sorted.first().copied().unwrap_or(0)),
            max_us: us(sorted.last().copied().unwrap_or(0)),
            sum_secs: parts.iter().map(|p| p.sum_ns.load(Relaxed)).sum::<u64>() as f64 / 1e9,
            buckets,
        }
    }
}

/// Nearest-rank percentile of a sorted slice (0 when empty).
pub(crate) fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_over_a_known_window() {
        let w = LatencyWindow::default();
        for i in 1..=100u64 {
            w.record(i * 1_000, i);
        }
        let s = w.summary(0.15);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_us, 50.0);
        assert_eq!(s.p95_us, 95.0);
        assert_eq!(s.p99_us, 99.0);
        assert_eq!(s.min_us, 1.0);
        assert_eq!(s.max_us, 100.0);
        assert!(s.ema_us > 80.0 && s.ema_us < 100.0, "{}", s.ema_us);
    }

    #[test]
    fn window_keeps_only_the_last_512() {
        let w = LatencyWindow::default();
        for t in 0..1_000 {
            w.record(1_000_000, t);
        }
        for t in 0..WINDOW as u64 {
            w.record(1_000, 1_000 + t);
        }
        let s = w.summary(0.5);
        assert_eq!(s.window, WINDOW);
        assert_eq!(s.max_us, 1.0);
        assert_eq!(s.count, 1_000 + WINDOW as u64);
    }

    #[test]
    fn merged_windows_keep_the_newest_samples_across_writers() {
        let (a, b) = (LatencyWindow::default(), LatencyWindow::default());
        for t in 0..600u64 {
            // Old slow samples on `a`, newer fast ones interleaved on both.
            if t < 300 {
                a.record(9_000_000, t)
            } else if t % 2 == 0 {
                a.record(1_000, t)
            } else {
                b.record(2_000, t)
            }
        }
        let s = LatencyWindow::merged_summary(&[&a, &b], 0.15);
        assert_eq!(s.count, 600);
        assert_eq!(s.window, WINDOW);
        // 512 newest = t in 88..600: 150 at 1 µs, 150 at 2 µs and 212 slow ones.
        assert_eq!(s.min_us, 1.0);
        assert_eq!(s.p50_us, 2.0);
        assert_eq!(s.max_us, 9_000.0);
        assert_eq!(*s.buckets.last().unwrap(), 600);
    }

    #[test]
    fn sub_millisecond_latencies_are_not_rounded_to_zero() {
        let w = LatencyWindow::default();
        w.record(250, 1);
        assert_eq!(w.summary(0.15).p50_us, 0.25);
    }

    #[test]
    fn histogram_is_cumulative_and_ends_with_the_count() {
        let w = LatencyWindow::default();
        w.record(500, 1); // ≤ 1 µs
        w.record(3_000, 2); // ≤ 5 µs
        w.record(20_000_000_000, 3); // +Inf
        let s = w.summary(0.15);
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[2], 2);
        assert_eq!(*s.buckets.last().unwrap(), 3);
        assert_eq!(s.buckets.len(), BUCKET_BOUNDS_SECS.len() + 1);
    }

    proptest::proptest! {
        /// The table lookup gives the binary search's bucket for any sample, and the
        /// samples at and around every bound land where the bound says.
        #[test]
        fn bucket_of_matches_the_binary_search(ns in 1u64..u64::MAX) {
            proptest::prop_assert_eq!(bucket_of(ns), BOUNDS_NS.partition_point(|&b| b < ns));
        }
    }

    #[test]
    fn bucket_of_is_exact_at_every_bound() {
        for &b in &BOUNDS_NS {
            for ns in [b - 1, b, b + 1] {
                assert_eq!(
                    bucket_of(ns),
                    BOUNDS_NS.partition_point(|&x| x < ns),
                    "{ns}"
                );
            }
        }
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(u64::MAX), BOUNDS_NS.len());
    }
}
