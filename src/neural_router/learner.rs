//! The learner: owns the weights, records outcomes, keeps per-kind statistics and
//! fits a warm start from a heuristic.

use serde::{Deserialize, Serialize};

use crate::types::{JobKind, Strategy};

use super::model::{
    ActiveFeatures, CUSTOM_SLOT, FIRST_USER_SLOT, KIND_NAMES, KIND_SLOTS, Weights,
    adaptive_lms_step, best_allowed, initial_weights, lms_step, slot_feature, slot_of,
};
#[cfg(test)]
use super::{Choice, model::choose_with};
use super::{
    Context, N_FEATURES, NeuralConfig, Outcome, Policy, StrategyMask, feature_names, reward,
};

/// Per-sample decay of the "recently chosen" counters: a window of ~100 samples.
const RECENT_DECAY: f64 = 0.99;

/// Target of the heuristic's pick during the warm start (others get 0).
const WARM_START_PICK: f64 = 0.6;
/// Target of every non-drop strategy where the heuristic drops (below the drop
/// reward, so the arg-max is `Drop` without raising `Drop`'s prediction).
const WARM_START_SHED: f64 = -1.0;
/// Feature mass a warm-started weight counts as: the prior is worth about three
/// observations, so real outcomes soon outweigh it where the heuristic is wrong.
const WARM_START_VISITS: f64 = 3.0;
/// LMS passes over the warm-start grid.
const WARM_START_PASSES: usize = 12;

/// SplitMix64: the learner's own tiny, seeded generator.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Running statistics of one kind slot.
#[derive(Debug, Clone, Default)]
pub(super) struct KindAccum {
    pub(super) samples: u64,
    pub(super) avg_reward: f64,
    pub(super) per_strategy_samples: [u64; Strategy::COUNT],
    pub(super) per_strategy_avg: [f64; Strategy::COUNT],
    /// Exponentially decayed choice counts (window ~100 samples of this kind).
    pub(super) recent: [f64; Strategy::COUNT],
}

impl KindAccum {
    fn record(&mut self, strategy: Strategy, r: f64) {
        self.samples += 1;
        self.avg_reward += (r - self.avg_reward) / self.samples as f64;
        let i = strategy.index();
        self.per_strategy_samples[i] += 1;
        self.per_strategy_avg[i] +=
            (r - self.per_strategy_avg[i]) / self.per_strategy_samples[i] as f64;
        for c in &mut self.recent {
            *c *= RECENT_DECAY;
        }
        self.recent[i] += 1.0;
    }

    /// Most chosen strategy in the recent window; `Inline` before any sample.
    fn preferred(&self) -> Strategy {
        let mut best = 0;
        for (i, c) in self.recent.iter().enumerate() {
            if *c > self.recent[best] {
                best = i;
            }
        }
        Strategy::from_index(best).unwrap_or(Strategy::Inline)
    }

    fn stats(&self, kind: &str) -> KindStats {
        KindStats {
            kind: kind.to_owned(),
            samples: self.samples,
            avg_reward: self.avg_reward,
            per_strategy_samples: self.per_strategy_samples.to_vec(),
            per_strategy_avg_reward: self.per_strategy_avg.to_vec(),
            preferred: self.preferred(),
        }
    }
}

/// Learning statistics of one job kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KindStats {
    /// `hash_mix`, `prime_count`, `monte_carlo_risk` or `custom` (user closures).
    pub kind: String,
    /// Outcomes recorded for this kind.
    pub samples: u64,
    /// Mean reward over those outcomes.
    pub avg_reward: f64,
    /// Outcomes recorded per strategy, indexed by [`Strategy::index`].
    pub per_strategy_samples: Vec<u64>,
    /// Mean reward per strategy (0 where no sample), indexed by [`Strategy::index`].
    pub per_strategy_avg_reward: Vec<f64>,
    /// The strategy chosen most over roughly the last 100 outcomes of this kind.
    pub preferred: Strategy,
}

/// A serialisable view of the learner, served by `GET /api/neural` and written by
/// [`NeuralRouter::save`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NeuralSnapshot {
    /// Outcomes recorded.
    pub sample_count: u64,
    /// Mean reward over all recorded outcomes.
    pub avg_reward: f64,
    /// Current exploration probability.
    pub epsilon: f64,
    /// Whether `warmup_samples` outcomes have been recorded.
    pub warmed_up: bool,
    /// Name of each feature (column of `weights`).
    pub feature_names: Vec<String>,
    /// The strategies, in row order of `weights`.
    pub strategies: Vec<Strategy>,
    /// Weight matrix, strategy × feature.
    pub weights: Vec<Vec<f64>>,
    /// Per-kind statistics: the three built-in kinds, then `custom`.
    pub per_kind: Vec<KindStats>,
}

/// The online learner: an epsilon-greedy policy over a per-strategy linear model of
/// expected reward, updated by normalised LMS from recorded outcomes.
///
/// Deterministic for a given seed and sequence of calls.
#[derive(Debug, Clone)]
pub struct NeuralRouter {
    /// Sanitised learning parameters.
    pub(super) cfg: NeuralConfig,
    /// Weight rows; written by `record_outcome`, the warm start and loading.
    pub(super) weights: Weights,
    /// Feature mass each weight has been updated with (sets its step size); written
    /// alongside `weights`.
    pub(super) visits: Weights,
    /// Current exploration probability; decayed by `record_outcome`.
    pub(super) epsilon: f64,
    /// Outcomes recorded.
    pub(super) samples: u64,
    /// Mean reward over all outcomes.
    pub(super) avg_reward: f64,
    /// Per-kind statistics, slots as in [`KIND_NAMES`].
    pub(super) kinds: [KindAccum; KIND_SLOTS],
    /// Source of the exploration draws of `NeuralRouter::choose` (the learning
    /// tests' own choices; the router draws from a per-thread stream).
    #[cfg_attr(not(test), allow(dead_code))]
    rng: SplitMix64,
}

impl NeuralRouter {
    /// A fresh learner: zero weights (drop pinned at its known reward), epsilon at
    /// `epsilon_start`. Out-of-range config fields are replaced as by
    /// [`NeuralConfig::sanitized`].
    pub(crate) fn new(cfg: NeuralConfig, seed: u64) -> NeuralRouter {
        let cfg = cfg.sanitized();
        NeuralRouter {
            cfg,
            weights: initial_weights(),
            visits: [[0.0; N_FEATURES]; Strategy::COUNT],
            epsilon: cfg.epsilon_start,
            samples: 0,
            avg_reward: 0.0,
            kinds: Default::default(),
            rng: SplitMix64(seed),
        }
    }

    /// Epsilon-greedy choice with the learner's own generator (see
    /// `Policy::choose`); `None` when `allowed` is empty.
    #[cfg(test)]
    pub(crate) fn choose(&mut self, ctx: &Context, allowed: StrategyMask) -> Option<Choice> {
        let random = self.rng.next_u64();
        choose_with(&self.weights, self.epsilon, ctx, allowed, random)
    }

    /// Predicted reward of each strategy for `ctx`, indexed by [`Strategy::index`].
    #[cfg(test)]
    pub(crate) fn predict(&self, ctx: &Context) -> [f64; Strategy::COUNT] {
        ActiveFeatures::of(ctx).predict(&self.weights)
    }

    /// Records how a job routed with `strategy` ended and returns its `reward`.
    ///
    /// Moves only `strategy`'s weights, by a normalised LMS step toward the reward
    /// (`w += rate · (reward − predicted) · x / ‖x‖²`, where each weight's rate is
    /// `max(learning_rate, 1 / (1 + feature mass it has seen))`: fresh weights
    /// average their first observations, seasoned ones track at `learning_rate`);
    /// decays epsilon; updates the global and per-kind statistics.
    pub(crate) fn record_outcome(
        &mut self,
        ctx: &Context,
        strategy: Strategy,
        outcome: Outcome,
    ) -> f64 {
        let r = reward(outcome, ctx.latency_budget_ms);
        let x = ActiveFeatures::of(ctx);
        let i = strategy.index();
        adaptive_lms_step(
            &mut self.weights[i],
            &mut self.visits[i],
            &x,
            r,
            self.cfg.learning_rate,
        );
        self.epsilon = (self.epsilon * self.cfg.epsilon_decay).max(self.cfg.epsilon_min);
        self.samples += 1;
        self.avg_reward += (r - self.avg_reward) / self.samples as f64;
        let slot = slot_of(ctx);
        self.kinds[slot].record(strategy, r);
        r
    }

    /// An immutable snapshot of the current model for the hot path.
    pub(crate) fn policy(&self) -> Policy {
        Policy::new(self.weights, self.epsilon, self.is_warmed_up())
    }

    /// Whether `warmup_samples` outcomes have been recorded.
    pub(crate) fn is_warmed_up(&self) -> bool {
        self.samples >= self.cfg.warmup_samples
    }

    /// Outcomes recorded.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Current exploration probability.
    #[cfg(test)]
    pub(crate) fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Mean reward over all recorded outcomes (0 before the first).
    #[cfg(test)]
    pub(crate) fn avg_reward(&self) -> f64 {
        self.avg_reward
    }

    /// Replaces the weights with a fit of `heuristic` and returns the share of the
    /// fitting grid on which the model's arg-max agrees with it.
    ///
    /// The grid is deterministic: every kind (and custom) × 20 costs from 128 ns to
    /// 16 ms (including both sides of the default 8 µs / 60 µs thresholds) × 8
    /// budgets from 1 ms to 200 ms × 4 scaling potentials × 5 load levels. Targets:
    /// `+0.6` for the heuristic's pick and `0` for the other strategies, or `-1.0`
    /// for every strategy but `Drop` where the heuristic sheds; `Drop` keeps its
    /// fixed prediction of the drop reward, so shedding never looks attractive
    /// elsewhere. Twelve shuffled LMS passes with a decreasing step; afterwards every
    /// weight counts as having seen a little data, so real outcomes soon outweigh
    /// the fit where the heuristic is wrong. Statistics,
    /// sample count and epsilon are left as they are.
    pub(crate) fn warm_start_from_heuristics(
        &mut self,
        heuristic: impl Fn(&Context) -> Strategy,
    ) -> f64 {
        let grid = warm_start_grid();
        let xs: Vec<ActiveFeatures> = grid.iter().map(ActiveFeatures::of).collect();
        let picks: Vec<Strategy> = grid.iter().map(&heuristic).collect();
        let mut w = initial_weights();
        let mut order: Vec<usize> = (0..grid.len()).collect();
        let mut rng = SplitMix64(0x5EED_0FA1_1000);
        for pass in 0..WARM_START_PASSES {
            for i in (1..order.len()).rev() {
                let j = ((rng.next_u64() >> 32) * (i as u64 + 1)) >> 32;
                order.swap(i, j as usize);
            }
            let rate = 0.5 / (1.0 + pass as f64);
            for &i in &order {
                for s in Strategy::ALL {
                    if s == Strategy::Drop {
                        continue;
                    }
                    let target = if picks[i] == Strategy::Drop {
                        WARM_START_SHED
                    } else if picks[i] == s {
                        WARM_START_PICK
                    } else {
                        0.0
                    };
                    lms_step(&mut w[s.index()], &xs[i], target, rate);
                }
            }
        }
        let agree = xs
            .iter()
            .zip(&picks)
            .filter(|(x, pick)| best_allowed(&x.predict(&w), StrategyMask::ALL) == Some(**pick))
            .count();
        // User-class slots start where unclassified work did (the heuristic does not
        // look at the class), then each converges on its own outcomes.
        for row in &mut w {
            let custom = row[slot_feature(CUSTOM_SLOT)];
            for slot in FIRST_USER_SLOT..CUSTOM_SLOT {
                row[slot_feature(slot)] = custom;
            }
        }
        self.weights = w;
        self.visits = [[WARM_START_VISITS; N_FEATURES]; Strategy::COUNT];
        agree as f64 / grid.len().max(1) as f64
    }

    /// A serialisable view of the model and its statistics.
    pub fn snapshot(&self) -> NeuralSnapshot {
        NeuralSnapshot {
            sample_count: self.samples,
            avg_reward: self.avg_reward,
            epsilon: self.epsilon,
            warmed_up: self.is_warmed_up(),
            feature_names: feature_names(),
            strategies: Strategy::ALL.to_vec(),
            weights: self.weights.iter().map(|row| row.to_vec()).collect(),
            per_kind: self
                .kinds
                .iter()
                .zip(KIND_NAMES)
                .map(|(k, name)| k.stats(name))
                .collect(),
        }
    }

    /// Rebuilds a learner from checked parts (used by loading).
    pub(super) fn from_parts(
        cfg: NeuralConfig,
        weights: Weights,
        visits: Weights,
        epsilon: f64,
        samples: u64,
        avg_reward: f64,
        kinds: [KindAccum; KIND_SLOTS],
    ) -> NeuralRouter {
        let mut nr = NeuralRouter::new(cfg, samples ^ 0xA5A5_5A5A_DEAD_BEEF);
        nr.weights = weights;
        nr.visits = visits;
        nr.epsilon = epsilon.clamp(nr.cfg.epsilon_min, 1.0);
        nr.samples = samples;
        nr.avg_reward = avg_reward;
        nr.kinds = kinds;
        nr
    }
}

/// The deterministic grid of contexts the warm start fits on.
fn warm_start_grid() -> Vec<Context> {
    const COSTS: [u64; 20] = [
        128, 400, 1_000, 2_500, 5_000, 7_000, 8_000, 9_000, 15_000, 30_000, 50_000, 59_000, 61_000,
        100_000, 250_000, 500_000, 1_000_000, 2_500_000, 6_000_000, 16_000_000,
    ];
    const BUDGETS: [u64; 8] = [1, 2, 5, 10, 20, 50, 100, 200];
    const SCALING: [f32; 4] = [0.1, 0.5, 0.68, 0.9];
    // (pressure, queue_fill)
    const LOAD: [(f64, f64); 5] = [
        (0.05, 0.05),
        (0.3, 0.3),
        (0.6, 0.6),
        (0.8, 0.85),
        (0.95, 0.95),
    ];
    let mut grid = Vec::with_capacity(4 * 20 * 8 * 4 * 5);
    let kinds = [
        Some(JobKind::HashMix),
        Some(JobKind::PrimeCount),
        Some(JobKind::MonteCarloRisk),
        None,
    ];
    for kind in kinds {
        for compute_cost in COSTS {
            for latency_budget_ms in BUDGETS {
                for scaling_potential in SCALING {
                    for (pressure, queue_fill) in LOAD {
                        grid.push(Context {
                            kind,
                            class_slot: None,
                            compute_cost,
                            scaling_potential,
                            latency_budget_ms,
                            pressure,
                            queue_fill,
                        });
                    }
                }
            }
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Strategy;
    use proptest::prelude::*;
    use proptest::strategy::Strategy as PropStrategy;

    fn ctx(kind: Option<JobKind>, cost: u64, budget: u64) -> Context {
        Context {
            kind,
            class_slot: None,
            compute_cost: cost,
            scaling_potential: 0.3,
            latency_budget_ms: budget,
            pressure: 0.4,
            queue_fill: 0.2,
        }
    }

    use crate::neural_router::sim_env::heuristic;

    #[test]
    fn record_updates_only_the_chosen_row() {
        let mut nr = NeuralRouter::new(NeuralConfig::default(), 3);
        let before = nr.weights;
        let c = ctx(Some(JobKind::HashMix), 3_000, 5);
        let r = nr.record_outcome(
            &c,
            Strategy::Spawn,
            Outcome::Completed { latency_ns: 10_000 },
        );
        assert!(r > 0.99);
        for s in Strategy::ALL {
            let changed = before[s.index()] != nr.weights[s.index()];
            assert_eq!(changed, s == Strategy::Spawn, "{s}");
        }
        assert!(nr.predict(&c)[Strategy::Spawn.index()] > 0.0);
    }

    #[test]
    fn epsilon_decays_to_its_floor_and_warmup_counts_samples() {
        let cfg = NeuralConfig {
            warmup_samples: 10,
            ..NeuralConfig::default()
        };
        let mut nr = NeuralRouter::new(cfg, 3);
        let c = ctx(None, 3_000, 5);
        for i in 0..5_000 {
            assert_eq!(nr.is_warmed_up(), i >= 10);
            nr.record_outcome(&c, Strategy::Inline, Outcome::Failed);
        }
        assert_eq!(nr.epsilon(), cfg.epsilon_min);
        assert_eq!(nr.samples(), 5_000);
        assert!(nr.policy().is_warmed_up());
        assert!((nr.avg_reward() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn per_kind_stats_track_choices() {
        let mut nr = NeuralRouter::new(NeuralConfig::default(), 3);
        let c = ctx(Some(JobKind::MonteCarloRisk), 3_000, 5);
        for _ in 0..50 {
            nr.record_outcome(
                &c,
                Strategy::CpuPool,
                Outcome::Completed {
                    latency_ns: 4_000_000,
                },
            );
        }
        for _ in 0..10 {
            nr.record_outcome(&c, Strategy::Batch, Outcome::Dropped);
        }
        let snap = nr.snapshot();
        assert_eq!(snap.per_kind.len(), KIND_SLOTS);
        let mc = &snap.per_kind[2];
        assert_eq!(mc.kind, "monte_carlo_risk");
        assert_eq!(mc.samples, 60);
        assert_eq!(mc.per_strategy_samples, vec![0, 0, 50, 10, 0, 0]);
        assert!((mc.per_strategy_avg_reward[3] + 0.5).abs() < 1e-12);
        assert_eq!(mc.preferred, Strategy::CpuPool);
        assert_eq!(snap.per_kind[0].samples, 0);
        assert_eq!(snap.weights.len(), Strategy::COUNT);
        assert!(snap.weights.iter().all(|r| r.len() == N_FEATURES));
        assert_eq!(snap.feature_names.len(), N_FEATURES);
    }

    #[test]
    fn warm_start_reproduces_the_heuristic_and_keeps_drop_low() {
        let mut nr = NeuralRouter::new(NeuralConfig::default(), 3);
        let agreement = nr.warm_start_from_heuristics(heuristic);
        assert!(agreement >= 0.85, "agreement {agreement}");
        let p = nr.policy();
        let mut drop_max = f64::MIN;
        for c in warm_start_grid() {
            drop_max = drop_max.max(p.predict(&c)[Strategy::Drop.index()]);
        }
        assert!(drop_max <= -0.5 + 1e-9, "drop predicted {drop_max}");
        assert_eq!(nr.samples(), 0);
        assert_eq!(
            p.best(&ctx(Some(JobKind::HashMix), 1_000, 10), StrategyMask::ALL),
            Some(Strategy::Inline)
        );
    }

    #[test]
    fn same_seed_same_choices() {
        let mut a = NeuralRouter::new(NeuralConfig::default(), 42);
        let mut b = NeuralRouter::new(NeuralConfig::default(), 42);
        let c = ctx(None, 30_000, 5);
        for _ in 0..200 {
            assert_eq!(
                a.choose(&c, StrategyMask::ALL),
                b.choose(&c, StrategyMask::ALL)
            );
        }
    }

    fn arb_ctx() -> impl PropStrategy<Value = Context> {
        (
            0usize..4,
            any::<u64>(),
            -1.0f32..2.0,
            any::<u64>(),
            -1.0f64..2.0,
            -1.0f64..2.0,
        )
            .prop_map(|(k, cost, sp, budget, p, q)| Context {
                kind: JobKind::ALL.get(k).copied(),
                class_slot: None,
                compute_cost: cost >> (cost % 64),
                scaling_potential: sp,
                latency_budget_ms: budget >> (budget % 64),
                pressure: p,
                queue_fill: q,
            })
    }

    fn arb_outcome() -> impl PropStrategy<Value = Outcome> {
        prop_oneof![
            any::<u64>().prop_map(|l| Outcome::Completed {
                latency_ns: l >> (l % 64)
            }),
            Just(Outcome::Dropped),
            Just(Outcome::Failed),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn predictions_stay_finite_after_random_updates(
            steps in prop::collection::vec((arb_ctx(), 0usize..5, arb_outcome()), 1..300),
            probe in arb_ctx(),
            rate in 0.001f64..1.0,
        ) {
            let cfg = NeuralConfig { learning_rate: rate, ..NeuralConfig::default() };
            let mut nr = NeuralRouter::new(cfg, 9);
            for (c, s, o) in &steps {
                let s = Strategy::from_index(*s).unwrap_or(Strategy::Inline);
                let r = nr.record_outcome(c, s, *o);
                prop_assert!((-1.0..=1.0).contains(&r));
            }
            for p in nr.predict(&probe) {
                prop_assert!(p.is_finite());
                prop_assert!(p.abs() < 10.0, "prediction {} out of scale", p);
            }
        }

        #[test]
        fn choose_respects_the_mask_and_never_explores_drop(
            c in arb_ctx(),
            bits in any::<u8>(),
            random in any::<u64>(),
            epsilon in 0.0f64..=1.0,
            trained in any::<bool>(),
        ) {
            let cfg = NeuralConfig { epsilon_start: epsilon, epsilon_min: 0.0, ..NeuralConfig::default() };
            let mut nr = NeuralRouter::new(cfg, random);
            if trained {
                static WARM: std::sync::OnceLock<NeuralRouter> = std::sync::OnceLock::new();
                nr.weights = WARM
                    .get_or_init(|| {
                        let mut w = NeuralRouter::new(NeuralConfig::default(), 0);
                        w.warm_start_from_heuristics(heuristic);
                        w
                    })
                    .weights;
            }
            let mask = StrategyMask::from_bits(bits);
            let got = nr.policy().choose(&c, mask, random);
            prop_assert_eq!(got.is_none(), mask.is_empty());
            if let Some(choice) = got {
                prop_assert!(mask.contains(choice.strategy));
                prop_assert!(!(choice.explored && choice.strategy == Strategy::Drop));
            }
            let own = nr.choose(&c, mask);
            prop_assert_eq!(own.is_none(), mask.is_empty());
            if let Some(choice) = own {
                prop_assert!(mask.contains(choice.strategy));
                prop_assert!(!(choice.explored && choice.strategy == Strategy::Drop));
            }
        }
    }

    #[test]
    fn user_classes_converge_each_on_its_own() {
        // Two user classes whose names hash to different slots, in the same context:
        // the pool suits one, batching the other. Each slot learns its own answer.
        let a = crate::neural_router::class_slot("thumbnail");
        let b = ["resize", "hash", "render", "compress", "parse"]
            .into_iter()
            .map(crate::neural_router::class_slot)
            .find(|&s| s != a)
            .expect("a second slot");
        let ctx = |slot| Context {
            kind: None,
            class_slot: Some(slot),
            compute_cost: 500_000,
            scaling_potential: 0.9,
            latency_budget_ms: 100,
            pressure: 0.1,
            queue_fill: 0.1,
        };
        let mut nr = NeuralRouter::new(NeuralConfig::default(), 11);
        nr.warm_start_from_heuristics(|_| Strategy::CpuPool);
        let good = Outcome::Completed {
            latency_ns: 2_000_000,
        };
        for _ in 0..400 {
            nr.record_outcome(&ctx(a), Strategy::CpuPool, good);
            nr.record_outcome(&ctx(a), Strategy::Batch, Outcome::Dropped);
            nr.record_outcome(&ctx(b), Strategy::CpuPool, Outcome::Dropped);
            nr.record_outcome(&ctx(b), Strategy::Batch, good);
        }
        let allowed = StrategyMask::NONE
            .with(Strategy::CpuPool)
            .with(Strategy::Batch);
        let p = nr.policy();
        assert_eq!(p.best(&ctx(a), allowed), Some(Strategy::CpuPool));
        assert_eq!(p.best(&ctx(b), allowed), Some(Strategy::Batch));
        let snap = nr.snapshot();
        assert_eq!(snap.per_kind[usize::from(a)].samples, 800);
        assert_eq!(snap.per_kind[usize::from(b)].samples, 800);
    }

    #[test]
    fn a_warm_start_agrees_with_its_heuristic() {
        let mut nr = NeuralRouter::new(NeuralConfig::default(), 1);
        let agreement = nr.warm_start_from_heuristics(|c| {
            if c.compute_cost <= 8_000 {
                Strategy::Inline
            } else {
                Strategy::CpuPool
            }
        });
        assert!(agreement > 0.9, "{agreement}");
    }
}
