//! `PATCH /api/config` bodies through `web::app`: the status is the contract's for the
//! bytes sent, never a 5xx; an accepted patch installs exactly `base.apply(patch)`; a
//! refused one leaves the live config untouched (whole or not at all). A valid patch
//! that changes a field fixed when the router was built (`decision_log_cap`, `max_classes`) is refused
//! naming it.
#![no_main]

#[path = "../common/http.rs"]
mod http;

use axum::http::{Method, StatusCode};
use helixrouter::config::{RouterConfig, RouterConfigPatch};
use libfuzzer_sys::fuzz_target;

/// Above this the pool would start hundreds of OS threads per input; such patches are
/// still parsed and validated (and fuzzed in `config_json`), just not installed here.
const MAX_FUZZED_PARALLELISM: usize = 32;

fuzz_target!(|data: &[u8]| {
    let h = http::harness();
    let parsed = serde_json::from_slice::<RouterConfigPatch>(data);
    // A patch the router would install with that many threads is skipped (one it
    // refuses starts none).
    if let Ok(p) = &parsed
        && h.router
            .config()
            .apply(p)
            .is_ok_and(|c| c.cpu_parallelism > MAX_FUZZED_PARALLELISM)
    {
        return;
    }
    let base = h.router.config();
    let (status, body) = http::send(Method::PATCH, "/api/config", data);
    assert!(!status.is_server_error(), "{status} for {data:?}");
    let after = h.router.config();
    match parsed {
        Err(e) => {
            assert_eq!(
                status,
                http::status_of(&e),
                "body {:?}",
                String::from_utf8_lossy(data)
            );
            assert_eq!(after, base, "a refused body changed the config");
            http::assert_error_body(status, &body);
        }
        Ok(patch) => match base.apply(&patch) {
            Ok(expected)
                if expected.decision_log_cap != base.decision_log_cap
                    || expected.max_classes != base.max_classes =>
            {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
                assert_eq!(after, base, "a refused patch changed the config");
                let reply: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                let field = reply["violations"][0]["field"].as_str().unwrap_or("");
                assert!(
                    ["decision_log_cap", "max_classes"].contains(&field),
                    "{reply}"
                );
            }
            Ok(expected) => {
                assert_eq!(status, StatusCode::OK);
                let reply: RouterConfig = serde_json::from_slice(&body).expect("config reply");
                assert_eq!(reply, expected, "reply is not base.apply(patch)");
                assert_eq!(after, expected, "live config is not base.apply(patch)");
                // Back to the defaults so inputs stay independent.
                h.router
                    .set_config(RouterConfig::default())
                    .expect("defaults are valid");
            }
            Err(e) => {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
                assert_eq!(after, base, "a refused patch changed the config");
                let reply: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                let named: Vec<&str> = reply["violations"]
                    .as_array()
                    .expect("violations")
                    .iter()
                    .filter_map(|v| v["field"].as_str())
                    .collect();
                for v in e.violations() {
                    assert!(named.contains(&v.field), "{} not named in {reply}", v.field);
                }
            }
        },
    }
});
