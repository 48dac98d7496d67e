//! Where each decision is made: [`Inner::route`] gathers what the router sees (a
//! [`LiveView`]) and asks the pure [`decide`] how the work runs, giving a [`Route`].
//! Dispatching the work (generic over the closure) is `dispatch.rs`'s job.

use std::sync::atomic::Ordering::Relaxed;

use super::classes::ClassEntry;
use super::hint::WorkHint;
use super::{Inner, learning};
use crate::config::RouterConfig;
use crate::neural_router::{Context, StrategyMask};
use crate::policy::decide::{View, decide};
use crate::types::{DecisionSource, Strategy};

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

/// The router's live [`View`] for one job: its atomics and its learned policy, read
/// only when [`decide`] asks. Keeps the learner's context once built, so a learned
/// decision and its outcome sample share it.
struct LiveView<'a> {
    inner: &'a Inner,
    hint: &'a WorkHint,
    cfg: &'a RouterConfig,
    class: Option<&'a ClassEntry>,
    ctx: Option<Context>,
}

impl View for LiveView<'_> {
    #[inline]
    fn busy(&mut self) -> usize {
        self.inner.pool.busy()
    }

    #[inline]
    fn spawn_backlog_ns(&mut self) -> u64 {
        self.inner.counters.spawn_outstanding_ns.load(Relaxed)
    }

    #[inline]
    fn learner_ready(&mut self) -> bool {
        self.inner.learning.ready.load(Relaxed)
    }

    fn learned(&mut self, allowed: StrategyMask) -> Option<Strategy> {
        let ctx = *self
            .ctx
            .get_or_insert_with(|| self.inner.context(self.hint, self.cfg, self.class));
        let policy = self.inner.learning.policy.load();
        policy
            .choose(&ctx, allowed, learning::next_random())
            .map(|c| c.strategy)
    }
}

impl Inner {
    /// Decides how `hint`'s work runs under `cfg` (the effective config, one snapshot per
    /// job): [`decide`] on this moment's [`LiveView`]. `hint.compute_cost` is already
    /// the class's learned cost where there is one; `unknown` marks work whose class was
    /// never measured and that carries no hint.
    #[inline]
    pub(crate) fn route(
        &self,
        hint: &WorkHint,
        cfg: &RouterConfig,
        class: Option<&ClassEntry>,
        unknown: bool,
    ) -> Route {
        let mut view = LiveView {
            inner: self,
            hint,
            cfg,
            class,
            ctx: None,
        };
        let d = decide(cfg, hint.profile(), unknown, &mut view);
        let sample = d
            .learn
            .then(|| view.ctx.unwrap_or_else(|| self.context(hint, cfg, class)));
        Route {
            strategy: d.strategy,
            source: d.source,
            busy: d.busy,
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
            pressure: self.pressure.score(),
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
        let pressure = self.pressure.score();
        let local_finish = self.pool.estimate_finish_ns(est.admit_ns);
        // `remote_finish <= budget` here, so a local finish over budget is covered by
        // "sooner there".
        (remote_finish < local_finish || pressure >= rc.offload_pressure).then_some(RemoteRoute {
            class,
            cost_ns: est.policy_ns,
        })
    }
}
