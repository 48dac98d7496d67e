//! Config JSON: parse + validate (`RouterConfig::from_json`), patch parse
//! (`RouterConfigPatch::from_json`) and apply onto the default config.
//!
//! Properties checked on every input:
//! - nothing panics, whatever the bytes;
//! - an accepted whole config validates, and survives a JSON round trip unchanged;
//! - `apply` returning `Ok` gives a config that validates and carries every field the
//!   patch set; returning `Err` names at least one violation; either way the base is
//!   left unchanged (a config is applied whole or not at all).
#![no_main]

use helixrouter::config::{ConfigError, RouterConfig, RouterConfigPatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match RouterConfig::from_json(text) {
        Ok(cfg) => {
            assert!(
                cfg.validate().is_ok(),
                "from_json accepted an invalid config"
            );
            let again = serde_json::to_string(&cfg).expect("a valid config serialises");
            let back = RouterConfig::from_json(&again).expect("a valid config parses back");
            assert_eq!(back, cfg, "JSON round trip changed the config");
        }
        Err(ConfigError::Invalid(v)) => {
            assert!(!v.is_empty(), "Invalid with no violation");
            // Every violation names a real field of the config (or none is invented).
            let fields = serde_json::to_value(RouterConfig::default()).expect("default");
            for violation in &v {
                assert!(
                    fields.get(violation.field).is_some(),
                    "violation names unknown field {}",
                    violation.field
                );
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    let Ok(patch) = RouterConfigPatch::from_json(text) else {
        return;
    };
    let base = RouterConfig::default();
    let before = base.clone();
    match base.apply(&patch) {
        Ok(next) => {
            assert!(next.validate().is_ok(), "apply returned an invalid config");
            let set = serde_json::to_value(&patch).expect("patch serialises");
            let merged = serde_json::to_value(&next).expect("config serialises");
            for (field, value) in set.as_object().expect("patch is an object") {
                assert_eq!(&merged[field], value, "patched field {field} not applied");
            }
            if patch.is_empty() {
                assert_eq!(next, base, "an empty patch changed the config");
            }
        }
        Err(e) => {
            assert!(
                !e.violations().is_empty(),
                "apply failed without naming a field: {e}"
            );
        }
    }
    assert_eq!(base, before, "apply modified its base");
});
