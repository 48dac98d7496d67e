//! A pure, seeded simulation of how each strategy performs for a job under a load,
//! used to show that the learner finds the best strategy per context.
//!
//! Latency model (nanoseconds; `c` = the job's real cost, `p` = pressure, `q` =
//! queue fill, `s` = the kind's effective scaling potential):
//!
//! | strategy | latency |
//! |---|---|
//! | Inline | `c·(1 + 8p)·(1 + c/250µs)` — a long job on the executor stalls the tasks it interleaves with |
//! | Spawn | `5µs + 100µs·p + c·(1 + 4p)·(1 + c/500µs)` — long jobs hold an executor worker the other tasks need |
//! | CpuPool | `20µs + q·10ms + c` (queue wait); rejected (dropped) with probability `min(0.5, 5·(q − 0.9))` above 90% fill |
//! | Batch | `10ms·(1 − 0.4q) + c·(1 − 0.8s)` — flush delay, amortised cost |
//! | Drop | dropped |
//!
//! Kinds: HashMix batches poorly (`s` × 0.3); PrimeCount as estimated;
//! MonteCarloRisk costs 1.4× its estimate; custom closures cost `2^U(−1, 1)` × their
//! estimate and batch at `s` × 0.6. Every latency is multiplied by a jitter of
//! `2^U(−0.4, 0.4)`, and 0.2% of completions fail. Expected rewards are computed by
//! midpoint quadrature over the same noise, so "the best strategy" of a context is
//! exact and deterministic.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::types::{JobKind, Strategy};

use super::{Context, DROPPED_REWARD, FAILED_REWARD, Outcome, reward};

/// Probability that a completed job fails instead.
const FAIL_P: f64 = 0.002;
/// Half-width of the log2 latency jitter.
const JITTER_LOG2: f64 = 0.4;
/// Quadrature points per noise dimension.
const QUAD: usize = 8;

/// How a kind's real cost and batchability differ from the estimate.
#[derive(Clone, Copy)]
struct KindProfile {
    cost_mult: f64,
    /// Half-width of the log2 spread of real cost around the estimate.
    cost_spread_log2: f64,
    scaling_factor: f64,
}

fn profile(kind: Option<JobKind>) -> KindProfile {
    match kind {
        Some(JobKind::HashMix) => KindProfile {
            cost_mult: 1.0,
            cost_spread_log2: 0.0,
            scaling_factor: 0.3,
        },
        Some(JobKind::PrimeCount) => KindProfile {
            cost_mult: 1.0,
            cost_spread_log2: 0.0,
            scaling_factor: 1.0,
        },
        Some(JobKind::MonteCarloRisk) => KindProfile {
            cost_mult: 1.4,
            cost_spread_log2: 0.0,
            scaling_factor: 1.0,
        },
        None => KindProfile {
            cost_mult: 1.0,
            cost_spread_log2: 1.0,
            scaling_factor: 0.6,
        },
    }
}

/// Latency in ns before jitter, for a real cost of `c` ns.
fn base_latency_ns(ctx: &Context, s: Strategy, c: f64) -> f64 {
    let p = ctx.pressure;
    let q = ctx.queue_fill;
    let scaling = f64::from(ctx.scaling_potential) * profile(ctx.kind).scaling_factor;
    match s {
        Strategy::Inline => c * (1.0 + 8.0 * p) * (1.0 + c / 250_000.0),
        Strategy::Spawn => 5_000.0 + 100_000.0 * p + c * (1.0 + 4.0 * p) * (1.0 + c / 500_000.0),
        Strategy::CpuPool => 20_000.0 + q * 10e6 + c,
        Strategy::Batch => 10e6 * (1.0 - 0.4 * q) + c * (1.0 - 0.8 * scaling),
        // Never offered to the learner (its mask excludes remote).
        Strategy::Drop | Strategy::Remote => 0.0,
    }
}

/// Probability that the strategy sheds the job (a full queue).
fn reject_p(ctx: &Context, s: Strategy) -> f64 {
    match s {
        Strategy::CpuPool => (5.0 * (ctx.queue_fill - 0.9)).clamp(0.0, 0.5),
        Strategy::Drop | Strategy::Remote => 1.0,
        _ => 0.0,
    }
}

/// Draws a context: any kind, cost log-uniform 128 ns – 16 ms, budget log-uniform
/// 1–256 ms, scaling and queue fill uniform, pressure correlated with queue fill.
pub(super) fn sample_context(rng: &mut SmallRng) -> Context {
    let kind = JobKind::ALL.get(rng.random_range(0..4)).copied();
    let compute_cost = 2f64.powf(rng.random_range(7.0..24.0)) as u64;
    let latency_budget_ms = (2f64.powf(rng.random_range(0.0..8.0)).round() as u64).max(1);
    let queue_fill: f64 = rng.random_range(0.0..1.0);
    let pressure = (0.6 * queue_fill + 0.4 * rng.random_range(0.0..1.0)).clamp(0.0, 1.0);
    Context {
        kind,
        class_slot: None,
        compute_cost,
        scaling_potential: rng.random_range(0.0..1.0),
        latency_budget_ms,
        pressure,
        queue_fill,
    }
}

/// Draws how running `ctx` with `s` ends.
pub(super) fn sample_outcome(ctx: &Context, s: Strategy, rng: &mut SmallRng) -> Outcome {
    if rng.random_bool(reject_p(ctx, s)) {
        return Outcome::Dropped;
    }
    if rng.random_bool(FAIL_P) {
        return Outcome::Failed;
    }
    let kp = profile(ctx.kind);
    let spread = if kp.cost_spread_log2 > 0.0 {
        rng.random_range(-kp.cost_spread_log2..kp.cost_spread_log2)
    } else {
        0.0
    };
    let c = ctx.compute_cost as f64 * kp.cost_mult * 2f64.powf(spread);
    let jitter = 2f64.powf(rng.random_range(-JITTER_LOG2..JITTER_LOG2));
    Outcome::Completed {
        latency_ns: (base_latency_ns(ctx, s, c) * jitter) as u64,
    }
}

/// The exact (quadrature) expected reward of running `ctx` with `s`.
pub(super) fn expected_reward(ctx: &Context, s: Strategy) -> f64 {
    if s == Strategy::Drop {
        return DROPPED_REWARD;
    }
    let kp = profile(ctx.kind);
    let cost_points = if kp.cost_spread_log2 > 0.0 { QUAD } else { 1 };
    let mut completed = 0.0;
    for ci in 0..cost_points {
        let u = if cost_points == 1 {
            0.0
        } else {
            (2.0 * (ci as f64 + 0.5) / cost_points as f64 - 1.0) * kp.cost_spread_log2
        };
        let c = ctx.compute_cost as f64 * kp.cost_mult * 2f64.powf(u);
        let base = base_latency_ns(ctx, s, c);
        for ji in 0..QUAD {
            let j = (2.0 * (ji as f64 + 0.5) / QUAD as f64 - 1.0) * JITTER_LOG2;
            let latency_ns = (base * 2f64.powf(j)) as u64;
            completed += reward(Outcome::Completed { latency_ns }, ctx.latency_budget_ms);
        }
    }
    completed /= (cost_points * QUAD) as f64;
    let rp = reject_p(ctx, s);
    rp * DROPPED_REWARD + (1.0 - rp) * (FAIL_P * FAILED_REWARD + (1.0 - FAIL_P) * completed)
}

/// Expected reward of every strategy, indexed by [`Strategy::index`].
pub(super) fn expected_rewards(ctx: &Context) -> [f64; Strategy::COUNT] {
    Strategy::ALL.map(|s| expected_reward(ctx, s))
}

/// A fresh generator for the environment.
pub(super) fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

/// The router's default decision tree (the real [`choose_for_profile`]), with the
/// backpressure gate read from the context's queue fill (gate at 90%): what the learning
/// tests compare the learned policy against.
///
/// [`choose_for_profile`]: crate::router::choose_for_profile
pub(super) fn heuristic(c: &super::Context) -> crate::types::Strategy {
    static CFG: std::sync::OnceLock<crate::config::RouterConfig> = std::sync::OnceLock::new();
    let cfg = CFG.get_or_init(|| crate::config::RouterConfig {
        backpressure_busy_threshold: 90,
        ..crate::config::RouterConfig::default()
    });
    let profile = crate::types::JobProfile {
        compute_cost: c.compute_cost,
        scaling_potential: c.scaling_potential,
        latency_budget_ms: c.latency_budget_ms,
    };
    crate::policy::choose_for_profile(cfg, profile, (c.queue_fill * 100.0).floor() as usize)
}
