//! Prometheus text exposition (classic format, which `promtool check metrics`
//! accepts), rendered from a stats snapshot. Pure: it writes into a `String`.
//!
//! Names follow Prometheus conventions: base units (seconds), counters end in
//! `_total`, every family has HELP and TYPE.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use crate::metrics::{BUCKET_BOUNDS_SECS, LatencySummary, WINDOW};
use crate::policy::cost::MISMATCH_FACTOR;
use crate::router::{ClassStats, RouterStats, StrategyStats, WorkTime};
use crate::types::Strategy;

/// Learner figures exported beside the router's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct NeuralFigures {
    /// Outcomes learned from.
    pub(crate) samples: u64,
    /// Running average reward.
    pub(crate) avg_reward: f64,
    /// Current exploration rate.
    pub(crate) epsilon: f64,
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    *f.mut_metric() = metrics;
    f
}

fn pair(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

fn label(strategy: Strategy) -> Vec<LabelPair> {
    vec![pair("strategy", strategy.as_str())]
}

/// How a table row reads one series' value from a `T`.
type Pick<T, V> = fn(&T) -> V;

/// A counter family of one unlabelled series.
fn scalar_counter(name: &str, help: &str, v: u64) -> MetricFamily {
    family(
        name,
        help,
        MetricType::COUNTER,
        vec![counter(v as f64, vec![])],
    )
}

/// A gauge family of one unlabelled series.
fn scalar_gauge(name: &str, help: &str, v: f64) -> MetricFamily {
    family(name, help, MetricType::GAUGE, vec![gauge(v, vec![])])
}

fn counter(v: f64, labels: Vec<LabelPair>) -> Metric {
    let mut c = Counter::default();
    c.set_value(v);
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_counter(c);
    m
}

fn gauge(v: f64, labels: Vec<LabelPair>) -> Metric {
    let mut g = Gauge::default();
    g.set_value(if v.is_finite() { v } else { 0.0 });
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_gauge(g);
    m
}

/// The router's totals: (name, help, value) of unlabelled counters.
fn totals(stats: &RouterStats) -> [(&'static str, &'static str, u64); 10] {
    [
        (
            "helix_submitted_total",
            "Jobs submitted to the router.",
            stats.submitted,
        ),
        ("helix_completed_total", "Jobs completed.", stats.completed),
        (
            "helix_dropped_total",
            "Jobs shed (policy drop, full queue, or unmeetable budget).",
            stats.dropped,
        ),
        ("helix_failed_total", "Jobs that panicked.", stats.failed),
        (
            "helix_cancelled_total",
            "Jobs whose caller went away before they started; they never ran.",
            stats.cancelled,
        ),
        (
            "helix_late_total",
            "Jobs completed over their latency budget.",
            stats.late,
        ),
        (
            "helix_cpu_refused_queue_full_total",
            "CPU pool tasks refused because its queue was full (a batch counts once).",
            stats.cpu_refused_queue_full,
        ),
        (
            "helix_cpu_refused_estimate_total",
            "CPU pool tasks refused because admission estimated they would finish late.",
            stats.cpu_refused_estimate,
        ),
        (
            "helix_cpu_evicted_total",
            "Queued CPU pool tasks evicted so tasks with earlier deadlines finish in time.",
            stats.cpu_evicted,
        ),
        (
            "helix_cpu_expired_total",
            "Queued CPU pool tasks shed because they could no longer finish in time.",
            stats.cpu_shed_in_queue as u64,
        ),
    ]
}

/// `helix_routed_total`: jobs routed, one series per strategy (`Drop` included).
fn routed_family(stats: &RouterStats) -> MetricFamily {
    family(
        "helix_routed_total",
        "Jobs routed, by strategy.",
        MetricType::COUNTER,
        stats
            .strategies
            .iter()
            .map(|s| counter(s.routed as f64, label(s.strategy)))
            .collect(),
    )
}

/// The ledger's three ends as label values, with the figure each picks.
fn work_ends(w: &WorkTime) -> [(&'static str, f64); 3] {
    [
        ("on_time", w.on_time_secs),
        ("late", w.late_secs),
        ("aborted", w.aborted_secs),
    ]
}

/// A run-time ledger family: one series per `(key, value)` row and end, e.g.
/// `helix_work_seconds_total{strategy="cpu_pool",end="late"}`.
fn work_family<'a>(
    (name, help): (&str, &str),
    key: &str,
    rows: impl Iterator<Item = (&'a str, &'a WorkTime)>,
) -> MetricFamily {
    let metrics = rows
        .flat_map(|(value, w)| {
            work_ends(w)
                .into_iter()
                .map(move |(end, v)| counter(v, vec![pair(key, value), pair("end", end)]))
        })
        .collect();
    family(name, help, MetricType::COUNTER, metrics)
}

/// The per-strategy latency gauges: (name, help, figure in µs).
fn latency_gauges() -> [(&'static str, String, Pick<LatencySummary, f64>); 6] {
    [
        (
            "helix_latency_p50_seconds",
            format!("Median latency over the last {WINDOW} jobs, by strategy."),
            |l| l.p50_us,
        ),
        (
            "helix_latency_p95_seconds",
            format!("95th percentile latency over the last {WINDOW} jobs, by strategy."),
            |l| l.p95_us,
        ),
        (
            "helix_latency_p99_seconds",
            format!("99th percentile latency over the last {WINDOW} jobs, by strategy."),
            |l| l.p99_us,
        ),
        (
            "helix_latency_ema_seconds",
            "Exponential moving average of latency, by strategy.".to_owned(),
            |l| l.ema_us,
        ),
        (
            "helix_latency_min_seconds",
            format!("Minimum latency over the last {WINDOW} jobs, by strategy."),
            |l| l.min_us,
        ),
        (
            "helix_latency_max_seconds",
            format!("Maximum latency over the last {WINDOW} jobs, by strategy."),
            |l| l.max_us,
        ),
    ]
}

/// The latency gauges and the job duration histogram, one series per executing
/// strategy (all but `Drop`).
fn latency_families(stats: &RouterStats) -> Vec<MetricFamily> {
    let executing: Vec<_> = stats
        .strategies
        .iter()
        .filter(|s| s.strategy != Strategy::Drop)
        .collect();
    let mut fams: Vec<MetricFamily> = latency_gauges()
        .into_iter()
        .map(|(name, help, pick)| {
            let ms = executing
                .iter()
                .map(|s| gauge(pick(&s.latency) / 1e6, label(s.strategy)))
                .collect();
            family(name, &help, MetricType::GAUGE, ms)
        })
        .collect();
    fams.push(family(
        "helix_job_duration_seconds",
        "End-to-end job duration, by strategy.",
        MetricType::HISTOGRAM,
        executing.iter().map(|s| duration_histogram(s)).collect(),
    ));
    fams
}

/// One strategy's job duration histogram, on [`BUCKET_BOUNDS_SECS`].
fn duration_histogram(s: &StrategyStats) -> Metric {
    let mut h = Histogram::default();
    h.set_sample_count(s.latency.count);
    h.set_sample_sum(s.latency.sum_secs);
    let buckets = BUCKET_BOUNDS_SECS
        .iter()
        .zip(&s.latency.buckets)
        .map(|(&ub, &c)| {
            let mut b = Bucket::default();
            b.set_upper_bound(ub);
            b.set_cumulative_count(c);
            b
        })
        .collect();
    h.set_bucket(buckets);
    let mut m = Metric::default();
    m.set_label(label(s.strategy));
    m.set_histogram(h);
    m
}

/// The router's and the learner's levels: (name, help, value) of unlabelled gauges.
fn levels(stats: &RouterStats, neural: NeuralFigures) -> [(&'static str, &'static str, f64); 9] {
    [
        (
            "helix_pressure",
            "Composite pressure score in [0, 1].",
            stats.pressure.score,
        ),
        (
            "helix_cpu_busy",
            "CPU pool tasks running plus queued.",
            stats.cpu_busy as f64,
        ),
        (
            "helix_cpu_queue_depth",
            "CPU pool tasks queued.",
            stats.cpu_queue_depth as f64,
        ),
        (
            "helix_cpu_parallelism",
            "Live CPU pool parallelism.",
            stats.cpu_parallelism as f64,
        ),
        (
            "helix_in_flight",
            "Jobs admitted and not yet ended.",
            stats.in_flight as f64,
        ),
        (
            "helix_batch_queue_depth",
            "Jobs waiting in batch queues.",
            stats.batch_queue_depth as f64,
        ),
        (
            "helix_adaptive_spawn_threshold",
            "Spawn threshold in force, in nanoseconds of estimated cost.",
            stats.adaptive_spawn_threshold as f64,
        ),
        (
            "helix_neural_avg_reward",
            "Running average reward of the neural router.",
            neural.avg_reward,
        ),
        (
            "helix_neural_epsilon",
            "Exploration rate of the neural router.",
            neural.epsilon,
        ),
    ]
}

/// The per-class counters: (name, help, value).
fn class_counters() -> [(&'static str, &'static str, Pick<ClassStats, u64>); 7] {
    [
        (
            "helix_class_completed_total",
            "Jobs completed, by work class.",
            |c| c.completed,
        ),
        (
            "helix_class_dropped_total",
            "Jobs shed, by work class.",
            |c| c.dropped,
        ),
        (
            "helix_class_failed_total",
            "Jobs that panicked, by work class.",
            |c| c.failed,
        ),
        (
            "helix_class_late_total",
            "Jobs completed over budget, by work class.",
            |c| c.late,
        ),
        (
            "helix_class_cancelled_total",
            "Jobs cancelled before they started (caller went away), by work class.",
            |c| c.cancelled,
        ),
        (
            "helix_class_cost_samples_total",
            "Measured runs the learned cost is built from, by work class.",
            |c| c.samples,
        ),
        (
            "helix_class_probes_total",
            "Jobs shed on their estimate that ran anyway to measure it, by work class.",
            |c| c.probes,
        ),
    ]
}

/// A per-class gauge: name, help, and its value for a class (`None`: no series for it).
type ClassGauge = (&'static str, String, Pick<ClassStats, Option<f64>>);

/// The per-class gauges.
fn class_gauges() -> [ClassGauge; 10] {
    [
        (
            "helix_class_learned_cost_seconds",
            "Typical run time learned from what ran, by work class.".to_owned(),
            |c| c.learned_cost_ns.map(|n| n as f64 / 1e9),
        ),
        (
            "helix_class_cost_p90_seconds",
            "About the 90th percentile run time, what admission plans with, by work class."
                .to_owned(),
            |c| c.cost_p90_ns.map(|n| n as f64 / 1e9),
        ),
        (
            "helix_class_hint_ratio",
            "Caller's cost hint divided by the measured cost (typical), by work class."
                .to_owned(),
            |c| c.hint_ratio,
        ),
        (
            "helix_class_cost_ratio",
            "Ratio model: measured cost divided by the caller's per-job hint (typical), by work class.".to_owned(),
            |c| c.ratio,
        ),
        (
            "helix_class_fixed_cost_seconds",
            "Units model: the fixed part of a job's cost, by work class.".to_owned(),
            |c| c.fixed_ns.map(|n| n / 1e9),
        ),
        (
            "helix_class_cost_per_unit_seconds",
            "Units model: the cost per unit of a job's size, by work class.".to_owned(),
            |c| c.ns_per_unit.map(|n| n / 1e9),
        ),
        (
            "helix_class_residual_spread",
            "Multiplicative spread of run times around their own prediction under the class's model in use, by work class.".to_owned(),
            |c| c.residual_spread,
        ),
        (
            "helix_class_hint_mismatch",
            format!(
                "1 when the hint is off from the learned cost by more than {MISMATCH_FACTOR}x, by work class."
            ),
            |c| Some(if c.mismatch { 1.0 } else { 0.0 }),
        ),
        (
            "helix_class_latency_p50_seconds",
            format!(
                "Median end-to-end latency of the last {WINDOW} completed jobs, by work class."
            ),
            |c| c.p50_us.map(|u| u / 1e6),
        ),
        (
            "helix_class_latency_p99_seconds",
            format!(
                "99th percentile end-to-end latency of the last {WINDOW} completed jobs, by work class."
            ),
            |c| c.p99_us.map(|u| u / 1e6),
        ),
    ]
}

/// Per-class families: one series per class in use (at most `max_classes` + the
/// overflow class, so the label set stays bounded whatever names callers pass).
fn class_families(stats: &RouterStats) -> Vec<MetricFamily> {
    let classes = &stats.classes;
    let by_class = |c: &ClassStats| vec![pair("class", &c.name)];
    let mut fams: Vec<MetricFamily> = class_counters()
        .into_iter()
        .map(|(name, help, pick)| {
            let ms = classes
                .iter()
                .map(|c| counter(pick(c) as f64, by_class(c)))
                .collect();
            family(name, help, MetricType::COUNTER, ms)
        })
        .collect();
    fams.push(class_routed_family(classes));
    fams.push(work_family(
        (
            "helix_class_work_seconds_total",
            "Run time of jobs, by work class and how they ended (on_time; late and aborted are wasted).",
        ),
        "class",
        classes.iter().map(|c| (c.name.as_str(), &c.work)),
    ));
    fams.extend(class_gauges().into_iter().map(|(name, help, pick)| {
        let ms = classes
            .iter()
            .filter_map(|c| pick(c).map(|v| gauge(v, by_class(c))))
            .collect();
        family(name, &help, MetricType::GAUGE, ms)
    }));
    fams.push(family(
        "helix_class_model",
        "1 for the cost model a work class uses (ratio: per-job hints, units: per-job sizes, class: neither), by work class and model.",
        MetricType::GAUGE,
        classes
            .iter()
            .map(|c| gauge(1.0, vec![pair("class", &c.name), pair("model", c.model.as_str())]))
            .collect(),
    ));
    fams.push(scalar_counter(
        "helix_class_overflow_total",
        "Class-name lookups beyond max_classes, which share the overflow class.",
        stats.class_overflow,
    ));
    fams
}

/// `helix_class_routed_total`: one series per class and strategy.
fn class_routed_family(classes: &[ClassStats]) -> MetricFamily {
    family(
        "helix_class_routed_total",
        "Jobs routed, by work class and strategy.",
        MetricType::COUNTER,
        classes
            .iter()
            .flat_map(|c| {
                c.routed.iter().map(move |r| {
                    counter(
                        r.routed as f64,
                        vec![
                            pair("class", &c.name),
                            pair("strategy", r.strategy.as_str()),
                        ],
                    )
                })
            })
            .collect(),
    )
}

/// The remote side's counters: (name, help, value).
#[cfg(feature = "remote")]
fn remote_counters(r: &crate::remote::RemoteStats) -> [(&'static str, &'static str, u64); 9] {
    [
        (
            "helix_remote_sent_total",
            "Jobs published to remote workers.",
            r.sent,
        ),
        (
            "helix_remote_completed_total",
            "Remote jobs that came back with an output.",
            r.completed,
        ),
        (
            "helix_remote_failed_total",
            "Remote jobs that came back failed.",
            r.failed,
        ),
        (
            "helix_remote_expired_total",
            "Remote jobs a worker received past their deadline (not run).",
            r.expired,
        ),
        (
            "helix_remote_timed_out_total",
            "Remote jobs with no result by their deadline (dropped).",
            r.timed_out,
        ),
        (
            "helix_remote_duplicates_total",
            "Results for remote jobs already ended (at-least-once delivery), ignored.",
            r.duplicates,
        ),
        (
            "helix_remote_malformed_total",
            "Invalid messages on the router's result and heartbeat subjects.",
            r.malformed,
        ),
        (
            "helix_remote_redelivered_total",
            "Remote results whose job had been delivered more than once.",
            r.redelivered,
        ),
        (
            "helix_remote_publish_failed_total",
            "Jobs that could not be published (run locally instead).",
            r.publish_failed,
        ),
    ]
}

/// The remote side's gauges: (name, help, value).
#[cfg(feature = "remote")]
fn remote_gauges(r: &crate::remote::RemoteStats) -> [(&'static str, &'static str, f64); 5] {
    [
        (
            "helix_remote_connected",
            "1 when connected to the NATS server.",
            if r.connected { 1.0 } else { 0.0 },
        ),
        (
            "helix_remote_workers",
            "Live remote workers (heard from within worker_timeout).",
            r.workers.len() as f64,
        ),
        (
            "helix_remote_worker_parallelism",
            "Tasks the live remote workers run at once, summed.",
            r.workers.iter().map(|w| w.parallelism).sum::<usize>() as f64,
        ),
        (
            "helix_remote_in_flight",
            "Remote jobs waiting for their result.",
            r.in_flight as f64,
        ),
        (
            "helix_remote_round_trip_p50_seconds",
            "Median remote round-trip overhead (total minus the worker's run time).",
            r.round_trip_p50_us.unwrap_or(0.0) / 1e6,
        ),
    ]
}

/// The remote side's families (only for a router built with remote workers).
#[cfg(feature = "remote")]
fn remote_families(r: &crate::remote::RemoteStats) -> Vec<MetricFamily> {
    let counters = remote_counters(r)
        .into_iter()
        .map(|(name, help, v)| scalar_counter(name, help, v));
    let gauges = remote_gauges(r)
        .into_iter()
        .map(|(name, help, v)| scalar_gauge(name, help, v));
    counters.chain(gauges).collect()
}

/// Renders the exposition text.
///
/// # Errors
///
/// Only if the encoder rejects a family (a bug: names here are static and valid).
pub(crate) fn render(
    stats: &RouterStats,
    neural: NeuralFigures,
) -> Result<String, prometheus::Error> {
    let mut fams: Vec<MetricFamily> = totals(stats)
        .into_iter()
        .map(|(name, help, v)| scalar_counter(name, help, v))
        .collect();
    fams.push(routed_family(stats));
    fams.push(work_family(
        (
            "helix_work_seconds_total",
            "Run time of jobs, by strategy and how they ended (on_time; late and aborted are wasted).",
        ),
        "strategy",
        stats.strategies.iter().map(|s| (s.strategy.as_str(), &s.work)),
    ));
    fams.extend(latency_families(stats));
    fams.extend(
        levels(stats, neural)
            .into_iter()
            .map(|(name, help, v)| scalar_gauge(name, help, v)),
    );
    #[cfg(feature = "remote")]
    if let Some(r) = &stats.remote {
        fams.extend(remote_families(r));
    }
    // A family with no series (no class in use yet) is not valid exposition.
    fams.extend(
        class_families(stats)
            .into_iter()
            .filter(|f| !f.get_metric().is_empty()),
    );
    fams.push(scalar_counter(
        "helix_neural_samples_total",
        "Outcomes the neural router has learned from.",
        neural.samples,
    ));
    let mut buf = Vec::new();
    TextEncoder::new().encode(&fams, &mut buf)?;
    String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
}
