//! `HelixLayer` in front of mock services: admission (by class, and by size within a
//! class), typed sheds, readiness, in-flight accounting and tokio's cooperative budget.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::Duration;

use helixrouter::tower::{Classification, HelixLayer, Shed, ShedReason};
use helixrouter::{Router, RouterConfig};
use http::Request;
use tower::{Layer, Service, ServiceExt, service_fn};

fn req(path: &str, budget_ms: u64) -> Request<()> {
    Request::get(path)
        .header("x-request-budget-ms", budget_ms.to_string())
        .body(())
        .unwrap()
}

/// A request with a budget and, when `bytes` is given, a `content-length` (the default
/// classifier's size).
fn sized_req(path: &str, budget_ms: u64, bytes: Option<u64>) -> Request<()> {
    let mut r = req(path, budget_ms);
    if let Some(n) = bytes {
        r.headers_mut()
            .insert(http::header::CONTENT_LENGTH, n.into());
    }
    r
}

const MS: Duration = Duration::from_millis(1);

#[tokio::test]
async fn admits_under_budget() {
    let router = Router::new(RouterConfig::default());
    let layer = HelixLayer::new(router.clone());
    let svc = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>("ok")
    }));
    for _ in 0..20 {
        let out = svc.clone().oneshot(req("/json", 50)).await;
        assert_eq!(out.ok(), Some("ok"));
    }
    assert_eq!(layer.in_flight(), 0);
    assert_eq!(router.requests_shed("/json"), 0);
    let est = router.class_estimate("/json");
    assert_eq!(
        est.request_samples, 20,
        "every answered request is recorded"
    );
}

#[tokio::test]
async fn sheds_with_a_typed_error_when_learned_latency_exceeds_the_budget() {
    let router = Router::new(RouterConfig::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let svc = HelixLayer::new(router.clone()).layer(service_fn(move |_: Request<()>| {
        seen.fetch_add(1, SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, Infallible>("slow")
        }
    }));
    for _ in 0..helixrouter::router::REQUEST_TRUST_SAMPLES {
        assert!(svc.clone().oneshot(req("/slow", 1_000)).await.is_ok());
    }
    let before = calls.load(SeqCst);
    let err = svc.clone().oneshot(req("/slow", 5)).await.unwrap_err();
    assert!(err.is::<Shed>(), "{err}");
    let shed = err.downcast::<Shed>().unwrap();
    assert_eq!(shed.class, "/slow");
    match shed.reason {
        ShedReason::OverBudget { predicted, budget } => {
            assert!(predicted >= Duration::from_millis(20), "{predicted:?}");
            assert_eq!(budget, Duration::from_millis(5));
        }
        other => panic!("expected OverBudget, got {other:?}"),
    }
    assert!(shed.retry_after >= Duration::from_secs(1));
    assert_eq!(
        calls.load(SeqCst),
        before,
        "a shed request never reaches the service"
    );
    assert_eq!(router.requests_shed("/slow"), 1);
    // A budget the class fits is still admitted, and another class is unaffected.
    assert!(svc.clone().oneshot(req("/slow", 1_000)).await.is_ok());
    assert!(svc.clone().oneshot(req("/other", 5)).await.is_ok());
}

/// A service with one slot: `poll_ready` reserves it (when free), `call` uses it.
#[derive(Clone)]
struct OneSlot {
    /// 1 while a `poll_ready` reservation is held and not yet used by `call`.
    reserved: Arc<AtomicUsize>,
    /// `poll_ready` calls.
    polls: Arc<AtomicUsize>,
    /// Whether the slot is free.
    open: Arc<AtomicUsize>,
}

impl Service<Request<()>> for OneSlot {
    type Response = &'static str;
    type Error = Infallible;
    type Future = std::future::Ready<Result<&'static str, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.polls.fetch_add(1, SeqCst);
        if self.open.load(SeqCst) == 0 {
            return Poll::Pending;
        }
        // Re-polling while holding a reservation keeps the one reservation.
        self.reserved.store(1, SeqCst);
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        assert_eq!(
            self.reserved.swap(0, SeqCst),
            1,
            "call without a reservation"
        );
        std::future::ready(Ok("done"))
    }
}

#[tokio::test]
async fn poll_ready_is_the_inner_services_readiness_and_reserves_nothing_else() {
    let router = Router::new(RouterConfig::default());
    let inner = OneSlot {
        reserved: Arc::default(),
        polls: Arc::default(),
        open: Arc::new(AtomicUsize::new(0)),
    };
    let layer = HelixLayer::new(router.clone());
    let mut svc = layer.layer(inner.clone());
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(
        svc.poll_ready(&mut cx).is_pending(),
        "inner not ready, layer not ready"
    );
    assert_eq!(inner.polls.load(SeqCst), 1, "one inner poll per layer poll");
    inner.open.store(1, SeqCst);
    assert!(svc.poll_ready(&mut cx).is_ready());
    assert_eq!(
        layer.in_flight(),
        0,
        "readiness takes nothing of the layer's"
    );
    assert_eq!(svc.call(req("/r", 100)).await.ok(), Some("done"));
    assert_eq!(inner.reserved.load(SeqCst), 0, "call used the reservation");

    // Teach the class a latency no 1 ms budget fits, then shed one: the inner
    // reservation made by poll_ready is kept for the next call, not duplicated or lost.
    for _ in 0..helixrouter::router::REQUEST_TRUST_SAMPLES {
        router.record_request("/r", Duration::from_millis(30));
    }
    assert!(svc.poll_ready(&mut cx).is_ready());
    let err = svc.call(req("/r", 1)).await.unwrap_err();
    assert!(err.is::<Shed>());
    assert_eq!(
        inner.reserved.load(SeqCst),
        1,
        "the shed call left the inner slot to the next call"
    );
    assert!(svc.poll_ready(&mut cx).is_ready());
    assert_eq!(svc.call(req("/r", 1_000)).await.ok(), Some("done"));
    assert_eq!(inner.reserved.load(SeqCst), 0);
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn dropping_a_response_future_releases_its_in_flight_count() {
    let router = Router::new(RouterConfig::default());
    let layer = HelixLayer::new(router.clone());
    let mut svc = layer.layer(service_fn(|_: Request<()>| {
        std::future::pending::<Result<&'static str, Infallible>>()
    }));
    let a = svc.ready().await.unwrap().call(req("/hang", 100));
    let b = svc.ready().await.unwrap().call(req("/hang", 100));
    assert_eq!(layer.in_flight(), 2);
    {
        let mut a = pin!(a);
        let polled = poll_fn(|cx| Poll::Ready(a.as_mut().poll(cx))).await;
        assert!(polled.is_pending());
        assert_eq!(layer.in_flight(), 2, "polled, still in flight");
    }
    assert_eq!(layer.in_flight(), 1, "dropped after a poll");
    drop(b);
    assert_eq!(layer.in_flight(), 0, "dropped before any poll");
    assert_eq!(
        router.class_estimate("/hang").request_samples,
        0,
        "an unanswered request is no latency sample"
    );
}

#[tokio::test]
async fn no_spurious_not_ready_or_shed_when_the_coop_budget_is_spent() {
    let router = Router::new(RouterConfig::default());
    let mut svc = HelixLayer::new(router).layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>("ok")
    }));
    let total = 10_000;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
    for i in 0..total {
        tx.send(i).unwrap();
    }
    tokio::spawn(async move {
        poll_fn(|cx| {
            // Spend the task's cooperative budget on ready operations.
            let mut received = 0;
            while let Poll::Ready(Some(_)) = rx.poll_recv(cx) {
                received += 1;
            }
            assert!(
                received < total,
                "the budget ran out before the channel did"
            );
            // In the same poll: the layer is ready and admits.
            assert!(svc.poll_ready(cx).is_ready(), "spurious not-ready");
            let mut fut = pin!(svc.call(req("/json", 50)));
            match fut.as_mut().poll(cx) {
                Poll::Ready(Ok(v)) => assert_eq!(v, "ok"),
                Poll::Ready(Err(e)) => panic!("spurious error: {e}"),
                Poll::Pending => panic!("spurious pending"),
            }
            Poll::Ready(())
        })
        .await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_sized_class_sheds_its_huge_requests_and_admits_its_small_ones() {
    let router = Router::new(RouterConfig::default());
    // What `/upload` has taught the router: 200 µs plus 200 ns per byte, from requests
    // of 1 KiB to 128 KiB (0.4 ms to 26 ms).
    for i in 0..64u64 {
        let bytes = 1_024 << (i % 8);
        let latency = Duration::from_nanos(200_000 + 200 * bytes);
        router.record_request_for("/upload", Some(bytes), latency);
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let svc = HelixLayer::new(router.clone()).layer(service_fn(move |_: Request<()>| {
        seen.fetch_add(1, SeqCst);
        async { Ok::<_, Infallible>("stored") }
    }));

    // 4 MiB: the size fit predicts ~0.8 s, which no 100 ms budget fits.
    let huge = 4u64 << 20;
    let err = svc
        .clone()
        .oneshot(sized_req("/upload", 100, Some(huge)))
        .await
        .unwrap_err();
    let shed = err.downcast::<Shed>().expect("a typed shed");
    assert_eq!((shed.class, shed.units), ("/upload", Some(huge)));
    match shed.reason {
        ShedReason::OverBudget { predicted, budget } => {
            assert!(predicted >= 400 * MS, "{predicted:?}");
            assert_eq!(budget, 100 * MS);
        }
        other => panic!("expected OverBudget, got {other:?}"),
    }
    assert!(shed.to_string().contains("of size 4194304"), "{shed}");
    assert_eq!(
        calls.load(SeqCst),
        0,
        "the shed request never reached the service"
    );
    assert_eq!(router.requests_shed("/upload"), 1);

    // The class as a whole (a few ms) fits: without a size the same request is admitted,
    // as every request of the class was before sizes.
    let whole = router.class_estimate("/upload");
    let whole_p90 = whole.request_p90_ns.unwrap();
    assert!((2_000_000..100_000_000).contains(&whole_p90), "{whole:?}");
    assert_eq!(
        svc.clone()
            .oneshot(sized_req("/upload", 100, None))
            .await
            .ok(),
        Some("stored")
    );
    // Small requests of the same class are admitted on their own size, even with a
    // budget the class as a whole does not fit.
    let small = router.class_estimate_for("/upload", Some(2_048));
    assert!(small.request_p90_ns.unwrap() < 2_000_000, "{small:?}");
    for _ in 0..8 {
        let out = svc
            .clone()
            .oneshot(sized_req("/upload", 2, Some(2_048)))
            .await;
        assert_eq!(out.ok(), Some("stored"));
    }
    assert_eq!(calls.load(SeqCst), 9);
    assert_eq!(router.requests_shed("/upload"), 1);
}

#[tokio::test]
async fn answered_requests_are_recorded_with_their_size() {
    let router = Router::new(RouterConfig::default());
    // The class as a whole is slow (30 ms)...
    for _ in 0..64 {
        router.record_request("/sized", 30 * MS);
    }
    // ...but the requests that come through the layer with a size answer at once.
    let layer = HelixLayer::new(router.clone());
    let svc = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>("ok")
    }));
    for i in 0..helixrouter::router::REQUEST_TRUST_SAMPLES {
        let bytes = 1_024 << (i % 4);
        let out = svc
            .clone()
            .oneshot(sized_req("/sized", 1_000, Some(bytes)))
            .await;
        assert_eq!(out.ok(), Some("ok"));
    }
    // The size fit learned only from what the layer recorded with a size.
    let sized = router.class_estimate_for("/sized", Some(2_048));
    assert!(sized.request_ns.unwrap() < 1_000_000, "{sized:?}");
    let whole = router.class_estimate("/sized");
    assert!(whole.request_ns.unwrap() > 5_000_000, "{whole:?}");
    assert_eq!(
        whole.request_samples,
        64 + helixrouter::router::REQUEST_TRUST_SAMPLES
    );
}

#[tokio::test]
async fn a_closure_classifier_gives_a_pair_or_a_sized_classification() {
    let router = Router::new(RouterConfig::default());
    for i in 0..64u64 {
        let rows = 100 << (i % 4);
        router.record_request_for("/query", Some(rows), Duration::from_micros(10 * rows));
    }
    // Today's form: `(class, budget)`, no size; the class as a whole is judged.
    let pair = HelixLayer::with_classifier(router.clone(), |_: &Request<()>| ("/query", 50 * MS))
        .layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>("rows")
        }));
    assert!(pair.oneshot(req("/query?rows=1000000", 50)).await.is_ok());
    // A classifier that knows the size (here from the query string).
    let rows_of = |req: &Request<()>| {
        let c = Classification::new("/query", 50 * MS);
        let rows = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("rows="))
            .and_then(|n| n.parse().ok());
        match rows {
            Some(n) => c.units(n),
            None => c,
        }
    };
    let sized = HelixLayer::with_classifier(router.clone(), rows_of).layer(service_fn(
        |_: Request<()>| async { Ok::<_, Infallible>("rows") },
    ));
    let err = sized
        .clone()
        .oneshot(req("/query?rows=1000000", 50))
        .await
        .unwrap_err();
    assert_eq!(err.downcast::<Shed>().unwrap().units, Some(1_000_000));
    assert!(sized.oneshot(req("/query?rows=100", 50)).await.is_ok());
}
