//! The bars a run is judged by: DESIGN §4's bars and the hint bars at loads >= 2×
//! ([`BarCheck`]), and the cost-model bars at every load ([`CostModelBar`]).

use serde::{Deserialize, Serialize};

use super::{ExecutorFigures, LoadStep};
use crate::executor::ExecutorKind;
use crate::hints::HintScenario;
use crate::stats::Quantiles;

/// Goodput HelixRouter must reach at 2× and 4×, as a share of the upper bound.
pub const BOUND_BAR: f64 = 0.80;
/// Allowed excess of HelixRouter's starvation p99 over the idle runtime's, ms.
pub const STARVATION_SLACK_MS: f64 = 1.0;
/// Loads at or above which the bars apply.
pub const BAR_MIN_LOAD: f64 = 2.0;
/// Goodput HelixRouter must reach at 2× and 4× in every hint scenario, as a share of
/// the offered jobs.
pub const OFFERED_BAR: f64 = 0.85;
/// How far (a share of the offered jobs, i.e. 0.03 = 3 points) HelixRouter's goodput in
/// a hint scenario may fall below its goodput with exact hints at the same load.
pub const HINT_GAP_BAR: f64 = 0.03;
/// How far (0.03 = 3 points of offered) HelixRouter's goodput in a cost-model scenario
/// ([`HintScenario::COST_MODEL`]) may fall below the same variant's goodput with exact
/// hints (per-size classes, fixed work) at the same load, at every load run.
pub const COST_MODEL_GAP_BAR: f64 = 0.03;
/// Loads at or below which the low-load bar applies (0.5×).
pub const LOW_LOAD_MAX: f64 = 0.5;
/// Goodput HelixRouter must reach with one class ([`HintScenario::OneClass`]) at loads
/// <= [`LOW_LOAD_MAX`], as a share of the offered jobs.
pub const LOW_LOAD_BAR: f64 = 0.97;

/// On-time work HelixRouter must keep at loads >= [`BAR_MIN_LOAD`], in cores (issue 21).
pub const WORK_BAR_CORES: f64 = 1.7;

/// The share of offered jobs HelixRouter must finish on time at `load` (issue 21):
/// 99 % up to 0.5×, 90 % up to 4×, 85 % up to 6×, 80 % beyond.
pub fn jobs_bar(load: f64) -> f64 {
    if load <= 0.5 + 1e-9 {
        0.99
    } else if load <= 4.0 + 1e-9 {
        0.90
    } else if load <= 6.0 + 1e-9 {
        0.85
    } else {
        0.80
    }
}

/// The overload bars (issue 21) checked for one HelixRouter run with exact hints at
/// one load: jobs on time at every load, on-time work at loads >= [`BAR_MIN_LOAD`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkBar {
    /// Offered load.
    pub load: f64,
    /// The HelixRouter variant.
    pub executor: ExecutorKind,
    /// Its jobs on time as a share of the offered jobs.
    pub goodput_share: f64,
    /// `goodput_share >= jobs_bar(load)`.
    pub jobs_bar_met: bool,
    /// Its on-time work, cores (at the jobs' measured costs).
    pub on_time_work_cores: f64,
    /// The router's own measured CPU of its on-time work over the window, cores.
    pub ledger_on_time_cores: Option<f64>,
    /// `on_time_work_cores >= WORK_BAR_CORES` at loads >= [`BAR_MIN_LOAD`]; `None`
    /// below.
    pub work_bar_met: Option<bool>,
}

impl WorkBar {
    /// True when every bar that applies is met.
    pub fn met(&self) -> bool {
        self.jobs_bar_met && self.work_bar_met != Some(false)
    }
}

/// Checks the overload bars for every HelixRouter run on exact hints (fixed work).
pub(super) fn check_work_bars(steps: &[LoadStep]) -> Vec<WorkBar> {
    let mut out = Vec::new();
    for step in steps {
        let exact = step
            .executors
            .iter()
            .filter(|e| e.executor.is_helix() && e.hints.is_none_or(|h| h == HintScenario::Exact));
        for h in exact {
            let ledger = h
                .router
                .as_ref()
                .map(|r| r.work.on_time_secs / step.window_secs.max(1e-9));
            out.push(WorkBar {
                load: step.load,
                executor: h.executor,
                goodput_share: h.goodput_share,
                jobs_bar_met: h.goodput_share >= jobs_bar(step.load) - EPS,
                on_time_work_cores: h.on_time_work_cores,
                ledger_on_time_cores: ledger,
                work_bar_met: (step.load >= BAR_MIN_LOAD - 1e-9)
                    .then_some(h.on_time_work_cores >= WORK_BAR_CORES - EPS),
            });
        }
    }
    out
}

/// Slack for comparing shares computed from counts (a share exactly at a bar passes).
const EPS: f64 = 1e-12;

/// A bar of DESIGN §4 checked for one HelixRouter variant at one load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarCheck {
    /// Offered load.
    pub load: f64,
    /// The HelixRouter variant.
    pub executor: ExecutorKind,
    /// The hint scenario it ran in.
    #[serde(default)]
    pub hints: Option<HintScenario>,
    /// Its goodput as a share of the offered jobs.
    #[serde(default)]
    pub goodput_share: f64,
    /// The same variant's goodput share at the same load with exact hints, if it ran.
    #[serde(default)]
    pub exact_goodput_share: Option<f64>,
    /// `goodput_share >= OFFERED_BAR`.
    #[serde(default)]
    pub offered_bar_met: bool,
    /// `exact_goodput_share - goodput_share <= HINT_GAP_BAR`; `None` without an
    /// exact-hint run of the same variant to compare with (cost learning off runs with
    /// flat hints only).
    #[serde(default)]
    pub exact_gap_bar_met: Option<bool>,
    /// Its goodput as a share of the upper bound (of its workload).
    pub share_of_bound: f64,
    /// `share_of_bound >= BOUND_BAR`.
    pub bound_bar_met: bool,
    /// The baseline with the most on-time jobs on the same workload (fixed or sized),
    /// if any baseline ran on it.
    pub best_baseline: Option<ExecutorKind>,
    /// That baseline's on-time jobs.
    pub best_baseline_on_time: u64,
    /// Strictly more on-time jobs than every baseline on the same workload.
    pub beats_baselines: bool,
    /// Its starvation p99, ms.
    pub starvation_p99_ms: Option<f64>,
    /// The idle runtime's starvation p99, ms.
    pub idle_p99_ms: Option<f64>,
    /// `starvation_p99_ms <= idle_p99_ms + STARVATION_SLACK_MS`.
    pub starvation_bar_met: bool,
}

/// The cost-model bars checked for one HelixRouter run in a cost-model scenario at one
/// load (every load, not only >= 2×).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostModelBar {
    /// Offered load.
    pub load: f64,
    /// The HelixRouter variant.
    pub executor: ExecutorKind,
    /// The cost-model scenario it ran in.
    pub hints: HintScenario,
    /// Its goodput as a share of the offered jobs.
    pub goodput_share: f64,
    /// The same variant's goodput share at the same load with exact hints (per-size
    /// classes, fixed work), if that ran.
    pub exact_goodput_share: Option<f64>,
    /// `exact_goodput_share - goodput_share <= COST_MODEL_GAP_BAR`; `None` without an
    /// exact-hint run to compare with.
    pub exact_gap_bar_met: Option<bool>,
    /// One class at a load <= [`LOW_LOAD_MAX`]: `goodput_share >= LOW_LOAD_BAR`;
    /// `None` elsewhere.
    pub low_load_bar_met: Option<bool>,
}

impl CostModelBar {
    /// True when every bar that applies is met (a missing exact-hint run is not a miss).
    pub fn met(&self) -> bool {
        self.exact_gap_bar_met != Some(false) && self.low_load_bar_met != Some(false)
    }
}

/// The same variant's exact-hint goodput share at this step, if it ran.
fn exact_share(step: &LoadStep, h: &ExecutorFigures) -> Option<f64> {
    step.executors
        .iter()
        .find(|e| e.executor == h.executor && e.hints == Some(HintScenario::Exact))
        .map(|e| e.goodput_share)
}

/// Checks the bars for every HelixRouter run at every load >= [`BAR_MIN_LOAD`]. Each run
/// is compared with the baselines that ran on the same workload.
pub(super) fn check_bars(steps: &[LoadStep], idle: &Quantiles) -> Vec<BarCheck> {
    let mut out = Vec::new();
    for step in steps.iter().filter(|s| s.load >= BAR_MIN_LOAD - 1e-9) {
        for h in step.executors.iter().filter(|e| e.executor.is_helix()) {
            let best = step
                .executors
                .iter()
                .filter(|e| !e.executor.is_helix() && e.workload == h.workload)
                .max_by_key(|e| e.tally.on_time);
            let p99 = h.starvation_ms.p99;
            let exact = exact_share(step, h);
            out.push(BarCheck {
                load: step.load,
                executor: h.executor,
                hints: h.hints,
                goodput_share: h.goodput_share,
                exact_goodput_share: exact,
                offered_bar_met: h.goodput_share >= OFFERED_BAR - EPS,
                exact_gap_bar_met: exact.map(|x| x - h.goodput_share <= HINT_GAP_BAR + EPS),
                share_of_bound: h.share_of_bound,
                bound_bar_met: h.share_of_bound >= BOUND_BAR,
                best_baseline: best.map(|b| b.executor),
                best_baseline_on_time: best.map_or(0, |b| b.tally.on_time),
                beats_baselines: best.is_none_or(|b| h.tally.on_time > b.tally.on_time),
                starvation_p99_ms: p99,
                idle_p99_ms: idle.p99,
                starvation_bar_met: match (p99, idle.p99) {
                    (Some(p), Some(i)) => p <= i + STARVATION_SLACK_MS,
                    _ => false,
                },
            });
        }
    }
    out
}

/// Checks the cost-model bars for every HelixRouter run in a cost-model scenario at
/// every load.
pub(super) fn check_cost_model_bars(steps: &[LoadStep]) -> Vec<CostModelBar> {
    let mut out = Vec::new();
    for step in steps {
        for h in step.executors.iter().filter(|e| e.executor.is_helix()) {
            let Some(hints) = h.hints.filter(|s| s.is_cost_model()) else {
                continue;
            };
            let exact = exact_share(step, h);
            let low = hints == HintScenario::OneClass && step.load <= LOW_LOAD_MAX + 1e-9;
            out.push(CostModelBar {
                load: step.load,
                executor: h.executor,
                hints,
                goodput_share: h.goodput_share,
                exact_goodput_share: exact,
                exact_gap_bar_met: exact.map(|x| x - h.goodput_share <= COST_MODEL_GAP_BAR + EPS),
                low_load_bar_met: low.then_some(h.goodput_share >= LOW_LOAD_BAR - EPS),
            });
        }
    }
    out
}
