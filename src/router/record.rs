//! Bookkeeping of every job: its decision (counted, logged, broadcast when someone
//! listens) and its end (latency, late, failed or dropped, and the learner's sample).
//! All hot-path writes are relaxed atomics on the calling thread's stripe.

use std::sync::atomic::Ordering::Relaxed;

use super::hint::WorkHint;
use super::stripes::{self, Stripe, stripe_index};
use super::{Inner, lock};
use crate::neural_router::{Context, Outcome};
use crate::types::{DecisionSource, RoutingDecision, Strategy};

impl Inner {
    /// The calling thread's stripe.
    #[inline]
    fn stripe(&self) -> &Stripe {
        &self.stripes[stripe_index() % self.stripes.len()]
    }

    /// Summed counters (submitted, completed, dropped), the end counters read first.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        let completed: u64 = self
            .stripes
            .iter()
            .flat_map(|s| &s.latency)
            .map(|w| w.count())
            .sum();
        let dropped = stripes::sum_all(&self.stripes, |s| &s.dropped);
        // Every job is routed exactly once (counted before its end), so the routed
        // total read after the end counters is the submitted count.
        let submitted = self.routed_total();
        (submitted, completed, dropped)
    }

    /// Jobs submitted and not yet ended (the end counters read before `routed`).
    pub(crate) fn in_flight(&self) -> u64 {
        let failed = stripes::sum_all(&self.stripes, |s| &s.failed);
        let (submitted, completed, dropped) = self.totals();
        submitted.saturating_sub(completed + dropped + failed)
    }

    /// Jobs routed so far (= submitted).
    pub(crate) fn routed_total(&self) -> u64 {
        stripes::sum_all(&self.stripes, |s| &s.routed)
    }

    /// Counts a job as routed to `strategy`; called before the job can end.
    #[inline]
    pub(crate) fn count_routed(&self, strategy: Strategy) {
        self.stripe().routed[strategy.index()].fetch_add(1, Relaxed);
    }

    /// Logs what happened to a job at routing time and, when someone listens,
    /// broadcasts it with its feed position.
    #[inline]
    pub(crate) fn log_decision(
        &self,
        hint: &WorkHint,
        strategy: Strategy,
        source: DecisionSource,
        start: quanta::Instant,
        busy: usize,
    ) {
        let mut d = RoutingDecision {
            job_id: hint.id,
            kind: hint.kind,
            strategy,
            source,
            compute_cost: hint.compute_cost,
            pressure: f64::from_bits(self.pressure_score.load(Relaxed)),
            cpu_busy: busy,
            timestamp_ms: self.epoch_unix_ms
                + start
                    .saturating_duration_since(self.clock_epoch)
                    .as_millis() as u64,
            seq: None,
        };
        self.log.push(&self.stripe().log_cursor, &d);
        if self.has_subscribers.load(Relaxed) {
            // Only while someone listens: the broadcast takes a lock anyway.
            let mut next = lock(&self.feed_seq);
            d.seq = Some(*next);
            *next += 1;
            let _ = self.decisions.send(d);
        }
    }

    /// Records the end of a job that ran (or panicked).
    #[inline]
    pub(crate) fn finish(
        &self,
        strategy: Strategy,
        start: quanta::Instant,
        budget_ns: u64,
        ok: bool,
        sample: Option<Context>,
    ) {
        let outcome = if ok {
            let now = quanta::Instant::now();
            let ns = now.saturating_duration_since(start).as_nanos() as u64;
            let stripe = self.stripe();
            stripe.latency[strategy.index()].record(
                ns,
                now.saturating_duration_since(self.clock_epoch).as_nanos() as u64,
            );
            if ns > budget_ns {
                stripe.late.fetch_add(1, Relaxed);
            }
            Outcome::Completed { latency_ns: ns }
        } else {
            self.stripe().failed[strategy.index()].fetch_add(1, Relaxed);
            Outcome::Failed
        };
        if let Some(ctx) = sample {
            self.learning.offer(ctx, strategy, outcome);
        }
    }

    /// Records a job shed after being routed to `strategy`.
    pub(crate) fn record_drop(&self, strategy: Strategy, sample: Option<Context>) {
        self.stripe().dropped[strategy.index()].fetch_add(1, Relaxed);
        if let Some(ctx) = sample {
            self.learning.offer(ctx, strategy, Outcome::Dropped);
        }
    }
}
