//! The report: per load step, the bound and every executor's figures; the bar checks;
//! rendering as a terminal table and as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::HarnessError;
use super::bound::Bound;
use super::capacity::Capacity;
use super::executor::ExecutorKind;
use super::hints::{HintScenario, flat_hint_ns};
use super::runner::{GeneratorPriority, ThreadCpu};
use super::stats::{ClassFigures, Quantiles, Tally};
use super::workload::Mix;
use helixrouter::router::RouterStats;

/// Goodput HelixRouter must reach at 2× and 4×, as a share of the upper bound.
pub const BOUND_BAR: f64 = 0.80;
/// Allowed excess of HelixRouter's starvation p99 over the idle runtime's, ms.
pub const STARVATION_SLACK_MS: f64 = 1.0;
/// Parallel efficiency below which the table warns that the cores are shared.
pub const PARALLEL_EFFICIENCY_WARN: f64 = 0.85;
/// Loads at or above which the bars apply.
pub const BAR_MIN_LOAD: f64 = 2.0;
/// Goodput HelixRouter must reach at 2× and 4× in every hint scenario, as a share of
/// the offered jobs.
pub const OFFERED_BAR: f64 = 0.85;
/// How far (a share of the offered jobs, i.e. 0.03 = 3 points) HelixRouter's goodput in
/// a hint scenario may fall below its goodput with exact hints at the same load.
pub const HINT_GAP_BAR: f64 = 0.03;

/// The machine the run was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// CPU model (from `/proc/cpuinfo`, or `unknown`).
    pub cpu: String,
    /// Cores available to the process.
    pub available_cores: usize,
    /// `std::env::consts::OS` / `ARCH`.
    pub os: String,
    /// Whether the harness was built with optimisations.
    pub optimized: bool,
}

impl MachineInfo {
    /// Describes the current machine (best effort).
    pub fn current() -> MachineInfo {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        MachineInfo {
            cpu,
            available_cores: helixrouter::config::available_cores(),
            os: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
            optimized: !cfg!(debug_assertions),
        }
    }
}

/// One executor on one load step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorFigures {
    /// Which executor.
    pub executor: ExecutorKind,
    /// The hint scenario it ran in; `None` for the baselines, which take no hint.
    #[serde(default)]
    pub hints: Option<HintScenario>,
    /// Outcome counts (conserving: see [`Tally::conserves`]).
    pub tally: Tally,
    /// Jobs on time / offered.
    pub goodput_share: f64,
    /// Jobs on time per second of the arrival window.
    pub goodput_per_sec: f64,
    /// Jobs on time / the schedule's upper bound.
    pub share_of_bound: f64,
    /// Jobs shed / offered.
    pub drop_share: f64,
    /// Jobs completed late or unfinished / offered.
    pub late_share: f64,
    /// Latency of completed jobs from the scheduled arrival, ms.
    pub latency_ms: Quantiles,
    /// Per class, in mix order.
    pub classes: Vec<ClassFigures>,
    /// Lateness of the 1 ms sleeper on the same runtime during the arrival window, ms.
    pub starvation_ms: Quantiles,
    /// How late the generator issued arrivals, µs.
    pub generator_lag_us: Quantiles,
    /// The priority the generator thread ran with in this step.
    pub generator_priority: GeneratorPriority,
    /// CPU used per thread group of this process from the first arrival to the end of
    /// the drain (Linux; empty elsewhere), busiest first.
    pub thread_cpu: Vec<ThreadCpu>,
    /// CPU seconds other processes (and hypervisor steal) used during the step (Linux):
    /// what this run had to share the cores with.
    pub foreign_cpu_secs: Option<f64>,
    /// Wall time of the step (arrival window + drain), s.
    pub wall_secs: f64,
    /// HelixRouter's own stats at the end of the step.
    pub router: Option<RouterStats>,
}

impl ExecutorFigures {
    /// The executor's label, with its hint scenario appended (`helix (learning)
    /// [flat]`) when `with_hints` and it took hints.
    pub fn label(&self, with_hints: bool) -> String {
        run_label(self.executor, self.hints, with_hints)
    }
}

fn run_label(kind: ExecutorKind, hints: Option<HintScenario>, with_hints: bool) -> String {
    match hints {
        Some(h) if with_hints => format!("{} [{}]", kind.label(), h.id()),
        _ => kind.label().to_owned(),
    }
}

/// One offered load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadStep {
    /// Offered load as a multiple of capacity.
    pub load: f64,
    /// Arrival rate, jobs/s.
    pub rate_per_sec: f64,
    /// Seed of the schedule.
    pub seed: u64,
    /// Length of the arrival window, s.
    pub window_secs: f64,
    /// Jobs offered.
    pub offered: u64,
    /// Offered CPU demand / (cores × window): the realised load.
    pub realised_load: f64,
    /// The schedule's goodput limit (see [`crate::bound`]).
    pub bound: Bound,
    /// `bound.upper / offered`.
    pub bound_share: f64,
    /// Each executor run (one per HelixRouter variant and hint scenario, one per
    /// baseline), in run order.
    pub executors: Vec<ExecutorFigures>,
}

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
    /// Its goodput as a share of the upper bound.
    pub share_of_bound: f64,
    /// `share_of_bound >= BOUND_BAR`.
    pub bound_bar_met: bool,
    /// The baseline with the most on-time jobs, if any baseline ran.
    pub best_baseline: Option<ExecutorKind>,
    /// That baseline's on-time jobs.
    pub best_baseline_on_time: u64,
    /// Strictly more on-time jobs than every baseline.
    pub beats_baselines: bool,
    /// Its starvation p99, ms.
    pub starvation_p99_ms: Option<f64>,
    /// The idle runtime's starvation p99, ms.
    pub idle_p99_ms: Option<f64>,
    /// `starvation_p99_ms <= idle_p99_ms + STARVATION_SLACK_MS`.
    pub starvation_bar_met: bool,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverloadReport {
    /// Where it ran.
    pub machine: MachineInfo,
    /// Base seed.
    pub seed: u64,
    /// Arrival window per step, s.
    pub secs_per_step: f64,
    /// The workload.
    pub mix: Mix,
    /// The hint scenarios run, in order.
    #[serde(default = "exact_only")]
    pub hints: Vec<HintScenario>,
    /// What 1× means here.
    pub capacity: Capacity,
    /// Lateness of the 1 ms sleeper on an idle runtime, ms (the reference).
    pub idle_starvation_ms: Quantiles,
    /// One entry per offered load, in the order run.
    pub steps: Vec<LoadStep>,
    /// The DESIGN §4 bars, for loads >= 2×.
    pub bars: Vec<BarCheck>,
}

fn exact_only() -> Vec<HintScenario> {
    vec![HintScenario::Exact]
}

impl OverloadReport {
    /// True when the run has another hint scenario than exact: then the labels of
    /// HelixRouter's runs name their scenario and the table shows the hint bars.
    pub fn shows_hints(&self) -> bool {
        self.hints.as_slice() != [HintScenario::Exact]
    }

    /// Checks the bars for every HelixRouter run at every load >= [`BAR_MIN_LOAD`].
    pub fn check_bars(steps: &[LoadStep], idle: &Quantiles) -> Vec<BarCheck> {
        let mut out = Vec::new();
        for step in steps.iter().filter(|s| s.load >= BAR_MIN_LOAD - 1e-9) {
            let best = step
                .executors
                .iter()
                .filter(|e| !e.executor.is_helix())
                .max_by_key(|e| e.tally.on_time);
            for h in step.executors.iter().filter(|e| e.executor.is_helix()) {
                let p99 = h.starvation_ms.p99;
                let exact = step
                    .executors
                    .iter()
                    .find(|e| e.executor == h.executor && e.hints == Some(HintScenario::Exact))
                    .map(|e| e.goodput_share);
                out.push(BarCheck {
                    load: step.load,
                    executor: h.executor,
                    hints: h.hints,
                    goodput_share: h.goodput_share,
                    exact_goodput_share: exact,
                    offered_bar_met: h.goodput_share >= OFFERED_BAR,
                    exact_gap_bar_met: exact.map(|x| x - h.goodput_share <= HINT_GAP_BAR + 1e-12),
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

    /// True when every executor of every step counts each offered job exactly once.
    pub fn conserves(&self) -> bool {
        self.steps.iter().all(|s| {
            s.executors.iter().all(|e| {
                e.tally.conserves()
                    && e.tally.offered == s.offered
                    && e.classes.iter().map(|c| c.tally.offered).sum::<u64>() == s.offered
                    && e.classes.iter().all(|c| c.tally.conserves())
            })
        })
    }

    /// Pretty JSON.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Json`] if serialisation fails.
    pub fn to_json(&self) -> Result<String, HarnessError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Writes [`OverloadReport::to_json`] to `path`.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Json`] or [`HarnessError::Io`] naming the file.
    pub fn write_json(&self, path: &Path) -> Result<(), HarnessError> {
        let json = self.to_json()?;
        std::fs::write(path, json).map_err(|source| HarnessError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// The terminal table: a header, the goodput table, the per-class table and the
    /// bar checks.
    pub fn render_table(&self) -> String {
        let mut s = String::new();
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
        let prio: Vec<GeneratorPriority> = {
            let mut v: Vec<GeneratorPriority> = Vec::new();
            for e in self.steps.iter().flat_map(|st| &st.executors) {
                if !v.contains(&e.generator_priority) {
                    v.push(e.generator_priority);
                }
            }
            v
        };
        let _ = writeln!(
            s,
            "generator thread priority: {}",
            prio.iter()
                .map(|p| match p {
                    GeneratorPriority::Realtime => "SCHED_FIFO",
                    GeneratorPriority::Raised => "raised nice",
                    GeneratorPriority::Normal =>
                        "normal (could not raise: lag may reflect CPU contention)",
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
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
        if self.shows_hints() {
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
            let _ = writeln!(
                s,
                "hints (HelixRouter runs name the class in every scenario; baselines take no hint and run once): {}",
                hints.join(" · ")
            );
        }
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
        s.push('\n');

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
            "p50 ms",
            "p99 ms",
            "starve p50/p99 ms",
            "lag p99/max µs",
        ];
        let with_hints = self.shows_hints();
        let mut rows = Vec::new();
        for step in &self.steps {
            rows.push(vec![
                fmt_load(step.load),
                "(upper bound)".to_owned(),
                step.offered.to_string(),
                step.bound.upper.to_string(),
                pct(step.bound_share),
                "100.0".to_owned(),
                format!(
                    "{:.0}",
                    step.bound.upper as f64 / step.window_secs.max(1e-9)
                ),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("feasible {}", step.bound.feasible),
                format!("{:.0} jobs/s", step.rate_per_sec),
            ]);
            for e in &step.executors {
                let t = &e.tally;
                rows.push(vec![
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
                ]);
            }
        }
        render_grid(&mut s, &head, &rows);
        s.push('\n');

        // Per class: on-time share, drop share and p99 of completed.
        let names: Vec<&str> = self.mix.classes.iter().map(|c| c.name.as_str()).collect();
        let mut head2: Vec<String> = vec!["load".into(), "executor".into()];
        head2.extend(names.iter().map(|n| format!("{n}: ok% drop% p50/p99 ms")));
        let mut rows2 = Vec::new();
        for step in &self.steps {
            for e in &step.executors {
                let mut row = vec![fmt_load(step.load), e.label(with_hints)];
                row.extend(e.classes.iter().map(|c| {
                    format!(
                        "{} {} {}/{}",
                        pct(c.tally.share(c.tally.on_time)),
                        pct(c.tally.share(c.tally.dropped)),
                        fmt_opt(c.latency_ms.p50, 1),
                        fmt_opt(c.latency_ms.p99, 1)
                    )
                }));
                rows2.push(row);
            }
        }
        let head2_ref: Vec<&str> = head2.iter().map(String::as_str).collect();
        render_grid(&mut s, &head2_ref, &rows2);

        // Label column width of the free-form lines below (20 as before, wider for
        // scenario labels).
        let lw = self
            .steps
            .iter()
            .flat_map(|st| &st.executors)
            .map(|e| e.label(with_hints).chars().count() + 1)
            .max()
            .unwrap_or(0)
            .max(20);
        if self
            .steps
            .iter()
            .any(|st| st.executors.iter().any(|e| !e.thread_cpu.is_empty()))
        {
            s.push('\n');
            let _ = writeln!(
                s,
                "cpu seconds per thread group of this process, of other processes, and what the cores had (cores × wall):"
            );
            for step in &self.steps {
                for e in &step.executors {
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
                        e.label(with_hints),
                        groups.join(" · "),
                        fmt_opt(e.foreign_cpu_secs, 2),
                        e.wall_secs * self.capacity.cores as f64
                    );
                }
            }
        }

        if !self.bars.is_empty() {
            s.push('\n');
            let _ = writeln!(
                s,
                "bars (loads >= {BAR_MIN_LOAD}×): goodput >= {:.0}% of bound, above every baseline, starvation p99 <= idle + {STARVATION_SLACK_MS} ms",
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
                        b.exact_goodput_share.map_or_else(
                            || "- (no exact-hint run)".to_owned(),
                            |x| format!("{}% ({:+.1} pts)", pct(x), (b.goodput_share - x) * 100.0)
                        ),
                        b.exact_gap_bar_met.map_or("n/a", ok),
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "  {} {:<lw$} bound {:>5}% [{}]  vs best baseline {} ({} on time) [{}]  starvation p99 {} ms vs idle {} [{}]{}",
                    fmt_load(b.load),
                    run_label(b.executor, b.hints, with_hints),
                    pct(b.share_of_bound),
                    ok(b.bound_bar_met),
                    b.best_baseline.map_or("none", |k| k.label()),
                    b.best_baseline_on_time,
                    ok(b.beats_baselines),
                    fmt_opt(b.starvation_p99_ms, 2),
                    fmt_opt(b.idle_p99_ms, 2),
                    ok(b.starvation_bar_met),
                    hint_bars,
                );
            }
        }
        s
    }
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

    fn figures(
        executor: ExecutorKind,
        hints: Option<HintScenario>,
        on_time: u64,
    ) -> ExecutorFigures {
        let tally = Tally {
            offered: 1_000,
            on_time,
            dropped: 1_000 - on_time,
            ..Tally::default()
        };
        ExecutorFigures {
            executor,
            hints,
            tally,
            goodput_share: tally.share(on_time),
            goodput_per_sec: on_time as f64,
            share_of_bound: on_time as f64 / 950.0,
            drop_share: tally.share(tally.dropped),
            late_share: 0.0,
            latency_ms: Quantiles::default(),
            classes: Vec::new(),
            starvation_ms: Quantiles {
                count: 1,
                p50: Some(1.0),
                p99: Some(1.0),
                max: Some(1.0),
            },
            generator_lag_us: Quantiles::default(),
            generator_priority: GeneratorPriority::Normal,
            thread_cpu: Vec::new(),
            foreign_cpu_secs: None,
            wall_secs: 1.0,
            router: None,
        }
    }

    #[test]
    fn hint_bars_compare_each_variant_with_its_exact_hints() {
        use ExecutorKind::{HelixLearning, HelixNoCostLearning, HelixStatic, TowerLimitShed};
        use HintScenario::{Exact, Flat, Noisy};
        let step = LoadStep {
            load: 2.0,
            rate_per_sec: 1_000.0,
            seed: 1,
            window_secs: 1.0,
            offered: 1_000,
            realised_load: 2.0,
            bound: Bound {
                upper: 950,
                feasible: 950,
            },
            bound_share: 0.95,
            executors: vec![
                figures(HelixLearning, Some(Exact), 920),
                figures(HelixStatic, Some(Exact), 900),
                figures(TowerLimitShed, None, 300),
                figures(HelixLearning, Some(Flat), 890),
                figures(HelixStatic, Some(Flat), 869),
                figures(HelixNoCostLearning, Some(Flat), 600),
                figures(HelixLearning, Some(Noisy), 960),
            ],
        };
        let idle = Quantiles {
            count: 1,
            p50: Some(1.0),
            p99: Some(1.0),
            max: Some(1.0),
        };
        let bars = OverloadReport::check_bars(std::slice::from_ref(&step), &idle);
        assert_eq!(
            bars.len(),
            6,
            "one per HelixRouter run, none for the baseline"
        );
        let bar = |k, h| bars.iter().find(|b| b.executor == k && b.hints == Some(h));
        let b = bar(HelixLearning, Exact).unwrap();
        assert_eq!(b.exact_gap_bar_met, Some(true));
        assert!(b.offered_bar_met);
        // 3.0 points below exact is within the bar; 3.1 is not; 86.9% is above 85%.
        let b = bar(HelixLearning, Flat).unwrap();
        assert_eq!((b.exact_gap_bar_met, b.offered_bar_met), (Some(true), true));
        assert_eq!(b.exact_goodput_share, Some(0.92));
        let b = bar(HelixStatic, Flat).unwrap();
        assert_eq!(
            (b.exact_gap_bar_met, b.offered_bar_met),
            (Some(false), true)
        );
        // Cost learning off never ran with exact hints: no reference, and 60% < 85%.
        let b = bar(HelixNoCostLearning, Flat).unwrap();
        assert_eq!((b.exact_gap_bar_met, b.offered_bar_met), (None, false));
        // Better than exact is not a miss.
        let b = bar(HelixLearning, Noisy).unwrap();
        assert_eq!(b.exact_gap_bar_met, Some(true));
        assert!(
            bars.iter()
                .all(|b| b.beats_baselines && b.starvation_bar_met)
        );

        // The labels name the scenario only when the run has more than exact hints.
        let mut report = OverloadReport {
            machine: MachineInfo::current(),
            seed: 1,
            secs_per_step: 1.0,
            mix: Mix::standard(),
            hints: vec![Exact, Flat, Noisy],
            capacity: Capacity::nominal(&Mix::standard(), 2),
            idle_starvation_ms: idle,
            steps: vec![step],
            bars,
        };
        let table = report.render_table();
        assert!(table.contains("helix (learning) [flat]"), "{table}");
        assert!(table.contains("helix (cost learning off) [flat]"));
        assert!(table.contains("tower limit+shed "));
        assert!(!table.contains("tower limit+shed ["));
        assert!(table.contains("hint bars"));
        assert!(table.contains("flat = every job hinted the mix's weighted mean cost (565 µs)"));
        report.hints = vec![Exact];
        report.steps[0].executors.truncate(3);
        report.bars = OverloadReport::check_bars(&report.steps, &idle);
        let table = report.render_table();
        assert!(!table.contains("[exact]"));
        assert!(!table.contains("hint bars") && !table.contains("hints ("));
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
    }
}
