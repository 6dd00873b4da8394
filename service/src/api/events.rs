//! The live event stream (server-sent events): findings, proof steps,
//! canary steps, verdicts, promotions, rollbacks, recovery episodes,
//! control changes, cycles, watch-folder results. The dashboard reads it;
//! so can `curl -N`. Each SSE event's name is the host event's kind and its
//! data the event as JSON: an `Envelope` (`{at, target, kind, detail}`),
//! whose `kind` and `detail` are one variant of `Event` — both schemas are
//! in the OpenAPI document. A watcher too slow to keep up gets a `lagged`
//! event (`{"missed": N}`) saying how many it missed, never a stalled loop.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use kaizen_host::events::Envelope;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::{AppState, Params};
use crate::tokens::Admin;

/// The data of a `lagged` event: how many events a slow watcher missed.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Lagged {
    pub missed: u64,
}

/// One server-sent event as it is on the wire: its name (`event`) and its
/// JSON `data`, an [`Envelope`] (or [`Lagged`]). Documented with
/// `contentSchema` so that a client (or a fuzzer) can check the data too.
pub struct StreamEvent;

impl PartialSchema for StreamEvent {
    fn schema() -> RefOr<Schema> {
        let data = OneOfBuilder::new()
            .item(Ref::from_schema_name(Envelope::name()))
            .item(Ref::from_schema_name(Lagged::name()))
            .build();
        let data = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("The event as JSON: an Envelope, or for `lagged` how many were missed"))
            .content_media_type("application/json")
            .extensions(Some(utoipa::openapi::extensions::Extensions::from_iter([(
                "contentSchema",
                serde_json::to_value(data).unwrap_or_default(),
            )])))
            .build();
        let event = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("The host event's `kind`, or `lagged`"))
            .build();
        ObjectBuilder::new().property("event", event).property("data", data).required("event").required("data").into()
    }
}

impl ToSchema for StreamEvent {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Envelope::name().into(), Envelope::schema()));
        Envelope::schemas(schemas);
        schemas.push((Lagged::name().into(), Lagged::schema()));
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Comma-separated kinds to receive (all when absent): the `kind`s of
    /// `Event`.
    #[param(nullable = false)]
    pub kinds: Option<String>,
    /// The admin token, for clients that cannot set headers (browsers'
    /// EventSource).
    #[param(nullable = false)]
    pub token: Option<String>,
}

/// Live loop events as server-sent events.
#[utoipa::path(get, path = "/api/v1/events", tag = "service", security(("admin" = [])),
    params(EventQuery),
    responses((status = 200, description = "text/event-stream of host events: each SSE event is named by the \
        event's kind and carries an Envelope as JSON data", body = StreamEvent, content_type = "text/event-stream"),
        (status = 400, description = "A parameter the route does not take", body = crate::error::ErrorBody)))]
pub async fn events(
    _: Admin,
    State(s): State<AppState>,
    Params(q): Params<EventQuery>,
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
                    SseEvent::default().event("lagged").json_data(Lagged { missed: n }).ok()
                }
            };
            futures::future::ready(out.map(Ok))
        })
        .take_until(s.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}
