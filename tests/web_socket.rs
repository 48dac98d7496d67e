//! The service on a real socket (port 0) driven by reqwest: stats, metrics, limits,
//! and the SSE decision feed, including a client that reads nothing for a while.

mod common;

use std::time::{Duration, Instant};

use common::{
    Server, SseReader, assert_conserved, bounded, client, router, run_all_strategies, strategy_jobs,
};
use helixrouter::config::RouterConfig;
use helixrouter::router::{Router, WorkHint};
use helixrouter::types::{RoutingDecision, Strategy};
use helixrouter::web::{AppState, MutationPolicy};
use reqwest::StatusCode;

fn state(r: &Router) -> AppState {
    AppState::new(r.clone(), MutationPolicy::Open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_metrics_and_config_over_a_real_socket() {
    let r = router();
    let server = Server::start(state(&r)).await;
    let c = client();
    let done = run_all_strategies(&r, 2).await;
    assert_eq!(done, 8);

    let health = c.get(server.url("/health")).send().await.expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    let h: serde_json::Value = health.json().await.expect("json");
    assert_eq!(h["status"], "ok");

    let stats: serde_json::Value = c
        .get(server.url("/api/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_conserved(&stats);
    assert_eq!(stats["completed"], 8);

    let m = c.get(server.url("/metrics")).send().await.expect("metrics");
    assert_eq!(m.status(), StatusCode::OK);
    let ct = m.headers()["content-type"]
        .to_str()
        .expect("ct")
        .to_string();
    assert!(ct.starts_with("text/plain"), "{ct}");
    let text = m.text().await.expect("text");
    assert!(
        text.lines().any(|l| l == "helix_completed_total 8"),
        "{text}"
    );

    let patched = c
        .patch(server.url("/api/config"))
        .json(&serde_json::json!({"batch_max_size": 24}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), StatusCode::OK);
    assert_eq!(r.config().batch_max_size, 24);

    // The body limit holds on the wire too (the body is streamed, not just sized).
    let big = format!(r#"{{"batch_max_size": 16{}}}"#, " ".repeat(100 * 1024));
    let too_big = c
        .patch(server.url("/api/config"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("big patch");
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.config().batch_max_size, 24);

    drop(c);
    server.stop().await;
    r.shutdown().await;
}

async fn open_stream(c: &reqwest::Client, server: &Server) -> reqwest::Response {
    let resp = bounded(
        5,
        "open SSE stream",
        c.get(server.url("/api/stream/decisions")).send(),
    )
    .await
    .expect("SSE request");
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"]
        .to_str()
        .expect("ct")
        .to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    resp
}

fn sse_client() -> reqwest::Client {
    // No overall timeout: the stream is long-lived; every read is bounded instead.
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_sends_one_event_per_decision_with_an_id() {
    let r = router();
    let server = Server::start(state(&r)).await;
    let c = sse_client();
    let mut sse = SseReader::new(open_stream(&c, &server).await);

    let jobs = strategy_jobs(500);
    let mut expected = Vec::new();
    for (job, strategy) in jobs {
        expected.push((job.id, strategy));
        assert!(r.submit(job).await.is_some());
    }
    let mut last_id = 0u64;
    for (job_id, strategy) in expected {
        let ev = sse.next_event(5).await;
        assert_eq!(
            ev.event, None,
            "a decision is a default `message` event: {ev:?}"
        );
        let id: u64 = ev
            .id
            .as_deref()
            .expect("every event has an id")
            .parse()
            .expect("numeric id");
        assert!(id > last_id, "ids increase: {id} after {last_id}");
        last_id = id;
        let d: RoutingDecision = serde_json::from_str(&ev.data)
            .unwrap_or_else(|e| panic!("data is a RoutingDecision ({e}): {}", ev.data));
        assert_eq!(d.job_id, job_id);
        assert_eq!(d.strategy, strategy);
        assert!(d.kind.is_some());
        assert!(
            d.timestamp_ms > 1_600_000_000_000,
            "unix ms: {}",
            d.timestamp_ms
        );
    }
    // User closures submitted through Router::run are on the feed too.
    assert_eq!(r.run(WorkHint::new(777, 100), || 1).await, Ok(1));
    let ev = sse.next_event(5).await;
    let d: RoutingDecision = serde_json::from_str(&ev.data).expect("decision");
    assert_eq!(
        (d.job_id, d.strategy, d.kind),
        (777, Strategy::Inline, None)
    );

    drop(sse);
    drop(c);
    server.stop().await;
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_never_slows_routing_and_is_told_what_it_missed() {
    let r = Router::new(RouterConfig {
        enable_neural: false,
        decision_log_cap: 64,
        ..RouterConfig::default()
    });
    let server = Server::start(state(&r)).await;
    let c = sse_client();
    // Connected and subscribed, but nothing is read until the jobs are done.
    let resp = open_stream(&c, &server).await;
    let idle_since = Instant::now();

    const JOBS: u64 = 40_000;
    let started = Instant::now();
    let router = r.clone();
    let submitted = bounded(
        15,
        "submitting jobs while a client reads nothing",
        tokio::spawn(async move {
            let mut ok = 0u64;
            for i in 0..JOBS {
                // Paced a little, so the server keeps writing events until the
                // client's socket buffers are full and the broadcast has to skip.
                if i % 500 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if router
                    .run(WorkHint::new(i, 200).budget_ms(10_000), move || i ^ 0x5a)
                    .await
                    .is_ok()
                {
                    ok += 1;
                }
            }
            ok
        }),
    )
    .await
    .expect("submitter");
    let took = started.elapsed();
    assert_eq!(submitted, JOBS, "every job ran");
    assert!(
        took < Duration::from_secs(10),
        "routing was slowed by an idle SSE client: {JOBS} jobs took {took:?}"
    );
    let s = r.stats();
    assert_eq!(s.completed, JOBS, "{s:?}");
    assert_eq!(
        s.submitted,
        s.completed + s.dropped + s.failed + s.in_flight
    );

    // Stay idle for at least 1.5 s in total, then read.
    if let Some(rest) = Duration::from_millis(1_500).checked_sub(idle_since.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let mut sse = SseReader::new(resp);
    // Every job is accounted for, in order: each decision is the next job, and each
    // `lagged` event skips exactly the `missed` jobs the client did not get.
    let (mut next, mut read, mut lags, mut missed_total) = (0u64, 0u64, 0u64, 0u64);
    let mut last_id = 0u64;
    bounded(15, "reading the backlog", async {
        while next < JOBS {
            let ev = sse.next_event(10).await;
            let id: u64 = ev.id.as_deref().expect("id").parse().expect("numeric id");
            assert!(id > last_id, "ids increase");
            last_id = id;
            if ev.event.as_deref() == Some("lagged") {
                let v: serde_json::Value = serde_json::from_str(&ev.data)
                    .unwrap_or_else(|e| panic!("lagged data is JSON ({e}): {}", ev.data));
                assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
                let missed = v["missed"].as_u64().expect("missed is a count");
                assert!(missed > 0, "{v}");
                lags += 1;
                missed_total += missed;
                next += missed;
            } else {
                assert_eq!(ev.event, None, "{ev:?}");
                let d: RoutingDecision = serde_json::from_str(&ev.data).expect("decision");
                assert_eq!(d.job_id, next, "decisions arrive in order, gaps announced");
                next += 1;
                read += 1;
            }
        }
    })
    .await;
    eprintln!("{JOBS} jobs in {took:?}; read {read}, {lags} lagged events, missed {missed_total}");
    assert_eq!(next, JOBS, "the gaps add up exactly");
    assert!(lags >= 1, "the idle client was told it fell behind");
    assert!(missed_total > 0);
    assert_eq!(read + missed_total, JOBS);
    // Caught up: the next event is a live decision.
    assert_eq!(r.run(WorkHint::new(JOBS + 1, 100), || 0).await, Ok(0));
    let ev = sse.next_event(5).await;
    let d: RoutingDecision = serde_json::from_str(&ev.data).expect("live decision");
    assert_eq!(d.job_id, JOBS + 1);

    drop(sse);
    drop(c);
    server.stop().await;
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_are_capped_and_slots_are_freed_on_disconnect() {
    let r = router();
    let server = Server::start(state(&r).with_sse_limit(2)).await;
    let c = sse_client();
    let first = open_stream(&c, &server).await;
    let second = open_stream(&c, &server).await;
    let third = bounded(
        5,
        "third stream",
        c.get(server.url("/api/stream/decisions")).send(),
    )
    .await
    .expect("third");
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = third.json().await.expect("json");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains('2')),
        "names the limit: {body}"
    );
    // Other routes are unaffected by the cap.
    let stats = c.get(server.url("/api/stats")).send().await.expect("stats");
    assert_eq!(stats.status(), StatusCode::OK);

    // Dropping a client frees its slot (once the server notices the closed socket).
    drop(first);
    let reopened = bounded(10, "a freed SSE slot", async {
        let mut n = 0u64;
        loop {
            // Decisions make the server write, so it notices the closed connection.
            let _ = r.run(WorkHint::new(n, 100), || 0).await;
            n += 1;
            let resp = c
                .get(server.url("/api/stream/decisions"))
                .send()
                .await
                .expect("retry");
            if resp.status() == StatusCode::OK {
                return resp;
            }
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let again = c
        .get(server.url("/api/stream/decisions"))
        .send()
        .await
        .expect("fourth");
    assert_eq!(
        again.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "still capped at 2"
    );

    drop((second, reopened, again));
    drop(c);
    server.stop().await;
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_is_not_held_up_by_an_open_event_stream() {
    let r = router();
    let server = Server::start(state(&r)).await;
    let c = sse_client();
    let mut sse = SseReader::new(open_stream(&c, &server).await);
    assert!(r.run(WorkHint::new(1, 100), || 0).await.is_ok());
    let ev = sse.next_event(5).await;
    assert!(ev.id.is_some());
    // The stream stays open on the client side; stopping the server must still finish.
    let stopping = tokio::spawn(server.stop());
    bounded(8, "the SSE stream ends at shutdown", async {
        while let Some(ev) = sse.next_any().await {
            let _ = ev;
        }
    })
    .await;
    bounded(8, "server stopped", stopping).await.expect("stop");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reconnecting_with_last_event_id_is_told_how_many_decisions_it_missed() {
    let r = router();
    let server = Server::start(state(&r)).await;
    let c = sse_client();
    let second = sse_client();

    // Two clients see the same ids for the same decisions.
    let mut first = SseReader::new(open_stream(&c, &server).await);
    let mut other = SseReader::new(open_stream(&second, &server).await);
    for i in 0..3u64 {
        assert_eq!(r.run(WorkHint::new(i, 100), move || i).await, Ok(i));
    }
    let mut last = 0u64;
    for i in 0..3u64 {
        let a = first.next_event(5).await;
        let b = other.next_event(5).await;
        assert_eq!(a.id, b.id, "one id per decision, shared by all clients");
        let d: RoutingDecision = serde_json::from_str(&a.data).expect("decision");
        assert_eq!(d.job_id, i);
        let id: u64 = a.id.as_deref().expect("id").parse().expect("numeric id");
        assert_eq!(d.seq, Some(id), "the id is the decision's feed position");
        last = id;
    }
    drop(first);
    drop(other);
    drop(second);

    // Five decisions while the client is away, then it reconnects where it left off.
    for i in 10..15u64 {
        assert_eq!(r.run(WorkHint::new(i, 100), move || i).await, Ok(i));
    }
    let resp = bounded(
        5,
        "reconnect with Last-Event-ID",
        c.get(server.url("/api/stream/decisions"))
            .header("Last-Event-ID", last.to_string())
            .send(),
    )
    .await
    .expect("SSE request");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut again = SseReader::new(resp);
    assert_eq!(r.run(WorkHint::new(20, 100), || 20u64).await, Ok(20));
    let lag = again.next_event(5).await;
    assert_eq!(lag.event.as_deref(), Some("lagged"), "{lag:?}");
    let v: serde_json::Value = serde_json::from_str(&lag.data).expect("lagged json");
    assert_eq!(v["missed"], 5, "the five decisions made while away: {v}");
    let ev = again.next_event(5).await;
    let d: RoutingDecision = serde_json::from_str(&ev.data).expect("decision");
    assert_eq!(d.job_id, 20);
    assert_eq!(d.seq, Some(last + 6));
    assert_eq!(
        lag.id,
        Some((last + 5).to_string()),
        "lagged names the last missed id"
    );

    drop(again);
    drop(c);
    server.stop().await;
    r.shutdown().await;
}
