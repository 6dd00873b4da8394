//! The HTTP API: one module per concern, assembled into one router whose
//! OpenAPI document is generated from the handlers' annotations (so the
//! reference cannot drift from the code).

pub mod calls;
pub mod candidates;
pub mod control;
pub mod dashboard;
pub mod deployments;
pub mod events;
pub mod findings;
pub mod fleet;
pub mod history;
pub mod knowledge;
pub mod metrics;
pub mod observe;
mod optional_json;
mod params;
pub mod plugins;
mod responses;
pub mod rollouts;
pub mod tune;
mod unread_body;

pub use optional_json::OptionalJson;
pub use params::Params;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kaizen_host::host::Host;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::ServeConfig;
use crate::error::{self, ApiError};
use crate::tokens::{Caller, HasTokens, Tokens};
use crate::views::Health;
use crate::watch::WatchStats;
use crate::webhooks;

/// What every handler can reach.
pub struct Inner {
    pub host: Arc<Host>,
    pub tokens: Tokens,
    pub config: ServeConfig,
    pub ready: AtomicBool,
    pub watch: Option<Arc<WatchStats>>,
    pub webhooks: Arc<webhooks::Counters>,
    /// Cancelled when the service shuts down: ends the event streams, which
    /// would otherwise hold graceful shutdown open forever.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The router's state.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl HasTokens for AppState {
    fn tokens(&self) -> &Tokens {
        &self.0.tokens
    }
}

/// What a plugin, slot or unit name must match (the document's `pattern`
/// for every such parameter; [`checked_name`] enforces it).
pub const NAME_PATTERN: &str = "^[a-z][a-z0-9-]{0,63}$";

/// Raw bytes in whatever format the receiver speaks (a unit's request or
/// answer, a `.wasm` module).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawBytes(pub Vec<u8>);

/// Path parameters naming a plugin, slot or unit: the plugin naming rule
/// (lowercase letters, digits, `-`), so no path traversal, no control
/// characters and nothing that could smuggle syntax into a log line.
pub fn checked_name(what: &str, name: &str) -> Result<(), ApiError> {
    if kaizen_host::runtime::validate::valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid {what} name {:?}: use 1-64 lowercase letters, digits and `-`, starting with a letter",
            name.chars().take(80).collect::<String>()
        )))
    }
}

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        c.add_security_scheme("admin", bearer());
        c.add_security_scheme("invoke", bearer());
        c.add_security_scheme("metrics", bearer());
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kaizen",
        description = "A WebAssembly plugin host running a safe, autonomous improvement loop. Every route but \
`/healthz` and the dashboard page (`/dashboard`, and `/` which redirects to it; neither is an API route) needs a \
token: `Authorization: Bearer <token>`; a missing or unknown one is answered 401. The invoke token may invoke \
units and send telemetry; the metrics token may only read `/metrics` (for a Prometheus scraper); the admin \
token may do everything. A token on a route its rights do not cover is answered 403. Errors are JSON: `{code, message}`. Names of plugins, slots and units match \
`^[a-z][a-z0-9-]{0,63}$`; any other is answered 400."
    ),
    modifiers(&Security),
    tags(
        (name = "calls", description = "Invoking units and sending telemetry (invoke token)"),
        (name = "plugins", description = "Plugins, versions, deployments and rollbacks"),
        (name = "loop", description = "What the loop found and did"),
        (name = "control", description = "Pausing, stopping and steering the loop (admin token)"),
        (name = "service", description = "Health, metrics, events")
    )
)]
struct ApiDoc;

/// Whether the host is ready to take calls and its background tasks run.
/// Needs no token. 200 `ready`, or 200 `degraded` when a task panicked
/// since start and runs again or a slot serves nothing because its version
/// could not be loaded at start (calls are served: a load balancer keeps
/// the host); 503 `not-ready` while the host starts or stops, and 503
/// `unhealthy` while a supervised task (the loop, the telemetry writer, …)
/// is down — the body names it, since when and why.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses(
        (status = 200, description = "Ready, or degraded: a background task panicked and runs again, or a \
slot serves nothing because its version could not be loaded at start", body = Health),
        (status = 503, description = "Starting or shutting down (`not-ready`), or a background task is down \
(`unhealthy`)", body = Health)
    ))]
async fn healthz(State(s): State<AppState>) -> Response {
    if !s.ready.load(Ordering::Relaxed) {
        let health = Health {
            status: "not-ready".into(),
            message: "the host is starting or shutting down".into(),
            tasks: s.host.tasks.list(),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(health)).into_response();
    }
    if let Some(f) = &s.host.fleet
        && !f.ready()
    {
        let message = if f.in_contact() {
            "this host does not serve the fleet's desired state: its last attempt to follow it failed (it serves \
             what it applied last, and tries again every second)"
        } else {
            "this host cannot reach the fleet's database: it serves what it last applied, but a load balancer \
             should send calls to other hosts"
        };
        let health = Health { status: "not-ready".into(), message: message.into(), tasks: s.host.tasks.list() };
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(health)).into_response();
    }
    let health = Health::of(s.host.tasks.list(), &s.host.unrestored());
    let status = if health.status == "unhealthy" { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (status, axum::Json(health)).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "service", security(("invoke" = []), ("admin" = [])),
    responses((status = 200, description = "The OpenAPI 3 document", body = Object)))]
async fn openapi_json(_: Caller) -> Response {
    axum::Json(openapi()).into_response()
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
        .routes(routes!(metrics::metrics))
        .routes(routes!(events::events))
        .routes(routes!(calls::invoke))
        .routes(routes!(calls::ingest))
        .routes(routes!(tune::tune))
        .routes(routes!(plugins::list, plugins::upload))
        .routes(routes!(plugins::versions))
        .routes(routes!(deployments::list))
        .routes(routes!(deployments::history))
        .routes(routes!(deployments::rollback))
        .routes(routes!(deployments::instances, deployments::set_instances))
        .routes(routes!(rollouts::in_flight))
        .routes(routes!(rollouts::abort_rollout))
        .routes(routes!(candidates::queued))
        .routes(routes!(candidates::withdraw))
        .routes(routes!(observe::status))
        .routes(routes!(fleet::fleet))
        .routes(routes!(observe::config))
        .routes(routes!(observe::units))
        .routes(routes!(history::history))
        .routes(routes!(knowledge::knowledge))
        .routes(routes!(observe::findings))
        .routes(routes!(findings::finding))
        .routes(routes!(findings::act))
        .routes(routes!(observe::improvements))
        .routes(routes!(observe::cycles, control::cycle))
        .routes(routes!(observe::cycle))
        .routes(routes!(observe::recovery))
        .routes(routes!(observe::audit))
        .routes(routes!(observe::deliveries))
        .routes(routes!(control::breakers))
        .routes(routes!(control::force_breaker))
        .routes(routes!(control::control))
        .routes(routes!(control::freeze, control::lift_freeze))
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().split_for_parts().1;
    responses::add_common(&mut doc);
    doc
}

/// The whole router: API, dashboard, error shaping, panic catching, body
/// limits.
pub fn router(state: AppState) -> Router {
    let limit = state.config.http.max_body_bytes;
    let (api, _) = api_router().split_for_parts();
    api.merge(dashboard::routes())
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn(move |req, next| error::json_errors(limit, req, next)))
        .layer(axum::middleware::from_fn(unread_body::close_if_unread))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    /// `docs/openapi.json` is the API reference the README links to; it must
    /// be exactly what the code generates (`kaizen openapi > docs/openapi.json`).
    #[test]
    fn the_committed_reference_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = super::openapi().to_pretty_json().unwrap();
        assert!(
            committed.trim() == generated.trim(),
            "docs/openapi.json is stale: regenerate it with `cargo run -- openapi > docs/openapi.json`"
        );
    }
}
