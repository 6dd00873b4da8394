//! The live event stream (server-sent events): findings, proof steps,
//! canary steps, verdicts, promotions, rollbacks, recovery episodes,
//! control changes, cycles, watch-folder results. The dashboard reads it;
//! so can `curl -N`. Each SSE event's name is the host event's kind and its
//! data the event as JSON: an `Envelope` (`{at, target, kind, detail}`),
//! whose `kind` and `detail` are one variant of `Event` — both schemas are
//! in the OpenAPI document. A watcher too slow to keep up gets a `lagged`
//! event (`{"missed": N}`) saying how many it missed, never a stalled loop.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use kaizen_host::events::Envelope;

use super::AppState;
use crate::tokens::Admin;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventQuery {
    /// Comma-separated kinds to receive (all when absent): the `kind`s of
    /// `Event`.
    pub kinds: Option<String>,
    /// The admin token, for clients that cannot set headers (browsers'
    /// EventSource).
    pub token: Option<String>,
}

/// Live loop events as server-sent events.
#[utoipa::path(get, path = "/api/v1/events", tag = "service", security(("admin" = [])),
    params(EventQuery),
    responses((status = 200, description = "text/event-stream of host events: each SSE event is named by the \
        event's kind and carries an Envelope as JSON data", body = Envelope, content_type = "text/event-stream")))]
pub async fn events(
    _: Admin,
    State(s): State<AppState>,
    Query(q): Query<EventQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let kinds: Option<Vec<String>> = q.kinds.map(|k| k.split(',').map(|s| s.trim().to_string()).collect());
    let stream = BroadcastStream::new(s.host.events.subscribe())
        .filter_map(move |item| {
            let out = match item {
                Ok(e) if kinds.as_ref().is_none_or(|k| k.iter().any(|k| k == e.event.kind())) => {
                    SseEvent::default().event(e.event.kind()).json_data(&e).ok()
                }
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    Some(SseEvent::default().event("lagged").data(format!("{{\"missed\":{n}}}")))
                }
            };
            futures::future::ready(out.map(Ok))
        })
        .take_until(s.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}
