//! Budget-aware admission: a pure estimate of when a job would finish given what is
//! ahead of it, fed by the pool (queued work, running work, observed speed).

use std::collections::BinaryHeap;

/// What is ahead of a job at the CPU pool, in estimated nanoseconds of CPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct QueuedWork {
    /// Remaining expected time of the tasks running now, summed over workers.
    pub(crate) running_remaining_ns: u64,
    /// Estimated cost of queued tasks that would run before this one (earlier deadline).
    pub(crate) ahead_ns: u64,
    /// This job's estimated cost.
    pub(crate) own_ns: u64,
    /// Workers serving the queue (>= 1).
    pub(crate) workers: usize,
    /// Observed actual / estimated run time of pool work (1.0 = estimates are exact).
    pub(crate) slowdown: f64,
}

/// Estimated time to completion: the queue ahead drains across the workers, then the
/// job runs on one of them.
pub(crate) fn estimate_ns(w: &QueuedWork) -> u64 {
    let workers = w.workers.max(1) as f64;
    let slow = if w.slowdown.is_finite() && w.slowdown > 0.0 {
        w.slowdown
    } else {
        1.0
    };
    let wait = (w.running_remaining_ns as f64 + w.ahead_ns as f64 * slow) / workers;
    (wait + w.own_ns as f64 * slow) as u64
}

/// Which jobs of an earliest-deadline-first queue to shed so the rest can still meet
/// their deadlines, largest first (Moore–Hodgson, restricted to the part of the queue a
/// newcomer affects): under overload this keeps the most jobs on time instead of
/// letting one long job make many short ones late.
///
/// `base` describes the work ahead of the affected part (its `own_ns` is ignored);
/// `suffix` lists `(estimated cost, time left until its deadline)` in queue order,
/// starting with the newcomer. Returns the indices into `suffix` to shed, in the order
/// chosen.
#[cfg(test)]
fn evictions(base: &QueuedWork, suffix: &[(u64, u64)]) -> Vec<usize> {
    let mut out = Vec::new();
    evictions_into(base, suffix, &mut BinaryHeap::new(), &mut out);
    out
}

/// `evictions` with caller-provided scratch space, so the pool's admission does not
/// allocate: `heap` and `out` are cleared first; the result is left in `out`.
/// O(n log n) in the length of `suffix`.
pub(crate) fn evictions_into(
    base: &QueuedWork,
    suffix: &[(u64, u64)],
    heap: &mut BinaryHeap<(u64, usize)>,
    out: &mut Vec<usize>,
) {
    heap.clear();
    out.clear();
    let workers = base.workers.max(1) as f64;
    let slow = if base.slowdown.is_finite() && base.slowdown > 0.0 {
        base.slowdown
    } else {
        1.0
    };
    let running = base.running_remaining_ns as f64;
    // Work (ns of CPU, at estimate) of kept items up to and including the current one.
    let mut through = base.ahead_ns as f64;
    for (k, &(own, left)) in suffix.iter().enumerate() {
        heap.push((own, k));
        through += own as f64;
        let mut kept = true;
        while kept
            && (running + (through - own as f64) * slow) / workers + own as f64 * slow > left as f64
        {
            // Shed the largest kept item so far (possibly this one).
            let Some((cost, j)) = heap.pop() else { break };
            out.push(j);
            through -= cost as f64;
            kept = j != k;
        }
    }
}

/// The pool's verdict on a newcomer (see [`admit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Queue it; the indices left in `out` (into the suffix, never 0) are the queued
    /// tasks to evict so that it and the rest still meet their deadlines (none when
    /// `out` is empty).
    Queue,
    /// Shed it on its estimate: it would finish `estimated_ns` from now, past its
    /// deadline. (The pool may still let it in as a probe.)
    Shed { estimated_ns: u64 },
}

/// Admission's verdict on a newcomer whose place in the earliest-deadline-first queue
/// leaves `base` ahead of it (its `own_ns` is ignored) and `suffix` (itself first, then
/// the queued tasks behind it, as `(estimated cost, time left until its deadline)`)
/// from there on:
///
/// - a worker is free and nothing waits (`idle_slot`): queue it, whatever its estimate
///   says: it starts at once and its run is measured;
/// - otherwise shed the fewest, largest tasks so the rest meet their deadlines
///   ([`evictions_into`]); when the newcomer is among them it is shed, else the others
///   chosen (left in `out`) are evicted.
///
/// `heap` and `out` are scratch space (cleared first), so admission allocates nothing.
pub(crate) fn admit(
    idle_slot: bool,
    base: &QueuedWork,
    suffix: &[(u64, u64)],
    heap: &mut BinaryHeap<(u64, usize)>,
    out: &mut Vec<usize>,
) -> Admit {
    out.clear();
    if idle_slot {
        return Admit::Queue;
    }
    evictions_into(base, suffix, heap, out);
    if out.contains(&0) {
        out.clear();
        let own_ns = suffix.first().map_or(base.own_ns, |&(own, _)| own);
        return Admit::Shed {
            estimated_ns: estimate_ns(&QueuedWork { own_ns, ..*base }),
        };
    }
    Admit::Queue
}

/// The share of a job's time left that admission plans to use: it keeps an eighth in
/// reserve, so that a run a little slower than its estimate, or a worker preempted for
/// a moment, does not make a queue planned to the edge finish late as a whole.
pub(crate) fn usable_ns(left_ns: u64) -> u64 {
    left_ns - left_ns / 8
}

/// True when a task taken by a worker now should be shed instead of run: its deadline
/// has passed (`left_ns` is 0), or, while other work waits that could use the worker,
/// its planned run time `est_ns` with a quarter more for variation does not fit in
/// the time left (it would likely finish late: its CPU would be wasted, and the work
/// behind it delayed). With nothing else waiting it runs on its estimate, and its run
/// is measured: an estimate alone never sheds work a free worker could take. A probe
/// is never late.
pub(crate) fn late(left_ns: u64, est_ns: u64, nothing_waits: bool, probe: bool) -> bool {
    if probe {
        return false;
    }
    left_ns == 0 || (!nothing_waits && est_ns.saturating_add(est_ns / 4) > left_ns)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn work(ahead: u64) -> QueuedWork {
        QueuedWork {
            running_remaining_ns: 0,
            ahead_ns: ahead,
            own_ns: 1_000_000,
            workers: 2,
            slowdown: 1.0,
        }
    }

    #[test]
    fn estimate_grows_past_budget_with_backlog() {
        assert!(estimate_ns(&work(0)) <= 2_000_000);
        assert_eq!(estimate_ns(&work(4_000_000)), 3_000_000);
    }

    #[test]
    fn queue_ahead_drains_across_workers_then_own_cost() {
        let w = QueuedWork {
            running_remaining_ns: 2_000,
            ahead_ns: 6_000,
            own_ns: 1_000,
            workers: 2,
            slowdown: 1.0,
        };
        assert_eq!(estimate_ns(&w), 5_000);
    }

    #[test]
    fn short_tight_newcomer_evicts_the_long_job_behind_it() {
        let base = QueuedWork {
            running_remaining_ns: 0,
            ahead_ns: 0,
            own_ns: 0,
            workers: 1,
            slowdown: 1.0,
        };
        // Shedding the long one keeps the short one (and nothing else is lost).
        assert_eq!(evictions(&base, &[(1_000, 2_000), (5_000, 5_500)]), vec![1]);
    }

    #[test]
    fn slower_pool_means_later_estimate() {
        let mut w = work(2_000_000);
        let fast = estimate_ns(&w);
        w.slowdown = 2.0;
        assert_eq!(estimate_ns(&w), 2 * fast);
    }

    #[test]
    fn newcomer_that_cannot_fit_is_the_one_shed() {
        let base = QueuedWork {
            running_remaining_ns: 0,
            ahead_ns: 10_000,
            own_ns: 0,
            workers: 1,
            slowdown: 1.0,
        };
        assert_eq!(evictions(&base, &[(1_000, 5_000)]), vec![0]);
        assert!(evictions(&base, &[(1_000, 20_000), (1_000, 30_000)]).is_empty());
    }

    #[test]
    fn sheds_one_long_job_rather_than_many_short_ones() {
        let base = QueuedWork {
            running_remaining_ns: 0,
            ahead_ns: 0,
            own_ns: 0,
            workers: 1,
            slowdown: 1.0,
        };
        // Newcomer (short), then a long queued job, then short ones behind it.
        let suffix = [
            (1_000, 9_000),
            (8_000, 9_400),
            (1_000, 9_500),
            (1_000, 9_600),
        ];
        assert_eq!(evictions(&base, &suffix), vec![1]);
    }

    proptest! {
        #[test]
        fn kept_jobs_all_meet_their_deadlines(items in proptest::collection::vec((1u64..10_000, 1u64..50_000), 1..40),
                                              workers in 1usize..4) {
            let base = QueuedWork { running_remaining_ns: 500, ahead_ns: 1_000, own_ns: 0, workers, slowdown: 1.0 };
            let shed = evictions(&base, &items);
            let mut ahead = base.ahead_ns as f64;
            for (k, &(own, left)) in items.iter().enumerate() {
                if shed.contains(&k) { continue; }
                let finish = (base.running_remaining_ns as f64 + ahead) / workers as f64 + own as f64;
                prop_assert!(finish <= left as f64 + 1e-6, "item {k} late: {finish} > {left}");
                ahead += own as f64;
            }
        }

        #[test]
        fn estimate_is_monotone_in_backlog(a in 0u64..1u64 << 40, b in 0u64..1u64 << 40, workers in 1usize..64) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let mk = |ahead| QueuedWork { running_remaining_ns: 0, ahead_ns: ahead, own_ns: 10, workers, slowdown: 1.3 };
            prop_assert!(estimate_ns(&mk(lo)) <= estimate_ns(&mk(hi)));
        }
    }

    #[test]
    fn an_idle_slot_admits_whatever_the_estimate() {
        let base = work(0);
        let (mut heap, mut out) = (BinaryHeap::new(), Vec::new());
        let hopeless = [(10_000_000_000, 1_000)];
        assert_eq!(
            admit(true, &base, &hopeless, &mut heap, &mut out),
            Admit::Queue
        );
        assert!(out.is_empty());
        assert!(matches!(
            admit(false, &base, &hopeless, &mut heap, &mut out),
            Admit::Shed { estimated_ns } if estimated_ns >= 10_000_000_000
        ));
        assert!(out.is_empty(), "a shed newcomer evicts nothing");
    }

    #[test]
    fn admission_evicts_a_long_task_behind_an_urgent_newcomer() {
        // One worker, nothing running: a newcomer of 1 ms due in 2 ms ahead of a queued
        // 5 ms task due in 5.5 ms: both cannot make it, the long one goes.
        let base = QueuedWork {
            workers: 1,
            ..work(0)
        };
        let (mut heap, mut out) = (BinaryHeap::new(), Vec::new());
        let suffix = [(1_000_000, 2_000_000), (5_000_000, 5_500_000)];
        assert_eq!(
            admit(false, &base, &suffix, &mut heap, &mut out),
            Admit::Queue
        );
        assert_eq!(out, vec![1]);
    }

    #[test]
    fn late_sheds_past_deadlines_and_overshoots_only_while_others_wait() {
        assert!(late(0, 1, true, false), "a passed deadline sheds");
        assert!(!late(0, 1, true, true), "a probe is never late");
        assert!(late(1_000_000, 3_000_000, false, false));
        assert!(
            !late(1_000_000, 3_000_000, true, false),
            "alone it runs on its estimate"
        );
        assert!(
            late(1_000_000, 900_000, false, false),
            "without a quarter to spare it would likely be late"
        );
        assert!(
            !late(1_000_000, 800_000, false, false),
            "with a quarter to spare it runs"
        );
    }

    #[test]
    fn admission_keeps_an_eighth_in_reserve() {
        assert_eq!(usable_ns(8_000_000), 7_000_000);
        assert_eq!(usable_ns(0), 0);
        assert_eq!(usable_ns(u64::MAX), u64::MAX - u64::MAX / 8);
    }
}
