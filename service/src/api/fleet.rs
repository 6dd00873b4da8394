//! The fleet (admin token): the hosts sharing this host's PostgreSQL
//! database, which of them leads the loop, and its lease's fencing epoch.

use axum::Json;
use axum::extract::State;
use kaizen_host::fleet::MemberView;
use kaizen_host::store::fleet::Lease;
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
    /// The host answering (absent on SQLite).
    pub this_host: Option<String>,
    /// The leader's lease, with its fencing epoch.
    pub lease: Option<Lease>,
    /// The database's clock when read, Unix ms (absent on SQLite).
    pub now: Option<i64>,
    /// Every host that joined (none on SQLite).
    pub hosts: Vec<MemberView>,
}

/// The hosts of the fleet: id, address, role (`leader`, `follower`,
/// `gone`), last heartbeat, version and start; the leader's lease with its
/// fencing epoch and expiry (the database's clock).
#[utoipa::path(get, path = "/api/v1/fleet", tag = "service", security(("admin" = [])),
    responses((status = 200, body = FleetStatus)))]
pub async fn fleet(_: Admin, State(s): State<AppState>) -> ApiResult<Json<FleetStatus>> {
    let leading = s.host.leadership.is_leader();
    let Some(f) = &s.host.fleet else {
        return Ok(Json(FleetStatus {
            enabled: false,
            leading,
            this_host: None,
            lease: None,
            now: None,
            hosts: vec![],
        }));
    };
    let v = f.view().await?;
    Ok(Json(FleetStatus {
        enabled: true,
        leading,
        this_host: Some(v.this_host),
        lease: v.lease,
        now: Some(v.now),
        hosts: v.hosts,
    }))
}
