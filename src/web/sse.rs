//! The decision feed: one SSE event per `RoutingDecision`. A slow client never slows
//! routing: the broadcast drops what a lagging receiver missed, and the client is told
//! how many with a `lagged` event.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::AppState;
use super::error::AppError;

/// Interval of keep-alive comments.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

static NEXT_EVENT_ID: AtomicU64 = AtomicU64::new(1);

/// `GET /api/stream/decisions`.
pub(crate) async fn decisions(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let permit = state
        .sse_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| AppError::TooManyStreams(state.sse_limit))?;
    let rx = state.router.subscribe_decisions();
    let mut closing = state.closing.subscribe();
    let stream = BroadcastStream::new(rx)
        .map(move |item| {
            // The permit lives as long as the stream: dropping the connection frees the slot.
            let _held = &permit;
            let id = NEXT_EVENT_ID.fetch_add(1, Relaxed).to_string();
            let event = match item {
                Ok(d) => Event::default()
                    .id(id)
                    .json_data(&d)
                    .unwrap_or_else(|_| Event::default().comment("unencodable")),
                Err(BroadcastStreamRecvError::Lagged(missed)) => Event::default()
                    .id(id)
                    .event("lagged")
                    .data(format!("{{\"missed\":{missed}}}")),
            };
            Ok(event)
        })
        // The stream ends when the server shuts down (or its state is gone).
        .take_until(async move {
            let _ = closing.wait_for(|&c| c).await;
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}
