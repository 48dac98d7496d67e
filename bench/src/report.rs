//! The report: per load step, the bound and every executor's figures; the bar checks;
//! rendering as a terminal table and as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::HarnessError;
use super::bound::Bound;
use super::capacity::Capacity;
use super::executor::ExecutorKind;
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
    /// Each executor, in run order.
    pub executors: Vec<ExecutorFigures>,
}

/// A bar of DESIGN §4 checked for one HelixRouter variant at one load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarCheck {
    /// Offered load.
    pub load: f64,
    /// The HelixRouter variant.
    pub executor: ExecutorKind,
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
    /// What 1× means here.
    pub capacity: Capacity,
    /// Lateness of the 1 ms sleeper on an idle runtime, ms (the reference).
    pub idle_starvation_ms: Quantiles,
    /// One entry per offered load, in the order run.
    pub steps: Vec<LoadStep>,
    /// The DESIGN §4 bars, for loads >= 2×.
    pub bars: Vec<BarCheck>,
}

impl OverloadReport {
    /// Checks the bars for every HelixRouter variant at every load >= [`BAR_MIN_LOAD`].
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
                out.push(BarCheck {
                    load: step.load,
                    executor: h.executor,
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
                    e.executor.label().to_owned(),
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
                let mut row = vec![fmt_load(step.load), e.executor.label().to_owned()];
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
                        "  {:<5} {:<20} {} · other processes {} (of {:.2})",
                        fmt_load(step.load),
                        e.executor.label(),
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
            for b in &self.bars {
                let _ = writeln!(
                    s,
                    "  {} {:<20} bound {:>5}% [{}]  vs best baseline {} ({} on time) [{}]  starvation p99 {} ms vs idle {} [{}]",
                    fmt_load(b.load),
                    b.executor.label(),
                    pct(b.share_of_bound),
                    ok(b.bound_bar_met),
                    b.best_baseline.map_or("none", |k| k.label()),
                    b.best_baseline_on_time,
                    ok(b.beats_baselines),
                    fmt_opt(b.starvation_p99_ms, 2),
                    fmt_opt(b.idle_p99_ms, 2),
                    ok(b.starvation_bar_met),
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
