//! The routing decision for one job, as a pure function of what the router sees.
//!
//! [`decide`] takes the effective config, the job's profile (its cost already the
//! class's estimate where there is one) and a [`View`] of the router at this moment,
//! and returns the [`Decision`]: the strategy, who chose it, and whether the outcome
//! teaches the learner. The router implements [`View`] over its live atomics and its
//! learned policy; tests implement it with fixed answers, so every rule below is
//! checked on its own (unit and property tests at the end of this file).
//!
//! What happens after the decision is the pool's and the batcher's job, and they only
//! carry it out: the pool's admission ([`super::admission::admit`]) and its late check
//! ([`super::admission::late`]) are pure functions too, of the queue the pool holds.

use crate::config::RouterConfig;
use crate::neural_router::StrategyMask;
use crate::types::{DecisionSource, JobProfile, Strategy};

use super::{batch_fits_budget, choose_for_profile};

/// Outstanding spawned work (estimated ns, summed) above which `Spawn` decisions are
/// sent to the CPU pool instead, so medium jobs cannot starve the async executor.
pub(crate) const SPAWN_BACKLOG_LIMIT_NS: u64 = 500_000;

/// What the router sees when a job arrives. [`decide`] asks each question at most once
/// and only when the decision needs it: the inline fast path asks only [`View::busy`].
pub(crate) trait View {
    /// CPU-pool tasks running or queued.
    fn busy(&mut self) -> usize;
    /// Estimated ns of spawned work not yet finished.
    fn spawn_backlog_ns(&mut self) -> u64;
    /// True once the learned policy has warmed up and may override the heuristic.
    fn learner_ready(&mut self) -> bool;
    /// The learned policy's pick among `allowed` for this job (it explores now and
    /// then); `None` when `allowed` is empty.
    fn learned(&mut self, allowed: StrategyMask) -> Option<Strategy>;
}

/// How one job runs, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The strategy to dispatch to (never `Remote`: `run_task` decides that before).
    pub(crate) strategy: Strategy,
    /// Who chose it: the heuristic, the learned override, or a guard's reroute.
    pub(crate) source: DecisionSource,
    /// CPU-pool occupancy the decision saw.
    pub(crate) busy: usize,
    /// True when the job's outcome is to teach the learner: every job the heuristic
    /// did not run inline, when learning is on.
    pub(crate) learn: bool,
}

/// Decides how work of profile `p` runs under `cfg`:
///
/// 1. the heuristic ([`choose_for_profile`]) on the pool's occupancy;
/// 2. `unknown` work (a class never measured, no hint) takes the CPU pool instead of
///    running inline or spawned, where it could stall the executor, and is never shed
///    for want of an estimate;
/// 3. once the learner is warmed up, it may override any heuristic pick other than
///    `Drop` and `Inline` (tiny work run in place is the cheapest execution there is),
///    choosing among [`safe_mask`] only;
/// 4. guards: `Spawn` goes to the pool while the spawned backlog is over
///    [`SPAWN_BACKLOG_LIMIT_NS`], and `Batch` goes to the pool when the batch delay
///    would leave the work too little of its budget ([`batch_fits_budget`]).
#[inline]
pub(crate) fn decide(
    cfg: &RouterConfig,
    p: JobProfile,
    unknown: bool,
    view: &mut impl View,
) -> Decision {
    let busy = view.busy();
    let mut strategy = choose_for_profile(cfg, p, busy);
    let mut source = DecisionSource::Heuristic;
    if unknown && matches!(strategy, Strategy::Inline | Strategy::Spawn) {
        strategy = Strategy::CpuPool;
    }
    // Read at most once, and only when a decision needs it (not on the inline path).
    let mut backlog_ok = None;
    if cfg.enable_neural
        && !unknown
        && !matches!(strategy, Strategy::Drop | Strategy::Inline)
        && view.learner_ready()
    {
        let mask = safe_mask(cfg, p, spawn_backlog_ok(&mut backlog_ok, view));
        if let Some(pick) = view.learned(mask)
            && pick != strategy
        {
            strategy = pick;
            source = DecisionSource::Neural;
        }
    }
    if (strategy == Strategy::Spawn && !spawn_backlog_ok(&mut backlog_ok, view))
        || (strategy == Strategy::Batch && !batch_fits_budget(cfg, p))
    {
        strategy = Strategy::CpuPool;
        source = DecisionSource::Rerouted;
    }
    let learn =
        cfg.enable_neural && (strategy != Strategy::Inline || source == DecisionSource::Neural);
    Decision {
        strategy,
        source,
        busy,
        learn,
    }
}

/// True while the spawned backlog is within [`SPAWN_BACKLOG_LIMIT_NS`]; asks `view` on
/// the first call only and keeps the answer in `seen`.
#[inline]
fn spawn_backlog_ok(seen: &mut Option<bool>, view: &mut impl View) -> bool {
    *seen.get_or_insert_with(|| view.spawn_backlog_ns() <= SPAWN_BACKLOG_LIMIT_NS)
}

/// Strategies the learned policy may pick for this work without obviously blowing its
/// budget or the executor: never `Drop`; `Batch` only when the batch delay plus the
/// work fits the budget; `Inline`/`Spawn` only for work no heavier than the spawn
/// threshold (heavier work would stall an async worker), `Spawn` only while the
/// spawned backlog is under its limit.
#[inline]
pub(crate) fn safe_mask(cfg: &RouterConfig, p: JobProfile, spawn_backlog_ok: bool) -> StrategyMask {
    let mut m = StrategyMask::NONE.with(Strategy::CpuPool);
    if p.compute_cost <= cfg.spawn_threshold {
        m = m.with(Strategy::Inline);
        if spawn_backlog_ok {
            m = m.with(Strategy::Spawn);
        }
    }
    if batch_fits_budget(cfg, p) {
        m = m.with(Strategy::Batch);
    }
    m
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{prop, prop_assert, prop_assert_eq, prop_assert_ne, proptest};

    use super::*;

    /// A view with fixed answers that remembers what it was asked.
    #[derive(Debug, Default)]
    struct Fixed {
        busy: usize,
        backlog_ns: u64,
        ready: bool,
        pick: Option<Strategy>,
        asked_backlog: u32,
        offered: Option<StrategyMask>,
    }

    impl View for Fixed {
        fn busy(&mut self) -> usize {
            self.busy
        }
        fn spawn_backlog_ns(&mut self) -> u64 {
            self.asked_backlog += 1;
            self.backlog_ns
        }
        fn learner_ready(&mut self) -> bool {
            self.ready
        }
        fn learned(&mut self, allowed: StrategyMask) -> Option<Strategy> {
            self.offered = Some(allowed);
            self.pick.filter(|s| allowed.contains(*s))
        }
    }

    fn profile(cost: u64, scaling: f32, budget_ms: u64) -> JobProfile {
        JobProfile {
            compute_cost: cost,
            scaling_potential: scaling,
            latency_budget_ms: budget_ms,
        }
    }

    fn cfg(neural: bool) -> RouterConfig {
        RouterConfig {
            enable_neural: neural,
            ..RouterConfig::default()
        }
    }

    #[test]
    fn tiny_work_runs_inline_asking_only_the_occupancy() {
        let mut v = Fixed {
            ready: true,
            pick: Some(Strategy::CpuPool),
            ..Fixed::default()
        };
        let d = decide(&cfg(true), profile(100, 0.0, 10), false, &mut v);
        assert_eq!(
            (d.strategy, d.source, d.learn),
            (Strategy::Inline, DecisionSource::Heuristic, false)
        );
        assert_eq!((v.asked_backlog, v.offered), (0, None));
    }

    #[test]
    fn unknown_work_takes_the_pool_and_is_not_second_guessed() {
        let mut v = Fixed {
            ready: true,
            pick: Some(Strategy::Spawn),
            ..Fixed::default()
        };
        let d = decide(&cfg(true), profile(100, 0.0, 10), true, &mut v);
        assert_eq!(
            (d.strategy, d.source),
            (Strategy::CpuPool, DecisionSource::Heuristic)
        );
        assert_eq!(v.offered, None);
        assert!(d.learn, "its outcome still teaches the learner");
    }

    #[test]
    fn a_spawn_backlog_reroutes_spawn_to_the_pool() {
        let c = cfg(false);
        let p = profile((c.inline_threshold + c.spawn_threshold) / 2, 0.0, 10);
        let mut calm = Fixed::default();
        assert_eq!(decide(&c, p, false, &mut calm).strategy, Strategy::Spawn);
        let mut backlog = Fixed {
            backlog_ns: SPAWN_BACKLOG_LIMIT_NS + 1,
            ..Fixed::default()
        };
        let d = decide(&c, p, false, &mut backlog);
        assert_eq!(
            (d.strategy, d.source),
            (Strategy::CpuPool, DecisionSource::Rerouted)
        );
    }

    #[test]
    fn a_batch_whose_delay_leaves_too_little_budget_goes_to_the_pool() {
        let c = cfg(false);
        let heavy = c.spawn_threshold * 2;
        let mut v = Fixed::default();
        let roomy = decide(&c, profile(heavy, 0.9, 1_000), false, &mut v);
        assert_eq!(roomy.strategy, Strategy::Batch);
        let tight = decide(&c, profile(heavy, 0.9, c.batch_max_delay_ms), false, &mut v);
        assert_eq!(
            (tight.strategy, tight.source),
            (Strategy::CpuPool, DecisionSource::Rerouted)
        );
    }

    #[test]
    fn the_learner_overrides_within_its_safe_mask_once_ready() {
        let c = cfg(true);
        let p = profile(c.spawn_threshold * 2, 0.0, 100);
        let mut cold = Fixed {
            pick: Some(Strategy::Batch),
            ..Fixed::default()
        };
        assert_eq!(
            decide(&c, p, false, &mut cold).source,
            DecisionSource::Heuristic
        );
        let mut warm = Fixed {
            ready: true,
            pick: Some(Strategy::Batch),
            ..Fixed::default()
        };
        let d = decide(&c, p, false, &mut warm);
        assert_eq!(
            (d.strategy, d.source, d.learn),
            (Strategy::Batch, DecisionSource::Neural, true)
        );
        assert_eq!(warm.offered, Some(safe_mask(&c, p, true)));
    }

    fn strategy() -> impl proptest::strategy::Strategy<Value = Strategy> {
        prop::sample::select(Strategy::ALL.to_vec())
    }

    proptest! {
        /// Whatever the view says: the decision never picks `Remote`, never sheds work
        /// the heuristic would not shed, never spawns over the backlog limit, never
        /// batches work the batch delay would make late, never runs unknown work on
        /// the executor, asks for the spawned backlog at most once, and teaches the
        /// learner exactly when learning is on and the job did not run inline on the
        /// heuristic's word.
        #[test]
        fn decisions_keep_their_guards(
            cost in 0u64..50_000_000,
            scaling in 0f32..1.0,
            budget_ms in 1u64..1_000,
            busy in 0usize..64,
            backlog_ns in 0u64..2_000_000,
            ready: bool,
            neural: bool,
            unknown: bool,
            pick in prop::option::of(strategy()),
        ) {
            let c = cfg(neural);
            let p = profile(cost, scaling, budget_ms);
            let mut v = Fixed { busy, backlog_ns, ready, pick, ..Fixed::default() };
            let d = decide(&c, p, unknown, &mut v);
            let heuristic = choose_for_profile(&c, p, busy);
            prop_assert_ne!(d.strategy, Strategy::Remote);
            prop_assert_eq!(d.strategy == Strategy::Drop, heuristic == Strategy::Drop);
            if d.strategy == Strategy::Spawn {
                prop_assert!(backlog_ns <= SPAWN_BACKLOG_LIMIT_NS);
            }
            if d.strategy == Strategy::Batch {
                prop_assert!(batch_fits_budget(&c, p));
            }
            if unknown {
                prop_assert!(!matches!(d.strategy, Strategy::Inline | Strategy::Spawn));
            }
            prop_assert!(v.asked_backlog <= 1);
            prop_assert_eq!(d.busy, busy);
            let expect_learn = neural
                && (d.strategy != Strategy::Inline || d.source == DecisionSource::Neural);
            prop_assert_eq!(d.learn, expect_learn);
        }
    }
}
