//! The layer's response future and the in-flight guard it carries.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

use super::BoxError;
use super::shed::Shed;
use crate::Router;

/// One admitted request: counted in the layer's in-flight gauge from `call` until it
/// drops, which happens when the response is ready or when the future is dropped
/// unfinished, so the gauge cannot leak.
#[derive(Debug)]
pub(crate) struct InFlight {
    router: Router,
    class: &'static str,
    /// The request's size, if its classifier gave one.
    units: Option<u64>,
    started: Instant,
    /// The layer's gauge; incremented in [`InFlight::start`], decremented in `Drop`.
    gauge: Arc<AtomicUsize>,
}

impl InFlight {
    pub(crate) fn start(
        router: Router,
        class: &'static str,
        units: Option<u64>,
        gauge: Arc<AtomicUsize>,
    ) -> Self {
        // `Relaxed`: a gauge for readers, it orders nothing.
        gauge.fetch_add(1, Relaxed);
        Self {
            router,
            class,
            units,
            started: Instant::now(),
            gauge,
        }
    }

    /// The request answered: its latency is folded into its class, with its size.
    fn finish(self) {
        self.router
            .record_request_for(self.class, self.units, self.started.elapsed());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Relaxed);
    }
}

pin_project! {
    /// Response future of [`super::HelixService`]: the inner service's future, or a shed
    /// answered at once.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F> {
        Shed { shed: Option<Shed> },
        Running {
            #[pin]
            inner: F,
            // Taken when the inner future completes.
            guard: Option<InFlight>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn shed(shed: Shed) -> Self {
        Self {
            state: State::Shed { shed: Some(shed) },
        }
    }

    pub(crate) fn running(inner: F, guard: InFlight) -> Self {
        Self {
            state: State::Running {
                inner,
                guard: Some(guard),
            },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Shed { shed } => Poll::Ready(Err(match shed.take() {
                Some(shed) => Box::new(shed),
                None => "ResponseFuture polled after completion".into(),
            })),
            StateProj::Running { inner, guard } => {
                let out = std::task::ready!(inner.poll(cx));
                if let Some(g) = guard.take() {
                    g.finish();
                }
                Poll::Ready(out.map_err(Into::into))
            }
        }
    }
}
