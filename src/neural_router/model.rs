//! The feature map and the per-strategy linear model: prediction, the
//! epsilon-greedy choice and the normalised LMS step.

use crate::types::{JobKind, Strategy};

use super::{Choice, Context, DROPPED_REWARD, StrategyMask};

/// Lowest centre of the `log2(cost / budget)` grid; centres are `-10, -9, ..., 2`.
const RATIO_MIN: f64 = -10.0;
/// Number of centres of the `log2(cost / budget)` grid.
const RATIO_BINS: usize = 13;
/// Number of centres of the `log2(budget in ms)` grid: `0` (1 ms) to `8` (256 ms).
const BUDGET_BINS: usize = 9;
/// Lowest centre of the `log2(cost in ns)` grid; centres are `7` (128 ns) to `24`
/// (16.8 ms).
const COST_MIN: f64 = 7.0;
/// Number of centres of the `log2(cost in ns)` grid.
const COST_BINS: usize = 18;
/// Knots of the queue-fill grid: finer near full, where queues start to shed.
const QUEUE_KNOTS: [f64; 5] = [0.0, 0.5, 0.8, 0.9, 1.0];

/// Feature 0 is the bias.
const OFF_BIAS: usize = 0;
/// `log2(cost / budget)` tents × {calm, pressured}.
const OFF_RATIO_PRESSURE: usize = OFF_BIAS + 1;
/// `log2(cost / budget)` tents × {not batchable, batchable}.
const OFF_RATIO_SCALING: usize = OFF_RATIO_PRESSURE + 2 * RATIO_BINS;
/// `log2(budget)` tents × {queue empty, queue full}.
const OFF_BUDGET_QUEUE: usize = OFF_RATIO_SCALING + 2 * RATIO_BINS;
/// `log2(cost)` tents × {not batchable, batchable}.
const OFF_COST_SCALING: usize = OFF_BUDGET_QUEUE + 2 * BUDGET_BINS;
/// Queue-fill tents × {not batchable, batchable}.
const OFF_QUEUE_SCALING: usize = OFF_COST_SCALING + 2 * COST_BINS;
/// Class one-hot: hash_mix, prime_count, monte_carlo_risk, twelve hashed user-class
/// slots, unclassified.
const OFF_KIND: usize = OFF_QUEUE_SCALING + 2 * QUEUE_KNOTS.len();

/// Length of the feature vector returned by `features`.
pub(crate) const N_FEATURES: usize = OFF_KIND + KIND_SLOTS;
/// Slot of unclassified work (user closures with no class).
pub(super) const CUSTOM_SLOT: usize = KIND_SLOTS - 1;
/// First of the hashed user-class slots (see [`super::class_slot`]).
pub(super) const FIRST_USER_SLOT: usize = 3;

/// The class slot a context's outcome is learned in.
#[inline]
pub(super) fn slot_of(ctx: &Context) -> usize {
    match (ctx.class_slot, ctx.kind) {
        (Some(s), _) => usize::from(s).min(CUSTOM_SLOT),
        (None, Some(k)) => k.index(),
        (None, None) => CUSTOM_SLOT,
    }
}

/// The feature index of a class slot (for the warm start, which gives user-class slots
/// the unclassified slot's weights).
pub(super) const fn slot_feature(slot: usize) -> usize {
    OFF_KIND + slot
}

/// Class slots: the three built-in kinds, twelve hashed user-class slots, and
/// "custom" (unclassified user closures).
pub(super) const KIND_SLOTS: usize = 16;

/// Labels of the per-class-slot statistics, in slot order: the built-in kinds, the
/// twelve hashed user-class slots (`classes#3` holds every class [`super::class_slot`]
/// maps to 3), and unclassified work.
pub(super) const KIND_NAMES: [&str; KIND_SLOTS] = [
    JobKind::HashMix.as_str(),
    JobKind::PrimeCount.as_str(),
    JobKind::MonteCarloRisk.as_str(),
    "classes#3",
    "classes#4",
    "classes#5",
    "classes#6",
    "classes#7",
    "classes#8",
    "classes#9",
    "classes#10",
    "classes#11",
    "classes#12",
    "classes#13",
    "classes#14",
    "custom",
];
/// Value of the bias and of the kind indicator. They are active for every context
/// (of a kind), so a small value keeps their share of each update small: one
/// outcome mostly moves the weights local to its context instead of the arm's
/// prediction everywhere.
const GLOBAL_VALUE: f64 = 0.25;
/// Non-zero entries per context: bias, five 2-D tents of four cells, one kind.
const ACTIVE: usize = 22;

/// Exploration only considers strategies predicted at most this much below the best
/// allowed one (on the reward scale of [`super::reward`], which spans `[-1, 1]`).
pub(crate) const EXPLORE_MARGIN: f64 = 1.0;

/// Exploitation takes the cheapest strategy predicted within this of the best: the
/// reward cannot tell 200 ns from 5 µs on a 5 ms budget, the executor can.
pub(crate) const CHEAPER_MARGIN: f64 = 0.01;

/// One weight row per strategy, indexed by [`Strategy::index`].
pub(super) type Weights = [[f64; N_FEATURES]; Strategy::COUNT];

/// The weights of a fresh model: zero everywhere except the bias of
/// [`Strategy::Drop`], set to its known reward, so dropping is never predicted to be
/// better than it is.
pub(super) fn initial_weights() -> Weights {
    let mut w = [[0.0; N_FEATURES]; Strategy::COUNT];
    w[Strategy::Drop.index()][OFF_BIAS] = DROPPED_REWARD / GLOBAL_VALUE;
    w
}

/// The sparse form of `features`: the 22 indices that can be non-zero and their
/// values. Built on the stack; the dense vector is never materialised on the hot path.
#[derive(Debug, Clone, Copy)]
pub(super) struct ActiveFeatures {
    idx: [usize; ACTIVE],
    val: [f64; ACTIVE],
}

/// `x` clamped to `[0, 1]`, with NaN read as 0.
#[inline]
fn unit(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// Piecewise-linear `log2` (exact at powers of two, at most 0.09 low in between)
/// read straight from the bits of a positive normal `f64`; no `ln` call.
#[inline]
fn log2_approx(x: f64) -> f64 {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as f64 - 1023.0;
    let mantissa = (bits & ((1 << 52) - 1)) as f64 * (1.0 / (1u64 << 52) as f64);
    exponent + mantissa
}

/// Position of `x ∈ [0, 1]` on a grid of increasing knots from 0 to 1: the left
/// knot and the weight of the right one.
#[inline]
fn knot_tent(x: f64, knots: &[f64; 5]) -> (usize, f64) {
    let mut left = 0;
    while left + 2 < knots.len() && x > knots[left + 1] {
        left += 1;
    }
    let frac = (x - knots[left]) / (knots[left + 1] - knots[left]);
    (left, frac.clamp(0.0, 1.0))
}

/// Position of `x` on a unit-spaced grid starting at `lo` with `bins` centres: the
/// left centre and the weight of the right one (`x` is clamped to the grid).
#[inline]
fn tent(x: f64, lo: f64, bins: usize) -> (usize, f64) {
    let pos = (x - lo).clamp(0.0, (bins - 1) as f64);
    let left = (pos as usize).min(bins - 2);
    (left, pos - left as f64)
}

impl ActiveFeatures {
    /// The active features of a context.
    #[inline]
    pub(super) fn of(ctx: &Context) -> ActiveFeatures {
        let budget_ms = ctx.latency_budget_ms.max(1) as f64;
        let cost = ctx.compute_cost as f64;
        // Floors keep the logs on normal floats; anything below a grid is clamped.
        let log_ratio = log2_approx((cost / (budget_ms * 1e6)).max(1e-6));
        let ratio = tent(log_ratio, RATIO_MIN, RATIO_BINS);
        let budget = tent(log2_approx(budget_ms), 0.0, BUDGET_BINS);
        let cost = tent(log2_approx(cost.max(1.0)), COST_MIN, COST_BINS);
        let queue = knot_tent(unit(ctx.queue_fill), &QUEUE_KNOTS);
        // Two-knot tents (0 and 1): the value itself weights the upper knot.
        let pressure = (0, unit(ctx.pressure));
        let scaling = (0, unit(f64::from(ctx.scaling_potential)));
        let kind = slot_of(ctx);

        let mut f = ActiveFeatures {
            idx: [0; ACTIVE],
            val: [0.0; ACTIVE],
        };
        f.idx[0] = OFF_BIAS;
        f.val[0] = GLOBAL_VALUE;
        f.cells(1, OFF_RATIO_PRESSURE, ratio, pressure, 2);
        f.cells(5, OFF_RATIO_SCALING, ratio, scaling, 2);
        f.cells(9, OFF_BUDGET_QUEUE, budget, (0, unit(ctx.queue_fill)), 2);
        f.cells(13, OFF_COST_SCALING, cost, scaling, 2);
        f.cells(17, OFF_QUEUE_SCALING, queue, scaling, 2);
        f.idx[21] = OFF_KIND + kind;
        f.val[21] = GLOBAL_VALUE;
        f
    }

    /// Writes the four cells of a 2-D tent into slots `slot..slot + 4`: `a` and `b`
    /// are (left knot, weight of the right knot) on each axis, the second axis has
    /// `width` knots.
    #[inline]
    fn cells(&mut self, slot: usize, base: usize, a: (usize, f64), b: (usize, f64), width: usize) {
        let cell = base + a.0 * width + b.0;
        let corners = [
            (cell, (1.0 - a.1) * (1.0 - b.1)),
            (cell + 1, (1.0 - a.1) * b.1),
            (cell + width, a.1 * (1.0 - b.1)),
            (cell + width + 1, a.1 * b.1),
        ];
        for (k, (i, v)) in corners.into_iter().enumerate() {
            self.idx[slot + k] = i;
            self.val[slot + k] = v;
        }
    }

    /// `w · x`.
    #[inline]
    pub(super) fn dot(&self, w: &[f64; N_FEATURES]) -> f64 {
        let mut sum = 0.0;
        for (&i, &v) in self.idx.iter().zip(&self.val) {
            sum += w[i] * v;
        }
        sum
    }

    /// `‖x‖²`; at least 1 (five groups whose cells sum to one).
    #[inline]
    fn norm_sq(&self) -> f64 {
        self.val.iter().map(|v| v * v).sum()
    }

    /// Predicted reward of every strategy.
    #[inline]
    pub(super) fn predict(&self, weights: &Weights) -> [f64; Strategy::COUNT] {
        let mut out = [0.0; Strategy::COUNT];
        for (o, row) in out.iter_mut().zip(weights) {
            *o = self.dot(row);
        }
        out
    }
}

/// The feature vector the model reads for a context.
///
/// Layout (see [`feature_names`]): a bias; tent bins over `log2(cost / budget)` at
/// `-10..=2` crossed with a low/high split of `pressure`; the same bins crossed with
/// `scaling_potential`; tent bins over `log2(budget_ms)` at `0..=8` crossed with
/// `queue_fill`; tent bins over `log2(cost_ns)` at `7..=24` crossed with
/// `scaling_potential`; tents over `queue_fill` at knots `0, 0.5, 0.8, 0.9, 1` crossed
/// with `scaling_potential`; a one-hot of the kind (custom for `None`). Each tent
/// group sums to one; the bias and the kind indicator are 0.25 (they are shared by
/// many contexts, so they take a small share of each update); 22 entries are
/// non-zero.
#[cfg(test)]
pub(crate) fn features(ctx: &Context) -> [f64; N_FEATURES] {
    let active = ActiveFeatures::of(ctx);
    let mut x = [0.0; N_FEATURES];
    for (&i, &v) in active.idx.iter().zip(&active.val) {
        x[i] += v;
    }
    x
}

/// Human-readable names of the `features` entries, in order.
pub(crate) fn feature_names() -> Vec<String> {
    let mut names = Vec::with_capacity(N_FEATURES);
    names.push("bias".to_owned());
    for (axis, split) in [
        ("pressure", ["calm", "pressured"]),
        ("scaling", ["low", "high"]),
    ] {
        for bin in 0..RATIO_BINS {
            let centre = RATIO_MIN + bin as f64;
            for s in split {
                names.push(format!("log2_cost_over_budget={centre}&{axis}={s}"));
            }
        }
    }
    for bin in 0..BUDGET_BINS {
        for s in ["empty", "full"] {
            names.push(format!("log2_budget_ms={bin}&queue={s}"));
        }
    }
    for bin in 0..COST_BINS {
        let centre = COST_MIN + bin as f64;
        for s in ["low", "high"] {
            names.push(format!("log2_cost_ns={centre}&scaling={s}"));
        }
    }
    for knot in QUEUE_KNOTS {
        for s in ["low", "high"] {
            names.push(format!("queue_fill={knot}&scaling={s}"));
        }
    }
    for kind in KIND_NAMES {
        names.push(format!("kind={kind}"));
    }
    names
}

/// The cheapest allowed strategy (lowest [`Strategy::index`]: inline, spawn, pool,
/// batch, drop) whose prediction is within [`CHEAPER_MARGIN`] of the best allowed
/// prediction; `None` when `allowed` is empty.
#[inline]
pub(super) fn best_allowed(
    pred: &[f64; Strategy::COUNT],
    allowed: StrategyMask,
) -> Option<Strategy> {
    let mut top = f64::NEG_INFINITY;
    let mut any = None;
    for s in Strategy::ALL {
        if allowed.contains(s) {
            any = any.or(Some(s));
            top = top.max(pred[s.index()]);
        }
    }
    let floor = top - CHEAPER_MARGIN;
    Strategy::ALL
        .into_iter()
        .find(|s| allowed.contains(*s) && pred[s.index()] >= floor)
        .or(any)
}

/// Epsilon-greedy choice; the shared body of [`Policy::choose`] and
/// `NeuralRouter::choose`. The high 32 bits of `random` decide whether to explore, the
/// low 32 bits which arm.
#[inline]
pub(super) fn choose_with(
    weights: &Weights,
    epsilon: f64,
    ctx: &Context,
    allowed: StrategyMask,
    random: u64,
) -> Option<Choice> {
    let pred = ActiveFeatures::of(ctx).predict(weights);
    let best = best_allowed(&pred, allowed)?;
    let u = (random >> 32) as f64 * (1.0 / 4_294_967_296.0);
    if u < epsilon {
        let floor = pred[best.index()] - EXPLORE_MARGIN;
        let mut candidates = [Strategy::Inline; Strategy::COUNT];
        let mut n = 0;
        for s in Strategy::ALL {
            if s != Strategy::Drop && allowed.contains(s) && pred[s.index()] >= floor {
                candidates[n] = s;
                n += 1;
            }
        }
        if n > 0 {
            let pick = ((random & 0xFFFF_FFFF) * n as u64) >> 32;
            return Some(Choice {
                strategy: candidates[pick as usize],
                explored: true,
            });
        }
    }
    Some(Choice {
        strategy: best,
        explored: false,
    })
}

/// One normalised LMS step of `row` toward `target`; returns the prediction before
/// the step.
#[inline]
pub(super) fn lms_step(
    row: &mut [f64; N_FEATURES],
    x: &ActiveFeatures,
    target: f64,
    rate: f64,
) -> f64 {
    let predicted = x.dot(row);
    let step = rate * (target - predicted) / x.norm_sq();
    for (&i, &v) in x.idx.iter().zip(&x.val) {
        row[i] += step * v;
    }
    predicted
}

/// One normalised LMS step in which each weight's rate is
/// `max(rate, 1 / (1 + visits))`: a weight that has seen little feature mass
/// averages its first observations (1/n), a well-visited one moves at `rate`. The
/// total correction never exceeds the error, so the step stays stable. Adds the
/// feature mass to `visits`; returns the prediction before the step.
#[inline]
pub(super) fn adaptive_lms_step(
    row: &mut [f64; N_FEATURES],
    visits: &mut [f64; N_FEATURES],
    x: &ActiveFeatures,
    target: f64,
    rate: f64,
) -> f64 {
    let predicted = x.dot(row);
    let step = (target - predicted) / x.norm_sq();
    for (&i, &v) in x.idx.iter().zip(&x.val) {
        row[i] += rate.max(1.0 / (1.0 + visits[i])) * step * v;
        visits[i] += v;
    }
    predicted
}

/// An immutable snapshot of the learned model, cheap to call on a hot path: no
/// allocation, ~110 multiply-adds per decision.
///
/// Obtain one from [`super::NeuralRouter::policy`]; publish it (for example through
/// `arc-swap`) and replace it whole when the learner has moved on.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    /// Weight rows, copied from the learner when the snapshot was taken.
    weights: Weights,
    /// Exploration probability at snapshot time.
    epsilon: f64,
    /// Whether the learner had seen `warmup_samples` outcomes at snapshot time.
    warmed_up: bool,
}

impl Policy {
    /// A policy over the given weights.
    pub(super) fn new(weights: Weights, epsilon: f64, warmed_up: bool) -> Policy {
        Policy {
            weights,
            epsilon,
            warmed_up,
        }
    }

    /// Predicted reward of each strategy for `ctx`, indexed by [`Strategy::index`].
    #[cfg(test)]
    pub(crate) fn predict(&self, ctx: &Context) -> [f64; Strategy::COUNT] {
        ActiveFeatures::of(ctx).predict(&self.weights)
    }

    /// The allowed strategy with the highest predicted reward, or the cheapest one
    /// (lowest [`Strategy::index`]) predicted within [`CHEAPER_MARGIN`] of it (pure
    /// exploitation); `None` when `allowed` is empty.
    #[cfg(test)]
    pub(crate) fn best(&self, ctx: &Context, allowed: StrategyMask) -> Option<Strategy> {
        best_allowed(&self.predict(ctx), allowed)
    }

    /// Epsilon-greedy choice among `allowed`, using the caller's `random` word.
    ///
    /// With probability epsilon (decided by the high 32 bits of `random`) it explores
    /// a uniformly drawn allowed strategy (low 32 bits) other than
    /// [`Strategy::Drop`] whose prediction is within [`EXPLORE_MARGIN`] of the best;
    /// otherwise, or when no strategy qualifies, it exploits as `Policy::best` —
    /// which may return `Drop` when `Drop` is allowed. `None` only when
    /// `allowed` is empty. Allocation-free.
    pub(crate) fn choose(
        &self,
        ctx: &Context,
        allowed: StrategyMask,
        random: u64,
    ) -> Option<Choice> {
        choose_with(&self.weights, self.epsilon, ctx, allowed, random)
    }

    /// Whether the learner had recorded its warm-up samples when this snapshot was
    /// taken; before that a router should prefer its heuristic.
    pub(crate) fn is_warmed_up(&self) -> bool {
        self.warmed_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(cost: u64, budget_ms: u64) -> Context {
        Context {
            kind: Some(JobKind::PrimeCount),
            class_slot: None,
            compute_cost: cost,
            scaling_potential: 0.4,
            latency_budget_ms: budget_ms,
            pressure: 0.5,
            queue_fill: 0.25,
        }
    }

    #[test]
    fn names_match_feature_count() {
        let names = feature_names();
        assert_eq!(names.len(), N_FEATURES);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), N_FEATURES, "feature names must be unique");
    }

    #[test]
    fn log2_approx_is_close() {
        for x in [1e-6, 0.001, 0.3, 1.0, 1.5, 3.0, 1000.0, 1e12] {
            let err = (log2_approx(x) - f64::log2(x)).abs();
            assert!(err < 0.09, "log2({x}) off by {err}");
        }
    }

    #[test]
    fn each_group_is_a_partition_of_unity() {
        for (cost, budget) in [(0, 0), (100, 1), (60_000, 5), (u64::MAX, 1), (5, u64::MAX)] {
            let x = features(&ctx(cost, budget));
            let groups = [
                OFF_RATIO_PRESSURE..OFF_RATIO_SCALING,
                OFF_RATIO_SCALING..OFF_BUDGET_QUEUE,
                OFF_BUDGET_QUEUE..OFF_COST_SCALING,
                OFF_COST_SCALING..OFF_QUEUE_SCALING,
                OFF_QUEUE_SCALING..OFF_KIND,
            ];
            for g in groups {
                let sum: f64 = x[g.clone()].iter().sum();
                assert!((sum - 1.0).abs() < 1e-9, "{g:?} sums to {sum}");
            }
            let kind: f64 = x[OFF_KIND..N_FEATURES].iter().sum();
            assert_eq!(kind, GLOBAL_VALUE);
            assert_eq!(x[OFF_BIAS], GLOBAL_VALUE);
            assert!(x.iter().all(|v| v.is_finite() && *v >= 0.0));
        }
    }

    #[test]
    fn nan_inputs_are_read_as_zero() {
        let mut c = ctx(1_000, 10);
        c.pressure = f64::NAN;
        c.queue_fill = f64::INFINITY;
        c.scaling_potential = f32::NAN;
        assert!(features(&c).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn fresh_model_predicts_drop_at_its_reward() {
        let p = Policy::new(initial_weights(), 0.0, false);
        let pred = p.predict(&ctx(5_000, 3));
        assert_eq!(pred[Strategy::Drop.index()], DROPPED_REWARD);
        assert_eq!(
            p.best(&ctx(5_000, 3), StrategyMask::ALL),
            Some(Strategy::Inline)
        );
    }

    #[test]
    fn lms_step_moves_toward_target() {
        let mut row = [0.0; N_FEATURES];
        let x = ActiveFeatures::of(&ctx(20_000, 2));
        for _ in 0..200 {
            lms_step(&mut row, &x, 0.8, 0.1);
        }
        assert!((x.dot(&row) - 0.8).abs() < 1e-6);
    }

    #[test]
    fn policy_choose_keeps_to_the_mask() {
        let policy = crate::neural_router::NeuralRouter::new(
            crate::neural_router::NeuralConfig::default(),
            1,
        )
        .policy();
        let ctx = Context {
            kind: None,
            class_slot: None,
            compute_cost: 1_000,
            scaling_potential: 0.0,
            latency_budget_ms: 1,
            pressure: 0.0,
            queue_fill: 0.0,
        };
        let only_spawn = StrategyMask::NONE.with(Strategy::Spawn);
        let c = policy.choose(&ctx, only_spawn, 12345);
        assert_eq!(c.map(|c| c.strategy), Some(Strategy::Spawn));
        assert!(policy.choose(&ctx, StrategyMask::NONE, 0).is_none());
    }

    #[test]
    fn features_are_bounded_and_sum_as_documented() {
        let mut ctx = Context::new(50_000, 20);
        ctx.scaling_potential = 0.5;
        (ctx.pressure, ctx.queue_fill) = (0.3, 0.6);
        let x = features(&ctx);
        assert_eq!(x.len(), N_FEATURES);
        assert_eq!(x[0], 0.25);
        assert!((x.iter().sum::<f64>() - 5.5).abs() < 1e-9);
    }
}
