//! `POST /api/telemetry` bodies through `web::app`: the answer must be exactly what the
//! contract says for the bytes sent, never a 5xx, and an accepted value must be the
//! one the router now blends as external pressure.
#![no_main]

#[path = "../common/http.rs"]
mod http;

use axum::http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// The documented body: `{"pressure": f64}`, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Telemetry {
    pressure: f64,
}

fuzz_target!(|data: &[u8]| {
    let (status, body) = http::send(Method::POST, "/api/telemetry", data);
    assert!(!status.is_server_error(), "{status} for {data:?}");
    // The contract: malformed JSON 400; anything but an object 422; an object that is
    // not exactly {"pressure": f64} 422; a pressure outside [0, 1] 422.
    let expected = match serde_json::from_slice::<serde_json::Value>(data) {
        Err(e) => http::status_of(&e),
        Ok(v) if !v.is_object() => StatusCode::UNPROCESSABLE_ENTITY,
        Ok(v) => match serde_json::from_value::<Telemetry>(v) {
            Ok(t) if t.pressure.is_finite() && (0.0..=1.0).contains(&t.pressure) => StatusCode::OK,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        },
    };
    assert_eq!(status, expected, "body {:?}", String::from_utf8_lossy(data));
    if status == StatusCode::OK {
        let v: serde_json::Value = serde_json::from_slice(data).expect("parsed above");
        let t: Telemetry = serde_json::from_value(v).expect("parsed above");
        let reply: serde_json::Value = serde_json::from_slice(&body).expect("JSON reply");
        assert_eq!(reply["accepted"].as_f64(), Some(t.pressure));
        let p = http::harness().router.stats().pressure;
        assert_eq!(
            p.external,
            Some(t.pressure),
            "external pressure not in force"
        );
        assert!(
            p.score >= t.pressure,
            "score {} below external {}",
            p.score,
            t.pressure
        );
    } else {
        http::assert_error_body(status, &body);
    }
});
