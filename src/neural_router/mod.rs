//! Online-learned routing policy: a per-strategy linear model of the expected
//! reward of running a job a given way, trained from observed outcomes.
//!
//! # How it decides
//!
//! A job and the load it meets are described by a `Context`. `features` maps it
//! to a fixed-size vector (bias; tent bins over `log2(cost / budget)` crossed with
//! pressure and with batchability; over `log2(budget)` crossed with queue fill; over
//! `log2(cost)` and over queue fill, each crossed with batchability; the job kind).
//! Each [`Strategy`] has one weight row, and its predicted reward is the dot product.
//! Only 22 of the `N_FEATURES` entries are non-zero for any context, so a
//! prediction for all five strategies is ~110 multiply-adds and no allocation.
//!
//! `Policy::choose` is epsilon-greedy: with probability epsilon it explores a
//! random allowed strategy (never [`Strategy::Drop`], and never one predicted more
//! than `EXPLORE_MARGIN` below the best, so exploration does not send
//! latency-critical work somewhere the model already knows is hopeless); otherwise it
//! exploits: the cheapest allowed strategy predicted within `CHEAPER_MARGIN` of the
//! best prediction.
//!
//! # How it learns
//!
//! `NeuralRouter::record_outcome` turns an `Outcome` into a graded `reward`
//! and moves only the chosen strategy's row toward it with a normalised LMS step,
//! `w += rate · (reward − predicted) · x / ‖x‖²`, where each weight's rate is
//! `max(learning_rate, 1 / (1 + feature mass it has seen))`: a fresh weight averages
//! its first observations, a seasoned one tracks at `learning_rate`, and the total
//! correction never exceeds the error, so the step is stable. Each row is a
//! regression of that strategy's expected reward, so the baseline is built in and
//! the update cannot reinforce a strategy merely for having been picked. Epsilon
//! decays multiplicatively per sample down to a floor.
//!
//! `NeuralRouter::warm_start_from_heuristics` fits the rows to a heuristic first,
//! so a router can start from its decision tree and improve on it.
//!
//! `NeuralRouter::policy` gives an immutable `Policy` snapshot that a router can
//! publish (for example through `arc-swap`) and call on its hot path.

mod learner;
#[cfg(test)]
mod learning_tests;
mod model;
mod persist;
#[cfg(test)]
mod sim_env;

use serde::{Deserialize, Serialize};

use crate::types::{JobKind, Strategy};

pub use learner::{KindStats, NeuralRouter, NeuralSnapshot};
pub(crate) use model::{N_FEATURES, Policy, feature_names};
pub use persist::{WEIGHTS_FORMAT_VERSION, WeightsError};

/// Learning parameters of a [`NeuralRouter`].
///
/// # Examples
///
/// ```
/// use helixrouter::RouterConfig;
/// use helixrouter::neural_router::{NeuralConfig, NeuralRouter};
/// use helixrouter::router::neural_config;
///
/// // The parameters a router learns with, derived from its config (what loading saved
/// // weights for that router takes):
/// let cfg: NeuralConfig = neural_config(&RouterConfig::default());
/// assert!(cfg.epsilon_min <= cfg.epsilon_start);
/// assert!(NeuralRouter::load(std::path::Path::new("/nonexistent/w.json"), cfg).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NeuralConfig {
    /// Exploration probability of a fresh learner, in `[0, 1]`.
    pub epsilon_start: f64,
    /// Floor that epsilon decays to, in `[0, epsilon_start]`.
    pub epsilon_min: f64,
    /// Multiplicative decay of epsilon per recorded sample, in `(0, 1]`.
    pub epsilon_decay: f64,
    /// Normalised LMS step size, in `(0, 1]`; 0.05 averages over ~20 samples.
    pub learning_rate: f64,
    /// Samples recorded before `NeuralRouter::is_warmed_up` reports `true`.
    pub warmup_samples: u64,
}

impl Default for NeuralConfig {
    fn default() -> Self {
        NeuralConfig {
            epsilon_start: 0.2,
            epsilon_min: 0.02,
            epsilon_decay: 0.999,
            learning_rate: 0.05,
            warmup_samples: 200,
        }
    }
}

/// A [`NeuralConfig`] field outside its valid range.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum NeuralConfigError {
    /// The named field is not finite or outside the range given in `valid`.
    #[error("neural config {field} is {value}, must be {valid}")]
    OutOfRange {
        /// Field name, as in the struct.
        field: &'static str,
        /// The rejected value.
        value: f64,
        /// The valid range, in words.
        valid: &'static str,
    },
}

impl NeuralConfig {
    /// Checks every field against its documented range.
    ///
    /// # Errors
    ///
    /// [`NeuralConfigError::OutOfRange`] naming the first field that is not finite or
    /// outside its range.
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), NeuralConfigError> {
        let check = |field, value: f64, ok: bool, valid| {
            if value.is_finite() && ok {
                Ok(())
            } else {
                Err(NeuralConfigError::OutOfRange {
                    field,
                    value,
                    valid,
                })
            }
        };
        let e = self.epsilon_start;
        check("epsilon_start", e, (0.0..=1.0).contains(&e), "in [0, 1]")?;
        let m = self.epsilon_min;
        check(
            "epsilon_min",
            m,
            (0.0..=e).contains(&m),
            "in [0, epsilon_start]",
        )?;
        let d = self.epsilon_decay;
        check("epsilon_decay", d, d > 0.0 && d <= 1.0, "in (0, 1]")?;
        let r = self.learning_rate;
        check("learning_rate", r, r > 0.0 && r <= 1.0, "in (0, 1]")?;
        Ok(())
    }

    /// A copy with every out-of-range field replaced by the nearest valid value (a
    /// non-finite value by its default), so a learner never runs unstable.
    pub fn sanitized(&self) -> NeuralConfig {
        let d = NeuralConfig::default();
        let fix = |v: f64, default: f64, lo: f64, hi: f64| {
            if v.is_finite() {
                v.clamp(lo, hi)
            } else {
                default
            }
        };
        let epsilon_start = fix(self.epsilon_start, d.epsilon_start, 0.0, 1.0);
        NeuralConfig {
            epsilon_start,
            epsilon_min: fix(self.epsilon_min, d.epsilon_min, 0.0, epsilon_start)
                .min(epsilon_start),
            epsilon_decay: fix(self.epsilon_decay, d.epsilon_decay, f64::MIN_POSITIVE, 1.0),
            learning_rate: fix(self.learning_rate, d.learning_rate, 1e-6, 1.0),
            warmup_samples: self.warmup_samples,
        }
    }
}

/// The learner's slot for the work class `name`: the built-in kinds have their own
/// (0..3); any other name is hashed (FNV-1a, stable across runs and restarts, so saved
/// weights keep meaning) into one of the twelve user slots 3..15. Slot 15 is
/// unclassified work. A bounded block: class names cannot grow the model.
pub(crate) fn class_slot(name: &str) -> u8 {
    if let Some(k) = JobKind::ALL.iter().find(|k| k.as_str() == name) {
        return k.index() as u8;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    3 + (hash % 12) as u8
}

/// What the learner sees about one routing decision. `Copy`, so deciding never
/// allocates.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub(crate) struct Context {
    /// The built-in kind, or `None` for a user closure (`Router::run`).
    pub(crate) kind: Option<JobKind>,
    /// The work class's slot in the learner's class block (`class_slot`), so each
    /// class converges on its own; `None` uses `kind` (a built-in kind's slot, or the
    /// slot of unclassified work).
    pub(crate) class_slot: Option<u8>,
    /// The caller's estimate of CPU time, in nanoseconds.
    pub(crate) compute_cost: u64,
    /// Batch amortisation potential in `[0, 1]` (out-of-range values are clamped).
    pub(crate) scaling_potential: f32,
    /// End-to-end latency budget in milliseconds (0 is treated as 1).
    pub(crate) latency_budget_ms: u64,
    /// Composite router pressure in `[0, 1]` (out-of-range values are clamped).
    pub(crate) pressure: f64,
    /// CPU pool queue occupancy in `[0, 1]` (out-of-range values are clamped).
    pub(crate) queue_fill: f64,
}

impl Context {
    /// Work of `compute_cost` ns due within `latency_budget_ms`, seen on an idle router:
    /// no kind or class, no batching potential, no pressure, an empty queue. Set the
    /// other fields as needed (the type is `#[non_exhaustive]`: fields may be added).
    #[cfg(test)]
    pub(crate) fn new(compute_cost: u64, latency_budget_ms: u64) -> Context {
        Context {
            kind: None,
            class_slot: None,
            compute_cost,
            scaling_potential: 0.0,
            latency_budget_ms,
            pressure: 0.0,
            queue_fill: 0.0,
        }
    }
}

/// How a routed job ended, as fed back to [`NeuralRouter::record_outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// The job ran; `latency_ns` is submit-to-result time in nanoseconds.
    Completed {
        /// End-to-end latency in nanoseconds.
        latency_ns: u64,
    },
    /// The job was shed (by the policy or by a full queue).
    Dropped,
    /// The job panicked or otherwise failed.
    Failed,
}

/// Reward of a [`Outcome::Dropped`] job: worse than any completion inside budget,
/// better than one more than 50% over it.
pub(crate) const DROPPED_REWARD: f64 = -0.5;
/// Reward of a [`Outcome::Failed`] job, the floor of the scale.
pub(crate) const FAILED_REWARD: f64 = -1.0;

/// The graded reward of an outcome, relative to the job's latency budget.
///
/// With `ratio = latency / budget` (a budget of 0 ms counts as 1 ms):
///
/// | outcome | ratio | reward |
/// |---|---|---|
/// | completed, well inside budget | `0 ..= 0.25` | `1.0` falling linearly to `0.9` |
/// | completed, just inside budget | `0.25 ..= 1` | `0.9` falling linearly to `0.3` |
/// | completed, over budget | `> 1` | `-0.25 - 0.5·(ratio - 1)`, floor `-1.0` (`-0.5` at 1.5×, `-1.0` from 2.5×) |
/// | dropped | — | `-0.5` ([`DROPPED_REWARD`]) |
/// | failed | — | `-1.0` ([`FAILED_REWARD`]) |
///
/// Missing the budget is a cliff (from `+0.3` to `-0.25`), and the reward keeps
/// discriminating inside the budget, so the learner prefers the strategy with the
/// most headroom rather than any strategy that completes.
pub(crate) fn reward(outcome: Outcome, latency_budget_ms: u64) -> f64 {
    match outcome {
        Outcome::Dropped => DROPPED_REWARD,
        Outcome::Failed => FAILED_REWARD,
        Outcome::Completed { latency_ns } => {
            let budget_ns = latency_budget_ms.max(1) as f64 * 1e6;
            let ratio = latency_ns as f64 / budget_ns;
            if ratio <= 0.25 {
                1.0 - 0.4 * ratio
            } else if ratio <= 1.0 {
                0.9 - 0.8 * (ratio - 0.25)
            } else {
                (-0.25 - 0.5 * (ratio - 1.0)).max(FAILED_REWARD)
            }
        }
    }
}

/// A set of strategies, one bit per [`Strategy::index`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StrategyMask(u8);

impl StrategyMask {
    /// Every strategy the learner chooses among: all but [`Strategy::Remote`], which
    /// `Router::run_task` decides and the learner never does.
    pub(crate) const ALL: StrategyMask = StrategyMask(0b1_1111);
    /// Every local strategy except [`Strategy::Drop`].
    #[cfg(test)]
    pub(crate) const ALL_BUT_DROP: StrategyMask = StrategyMask(0b0_1111);
    /// No strategy.
    pub(crate) const NONE: StrategyMask = StrategyMask(0);

    /// The mask holding exactly the given bits; bits above the fifth are ignored.
    #[inline]
    #[cfg(test)]
    pub(crate) const fn from_bits(bits: u8) -> StrategyMask {
        StrategyMask(bits & Self::ALL.0)
    }

    /// Whether `s` is in the set.
    #[inline]
    pub(crate) const fn contains(self, s: Strategy) -> bool {
        self.0 & (1 << s.index()) != 0
    }

    /// The set without `s`.
    #[inline]
    #[must_use]
    #[cfg(test)]
    pub(crate) const fn without(self, s: Strategy) -> StrategyMask {
        StrategyMask(self.0 & !(1 << s.index()))
    }

    /// The set with `s` added.
    #[inline]
    #[must_use]
    pub(crate) const fn with(self, s: Strategy) -> StrategyMask {
        StrategyMask(self.0 | (1 << s.index()))
    }

    /// Whether the set is empty.
    #[inline]
    #[cfg(test)]
    pub(crate) const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A routing choice made by `Policy::choose` / `NeuralRouter::choose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    /// The strategy to run the job with.
    pub(crate) strategy: Strategy,
    /// `true` when the strategy was drawn at random (exploration), `false` when it is
    /// the model's best allowed prediction.
    pub(crate) explored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn done(latency_ns: u64) -> Outcome {
        Outcome::Completed { latency_ns }
    }

    #[test]
    fn reward_is_graded_by_budget_share() {
        let well_inside = reward(done(MS), 10);
        let just_inside = reward(done(9 * MS), 10);
        let slightly_over = reward(done(12 * MS), 10);
        let far_over = reward(done(40 * MS), 10);
        let dropped = reward(Outcome::Dropped, 10);
        let failed = reward(Outcome::Failed, 10);
        assert!(well_inside > 0.9, "{well_inside}");
        assert!(just_inside > 0.0 && just_inside < 0.5, "{just_inside}");
        assert!(
            slightly_over < 0.0 && slightly_over > dropped,
            "{slightly_over}"
        );
        assert_eq!(far_over, -1.0);
        assert_eq!(dropped, -0.5);
        assert_eq!(failed, -1.0);
        let all = [well_inside, just_inside, slightly_over, dropped, failed];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(a > b, "rewards must be strictly ordered: {all:?}");
            }
        }
    }

    #[test]
    fn reward_falls_monotonically_with_latency() {
        let mut last = f64::INFINITY;
        for tenth in 0..60 {
            let r = reward(done(tenth * MS), 2);
            assert!(r <= last, "reward rose at {tenth} tenths");
            assert!((-1.0..=1.0).contains(&r));
            last = r;
        }
    }

    #[test]
    fn zero_budget_counts_as_one_millisecond() {
        assert_eq!(reward(done(MS / 2), 0), reward(done(MS / 2), 1));
    }

    #[test]
    fn mask_operations() {
        assert!(StrategyMask::NONE.is_empty());
        assert!(!StrategyMask::ALL.is_empty());
        // The learner chooses among the local strategies; remote is decided by
        // `Router::run_task`, never learned.
        assert!(!StrategyMask::ALL.contains(Strategy::Remote));
        for s in Strategy::ALL.into_iter().filter(|&s| s != Strategy::Remote) {
            assert!(StrategyMask::ALL.contains(s));
            assert!(!StrategyMask::ALL.without(s).contains(s));
            assert!(StrategyMask::NONE.with(s).contains(s));
            assert_eq!(StrategyMask::ALL_BUT_DROP.contains(s), s != Strategy::Drop);
        }
        assert_eq!(StrategyMask::from_bits(0xFF), StrategyMask::ALL);
    }

    #[test]
    fn config_validation_names_the_field() {
        assert!(NeuralConfig::default().validate().is_ok());
        let bad = NeuralConfig {
            learning_rate: 0.0,
            ..NeuralConfig::default()
        };
        let err = bad.validate().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("neural config learning_rate is 0, must be in (0, 1]")
        );
        let nan = NeuralConfig {
            epsilon_decay: f64::NAN,
            epsilon_min: 0.5,
            ..NeuralConfig::default()
        };
        assert!(nan.validate().is_err());
        assert!(nan.sanitized().validate().is_ok());
        assert!(bad.sanitized().validate().is_ok());
    }

    #[test]
    fn class_slots_are_stable_and_bounded() {
        assert_eq!(class_slot("prime_count"), 1);
        let s = class_slot("thumbnail");
        assert!((3..15).contains(&s));
        assert_eq!(class_slot("thumbnail"), s);
    }

    #[test]
    fn reward_is_graded_with_a_cliff_at_the_budget() {
        let ms = 1_000_000;
        assert!(reward(Outcome::Completed { latency_ns: ms }, 10) > 0.9);
        assert!(reward(Outcome::Completed { latency_ns: 9 * ms }, 10) < 0.5);
        assert!(
            reward(
                Outcome::Completed {
                    latency_ns: 20 * ms
                },
                10
            ) < reward(Outcome::Dropped, 10)
        );
        assert_eq!(reward(Outcome::Failed, 10), -1.0);
    }

    /// The learner chooses within a mask and learns from an outcome.
    #[test]
    fn a_learner_chooses_and_learns_from_one_outcome() {
        use crate::types::JobKind;

        let mut nr = NeuralRouter::new(NeuralConfig::default(), 7);
        let mut ctx = Context::new(2_000, 5);
        ctx.kind = Some(JobKind::HashMix);
        ctx.scaling_potential = 0.1;
        (ctx.pressure, ctx.queue_fill) = (0.2, 0.1);
        let choice = nr
            .choose(&ctx, StrategyMask::ALL_BUT_DROP)
            .expect("a non-empty mask");
        let r = nr.record_outcome(
            &ctx,
            choice.strategy,
            Outcome::Completed { latency_ns: 3_000 },
        );
        assert!(r > 0.9);
        assert_eq!(nr.samples(), 1);
    }

    #[test]
    fn masks_add_and_remove_strategies() {
        let m = StrategyMask::ALL_BUT_DROP.without(Strategy::Batch);
        assert!(m.contains(Strategy::Spawn) && !m.contains(Strategy::Batch));
        assert!(!m.contains(Strategy::Drop));
        assert!(
            StrategyMask::NONE
                .with(Strategy::Inline)
                .contains(Strategy::Inline)
        );
    }
}
