//! The autoscaler's pool-size rules, stated once: [`RouterConfig::validate`] checks its
//! `autoscale_*` fields with them, and the autoscaler's own config
//! (`AutoscalerConfig::validate` and [`AutoscalerConfig::sanitized`]) applies the same
//! ones to its fields.
//!
//! [`RouterConfig::validate`]: super::RouterConfig::validate
//! [`AutoscalerConfig::sanitized`]: crate::autoscaler::AutoscalerConfig::sanitized

/// Fewest observations the autoscaler's window holds: a trend needs two.
pub(crate) const MIN_WINDOW: usize = 2;

/// The pool-size fields the autoscaler is bounded by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeField {
    /// Observations kept.
    Window,
    /// Fewest workers.
    MinParallelism,
    /// Most workers.
    MaxParallelism,
    /// Smallest queue capacity.
    MinQueueCap,
    /// Largest queue capacity.
    MaxQueueCap,
}

impl SizeField {
    /// The field's name in [`RouterConfig`](super::RouterConfig).
    pub(crate) fn router_name(self) -> &'static str {
        match self {
            SizeField::Window => "autoscale_window",
            SizeField::MinParallelism => "autoscale_min_parallelism",
            SizeField::MaxParallelism => "autoscale_max_parallelism",
            SizeField::MinQueueCap => "autoscale_min_queue_cap",
            SizeField::MaxQueueCap => "autoscale_max_queue_cap",
        }
    }
}

/// One rule: `field`, holding `value`, must be at least `least`, which is a constant or
/// (when `of` is set) the value of another field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SizeRule {
    pub(crate) field: SizeField,
    pub(crate) value: usize,
    pub(crate) least: usize,
    pub(crate) of: Option<SizeField>,
}

impl SizeRule {
    /// Whether the rule holds.
    pub(crate) fn holds(&self) -> bool {
        self.value >= self.least
    }
}

/// Every size rule, by name. A rule bounded by another field comes after that field's
/// own rules, so fixing them in [`SizeRules::in_order`] order converges in one pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SizeRules {
    /// The window holds at least [`MIN_WINDOW`] observations.
    pub(crate) window: SizeRule,
    /// At least one worker.
    pub(crate) min_parallelism: SizeRule,
    /// The worker maximum is at least the minimum.
    pub(crate) max_parallelism: SizeRule,
    /// At least one queue slot.
    pub(crate) min_queue_cap: SizeRule,
    /// The queue maximum is at least the minimum...
    pub(crate) max_queue_cap: SizeRule,
    /// ... and at least the worker maximum, so the queue can hold one job per worker.
    pub(crate) max_queue_cap_workers: SizeRule,
}

impl SizeRules {
    /// How many rules there are.
    pub(crate) const COUNT: usize = 6;

    /// The rules in the order they are fixed and reported.
    pub(crate) fn in_order(&self) -> [SizeRule; Self::COUNT] {
        [
            self.window,
            self.min_parallelism,
            self.max_parallelism,
            self.min_queue_cap,
            self.max_queue_cap,
            self.max_queue_cap_workers,
        ]
    }
}

/// The autoscaler's pool-size fields, whichever config they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AutoscaleSizes {
    /// Observations kept.
    pub(crate) window: usize,
    /// Fewest workers.
    pub(crate) min_parallelism: usize,
    /// Most workers.
    pub(crate) max_parallelism: usize,
    /// Smallest queue capacity.
    pub(crate) min_queue_cap: usize,
    /// Largest queue capacity.
    pub(crate) max_queue_cap: usize,
}

impl AutoscaleSizes {
    /// The rules these sizes are held to.
    pub(crate) fn rules(&self) -> SizeRules {
        let rule = |field, value, least, of| SizeRule {
            field,
            value,
            least,
            of,
        };
        use SizeField::*;
        SizeRules {
            window: rule(Window, self.window, MIN_WINDOW, None),
            min_parallelism: rule(MinParallelism, self.min_parallelism, 1, None),
            max_parallelism: rule(
                MaxParallelism,
                self.max_parallelism,
                self.min_parallelism,
                Some(MinParallelism),
            ),
            min_queue_cap: rule(MinQueueCap, self.min_queue_cap, 1, None),
            max_queue_cap: rule(
                MaxQueueCap,
                self.max_queue_cap,
                self.min_queue_cap,
                Some(MinQueueCap),
            ),
            max_queue_cap_workers: rule(
                MaxQueueCap,
                self.max_queue_cap,
                self.max_parallelism,
                Some(MaxParallelism),
            ),
        }
    }

    /// A copy with each broken rule mended by raising its field to the least valid
    /// value (an upper bound below its lower bound is raised to it).
    pub(crate) fn sanitized(mut self) -> AutoscaleSizes {
        for i in 0..SizeRules::COUNT {
            // Re-read: a mended field moves the bound of the rules after it.
            let rule = self.rules().in_order()[i];
            if !rule.holds() {
                *self.field_mut(rule.field) = rule.least;
            }
        }
        self
    }

    /// The field `field` names.
    fn field_mut(&mut self, field: SizeField) -> &mut usize {
        match field {
            SizeField::Window => &mut self.window,
            SizeField::MinParallelism => &mut self.min_parallelism,
            SizeField::MaxParallelism => &mut self.max_parallelism,
            SizeField::MinQueueCap => &mut self.min_queue_cap,
            SizeField::MaxQueueCap => &mut self.max_queue_cap,
        }
    }
}
