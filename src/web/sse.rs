//! The decision feed: one SSE event per `RoutingDecision`, its `id:` the decision's
//! feed position (`seq`), the same for every client. A slow client never slows routing:
//! the broadcast drops what a lagging receiver missed, and the client is told how many
//! with a `lagged` event. A client that reconnects with `Last-Event-ID` is told, the
//! same way, how many decisions were made while it was away.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::AppState;
use super::error::AppError;

/// Interval of keep-alive comments.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// A `lagged` event for `missed` decisions, the last of which had position `last_missed`.
fn lagged(missed: u64, last_missed: u64) -> Event {
    Event::default()
        .id(last_missed.to_string())
        .event("lagged")
        .data(format!("{{\"missed\":{missed}}}"))
}

/// `GET /api/stream/decisions`.
pub(crate) async fn decisions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    // Where a reconnecting client left off; anything unparsable counts as a fresh start.
    let mut resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let permit = state
        .sse_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| AppError::TooManyStreams(state.sse_limit))?;
    let rx = state.router.subscribe_decisions();
    let mut pending_missed = 0u64;
    let mut closing = state.closing.subscribe();
    let stream = BroadcastStream::new(rx)
        .flat_map(move |item| {
            // The permit lives as long as the stream: dropping the connection frees the slot.
            let _held = &permit;
            let mut events = Vec::with_capacity(2);
            match item {
                // Reported just before the next decision, whose position tells which
                // ones were missed (and gives the `lagged` event a meaningful id).
                Err(BroadcastStreamRecvError::Lagged(missed)) => pending_missed += missed,
                Ok(d) => {
                    let seq = d.seq.unwrap_or_default();
                    // After a reconnect, the gap since the client's last id covers
                    // everything it missed, a lag included.
                    let missed = match resume_after.take() {
                        Some(last) => seq.saturating_sub(last.saturating_add(1)),
                        None => pending_missed,
                    };
                    pending_missed = 0;
                    if missed > 0 {
                        events.push(lagged(missed, seq.saturating_sub(1)));
                    }
                    events.push(
                        Event::default()
                            .id(seq.to_string())
                            .json_data(d)
                            .unwrap_or_else(|_| Event::default().comment("unencodable")),
                    );
                }
            }
            futures_util::stream::iter(events.into_iter().map(Ok))
        })
        // The stream ends when the server shuts down (or its state is gone).
        .take_until(async move {
            let _ = closing.wait_for(|&c| c).await;
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}
