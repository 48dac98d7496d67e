//! Where each decision is made: [`Inner::route`] turns a hint and the current state
//! into a [`Route`]. Non-generic, so the whole decision reads in one place; dispatching
//! the work (generic over the closure) is `dispatch.rs`'s job.

use std::sync::atomic::Ordering::Relaxed;

use super::classes::ClassEntry;
use super::hint::WorkHint;
use super::{Inner, learning};
use crate::config::RouterConfig;
use crate::neural_router::Context;
use crate::policy::{batch_fits_budget, choose_for_profile};
use crate::types::{DecisionSource, Strategy};

/// Outstanding spawned work (estimated ns, summed) above which `Spawn` decisions are
/// sent to the CPU pool instead, so medium jobs cannot starve the async executor.
pub(crate) const SPAWN_BACKLOG_LIMIT_NS: u64 = 500_000;

/// A routing decision before dispatch: how the work should run and why.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    /// The strategy to dispatch to.
    pub(crate) strategy: Strategy,
    /// Who chose it (heuristic, learned override, or a guard's reroute).
    pub(crate) source: DecisionSource,
    /// CPU pool occupancy the decision saw.
    pub(crate) busy: usize,
    /// The learner's context, when this job's outcome is to be learned from.
    pub(crate) sample: Option<Context>,
}

impl Inner {
    /// Decides how `hint`'s work runs under `cfg` (the effective config, one snapshot per
    /// job): the pure heuristic, the learned override once warmed up, then the guards.
    /// `hint.compute_cost` is already the class's learned cost where there is one;
    /// `unknown` work (a class never measured, no hint) takes the CPU pool: never
    /// inline, where it could stall the executor, and never shed for want of an estimate.
    #[inline]
    pub(crate) fn route(
        &self,
        hint: &WorkHint,
        cfg: &RouterConfig,
        class: Option<&ClassEntry>,
        unknown: bool,
    ) -> Route {
        let busy = self.pool.busy();
        let profile = hint.profile();
        let mut strategy = choose_for_profile(cfg, profile, busy);
        let mut source = DecisionSource::Heuristic;
        if unknown && matches!(strategy, Strategy::Inline | Strategy::Spawn) {
            strategy = Strategy::CpuPool;
        }
        // Read only when a decision needs it (not on the inline fast path).
        let spawn_backlog_ok =
            || self.counters.spawn_outstanding_ns.load(Relaxed) <= SPAWN_BACKLOG_LIMIT_NS;
        let mut ctx = None;
        // The learned override: only once warmed up, never where the heuristic shed or
        // ran inline, and only among strategies that cannot obviously blow the budget.
        // Tiny work the heuristic runs inline is never second-guessed: running it in
        // place is the cheapest execution there is, and the hot path stays lean.
        if cfg.enable_neural
            && !unknown
            && !matches!(strategy, Strategy::Drop | Strategy::Inline)
            && self.learning.ready.load(Relaxed)
        {
            let c = self.context(hint, cfg, class);
            let mask = learning::safe_mask(cfg, profile, spawn_backlog_ok());
            if let Some(choice) =
                self.learning
                    .policy
                    .load()
                    .choose(&c, mask, learning::next_random())
                && choice.strategy != strategy
            {
                strategy = choice.strategy;
                source = DecisionSource::Neural;
            }
            ctx = Some(c);
        }
        // Guards: keep the executor free of medium backlogs, and never batch work whose
        // budget the batch delay would leave too little of (`batch_fits_budget`).
        if (strategy == Strategy::Spawn && !spawn_backlog_ok())
            || (strategy == Strategy::Batch && !batch_fits_budget(cfg, profile))
        {
            strategy = Strategy::CpuPool;
            source = DecisionSource::Rerouted;
        }
        // Outcomes for the learner: every job the heuristic did not run inline.
        let sample = if cfg.enable_neural
            && (strategy != Strategy::Inline || source == DecisionSource::Neural)
        {
            Some(ctx.unwrap_or_else(|| self.context(hint, cfg, class)))
        } else {
            None
        };
        Route {
            strategy,
            source,
            busy,
            sample,
        }
    }

    /// The learner's view of this work and this moment.
    #[inline]
    fn context(&self, hint: &WorkHint, cfg: &RouterConfig, class: Option<&ClassEntry>) -> Context {
        Context {
            kind: hint.kind,
            class_slot: class.map(|c| c.slot),
            compute_cost: hint.compute_cost,
            scaling_potential: hint.scaling_potential,
            latency_budget_ms: hint.latency_budget_ms,
            pressure: f64::from_bits(self.pressure_score.load(Relaxed)),
            queue_fill: self.pool.queued() as f64 / cfg.cpu_queue_cap.max(1) as f64,
        }
    }
}

/// Why a registered remote task goes to a remote worker, with what the dispatch needs.
#[cfg(feature = "remote")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RemoteRoute {
    /// The task's class in the class table.
    pub(crate) class: super::classes::ClassId,
    /// The cost planned with (learned, or the hint).
    pub(crate) cost_ns: u64,
}

#[cfg(feature = "remote")]
impl Inner {
    /// Decides whether a registered remote task runs on a remote worker. Only work
    /// whose cost is known and well above the round trip (`min_cost_ns`, and
    /// `min_cost_over_round_trip` × the measured transport round trip) goes, only when a live worker
    /// has room and the estimated remote finish fits the budget, and only when the
    /// local estimate does not fit it, local pressure is high, or the work would wait
    /// behind a local queue long enough that the worker finishes it sooner (an idle
    /// local pool always wins: it has no round trip). Otherwise `None`: the task runs
    /// locally like any closure.
    pub(crate) fn route_remote(
        &self,
        remote: &crate::remote::Remote,
        hint: &WorkHint,
        name: &'static str,
        cfg: &RouterConfig,
    ) -> Option<RemoteRoute> {
        if self.shutting_down.load(Relaxed) {
            return None;
        }
        let rc = remote.config();
        // The work's class (`run_task` defaults it to the task's name).
        let (class, entry) = self.classes.resolve(hint.class.unwrap_or(name));
        let est = entry.estimate(hint.compute_cost, hint.units, cfg.enable_cost_learning);
        let floor = rc.min_cost_ns.max(
            remote
                .transport_ns()
                .saturating_mul(rc.min_cost_over_round_trip),
        );
        if est.unknown || est.policy_ns < floor {
            return None;
        }
        let budget = hint.budget_ns();
        let remote_finish = remote.estimate_finish_ns(name, est.policy_ns)?;
        if remote_finish > budget {
            return None;
        }
        let pressure = f64::from_bits(self.pressure_score.load(Relaxed));
        let local_finish = self.pool.estimate_finish_ns(est.admit_ns);
        // `remote_finish <= budget` here, so a local finish over budget is covered by
        // "sooner there".
        (remote_finish < local_finish || pressure >= rc.offload_pressure).then_some(RemoteRoute {
            class,
            cost_ns: est.policy_ns,
        })
    }
}
