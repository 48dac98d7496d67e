//! The example service (`examples/service`): argon2 and zstd round trips in each mode.
#![cfg(all(feature = "server", feature = "tower"))]

#[path = "../examples/service/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use helixrouter::{Router, RouterConfig};
use tower::ServiceExt;

async fn send(svc: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let res = svc.clone().oneshot(req).await.unwrap();
    let status = res.status();
    (
        status,
        to_bytes(res.into_body(), 1 << 24).await.unwrap().to_vec(),
    )
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path).body(body.into()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argon2_and_zstd_round_trip_in_every_mode() {
    let router = Router::new(RouterConfig::default());
    for mode in [
        app::Mode::Helix,
        app::Mode::SpawnBlocking,
        app::Mode::TowerShed,
        app::Mode::TowerShedGlobal,
    ] {
        let svc = app::app(mode, router.clone());

        let (status, body) = send(&svc, post("/hash", "correct horse battery staple")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{mode:?}: {}",
            String::from_utf8_lossy(&body)
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["verified"], true, "{mode:?}: {v}");
        assert!(v["hash"].as_str().unwrap().starts_with("$argon2id$"), "{v}");

        let text = "helixrouter ".repeat(1_000);
        let (status, body) = send(&svc, post("/compress", text.clone())).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["roundtrip"], true, "{v}");
        assert!(v["compressed"].as_u64().unwrap() < v["original"].as_u64().unwrap());

        let packed = zstd::encode_all(text.as_bytes(), 3).unwrap();
        let (status, body) = send(&svc, post("/decompress", packed)).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert_eq!(body, text.as_bytes());

        let (status, _) = send(&svc, post("/decompress", "not zstd")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let (status, body) = send(&svc, Request::get("/json").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(String::from_utf8_lossy(&body).contains("\"ok\":true"));
    }
    router.shutdown().await;
}
