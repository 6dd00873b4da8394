//! The fleet (admin token): the hosts sharing this host's PostgreSQL
//! database, which of them leads the loop, and its lease's fencing epoch.

use axum::Json;
use axum::extract::State;
use kaizen_host::fleet::FleetView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::error::ApiResult;
use crate::tokens::Admin;

/// The fleet as this host sees it; `enabled` is false on SQLite (one host,
/// always its own leader).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FleetStatus {
    pub enabled: bool,
    /// Whether the host answering leads the loop now.
    pub leading: bool,
    /// The hosts, the lease and the database's clock (absent on SQLite).
    #[serde(flatten)]
    pub view: Option<FleetView>,
}

/// The hosts of the fleet: id, address, role (`leader`, `follower`,
/// `gone`), last heartbeat, version and start; the leader's lease with its
/// fencing epoch and expiry (the database's clock).
#[utoipa::path(get, path = "/api/v1/fleet", tag = "service", security(("admin" = [])),
    responses((status = 200, body = FleetStatus)))]
pub async fn fleet(_: Admin, State(s): State<AppState>) -> ApiResult<Json<FleetStatus>> {
    let leading = s.host.leadership.is_leader();
    let view = match &s.host.fleet {
        Some(f) => Some(f.view().await?),
        None => None,
    };
    Ok(Json(FleetStatus { enabled: view.is_some(), leading, view }))
}
