//! A tiny end-to-end run of the overload harness: every executor, two loads, a fraction
//! of a second per step. Checks the report's shape and that the accounting conserves;
//! the performance bars are judged from full release runs, not here.

use std::time::Duration;

use helix_overload::{
    ExecutorKind, HarnessConfig, HintScenario, Outcome, OverloadReport, Quantiles, Schedule,
    Workload, bound, chart, goodput_bound, run, sizes,
};

fn tiny_config() -> HarnessConfig {
    HarnessConfig {
        secs_per_step: 0.15,
        loads: vec![0.5, 2.0],
        seed: 11,
        calibrate_per_class: Duration::from_millis(10),
        idle_probe: Duration::from_millis(50),
        grace: Duration::from_millis(20),
        progress: false,
        ..HarnessConfig::default()
    }
}

fn quantiles_ordered(q: &Quantiles) -> bool {
    match (q.p50, q.p99, q.max) {
        (Some(a), Some(b), Some(c)) => q.count > 0 && 0.0 <= a && a <= b && b <= c,
        (None, None, None) => q.count == 0,
        _ => false,
    }
}

#[test]
fn tiny_run_is_well_formed_and_conserves() {
    let cfg = tiny_config();
    let report = run(&cfg).expect("harness run");
    assert!(report.conserves(), "accounting does not conserve");
    assert_eq!(report.steps.len(), 2);
    assert!(report.capacity.jobs_per_sec > 0.0);
    assert!(report.idle_starvation_ms.count > 0);
    for step in &report.steps {
        assert!(step.offered > 0, "load {}: empty schedule", step.load);
        assert!(step.bound.feasible <= step.bound.upper);
        assert!(step.bound.upper <= step.offered);
        assert_eq!(step.executors.len(), ExecutorKind::ALL.len());
        for e in &step.executors {
            let t = e.tally;
            assert_eq!(
                t.on_time + t.late + t.dropped + t.failed + t.unfinished,
                step.offered,
                "{} at {}×: {t:?}",
                e.executor,
                step.load
            );
            assert_eq!(t.failed, 0, "{}: no job panics", e.executor);
            assert!((0.0..=1.0).contains(&e.goodput_share));
            assert!((0.0..=1.0).contains(&e.drop_share));
            assert!(e.share_of_bound >= 0.0);
            assert!(quantiles_ordered(&e.latency_ms), "{:?}", e.latency_ms);
            assert_eq!(e.latency_ms.count, t.on_time + t.late);
            assert!(quantiles_ordered(&e.starvation_ms));
            assert!(
                e.starvation_ms.count > 0,
                "{}: probe never woke",
                e.executor
            );
            assert_eq!(e.generator_lag_us.count, step.offered);
            if cfg!(target_os = "linux") {
                let c = e
                    .core_seconds
                    .unwrap_or_else(|| panic!("{}: no /proc reading", e.executor));
                // The breakdown accounts for the machine's time (10 ms ticks, 2 CPUs
                // read at slightly different moments: allow 5 % and a few ticks).
                let parts = c.on_time_work
                    + c.late_work
                    + c.executor_other
                    + c.generator
                    + c.foreign
                    + c.idle;
                assert!(
                    (parts - c.available).abs() <= 0.05 * c.available + 0.1,
                    "{}: parts {parts} vs available {}: {c:?}",
                    e.executor,
                    c.available
                );
                assert!(c.generator > 0.0 && c.on_time_work > 0.0, "{c:?}");
                assert!(e.on_time_work_cores > 0.0);
            }
            assert_eq!(e.classes.len(), cfg.mix.classes.len());
            for c in &e.classes {
                assert!(c.tally.conserves());
                assert!(quantiles_ordered(&c.latency_ms));
            }
            // Only HelixRouter reports router stats, and its own books balance.
            assert_eq!(e.router.is_some(), e.executor.is_helix());
            if let Some(s) = &e.router {
                assert_eq!(s.submitted, step.offered);
                assert_eq!(
                    s.submitted,
                    s.completed + s.dropped + s.failed + s.in_flight
                );
                assert_eq!(s.dropped, t.dropped);
            }
            // Neither unbounded baseline ever sheds.
            if matches!(
                e.executor,
                ExecutorKind::Spawn | ExecutorKind::SpawnBlocking
            ) {
                assert_eq!(t.dropped, 0, "{} shed", e.executor);
            }
        }
    }
    // Bars are evaluated for the helix variants at loads >= 2×.
    assert_eq!(report.bars.len(), 2);

    // The outputs: table, JSON round trip, SVG.
    let table = report.render_table();
    for k in ExecutorKind::ALL {
        assert!(table.contains(k.label()), "table lacks {}", k.label());
    }
    assert!(table.contains("(upper bound)"));
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("overload.json");
    report.write_json(&json).expect("json");
    let back: OverloadReport =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read")).expect("parse");
    assert_eq!(back.steps.len(), report.steps.len());
    assert_eq!(
        back.steps[1].executors[0].tally,
        report.steps[1].executors[0].tally
    );
    let svg = dir.path().join("overload.svg");
    chart::write_svg(&report, &svg).expect("svg");
    let svg_text = std::fs::read_to_string(&svg).expect("read svg");
    assert!(svg_text.starts_with("<svg") && svg_text.contains("polyline"));
    assert!(svg_text.contains("helix (learning)"));
}

#[test]
fn hint_scenarios_run_side_by_side_on_one_schedule() {
    let cfg = HarnessConfig {
        loads: vec![2.0],
        executors: vec![
            ExecutorKind::HelixLearning,
            ExecutorKind::TowerLimitShed,
            ExecutorKind::HelixNoCostLearning,
        ],
        hints: HintScenario::HINTS.to_vec(),
        ..tiny_config()
    };
    let report = run(&cfg).expect("harness run");
    assert!(report.conserves());
    assert_eq!(report.hints, HintScenario::HINTS.to_vec());
    assert!(report.cost_model_bars.is_empty() && !report.has_sized());
    assert!(report.steps.iter().all(|s| s.sized.is_none()));
    let step = &report.steps[0];
    let runs: Vec<(ExecutorKind, Option<HintScenario>)> = step
        .executors
        .iter()
        .map(|e| (e.executor, e.hints))
        .collect();
    use ExecutorKind::{HelixLearning as L, HelixNoCostLearning as Off, TowerLimitShed as T};
    use HintScenario::{Exact, Flat, Noisy, Unknown};
    assert_eq!(
        runs,
        vec![
            (L, Some(Exact)),
            (T, None),
            (L, Some(Flat)),
            (Off, Some(Flat)),
            (L, Some(Unknown)),
            (L, Some(Noisy)),
        ]
    );
    for e in &step.executors {
        assert_eq!(e.tally.offered, step.offered);
        if let Some(s) = &e.router {
            assert_eq!(s.submitted, step.offered, "{}", e.label(true));
        }
    }
    // One bar per HelixRouter run; cost learning off has no exact-hint run to compare.
    assert_eq!(report.bars.len(), 5);
    for b in &report.bars {
        assert_eq!(b.exact_gap_bar_met.is_none(), b.executor == Off);
    }
    let table = report.render_table();
    for label in [
        "helix (learning) [exact]",
        "helix (learning) [flat]",
        "helix (cost learning off) [flat]",
        "helix (learning) [unknown]",
        "helix (learning) [noisy]",
    ] {
        assert!(table.contains(label), "table lacks {label}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("hints.svg");
    chart::write_svg(&report, &svg).expect("svg");
    let svg_text = std::fs::read_to_string(&svg).expect("read svg");
    assert!(svg_text.contains("helix (cost learning off) [flat]"));
    let back: OverloadReport =
        serde_json::from_str(&report.to_json().expect("json")).expect("parse");
    assert_eq!(back.steps[0].executors[2].hints, Some(Flat));
}

#[test]
fn cost_model_scenarios_run_beside_exact_with_baselines_per_workload() {
    use ExecutorKind::{HelixLearning as L, Spawn};
    use HintScenario::{Exact, OneClass, SizesExact, SizesUnits};
    let cfg = HarnessConfig {
        loads: vec![0.5],
        executors: vec![L, Spawn],
        hints: vec![Exact, OneClass, SizesExact, SizesUnits],
        ..tiny_config()
    };
    let report = run(&cfg).expect("harness run");
    assert!(report.conserves());
    let step = &report.steps[0];
    let runs: Vec<_> = step
        .executors
        .iter()
        .map(|e| (e.executor, e.hints, e.workload))
        .collect();
    let (fixed, sized) = (Workload::Fixed, Workload::Sized);
    assert_eq!(
        runs,
        vec![
            (L, Some(Exact), fixed),
            (Spawn, None, fixed),
            (L, Some(OneClass), fixed),
            (L, Some(SizesExact), sized),
            (Spawn, None, sized),
            (L, Some(SizesUnits), sized),
        ]
    );
    // The sized bound and load count each job's measured class cost × its size factor.
    let z = step.sized.expect("sized bound");
    let window = Duration::from_secs_f64(step.window_secs);
    let schedule = Schedule::generate(&cfg.mix, step.rate_per_sec, window, step.seed).unwrap();
    let factors = sizes::job_factors(&schedule);
    let costs = report.capacity.measured_costs();
    let per_job = sizes::job_costs_ns(&schedule, &costs, Some(&factors));
    let jobs = bound::schedule_jobs(&schedule, &cfg.mix, &per_job);
    assert_eq!(z.bound, goodput_bound(&jobs, cfg.cores));
    let demand = per_job.iter().sum::<u64>() as f64;
    let load = demand / (cfg.cores as f64 * step.window_secs * 1e9);
    assert!(
        (z.realised_load - load).abs() < 1e-9 * load,
        "{z:?} vs {load}"
    );
    assert_eq!(z.size_span, 64.0);
    // Every cost-model run has its cost-model bar (0.5× < 2×: no DESIGN bars).
    assert!(report.bars.is_empty());
    let cm: Vec<_> = report.cost_model_bars.iter().map(|b| b.hints).collect();
    assert_eq!(cm, vec![OneClass, SizesExact, SizesUnits]);
    assert!(
        report
            .cost_model_bars
            .iter()
            .all(|b| b.exact_gap_bar_met.is_some())
    );
    assert!(report.cost_model_bars[0].low_load_bar_met.is_some());
    // One class: the router saw one class; sizes_units: the classes learned from sizes.
    let stats = |h| {
        step.executors
            .iter()
            .find(|e| e.hints == Some(h))
            .and_then(|e| e.router.clone())
            .expect("router stats")
    };
    let one = stats(OneClass);
    assert!(!one.classes.is_empty());
    assert!(
        one.classes.iter().all(|c| c.name == "mixed"),
        "{:?}",
        one.classes
    );
    let units = stats(SizesUnits);
    assert!(units.classes.iter().all(|c| c.name != "mixed"));
    assert!(units.classes.iter().map(|c| c.units_samples).sum::<u64>() > 0);
    assert_eq!(
        stats(SizesExact)
            .classes
            .iter()
            .map(|c| c.units_samples)
            .sum::<u64>(),
        0
    );

    cost_model_outputs(&report);
}

/// The table, SVG and JSON of a cost-model run carry its scenarios, bounds and bars.
fn cost_model_outputs(report: &OverloadReport) {
    let step = &report.steps[0];
    let table = report.render_table();
    for want in [
        "tokio::spawn [sized]",
        "helix (learning) [one_class]",
        "(upper bound, sized)",
        "cost-model bars",
        "cost models HelixRouter learned",
    ] {
        assert!(table.contains(want), "table lacks `{want}`");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("cost-model.svg");
    chart::write_svg(report, &svg).expect("svg");
    let svg_text = std::fs::read_to_string(&svg).expect("read svg");
    assert!(svg_text.contains("helix (learning) [sizes_units]"));
    assert!(svg_text.contains("tokio::spawn [sized]"));
    assert!(svg_text.contains("upper bound, sized work"));
    let back: OverloadReport =
        serde_json::from_str(&report.to_json().expect("json")).expect("parse");
    assert_eq!(back.cost_model_bars, report.cost_model_bars);
    assert_eq!(back.steps[0].sized, step.sized);
    assert_eq!(back.steps[0].executors[4].workload, Workload::Sized);
}

#[test]
fn outcome_serialises_snake_case() {
    assert_eq!(
        serde_json::to_string(&Outcome::OnTime).unwrap(),
        "\"on_time\""
    );
}
