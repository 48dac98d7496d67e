//! The terminal table of a report: a header, the goodput table, the per-class table,
//! the CPU lines, the bar checks and the cost models HelixRouter learned.

use std::fmt::Write as _;

use super::bars::{
    BAR_MIN_LOAD, BOUND_BAR, COST_MODEL_GAP_BAR, HINT_GAP_BAR, LOW_LOAD_BAR, LOW_LOAD_MAX,
    OFFERED_BAR, STARVATION_SLACK_MS, WORK_BAR_CORES, jobs_bar,
};
use super::{ExecutorFigures, LoadStep, OverloadReport, PARALLEL_EFFICIENCY_WARN, run_label};
use crate::hints::{HintScenario, flat_hint_ns};
use crate::runner::GeneratorPriority;
use crate::sizes::{SIZE_SPAN, Workload, size_factor_range};
use helixrouter::router::ClassStats;
use helixrouter::router::CostModel;

impl OverloadReport {
    /// The terminal table: a header, the goodput table, the per-class table, the CPU
    /// per thread group, the bar checks and, with a cost-model scenario, the cost-model
    /// bars and the cost models HelixRouter learned.
    pub fn render_table(&self) -> String {
        let mut s = String::new();
        self.render_header(&mut s);
        s.push('\n');
        self.render_goodput(&mut s);
        s.push('\n');
        self.render_classes(&mut s);
        self.render_cpu(&mut s);
        self.render_bars(&mut s);
        self.render_cost_model_bars(&mut s);
        self.render_work_bars(&mut s);
        self.render_learned(&mut s);
        s
    }

    fn with_hints(&self) -> bool {
        self.shows_hints()
    }

    /// Width of the label column of the free-form lines (20, wider for scenario labels).
    fn label_width(&self) -> usize {
        self.runs()
            .map(|(_, e)| e.label(self.with_hints()).chars().count() + 1)
            .max()
            .unwrap_or(0)
            .max(20)
    }

    /// Every executor run with its step, in order.
    fn runs(&self) -> impl Iterator<Item = (&LoadStep, &ExecutorFigures)> {
        self.steps
            .iter()
            .flat_map(|st| st.executors.iter().map(move |e| (st, e)))
    }

    fn render_header(&self, s: &mut String) {
        let c = &self.capacity;
        let _ = writeln!(
            s,
            "machine: {} · {} cores used ({} available) · {}{}",
            self.machine.cpu,
            c.cores,
            self.machine.available_cores,
            self.machine.os,
            if self.machine.optimized {
                ""
            } else {
                " · DEBUG BUILD (numbers not meaningful)"
            }
        );
        let costs: Vec<String> = self
            .mix
            .classes
            .iter()
            .zip(&c.classes)
            .zip(self.mix.shares())
            .map(|((m, cc), share)| {
                format!(
                    "{} {:.0}% {} (measured {}) budget {} ms",
                    m.name,
                    share * 100.0,
                    fmt_ns(cc.nominal_ns),
                    fmt_ns(cc.measured_ns),
                    m.budget_ms
                )
            })
            .collect();
        let _ = writeln!(s, "mix: {}", costs.join(" · "));
        let mut prio: Vec<GeneratorPriority> = Vec::new();
        for (_, e) in self.runs() {
            if !prio.contains(&e.generator_priority) {
                prio.push(e.generator_priority);
            }
        }
        let prio: Vec<&str> = prio
            .iter()
            .map(|p| match p {
                GeneratorPriority::Realtime => "SCHED_FIFO",
                GeneratorPriority::Raised => "raised nice",
                GeneratorPriority::Normal => {
                    "normal (could not raise: lag may reflect CPU contention)"
                }
            })
            .collect();
        let _ = writeln!(s, "generator thread priority: {}", prio.join(", "));
        let _ = writeln!(
            s,
            "capacity: mean cost {} → 1× = {:.0} jobs/s ({} cores × 1 s of CPU per s) · {:.1} s per step · seed {} · idle-runtime sleeper lateness p50 {} / p99 {} ms",
            fmt_ns(c.mean_cost_ns as u64),
            c.jobs_per_sec,
            c.cores,
            self.secs_per_step,
            self.seed,
            fmt_opt(self.idle_starvation_ms.p50, 2),
            fmt_opt(self.idle_starvation_ms.p99, 2),
        );
        self.render_scenarios(s);
        let _ = writeln!(
            s,
            "cores free at calibration: parallel efficiency {:.2}{}",
            c.parallel_efficiency,
            if c.parallel_efficiency < PARALLEL_EFFICIENCY_WARN {
                " · WARNING: the cores are shared with other work; every executor will look worse against the bound"
            } else {
                ""
            }
        );
    }

    /// The scenario lines of the header (none for a run with exact hints only).
    fn render_scenarios(&self, s: &mut String) {
        if !self.shows_hints() {
            return;
        }
        let hints: Vec<String> = self
            .hints
            .iter()
            .map(|h| match h {
                HintScenario::Flat => format!(
                    "{} = {} ({})",
                    h.id(),
                    h.describe(),
                    fmt_ns(flat_hint_ns(&self.mix))
                ),
                _ => format!("{} = {}", h.id(), h.describe()),
            })
            .collect();
        let sized = self.has_sized();
        let _ = writeln!(
            s,
            "scenarios (HelixRouter runs name the mix's class except in one_class; baselines take no hint and run once per workload: {}): {}",
            if sized {
                "on the fixed work, and again on the sized work, labelled [sized]"
            } else {
                "fixed work only"
            },
            hints.join(" · ")
        );
        if sized {
            let (lo, hi) = size_factor_range();
            let _ = writeln!(
                s,
                "sized work (sizes_exact, sizes_units and the [sized] baselines): each job's work = its class's nominal cost × a factor log-uniform over {SIZE_SPAN}× ({lo:.3} to {hi:.2}, mean 1, so each class's mean work is unchanged), drawn from the step's seed, the same for every executor of a step; the sized bound and load use measured class cost × factor"
            );
        }
    }

    fn render_goodput(&self, s: &mut String) {
        let head = [
            "load",
            "executor",
            "offered",
            "on-time",
            "%offer",
            "%bound",
            "good/s",
            "drop%",
            "late%",
            "unfin",
            "work cores",
            "p50 ms",
            "p99 ms",
            "starve p50/p99 ms",
            "lag p99/max µs",
        ];
        let with_hints = self.with_hints();
        let mut rows = Vec::new();
        for step in &self.steps {
            rows.push(bound_row(
                step,
                "(upper bound)",
                step.bound,
                &format!("{:.0} jobs/s", step.rate_per_sec),
            ));
            if let Some(z) = &step.sized {
                let load = format!("load {:.2}×", z.realised_load);
                rows.push(bound_row(step, "(upper bound, sized)", z.bound, &load));
            }
            for e in &step.executors {
                rows.push(figures_row(step, e, with_hints));
            }
        }
        render_grid(s, &head, &rows);
    }

    /// Per class: on-time share, drop share and p50/p99 of completed.
    fn render_classes(&self, s: &mut String) {
        let names: Vec<&str> = self.mix.classes.iter().map(|c| c.name.as_str()).collect();
        let mut head: Vec<String> = vec!["load".into(), "executor".into()];
        head.extend(names.iter().map(|n| format!("{n}: ok% drop% p50/p99 ms")));
        let rows: Vec<Vec<String>> = self
            .runs()
            .map(|(step, e)| {
                let mut row = vec![fmt_load(step.load), e.label(self.with_hints())];
                row.extend(e.classes.iter().map(|c| {
                    format!(
                        "{} {} {}/{}",
                        pct(c.tally.share(c.tally.on_time)),
                        pct(c.tally.share(c.tally.dropped)),
                        fmt_opt(c.latency_ms.p50, 1),
                        fmt_opt(c.latency_ms.p99, 1)
                    )
                }));
                row
            })
            .collect();
        let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
        render_grid(s, &head_ref, &rows);
    }

    fn render_cpu(&self, s: &mut String) {
        if !self.runs().any(|(_, e)| !e.thread_cpu.is_empty()) {
            return;
        }
        let lw = self.label_width();
        s.push('\n');
        let _ = writeln!(
            s,
            "cpu seconds per thread group of this process, of other processes, and what the cores had (cores × wall):"
        );
        for (step, e) in self.runs() {
            let groups: Vec<String> = e
                .thread_cpu
                .iter()
                .take(5)
                .map(|g| format!("{} ×{} {:.2}", g.group, g.threads, g.cpu_secs))
                .collect();
            let _ = writeln!(
                s,
                "  {:<5} {:<lw$} {} · other processes {} (of {:.2})",
                fmt_load(step.load),
                e.label(self.with_hints()),
                groups.join(" · "),
                fmt_opt(e.core_seconds.map(|c| c.foreign), 2),
                e.wall_secs * self.capacity.cores as f64
            );
        }
        self.render_core_seconds(s);
    }

    /// Where each step's core-seconds went (see [`super::CoreSeconds`]).
    fn render_core_seconds(&self, s: &mut String) {
        let rows: Vec<Vec<String>> = self
            .runs()
            .filter_map(|(step, e)| {
                let c = e.core_seconds?;
                let share = |x: f64| format!("{x:.2} ({})", pct(x / c.available.max(1e-9)));
                Some(vec![
                    fmt_load(step.load),
                    e.label(self.with_hints()),
                    format!("{:.2}", c.available),
                    share(c.on_time_work),
                    share(c.late_work),
                    share(c.executor_other),
                    share(c.generator),
                    share(c.foreign),
                    share(c.idle),
                    e.router.as_ref().map_or_else(
                        || "-".to_owned(),
                        |r| {
                            format!(
                                "{:.2} / {:.2} / {:.2}",
                                r.work.on_time_secs, r.work.late_secs, r.work.aborted_secs
                            )
                        },
                    ),
                ])
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        s.push('\n');
        let _ = writeln!(
            s,
            "where the core-seconds went (cores × wall; on-time and late work at the jobs' measured costs; executor+ = the rest of this process: routing, queueing, shedding, wake-ups, the harness's job tasks, lost work):"
        );
        let head = [
            "load",
            "executor",
            "cores×wall",
            "on-time work",
            "late work",
            "executor+",
            "generator",
            "other procs",
            "idle",
            "router's ledger on-time/late/aborted",
        ];
        render_grid(s, &head, &rows);
    }

    fn render_work_bars(&self, s: &mut String) {
        if self.work_bars.is_empty() {
            return;
        }
        let lw = self.label_width();
        s.push('\n');
        let _ = writeln!(
            s,
            "overload bars (exact hints): jobs on time >= 99% at 0.5×, 90% to 4×, 85% to 6×, 80% beyond; on-time work >= {WORK_BAR_CORES} cores from {BAR_MIN_LOAD}× (the router's measured CPU beside it)"
        );
        for b in &self.work_bars {
            let work = b.work_bar_met.map_or_else(
                || format!("on-time work {:.2} cores [n/a]", b.on_time_work_cores),
                |m| format!("on-time work {:.2} cores [{}]", b.on_time_work_cores, ok(m)),
            );
            let _ = writeln!(
                s,
                "  {:<5} {:<lw$} jobs {}% (bar {:.0}%) [{}]  {}  ledger {} cores",
                fmt_load(b.load),
                b.executor.label(),
                pct(b.goodput_share),
                jobs_bar(b.load) * 100.0,
                ok(b.jobs_bar_met),
                work,
                fmt_opt(b.ledger_on_time_cores, 2),
            );
        }
    }

    fn render_bars(&self, s: &mut String) {
        if self.bars.is_empty() {
            return;
        }
        let (with_hints, lw) = (self.with_hints(), self.label_width());
        s.push('\n');
        let _ = writeln!(
            s,
            "bars (loads >= {BAR_MIN_LOAD}×): goodput >= {:.0}% of bound, above every baseline on the same work, starvation p99 <= idle + {STARVATION_SLACK_MS} ms",
            BOUND_BAR * 100.0
        );
        if with_hints {
            let _ = writeln!(
                s,
                "hint bars: goodput >= {:.0}% of offered in every scenario, and at most {:.0} points of offered below the same variant's exact-hint goodput",
                OFFERED_BAR * 100.0,
                HINT_GAP_BAR * 100.0
            );
        }
        for b in &self.bars {
            let hint_bars = if with_hints {
                format!(
                    "  goodput {}% of offered [{}]  vs exact {} [{}]",
                    pct(b.goodput_share),
                    ok(b.offered_bar_met),
                    vs_exact(b.goodput_share, b.exact_goodput_share),
                    b.exact_gap_bar_met.map_or("n/a", ok),
                )
            } else {
                String::new()
            };
            let workload = b.hints.map_or(Workload::Fixed, HintScenario::workload);
            let _ = writeln!(
                s,
                "  {} {:<lw$} bound {:>5}% [{}]  vs best baseline {} ({} on time) [{}]  starvation p99 {} ms vs idle {} [{}]{}",
                fmt_load(b.load),
                run_label(b.executor, b.hints, Workload::Fixed, with_hints),
                pct(b.share_of_bound),
                ok(b.bound_bar_met),
                b.best_baseline
                    .map_or_else(|| "none".to_owned(), |k| run_label(k, None, workload, true)),
                b.best_baseline_on_time,
                ok(b.beats_baselines),
                fmt_opt(b.starvation_p99_ms, 2),
                fmt_opt(b.idle_p99_ms, 2),
                ok(b.starvation_bar_met),
                hint_bars,
            );
        }
    }

    fn render_cost_model_bars(&self, s: &mut String) {
        if self.cost_model_bars.is_empty() {
            return;
        }
        let lw = self.label_width();
        s.push('\n');
        let _ = writeln!(
            s,
            "cost-model bars (every load): goodput at most {:.0} points of offered below the same variant's exact-hint goodput (per-size classes, fixed work); one_class >= {:.0}% of offered at loads <= {LOW_LOAD_MAX}×",
            COST_MODEL_GAP_BAR * 100.0,
            LOW_LOAD_BAR * 100.0
        );
        for b in &self.cost_model_bars {
            let low = b.low_load_bar_met.map_or_else(String::new, |m| {
                format!("  >= {:.0}% of offered [{}]", LOW_LOAD_BAR * 100.0, ok(m))
            });
            let _ = writeln!(
                s,
                "  {:<5} {:<lw$} goodput {}% of offered  vs exact {} [{}]{}",
                fmt_load(b.load),
                run_label(b.executor, Some(b.hints), Workload::Fixed, true),
                pct(b.goodput_share),
                vs_exact(b.goodput_share, b.exact_goodput_share),
                b.exact_gap_bar_met.map_or("n/a", ok),
                low,
            );
        }
    }

    /// The cost model each class of HelixRouter's runs in a cost-model scenario learned
    /// by the end of its step.
    fn render_learned(&self, s: &mut String) {
        let runs: Vec<(&LoadStep, &ExecutorFigures)> = self
            .runs()
            .filter(|(_, e)| e.hints.is_some_and(HintScenario::is_cost_model))
            .filter(|(_, e)| e.router.as_ref().is_some_and(|r| !r.classes.is_empty()))
            .collect();
        if runs.is_empty() {
            return;
        }
        let lw = self.label_width();
        s.push('\n');
        let _ = writeln!(
            s,
            "cost models HelixRouter learned (per class at the end of the step: ratio = measured/hinted, units = fixed + ns per unit, class = one cost; spread = residual spread around the model):"
        );
        for (step, e) in runs {
            let classes: Vec<String> = e
                .router
                .iter()
                .flat_map(|r| &r.classes)
                .map(fmt_model)
                .collect();
            let _ = writeln!(
                s,
                "  {:<5} {:<lw$} {}",
                fmt_load(step.load),
                e.label(true),
                classes.join(" · ")
            );
        }
    }
}

/// One class's learned model: `tiny units 120 ns + 1.9 ns/u (n 812) spread 1.08 probes 0`.
fn fmt_model(c: &ClassStats) -> String {
    let model = match c.model {
        CostModel::Ratio => format!("ratio ×{}", fmt_opt(c.ratio, 2)),
        CostModel::Units => format!(
            "units {} + {} ns/u (n {})",
            c.fixed_ns
                .map_or_else(|| "-".to_owned(), |x| fmt_ns_fine(x.max(0.0) as u64)),
            fmt_opt(c.ns_per_unit, 2),
            c.units_samples
        ),
        CostModel::Class => format!(
            "class {}",
            c.learned_cost_ns.map_or_else(|| "-".to_owned(), fmt_ns)
        ),
    };
    format!(
        "{} {} spread {} probes {}",
        c.name,
        model,
        fmt_opt(c.residual_spread, 2),
        c.probes
    )
}

/// The `(upper bound)` row of a step for one workload's bound.
fn bound_row(step: &LoadStep, label: &str, bound: crate::bound::Bound, last: &str) -> Vec<String> {
    let share = if step.offered == 0 {
        0.0
    } else {
        bound.upper as f64 / step.offered as f64
    };
    let mut row = vec![
        fmt_load(step.load),
        label.to_owned(),
        step.offered.to_string(),
        bound.upper.to_string(),
        pct(share),
        "100.0".to_owned(),
        format!("{:.0}", bound.upper as f64 / step.window_secs.max(1e-9)),
    ];
    row.extend(std::iter::repeat_n(String::new(), 6));
    row.push(format!("feasible {}", bound.feasible));
    row.push(last.to_owned());
    row
}

fn figures_row(step: &LoadStep, e: &ExecutorFigures, with_hints: bool) -> Vec<String> {
    let t = &e.tally;
    vec![
        fmt_load(step.load),
        e.label(with_hints),
        t.offered.to_string(),
        t.on_time.to_string(),
        pct(e.goodput_share),
        pct(e.share_of_bound),
        format!("{:.0}", e.goodput_per_sec),
        pct(e.drop_share),
        pct(t.share(t.late)),
        t.unfinished.to_string(),
        format!("{:.2}", e.on_time_work_cores),
        fmt_opt(e.latency_ms.p50, 2),
        fmt_opt(e.latency_ms.p99, 1),
        format!(
            "{} / {}",
            fmt_opt(e.starvation_ms.p50, 2),
            fmt_opt(e.starvation_ms.p99, 2)
        ),
        format!(
            "{} / {}",
            fmt_opt(e.generator_lag_us.p99, 0),
            fmt_opt(e.generator_lag_us.max, 0)
        ),
    ]
}

/// `93.5% (-1.2 pts)` against the exact-hint share, or `- (no exact-hint run)`.
fn vs_exact(share: f64, exact: Option<f64>) -> String {
    exact.map_or_else(
        || "- (no exact-hint run)".to_owned(),
        |x| format!("{}% ({:+.1} pts)", pct(x), (share - x) * 100.0),
    )
}

fn ok(b: bool) -> &'static str {
    if b { "ok" } else { "MISS" }
}

fn pct(x: f64) -> String {
    format!("{:.1}", x * 100.0)
}

fn fmt_load(l: f64) -> String {
    format!("{l}×")
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
}

/// `1.2 µs`, `200 µs`, `5.0 ms`.
fn fmt_ns(ns: u64) -> String {
    if ns < 10_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000 {
        format!("{:.0} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

/// [`fmt_ns`], in whole ns below 1 µs (`40 ns`).
fn fmt_ns_fine(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else {
        fmt_ns(ns)
    }
}

/// Left-aligns the first two columns, right-aligns the rest.
fn render_grid(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let cols = head.len();
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(cols) {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut first = true;
        for (i, cell) in cells.enumerate().take(cols) {
            if !first {
                out.push_str("  ");
            }
            first = false;
            let pad = w[i].saturating_sub(cell.chars().count());
            if i < 2 {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(out, &mut head.iter().copied());
    let total: usize = w.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
    out.extend(std::iter::repeat_n('─', total));
    out.push('\n');
    for r in rows {
        line(out, &mut r.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_aligns_columns() {
        let mut s = String::new();
        render_grid(
            &mut s,
            &["a", "bb", "n"],
            &[
                vec!["x".into(), "y".into(), "1".into()],
                vec!["long".into(), "z".into(), "100".into()],
            ],
        );
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "a     bb    n");
        assert_eq!(lines[2], "x     y     1");
        assert_eq!(lines[3], "long  z   100");
    }

    #[test]
    fn units_format() {
        assert_eq!(fmt_ns(2_000), "2.0 µs");
        assert_eq!(fmt_ns(200_000), "200 µs");
        assert_eq!(fmt_ns(5_000_000), "5.0 ms");
        assert_eq!(fmt_opt(None, 2), "-");
        assert_eq!(fmt_opt(Some(1.234), 1), "1.2");
        assert_eq!(fmt_load(0.5), "0.5×");
        assert_eq!(fmt_load(2.0), "2×");
        assert_eq!(vs_exact(0.9, Some(0.92)), "92.0% (-2.0 pts)");
        assert_eq!(fmt_ns_fine(40), "40 ns");
        assert_eq!(fmt_ns_fine(2_600), "2.6 µs");
    }
}
