//! The sweep: for each offered load one schedule, its bounds (fixed and, with a sized
//! scenario, sized work), and every run of [`HarnessConfig::runs`] on it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::bound::{Bound, goodput_bound, schedule_jobs};
use super::capacity::Capacity;
use super::executor::{ClassRt, ExecutorKind};
use super::hints::{HintScenario, JobHint};
use super::report::{self, CoreSeconds, ExecutorFigures, LoadStep, OverloadReport, SizedLoad};
use super::runner::{GENERATOR_GROUP, StepPlan, StepRun, idle_lateness, run_step};
use super::schedule::Schedule;
use super::sizes::{SIZE_SPAN, Workload, job_costs_ns, job_factors, nominal_costs};
use super::stats::{self, Outcome, Quantiles};
use super::{HarnessConfig, HarnessError};

/// Seed of load step `i`.
pub(crate) fn step_seed(base: u64, i: usize) -> u64 {
    base ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn progress_bar(show: bool, len: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// What every load step of a run shares.
struct Sweep<'a> {
    cfg: &'a HarnessConfig,
    runs: Vec<(ExecutorKind, Option<HintScenario>, HintScenario)>,
    capacity: &'a Capacity,
    /// Measured cost per class, ns.
    costs: Vec<u64>,
    classes: Vec<ClassRt>,
    window: Duration,
    pb: ProgressBar,
}

/// One workload of one step: the work each job runs and what it offers.
struct StepWork {
    workload: Workload,
    /// Nominal work per job (ns), what the job runs.
    work_ns: Vec<u64>,
    /// Measured work per job (ns): its class's measured cost (× its size factor).
    measured_ns: Vec<u64>,
    bound: Bound,
    realised_load: f64,
}

impl StepWork {
    /// `factors`: the step's size factors for the sized workload, `None` for the fixed.
    fn new(sw: &Sweep<'_>, schedule: &Schedule, factors: Option<&[f64]>) -> StepWork {
        let mix = &sw.cfg.mix;
        let measured = job_costs_ns(schedule, &sw.costs, factors);
        let demand: u128 = measured.iter().map(|&c| u128::from(c)).sum();
        StepWork {
            workload: if factors.is_some() {
                Workload::Sized
            } else {
                Workload::Fixed
            },
            work_ns: job_costs_ns(schedule, &nominal_costs(mix), factors),
            bound: goodput_bound(&schedule_jobs(schedule, mix, &measured), sw.cfg.cores),
            realised_load: demand as f64 / (sw.cfg.cores as f64 * sw.window.as_secs_f64() * 1e9),
            measured_ns: measured,
        }
    }
}

/// Runs the whole sweep and returns the report (it writes no file: see
/// [`OverloadReport::write_json`] and [`crate::chart::write_svg`]).
///
/// Blocking: builds its own runtimes, so call it from a plain thread, not from inside
/// a Tokio runtime.
///
/// # Errors
///
/// A bad setting (see [`HarnessConfig::validate`]) or a runtime that cannot be built.
pub fn run(cfg: &HarnessConfig) -> Result<OverloadReport, HarnessError> {
    cfg.validate()?;
    let runs = cfg.runs();
    let pb = progress_bar(cfg.progress, (cfg.loads.len() * runs.len()) as u64);
    pb.set_message("measuring capacity");
    let capacity = if cfg.calibrate_per_class.is_zero() {
        Capacity::nominal(&cfg.mix, cfg.cores)
    } else {
        Capacity::measure(&cfg.mix, cfg.cores, cfg.calibrate_per_class)
    };
    pb.set_message("probing an idle runtime");
    let mut idle = idle_lateness(cfg.cores, cfg.idle_probe)?;
    let idle_starvation_ms = Quantiles::of_ns(&mut idle, 1e6);
    let sweep = Sweep {
        cfg,
        runs,
        capacity: &capacity,
        costs: capacity.measured_costs(),
        classes: cfg.mix.classes.iter().map(ClassRt::of).collect(),
        window: Duration::from_secs_f64(cfg.secs_per_step),
        pb,
    };
    let steps = cfg
        .loads
        .iter()
        .enumerate()
        .map(|(i, &load)| run_load(&sweep, i, load))
        .collect::<Result<Vec<_>, _>>()?;
    sweep.pb.finish_and_clear();
    Ok(OverloadReport {
        machine: report::MachineInfo::current(),
        seed: cfg.seed,
        secs_per_step: cfg.secs_per_step,
        mix: cfg.mix.clone(),
        hints: cfg.hints.clone(),
        bars: OverloadReport::check_bars(&steps, &idle_starvation_ms),
        cost_model_bars: OverloadReport::check_cost_model_bars(&steps),
        work_bars: OverloadReport::check_work_bars(&steps),
        capacity,
        idle_starvation_ms,
        steps,
    })
}

/// One load step: its schedule, its workloads, every run.
fn run_load(sw: &Sweep<'_>, i: usize, load: f64) -> Result<LoadStep, HarnessError> {
    let cfg = sw.cfg;
    let seed = step_seed(cfg.seed, i);
    let rate = sw.capacity.rate_for(load);
    let schedule = Schedule::generate(&cfg.mix, rate, sw.window, seed)?;
    let fixed = StepWork::new(sw, &schedule, None);
    let sized = cfg
        .hints
        .iter()
        .any(|h| h.workload() == Workload::Sized)
        .then(|| StepWork::new(sw, &schedule, Some(&job_factors(&schedule))));
    let hints: Vec<(HintScenario, Vec<JobHint>)> = cfg
        .hints
        .iter()
        .map(|&h| (h, h.hints(&cfg.mix, &schedule)))
        .collect();
    let offered = schedule.arrivals.len() as u64;
    let share = |b: Bound| {
        if offered == 0 {
            0.0
        } else {
            b.upper as f64 / offered as f64
        }
    };
    let mut executors = Vec::with_capacity(sw.runs.len());
    for &(kind, reported, given) in &sw.runs {
        sw.pb
            .set_message(format!("load {load}× · {} [{given}]", kind.label()));
        let work = match (&sized, given.workload()) {
            (Some(z), Workload::Sized) => z,
            _ => &fixed,
        };
        let step_hints = hints
            .iter()
            .find(|(h, _)| *h == given)
            .map_or(&[][..], |(_, v)| v.as_slice());
        let plan = StepPlan {
            kind,
            schedule: &schedule,
            mix: &cfg.mix,
            classes: &sw.classes,
            hints: step_hints,
            work_ns: &work.work_ns,
            cores: cfg.cores,
            router: &cfg.router,
            grace: cfg.grace,
            nats: None,
        };
        let run = run_step(&plan)?;
        executors.push(figures(sw, &schedule, work, (kind, reported), run));
        sw.pb.inc(1);
        // Let the previous step's threads wind down before the next one starts.
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(LoadStep {
        load,
        rate_per_sec: schedule.rate_per_sec,
        seed,
        window_secs: sw.window.as_secs_f64(),
        offered,
        realised_load: fixed.realised_load,
        bound: fixed.bound,
        bound_share: share(fixed.bound),
        sized: sized.as_ref().map(|z| SizedLoad {
            size_span: SIZE_SPAN,
            realised_load: z.realised_load,
            bound: z.bound,
            bound_share: share(z.bound),
        }),
        executors,
    })
}

/// Measured work (s) of the jobs that finished on time and of those that finished late.
fn outcome_work_secs(results: &[(Outcome, u64)], measured_ns: &[u64]) -> (f64, f64) {
    let (mut on_time, mut late) = (0u128, 0u128);
    for (&(o, _), &ns) in results.iter().zip(measured_ns) {
        match o {
            Outcome::OnTime => on_time += u128::from(ns),
            Outcome::Late => late += u128::from(ns),
            _ => {}
        }
    }
    (on_time as f64 / 1e9, late as f64 / 1e9)
}

/// The figures of one run on `work`.
fn figures(
    sw: &Sweep<'_>,
    schedule: &Schedule,
    work: &StepWork,
    (executor, hints): (ExecutorKind, Option<HintScenario>),
    mut run: StepRun,
) -> ExecutorFigures {
    let f = stats::summarize(&sw.cfg.mix, schedule, &run.results);
    let t = f.tally;
    let window = sw.window.as_secs_f64();
    let done_work = outcome_work_secs(&run.results, &work.measured_ns);
    let generator = run
        .thread_cpu
        .iter()
        .find(|g| g.group == GENERATOR_GROUP)
        .map_or(0.0, |g| g.cpu_secs);
    let available = run.wall.as_secs_f64() * sw.cfg.cores as f64;
    let core_seconds = run
        .machine_cpu
        .map(|cpu| CoreSeconds::of(cpu, available, done_work, generator));
    ExecutorFigures {
        executor,
        hints,
        workload: work.workload,
        tally: t,
        goodput_share: t.share(t.on_time),
        goodput_per_sec: t.on_time as f64 / sw.window.as_secs_f64(),
        share_of_bound: if work.bound.upper == 0 {
            0.0
        } else {
            t.on_time as f64 / work.bound.upper as f64
        },
        drop_share: t.share(t.dropped),
        late_share: t.share(t.late + t.unfinished),
        latency_ms: f.latency_ms,
        classes: f.classes,
        starvation_ms: Quantiles::of_ns(&mut run.lateness_ns, 1e6),
        generator_lag_us: Quantiles::of_ns(&mut run.lag_ns, 1e3),
        generator_priority: run.generator_priority,
        thread_cpu: run.thread_cpu,
        on_time_work_cores: done_work.0 / window,
        core_seconds,
        wall_secs: run.wall.as_secs_f64(),
        router: run.router,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_seeds_differ_per_load() {
        assert_ne!(step_seed(7, 0), step_seed(7, 1));
        assert_eq!(step_seed(7, 2), step_seed(7, 2));
    }
}
