//! Bookkeeping of every job: its decision (counted, logged, broadcast when someone
//! listens) and its end (latency, late, failed, dropped or cancelled, its class's
//! learned cost, and the learner's sample). All hot-path writes are relaxed atomics on
//! the calling thread's stripe, plus the class's own counters for classed work.

use std::sync::atomic::Ordering::Relaxed;

use super::Inner;
use super::hint::WorkHint;
use super::job::Timing;
use super::ledger::WorkEnd;
use super::stripes::{self, Stripe, stripe_index};
use crate::neural_router::{Context, Outcome};
use crate::types::{DecisionSource, RoutingDecision, Strategy};

/// How a job that ran ended, as its dispatch path saw it.
pub(crate) struct Ended {
    /// It returned (did not panic).
    pub(crate) ok: bool,
    /// Its measured run time, ns (0 = not measured).
    pub(crate) run_ns: u64,
    /// The CPU time its thread spent on it, ns (0 = not measured).
    pub(crate) cpu_ns: u64,
    /// Its result reached no one: the caller had stopped waiting.
    pub(crate) caller_gone: bool,
    /// The learner's sample, when this job is one.
    pub(crate) sample: Option<Context>,
}

impl Inner {
    /// The calling thread's stripe.
    #[inline]
    fn stripe(&self) -> &Stripe {
        &self.stripes[stripe_index() % self.stripes.len()]
    }

    /// Summed counters (submitted, completed, dropped, failed + cancelled), the end
    /// counters read first.
    pub(crate) fn totals(&self) -> (u64, u64, u64, u64) {
        let completed: u64 = self
            .stripes
            .iter()
            .flat_map(|s| &s.latency)
            .map(|w| w.count())
            .sum();
        let dropped = stripes::sum_all(&self.stripes, |s| &s.dropped);
        let other = stripes::sum_all(&self.stripes, |s| &s.failed)
            + stripes::sum_all(&self.stripes, |s| &s.cancelled);
        // Every job is routed exactly once (counted before its end), so the routed
        // total read after the end counters is the submitted count.
        let submitted = self.routed_total();
        (submitted, completed, dropped, other)
    }

    /// Jobs submitted and not yet ended.
    pub(crate) fn in_flight(&self) -> u64 {
        let (submitted, completed, dropped, other) = self.totals();
        submitted.saturating_sub(completed + dropped + other)
    }

    /// Jobs routed so far (= submitted).
    pub(crate) fn routed_total(&self) -> u64 {
        stripes::sum_all(&self.stripes, |s| &s.routed)
    }

    /// Counts a job as routed to `strategy`; called before the job can end.
    #[inline]
    pub(crate) fn count_routed(&self, strategy: Strategy, timing: &Timing) {
        self.stripe().routed[strategy.index()].fetch_add(1, Relaxed);
        if let Some(c) = timing.class.and_then(|id| self.classes.get(id)) {
            c.count_routed(strategy);
        }
    }

    /// Records a job routed to `from` and shed while being dispatched (admission, a
    /// full queue): the strategy mix counts it under `Drop`, the learner learns that
    /// `from` led to a drop.
    pub(crate) fn record_routing_shed(
        &self,
        from: Strategy,
        timing: &Timing,
        sample: Option<Context>,
    ) {
        self.reroute_to_drop(from, timing);
        self.record_drop(Strategy::Drop, timing, None);
        if let Some(ctx) = sample {
            self.learning.offer(ctx, from, Outcome::Dropped);
        }
    }

    /// Moves a job counted as routed to `from` over to `Drop`. `Drop` is counted before
    /// `from` is uncounted, so `submitted` (their sum) never dips below the jobs that
    /// ended.
    fn reroute_to_drop(&self, from: Strategy, timing: &Timing) {
        let stripe = self.stripe();
        stripe.routed[Strategy::Drop.index()].fetch_add(1, Relaxed);
        stripe.routed[from.index()].fetch_sub(1, Relaxed);
        if let Some(c) = timing.class.and_then(|id| self.classes.get(id)) {
            c.reroute(from, Strategy::Drop);
        }
    }

    /// Logs what happened to a job at routing time and, when someone listens,
    /// broadcasts it with its feed position.
    #[inline]
    pub(crate) fn log_decision(
        &self,
        hint: &WorkHint,
        strategy: Strategy,
        source: DecisionSource,
        timing: &Timing,
        busy: usize,
    ) {
        let d = RoutingDecision {
            job_id: hint.id,
            kind: hint.kind,
            class: None,
            strategy,
            source,
            compute_cost: hint.compute_cost,
            pressure: self.pressure.score(),
            cpu_busy: busy,
            timestamp_ms: self.epoch_unix_ms
                + timing
                    .start
                    .saturating_duration_since(self.clock_epoch)
                    .as_millis() as u64,
            seq: None,
        };
        self.feed
            .record(&self.stripe().log_cursor, d, timing.class, |id| {
                self.classes.get(id).map(|c| c.name)
            });
    }

    /// Records the end of a job that ran (or panicked). The ledger counts its CPU time
    /// where measured (work off the caller's thread), else its run time, else (for
    /// unclassed inline work, measured by nothing else) its latency.
    #[inline]
    pub(crate) fn finish(&self, strategy: Strategy, timing: &Timing, end: Ended) {
        let Ended {
            ok,
            run_ns,
            cpu_ns,
            caller_gone,
            sample,
        } = end;
        let class = timing.class.and_then(|id| self.classes.get(id));
        let now = quanta::Instant::now();
        let ns = now.saturating_duration_since(timing.start).as_nanos() as u64;
        let late = ns > timing.budget_ns;
        let work_ns = [cpu_ns, run_ns, ns]
            .into_iter()
            .find(|&x| x > 0)
            .unwrap_or(0);
        let work_end = WorkEnd::of(ok, late, caller_gone);
        let stripe = self.stripe();
        stripe.work[strategy.index()].add(work_end, work_ns);
        if let Some(c) = class {
            c.record_work(work_end, work_ns);
        }
        let outcome = if ok {
            let at = now.saturating_duration_since(self.clock_epoch).as_nanos() as u64;
            stripe.latency[strategy.index()].record(ns, at);
            if late {
                stripe.late.fetch_add(1, Relaxed);
            }
            if let Some(c) = class {
                c.record_run(run_ns, timing.hint_ns, timing.units);
                c.record_completed(ns, late, at);
            }
            Outcome::Completed { latency_ns: ns }
        } else {
            stripe.failed[strategy.index()].fetch_add(1, Relaxed);
            if let Some(c) = class {
                c.record_failed();
            }
            Outcome::Failed
        };
        if timing.probe
            && let Some(c) = class
        {
            c.probe_done();
        }
        if let Some(ctx) = sample {
            self.learning.offer(ctx, strategy, outcome);
        }
    }

    /// Records a job shed after being routed to `strategy`.
    pub(crate) fn record_drop(&self, strategy: Strategy, timing: &Timing, sample: Option<Context>) {
        self.stripe().dropped[strategy.index()].fetch_add(1, Relaxed);
        if let Some(c) = timing.class.and_then(|id| self.classes.get(id)) {
            c.record_dropped();
            if timing.probe {
                c.probe_done();
            }
        }
        if let Some(ctx) = sample {
            self.learning.offer(ctx, strategy, Outcome::Dropped);
        }
    }

    /// Records a job whose caller stopped waiting before it started; it never ran.
    pub(crate) fn record_cancelled(&self, strategy: Strategy, timing: &Timing) {
        self.stripe().cancelled[strategy.index()].fetch_add(1, Relaxed);
        if let Some(c) = timing.class.and_then(|id| self.classes.get(id)) {
            c.record_cancelled();
            if timing.probe {
                c.probe_done();
            }
        }
    }
}
