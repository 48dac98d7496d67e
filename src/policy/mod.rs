//! The pure routing policy: the decision tree (`choose_strategy`), the decision that
//! applies the learner and the guards to it (`decide`), the pool's admission verdicts
//! (`admission`) and the per-job cost models (`cost`). No tokio, no
//! allocation, no I/O, no clock: the runtime shell (`router`) feeds it what it measured.

pub(crate) mod admission;
pub(crate) mod cost;
pub(crate) mod decide;

use crate::config::RouterConfig;
use crate::types::{Job, JobProfile, Strategy};

/// `scaling_potential` at or above which a job is batched when the pool is saturated.
pub(crate) const BATCH_UNDER_PRESSURE: f32 = 0.65;
/// `scaling_potential` at or above which a heavy job is batched.
pub(crate) const BATCH_HEAVY: f32 = 0.70;

/// Chooses how `job` should run given the config and the CPU pool occupancy.
///
/// The decision tree, in order:
/// 1. backpressure gate: `cpu_busy >= backpressure_busy_threshold` → `Batch` when
///    `scaling_potential >= 0.65`, otherwise `Drop`;
/// 2. `compute_cost <= inline_threshold` → `Inline`;
/// 3. `compute_cost < spawn_threshold` → `Spawn`;
/// 4. `scaling_potential >= 0.70` → `Batch`;
/// 5. otherwise `CpuPool`.
///
/// # Examples
///
/// ```
/// use helixrouter::config::RouterConfig;
/// use helixrouter::choose_strategy;
/// use helixrouter::types::{Job, JobKind, Strategy};
///
/// let cfg = RouterConfig::default();
/// let job = Job { id: 1, kind: JobKind::HashMix, inputs: vec![1, 2], compute_cost: 500,
///                 scaling_potential: 0.1, latency_budget_ms: 5 };
/// assert_eq!(choose_strategy(&cfg, &job, 0), Strategy::Inline);
/// ```
#[inline]
pub fn choose_strategy(cfg: &RouterConfig, job: &Job, cpu_busy: usize) -> Strategy {
    choose_for_profile(cfg, job.profile(), cpu_busy)
}

/// [`choose_strategy`] for a bare [`JobProfile`] (what `Router::run` routes on).
#[inline]
pub(crate) fn choose_for_profile(cfg: &RouterConfig, p: JobProfile, cpu_busy: usize) -> Strategy {
    if cpu_busy >= cfg.backpressure_busy_threshold {
        return if p.scaling_potential >= BATCH_UNDER_PRESSURE {
            Strategy::Batch
        } else {
            Strategy::Drop
        };
    }
    if p.compute_cost <= cfg.inline_threshold {
        Strategy::Inline
    } else if p.compute_cost < cfg.spawn_threshold {
        Strategy::Spawn
    } else if p.scaling_potential >= BATCH_HEAVY {
        Strategy::Batch
    } else {
        Strategy::CpuPool
    }
}

/// True when twice the batch delay plus the work itself fits the budget: the wait for
/// the batch to fill may take at most half of what the budget leaves, so the batch's
/// own queue wait and run still fit. Batching work that fails this would miss its
/// deadline whenever the pool is busy. Used by the router's guard and by the learned
/// policy's safety mask.
#[inline]
pub(crate) fn batch_fits_budget(cfg: &RouterConfig, p: JobProfile) -> bool {
    cfg.batch_max_delay_ms
        .saturating_mul(2_000_000)
        .saturating_add(p.compute_cost)
        <= p.latency_budget_ms.saturating_mul(1_000_000)
}

/// Orders strategies by how much they move work away from the caller; used to state
/// that the policy is monotone in cost (`Batch` and `CpuPool` share a rank).
#[cfg(test)]
fn cost_rank(s: Strategy) -> u8 {
    match s {
        Strategy::Inline => 0,
        Strategy::Spawn => 1,
        Strategy::CpuPool | Strategy::Batch => 2,
        Strategy::Drop | Strategy::Remote => 3,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::types::{JobKind, JobProfile, Strategy};

    fn job(cost: u64, sp: f32) -> Job {
        Job {
            id: 0,
            kind: JobKind::HashMix,
            inputs: vec![],
            compute_cost: cost,
            scaling_potential: sp,
            latency_budget_ms: 10,
        }
    }

    #[test]
    fn batch_fits_budget_at_the_boundary() {
        let cfg = RouterConfig::default(); // 10 ms batch delay
        let p = |cost, budget_ms| JobProfile {
            compute_cost: cost,
            scaling_potential: 0.9,
            latency_budget_ms: budget_ms,
        };
        assert!(batch_fits_budget(&cfg, p(1_000_000, 21)));
        assert!(!batch_fits_budget(&cfg, p(1_000_001, 21)));
        assert!(!batch_fits_budget(&cfg, p(0, 19)));
    }

    #[test]
    fn every_strategy_is_reachable() {
        let cfg = RouterConfig::default();
        let gate = cfg.backpressure_busy_threshold;
        assert_eq!(choose_strategy(&cfg, &job(100, 0.0), 0), Strategy::Inline);
        assert_eq!(choose_strategy(&cfg, &job(8_000, 0.0), 0), Strategy::Inline);
        assert_eq!(choose_strategy(&cfg, &job(8_001, 0.0), 0), Strategy::Spawn);
        assert_eq!(choose_strategy(&cfg, &job(59_999, 0.9), 0), Strategy::Spawn);
        assert_eq!(
            choose_strategy(&cfg, &job(60_000, 0.69), 0),
            Strategy::CpuPool
        );
        assert_eq!(
            choose_strategy(&cfg, &job(60_000, 0.70), 0),
            Strategy::Batch
        );
        assert_eq!(choose_strategy(&cfg, &job(100, 0.64), gate), Strategy::Drop);
        assert_eq!(
            choose_strategy(&cfg, &job(100, 0.65), gate),
            Strategy::Batch
        );
        assert_eq!(
            choose_strategy(&cfg, &job(100, 0.0), gate - 1),
            Strategy::Inline
        );
    }

    proptest! {
        #[test]
        fn total_and_monotone_in_cost(a in 0u64..1_000_000, b in 0u64..1_000_000,
                                      sp in 0.0f32..=1.0, busy in 0usize..1_000) {
            let cfg = RouterConfig::default();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let s_lo = choose_strategy(&cfg, &job(lo, sp), busy);
            let s_hi = choose_strategy(&cfg, &job(hi, sp), busy);
            prop_assert!(cost_rank(s_lo) <= cost_rank(s_hi), "{lo}->{s_lo} {hi}->{s_hi}");
        }

        #[test]
        fn gate_never_runs_work_on_the_executor(cost in 0u64..10_000_000, sp in 0.0f32..=1.0) {
            let cfg = RouterConfig::default();
            let s = choose_strategy(&cfg, &job(cost, sp), cfg.backpressure_busy_threshold);
            prop_assert!(matches!(s, Strategy::Batch | Strategy::Drop));
        }
    }
}
