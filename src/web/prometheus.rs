//! Prometheus text exposition (classic format, which `promtool check metrics`
//! accepts), rendered from a stats snapshot. Pure: it writes into a `String`.
//!
//! Names follow Prometheus conventions: base units (seconds), counters end in
//! `_total`, every family has HELP and TYPE.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use crate::metrics::BUCKET_BOUNDS_SECS;
use crate::router::RouterStats;
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

fn label(strategy: Strategy) -> Vec<LabelPair> {
    let mut l = LabelPair::default();
    l.set_name("strategy".to_string());
    l.set_value(strategy.as_str().to_string());
    vec![l]
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

/// Renders the exposition text.
///
/// # Errors
///
/// Only if the encoder rejects a family (a bug: names here are static and valid).
pub(crate) fn render(
    stats: &RouterStats,
    neural: NeuralFigures,
) -> Result<String, prometheus::Error> {
    let executing: Vec<_> = stats
        .strategies
        .iter()
        .filter(|s| s.strategy != Strategy::Drop)
        .collect();
    let mut fams = vec![
        family(
            "helix_submitted_total",
            "Jobs submitted to the router.",
            MetricType::COUNTER,
            vec![counter(stats.submitted as f64, vec![])],
        ),
        family(
            "helix_completed_total",
            "Jobs completed.",
            MetricType::COUNTER,
            vec![counter(stats.completed as f64, vec![])],
        ),
        family(
            "helix_dropped_total",
            "Jobs shed (policy drop, full queue, or unmeetable budget).",
            MetricType::COUNTER,
            vec![counter(stats.dropped as f64, vec![])],
        ),
        family(
            "helix_failed_total",
            "Jobs that panicked.",
            MetricType::COUNTER,
            vec![counter(stats.failed as f64, vec![])],
        ),
        family(
            "helix_late_total",
            "Jobs completed over their latency budget.",
            MetricType::COUNTER,
            vec![counter(stats.late as f64, vec![])],
        ),
        family(
            "helix_routed_total",
            "Jobs routed, by strategy.",
            MetricType::COUNTER,
            stats
                .strategies
                .iter()
                .map(|s| counter(s.routed as f64, label(s.strategy)))
                .collect(),
        ),
    ];
    type Pick = fn(&crate::metrics::LatencySummary) -> f64;
    let gauges: [(&str, &str, Pick); 6] = [
        (
            "helix_latency_p50_seconds",
            "Median latency over the last 512 jobs, by strategy.",
            |l| l.p50_us,
        ),
        (
            "helix_latency_p95_seconds",
            "95th percentile latency over the last 512 jobs, by strategy.",
            |l| l.p95_us,
        ),
        (
            "helix_latency_p99_seconds",
            "99th percentile latency over the last 512 jobs, by strategy.",
            |l| l.p99_us,
        ),
        (
            "helix_latency_ema_seconds",
            "Exponential moving average of latency, by strategy.",
            |l| l.ema_us,
        ),
        (
            "helix_latency_min_seconds",
            "Minimum latency over the last 512 jobs, by strategy.",
            |l| l.min_us,
        ),
        (
            "helix_latency_max_seconds",
            "Maximum latency over the last 512 jobs, by strategy.",
            |l| l.max_us,
        ),
    ];
    for (name, help, pick) in gauges {
        let ms = executing
            .iter()
            .map(|s| gauge(pick(&s.latency) / 1e6, label(s.strategy)))
            .collect();
        fams.push(family(name, help, MetricType::GAUGE, ms));
    }
    let hist = executing
        .iter()
        .map(|s| {
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
        })
        .collect();
    fams.push(family(
        "helix_job_duration_seconds",
        "End-to-end job duration, by strategy.",
        MetricType::HISTOGRAM,
        hist,
    ));
    let scalar: [(&str, &str, f64); 9] = [
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
    ];
    for (name, help, v) in scalar {
        fams.push(family(
            name,
            help,
            MetricType::GAUGE,
            vec![gauge(v, vec![])],
        ));
    }
    fams.push(family(
        "helix_neural_samples_total",
        "Outcomes the neural router has learned from.",
        MetricType::COUNTER,
        vec![counter(neural.samples as f64, vec![])],
    ));
    let mut buf = Vec::new();
    TextEncoder::new().encode(&fams, &mut buf)?;
    String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
}
