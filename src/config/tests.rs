//! Unit tests of `config`, compiled only under `#[cfg(test)]` (see `mod tests` in mod.rs).

use proptest::prelude::*;

use super::*;

fn with(f: impl FnOnce(&mut RouterConfig)) -> RouterConfig {
    let mut c = RouterConfig {
        cpu_parallelism: 2,
        autoscale_max_parallelism: 4,
        ..Default::default()
    };
    f(&mut c);
    c
}

fn fields(c: &RouterConfig) -> Vec<&'static str> {
    match c.validate() {
        Ok(()) => vec![],
        Err(e) => e.violations().iter().map(|v| v.field).collect(),
    }
}

#[test]
fn default_is_valid() {
    assert_eq!(fields(&RouterConfig::default()), Vec::<&str>::new());
}

#[test]
fn inline_threshold_must_be_below_spawn_threshold() {
    assert!(
        fields(&with(|c| {
            c.inline_threshold = 59_999;
            c.spawn_threshold = 60_000
        }))
        .is_empty()
    );
    assert_eq!(
        fields(&with(|c| {
            c.inline_threshold = 60_000;
            c.spawn_threshold = 60_000
        })),
        ["inline_threshold"]
    );
}

#[test]
fn cpu_queue_cap_must_cover_parallelism() {
    assert!(
        fields(&with(|c| {
            c.cpu_parallelism = 4;
            c.cpu_queue_cap = 4
        }))
        .is_empty()
    );
    assert_eq!(
        fields(&with(|c| {
            c.cpu_parallelism = 4;
            c.cpu_queue_cap = 3
        })),
        ["cpu_queue_cap"]
    );
}

#[test]
fn ema_alpha_in_half_open_unit_interval() {
    assert!(fields(&with(|c| c.ema_alpha = 1.0)).is_empty());
    assert!(fields(&with(|c| c.ema_alpha = 1e-9)).is_empty());
    for bad in [0.0, 1.000_001, -0.1, f64::NAN, f64::INFINITY] {
        assert_eq!(fields(&with(|c| c.ema_alpha = bad)), ["ema_alpha"], "{bad}");
    }
}

#[test]
fn adaptive_step_in_half_open_unit_interval() {
    assert!(fields(&with(|c| c.adaptive_step = 1.0)).is_empty());
    for bad in [0.0, 1.5, f64::NAN] {
        assert_eq!(
            fields(&with(|c| c.adaptive_step = bad)),
            ["adaptive_step"],
            "{bad}"
        );
    }
}

#[test]
fn counts_must_be_at_least_one() {
    assert_eq!(
        fields(&with(|c| { c.cpu_parallelism = 0 })),
        ["cpu_parallelism"]
    );
    assert_eq!(fields(&with(|c| c.batch_max_size = 0)), ["batch_max_size"]);
    assert_eq!(
        fields(&with(|c| c.batch_max_delay_ms = 0)),
        ["batch_max_delay_ms"]
    );
    assert_eq!(
        fields(&with(|c| c.backpressure_busy_threshold = 0)),
        ["backpressure_busy_threshold"]
    );
    assert_eq!(
        fields(&with(|c| c.decision_log_cap = 0)),
        ["decision_log_cap"]
    );
    assert!(fields(&with(|c| c.batch_max_size = 1)).is_empty());
    assert!(fields(&with(|c| c.batch_max_delay_ms = 1)).is_empty());
}

#[test]
fn batch_queue_must_hold_a_full_batch() {
    assert!(
        fields(&with(|c| {
            c.batch_max_size = 16;
            c.batch_queue_cap = 16
        }))
        .is_empty()
    );
    assert_eq!(
        fields(&with(|c| {
            c.batch_max_size = 16;
            c.batch_queue_cap = 15
        })),
        ["batch_queue_cap"]
    );
}

#[test]
fn epsilon_rules() {
    assert!(
        fields(&with(|c| {
            c.neural_epsilon = 0.0;
            c.neural_epsilon_min = 0.0
        }))
        .is_empty()
    );
    assert_eq!(
        fields(&with(|c| c.neural_epsilon = 1.01)),
        ["neural_epsilon"]
    );
    assert_eq!(
        fields(&with(|c| {
            c.neural_epsilon = 0.1;
            c.neural_epsilon_min = 0.2
        })),
        ["neural_epsilon_min"]
    );
}

#[test]
fn autoscale_bounds_are_ordered() {
    assert_eq!(
        fields(&with(|c| {
            c.autoscale_min_parallelism = 5;
            c.autoscale_max_parallelism = 4
        })),
        ["autoscale_max_parallelism"]
    );
    assert_eq!(
        fields(&with(|c| c.autoscale_window = 1)),
        ["autoscale_window"]
    );
    assert!(fields(&with(|c| c.autoscale_window = 2)).is_empty());
}

#[test]
fn pool_niceness_is_a_valid_nice_value() {
    assert!(fields(&with(|c| c.cpu_pool_nice = 19)).is_empty());
    assert!(fields(&with(|c| c.cpu_pool_nice = 0)).is_empty());
    assert_eq!(fields(&with(|c| c.cpu_pool_nice = 20)), ["cpu_pool_nice"]);
}

#[test]
fn adaptive_factor_at_least_one() {
    assert!(fields(&with(|c| c.adaptive_p95_threshold_factor = 1.0)).is_empty());
    assert_eq!(
        fields(&with(|c| c.adaptive_p95_threshold_factor = 0.99)),
        ["adaptive_p95_threshold_factor"]
    );
}

#[test]
fn upper_bounds_reject_absurd_sizes() {
    assert_eq!(
        fields(&with(|c| {
            c.cpu_parallelism = MAX_PARALLELISM + 1;
            c.cpu_queue_cap = MAX_QUEUE
        })),
        ["cpu_parallelism"]
    );
}

#[test]
fn reports_every_broken_rule_and_names_fields_in_message() {
    let c = with(|c| {
        c.ema_alpha = 0.0;
        c.batch_max_size = 0
    });
    let err = c.validate().unwrap_err();
    assert_eq!(err.violations().len(), 2);
    let msg = err.to_string();
    assert!(
        msg.contains("ema_alpha") && msg.contains("batch_max_size"),
        "{msg}"
    );
}

#[test]
fn unknown_fields_are_rejected() {
    let err = RouterConfigPatch::from_json(r#"{"inline_treshold": 5}"#).unwrap_err();
    assert!(err.to_string().contains("inline_treshold"), "{err}");
    assert!(RouterConfig::from_json(r#"{"bogus": 1}"#).is_err());
}

#[test]
fn invalid_patch_leaves_config_untouched() {
    let base = RouterConfig::default();
    let patch = RouterConfigPatch {
        inline_threshold: Some(1_000_000),
        batch_max_size: Some(4),
        ..Default::default()
    };
    assert!(base.apply(&patch).is_err());
    assert_eq!(base, RouterConfig::default());
}

#[test]
fn partial_json_takes_defaults_and_round_trips() {
    let c = RouterConfig::from_json(r#"{"batch_max_size": 4}"#).unwrap();
    assert_eq!(c.batch_max_size, 4);
    let back = RouterConfig::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
}

fn arb_patch() -> impl Strategy<Value = RouterConfigPatch> {
    (
        proptest::option::of(0u64..200_000),
        proptest::option::of(0u64..200_000),
        proptest::option::of(0usize..64),
        proptest::option::of(0usize..1024),
        proptest::option::of(-0.5f64..1.5),
        proptest::option::of(-0.5f64..1.5),
        proptest::option::of(0usize..40),
        proptest::option::of(0usize..2048),
    )
        .prop_map(
            |(it, st, par, cap, alpha, step, bms, bqc)| RouterConfigPatch {
                inline_threshold: it,
                spawn_threshold: st,
                cpu_parallelism: par,
                cpu_queue_cap: cap,
                ema_alpha: alpha,
                adaptive_step: step,
                batch_max_size: bms,
                batch_queue_cap: bqc,
                ..Default::default()
            },
        )
}

proptest! {
    #[test]
    fn apply_never_returns_an_invalid_config(patch in arb_patch()) {
        let base = with(|_| {});
        match base.apply(&patch) {
            Ok(c) => prop_assert!(c.validate().is_ok()),
            Err(e) => prop_assert!(!e.violations().is_empty()),
        }
    }

    #[test]
    fn patch_json_round_trips(patch in arb_patch()) {
        let s = serde_json::to_string(&patch).unwrap();
        prop_assert_eq!(RouterConfigPatch::from_json(&s).unwrap(), patch);
    }
}
