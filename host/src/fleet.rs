//! A fleet: several hosts on one PostgreSQL database, one of them the
//! loop's leader.
//!
//! Every host serves calls, records telemetry and heals its own calls. Only
//! the leader runs the loop's cycles and rollouts and writes what serves.
//! Leadership is a lease row with an expiry on the database's clock and a
//! fencing epoch that grows with every term (Kleppmann, "How to do
//! distributed locking", 2016: a lease alone cannot stop a paused or
//! partitioned holder; a token the storage checks can). The database is the
//! storage that checks it: a trigger refuses writes to `deployments`,
//! `deployment_history` and `improvements` from any session but the
//! holder's, and stamps them with its epoch
//! (`migrations/postgres/0010_fleet.sql`).
//!
//! A SQLite host has no fleet: [`Leadership::single`] always leads.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPool;

use crate::store::fleet::{self as rows, HostRow, Lease};
use crate::store::{Db, StoreError};

/// The fleet's settings (`[fleet]`); they apply on PostgreSQL only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// This host's id in the fleet: 1 to 32 lowercase letters, digits,
    /// `-`, `_` or `.`. When unset, one is generated at the first start
    /// and kept in `<data_dir>/host-id`.
    pub host_id: Option<String>,
    /// How long a leader's lease lasts unrenewed, in seconds. The leader
    /// renews it every tenth of that; when it dies, another host leads
    /// within about this long.
    pub lease_secs: f64,
    /// The URL other hosts and operators reach this host's API at; the
    /// address it listens on when unset.
    pub advertise_url: Option<String>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig { host_id: None, lease_secs: 5.0, advertise_url: None }
    }
}

impl FleetConfig {
    fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.lease_secs)
    }

    /// How often every host heartbeats, the leader renews its lease and a
    /// follower tries to take an expired one.
    pub fn poll_every(&self) -> Duration {
        self.lease() / 10
    }
}

/// Whether `id` is a valid host id.
pub fn valid_host_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// The file in the data directory that keeps a generated host id.
pub const HOST_ID_FILE: &str = "host-id";

/// This host's id: the configured one, else the one kept in the data
/// directory, else a new one written there.
pub fn host_id(config: &FleetConfig, data_dir: &Path) -> std::io::Result<String> {
    if let Some(id) = &config.host_id {
        return Ok(id.clone());
    }
    let file = data_dir.join(HOST_ID_FILE);
    match std::fs::read_to_string(&file) {
        Ok(s) if valid_host_id(s.trim()) => return Ok(s.trim().to_string()),
        Ok(s) => {
            return Err(std::io::Error::other(format!(
                "{} holds {:?}, which is not a host id (1 to 32 of a-z 0-9 - _ .)",
                file.display(),
                s.trim()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = format!("host-{}", hex::encode(rand::random::<[u8; 4]>()));
    crate::runtime::blobs::write_atomic(&file, format!("{id}\n").as_bytes())?;
    Ok(id)
}

/// Who this process is in the fleet: its host id and this start's
/// instance id.
#[derive(Debug, Clone)]
pub struct Member {
    pub host_id: String,
    pub instance: String,
}

impl Member {
    /// This process: the host id of [`host_id`] and a new instance id.
    pub fn this_process(config: &FleetConfig, data_dir: &Path) -> Result<Member, FleetError> {
        let host_id = host_id(config, data_dir).map_err(FleetError::HostId)?;
        Ok(Member { host_id, instance: hex::encode(rand::random::<[u8; 8]>()) })
    }

    /// The name this process's database sessions carry
    /// (`application_name`), which the fence checks against the lease's
    /// holder.
    pub fn session_name(&self) -> String {
        format!("kaizen/{}/{}", self.host_id, self.instance)
    }
}

/// Why this host may not do something only the leader does.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("this host ({me}) is a follower in the fleet: {}", match leader {
    Some((id, epoch, url)) if !url.is_empty() => format!("the leader, {id} (epoch {epoch}, {url}), runs the loop and deploys; send this there"),
    Some((id, epoch, _)) => format!("the leader, {id} (epoch {epoch}), runs the loop and deploys; send this there"),
    None => "no host leads right now (a new leader is taken within the lease); try again".to_string(),
})]
pub struct NotLeader {
    pub me: String,
    /// The leader's id, epoch and address, when one leads.
    pub leader: Option<(String, i64, String)>,
}

/// Whether this host may act as the loop's leader now. Cheap to clone and
/// to ask (an atomic load and a clock read).
#[derive(Clone, Debug)]
pub struct Leadership(Arc<LeaderState>);

#[derive(Debug)]
struct LeaderState {
    /// `false` on SQLite: a lone host always leads.
    fleet: bool,
    host_id: String,
    leader: AtomicBool,
    epoch: AtomicI64,
    /// When this host's lease runs out by its own clock, counted from the
    /// moment it sent the renewal (so never later than the database's).
    until: Mutex<Option<Instant>>,
    /// The leader as last read: id, epoch, address.
    known: Mutex<Option<(String, i64, String)>>,
}

impl Leadership {
    /// A host without a fleet: it always leads.
    pub fn single() -> Leadership {
        Leadership::new(false, "")
    }

    fn member(host_id: &str) -> Leadership {
        Leadership::new(true, host_id)
    }

    fn new(fleet: bool, host_id: &str) -> Leadership {
        Leadership(Arc::new(LeaderState {
            fleet,
            host_id: host_id.to_string(),
            leader: AtomicBool::new(!fleet),
            epoch: AtomicI64::new(0),
            until: Mutex::new(None),
            known: Mutex::new(None),
        }))
    }

    /// Whether this host is in a fleet (on PostgreSQL).
    pub fn in_fleet(&self) -> bool {
        self.0.fleet
    }

    /// This host's id in the fleet (empty outside one).
    pub fn host_id(&self) -> &str {
        &self.0.host_id
    }

    /// Whether this host leads now: it holds a lease its own clock has not
    /// seen run out.
    pub fn is_leader(&self) -> bool {
        if !self.0.fleet {
            return true;
        }
        self.0.leader.load(Ordering::Acquire) && self.0.until.lock().is_some_and(|u| Instant::now() < u)
    }

    /// The epoch of this host's term, 0 when it does not lead (or has no fleet).
    pub fn epoch(&self) -> i64 {
        if self.is_leader() { self.0.epoch.load(Ordering::Acquire) } else { 0 }
    }

    /// `Ok` when this host leads, else who does.
    pub fn check(&self) -> Result<(), NotLeader> {
        if self.is_leader() {
            return Ok(());
        }
        Err(NotLeader { me: self.0.host_id.clone(), leader: self.0.known.lock().clone() })
    }

    fn held(&self) -> Option<i64> {
        self.0.leader.load(Ordering::Acquire).then(|| self.0.epoch.load(Ordering::Acquire))
    }

    fn set(&self, lease: Option<&Lease>, sent: Instant, lease_len: Duration) {
        match lease {
            Some(l) => {
                self.0.epoch.store(l.epoch, Ordering::Release);
                *self.0.until.lock() = Some(sent + lease_len);
                self.0.leader.store(true, Ordering::Release);
            }
            None => {
                self.0.leader.store(false, Ordering::Release);
                *self.0.until.lock() = None;
            }
        }
    }
}

/// What one round of [`Fleet::tick`] changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    None,
    /// This host took the lease: a new term.
    Elected {
        epoch: i64,
        previous: Option<String>,
    },
    /// This host's term ended (it could not renew in time, or another host
    /// holds the lease).
    Deposed {
        epoch: i64,
        why: String,
    },
}

/// Errors of joining a fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot keep the host id: {0}")]
    HostId(std::io::Error),
    #[error(
        "host id `{id}` is used by a live process (started {started}, last heartbeat {ago_ms} ms ago at {address}): \
         give each host its own `fleet.host_id`, or its own data directory"
    )]
    IdInUse { id: String, started: String, address: String, ago_ms: i64 },
}

/// This host's membership of the fleet on PostgreSQL.
pub struct Fleet {
    pool: PgPool,
    pub host_id: String,
    /// This process start's id (random).
    pub instance: String,
    config: FleetConfig,
    pub leadership: Leadership,
    address: Mutex<String>,
    started_at: i64,
    /// The last time the database answered a heartbeat.
    last_contact: Mutex<Instant>,
    stopping: AtomicBool,
    /// The revision of the desired state this host serves.
    applied: AtomicI64,
    /// One application of the desired state at a time.
    pub applying: tokio::sync::Mutex<()>,
    /// One change of role (elected, deposed) handled at a time.
    pub changing: tokio::sync::Mutex<()>,
    /// The calls of slots in canary, shipped for the leader's judge.
    pub shipper: Arc<Shipper>,
    /// Whether the last round of following the database succeeded: this
    /// host serves the desired state (see [`Fleet::ready`]).
    caught_up: AtomicBool,
    /// What this host's slots serve (JSON), and whether the next heartbeat
    /// must report it (it changed since the last one that did).
    serving: Mutex<(String, bool)>,
}

/// The fleet as one host sees it (the API's `GET /api/v1/fleet`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetView {
    /// The host answering.
    pub this_host: String,
    pub lease: Option<Lease>,
    /// The database's clock when read, Unix ms.
    pub now: i64,
    pub hosts: Vec<MemberView>,
}

/// One member in [`FleetView`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberView {
    #[serde(flatten)]
    pub host: HostRow,
    /// `leader`, `follower`, or `gone` (no heartbeat within two leases).
    pub role: String,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: i64,
}

impl Fleet {
    /// Join the fleet on `db` when it is PostgreSQL (`None` on SQLite) as
    /// `me` (whose [`Member::session_name`] `db`'s sessions carry).
    pub async fn join(db: &Db, config: &FleetConfig, me: Member) -> Result<Option<Arc<Fleet>>, FleetError> {
        let Db::Postgres(pool) = db else { return Ok(None) };
        let Member { host_id, instance } = me;
        let started_at = crate::store::now_ms();
        let row = HostRow {
            id: host_id.clone(),
            instance: instance.clone(),
            address: config.advertise_url.clone().unwrap_or_default(),
            kaizen_version: env!("CARGO_PKG_VERSION").into(),
            started_at,
            heartbeat_at: 0,
            applied_revision: 0,
            serving: Default::default(),
        };
        // A process killed a moment ago still looks alive for up to a
        // lease: wait that out before calling the id taken.
        let stale_ms = (config.lease_secs * 1000.0) as i64;
        let give_up = Instant::now() + config.lease() + Duration::from_secs(1);
        loop {
            match rows::join(pool, &row, stale_ms).await? {
                None => break,
                Some(live) if Instant::now() >= give_up => {
                    let (_, now) = rows::lease(pool).await?;
                    return Err(FleetError::IdInUse {
                        id: live.id,
                        started: crate::store::format_time(live.started_at),
                        address: live.address,
                        ago_ms: now - live.heartbeat_at,
                    });
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let fleet = Arc::new(Fleet {
            pool: pool.clone(),
            leadership: Leadership::member(&host_id),
            host_id,
            instance,
            config: config.clone(),
            address: Mutex::new(row.address),
            started_at,
            last_contact: Mutex::new(Instant::now()),
            stopping: AtomicBool::new(false),
            applied: AtomicI64::new(0),
            serving: Mutex::new((String::from("{}"), false)),
            applying: tokio::sync::Mutex::new(()),
            changing: tokio::sync::Mutex::new(()),
            shipper: Arc::new(Shipper::new(&row.id)),
            caught_up: AtomicBool::new(false),
        });
        Ok(Some(fleet))
    }

    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Set the address this host is reached at (once it listens), unless
    /// `advertise_url` is configured.
    pub fn advertise(&self, url: &str) {
        if self.config.advertise_url.is_none() {
            *self.address.lock() = url.to_string();
        }
    }

    /// Whether the database answered within the last two leases: a host cut
    /// off from it keeps serving what it applied, but is not ready.
    pub fn in_contact(&self) -> bool {
        self.last_contact.lock().elapsed() < 2 * self.config.lease()
    }

    /// Record whether the last round of following the database succeeded.
    pub fn set_caught_up(&self, yes: bool) {
        self.caught_up.store(yes, Ordering::Release);
    }

    /// Whether this host is ready for calls as a member of the fleet: the
    /// database answers its heartbeats and it serves the desired state (a
    /// host that reconnects catches up before it reports ready again).
    pub fn ready(&self) -> bool {
        self.in_contact() && self.caught_up.load(Ordering::Acquire)
    }

    /// One round: heartbeat, then renew the lease (leader) or try to take
    /// it (follower). Run every [`FleetConfig::poll_every`].
    pub async fn tick(&self) -> Result<Change, StoreError> {
        if self.stopping.load(Ordering::Acquire) {
            return Ok(Change::None);
        }
        let address = self.address.lock().clone();
        let was = self.leadership.held();
        let sent = Instant::now();
        let round = async {
            let serving = { self.serving.lock().clone() };
            let report = serving.1.then_some(serving.0.as_str());
            rows::heartbeat(&self.pool, &self.host_id, &self.instance, &address, self.applied(), report).await?;
            if report.is_some() {
                let mut now = self.serving.lock();
                if now.0 == serving.0 {
                    now.1 = false;
                }
            }
            *self.last_contact.lock() = Instant::now();
            let before = if was.is_none() { rows::lease(&self.pool).await?.0 } else { None };
            let lease_ms = self.config.lease().as_millis() as i64;
            let got = rows::acquire(&self.pool, &self.host_id, &self.instance, was, lease_ms).await?;
            Ok::<_, StoreError>((before, got))
        };
        // A round that hangs (a dead connection, a takeover waiting on a
        // stalled leader's transaction) ends as a failed one, so that a
        // leader whose lease runs out by its own clock steps down on time.
        let limit = self.config.lease() / 2;
        let result = match tokio::time::timeout(limit, round).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Corrupt(format!("the fleet's database did not answer within {limit:?}"))),
        };
        let (before, got) = match result {
            Ok(r) => r,
            Err(e) => {
                // Out of contact: a leader whose term runs out by its own
                // clock steps down (its writes are fenced by then anyway).
                if let Some(epoch) = was
                    && !self.leadership.is_leader()
                {
                    self.leadership.set(None, sent, Duration::ZERO);
                    return Ok(Change::Deposed { epoch, why: format!("its lease ran out without a renewal: {e}") });
                }
                return Err(e);
            }
        };
        self.leadership.set(got.as_ref(), sent, self.config.lease());
        match (was, got) {
            (None, Some(l)) => {
                *self.leadership.0.known.lock() = Some((l.holder.clone(), l.epoch, address));
                let previous = before.map(|b| b.holder).filter(|h| *h != self.host_id);
                Ok(Change::Elected { epoch: l.epoch, previous })
            }
            (Some(epoch), None) => {
                // Told even when the lease cannot be read: a term that ended
                // unannounced would leave its rollouts running.
                let lease = rows::lease(&self.pool).await.ok().and_then(|(l, _)| l);
                self.remember(lease.as_ref()).await;
                let why = match lease {
                    Some(l) if l.epoch != epoch => format!("{} leads at epoch {}", l.holder, l.epoch),
                    _ => "its lease could not be renewed in time".to_string(),
                };
                Ok(Change::Deposed { epoch, why })
            }
            (None, None) => {
                self.remember(before.as_ref()).await;
                Ok(Change::None)
            }
            (Some(_), Some(_)) => Ok(Change::None),
        }
    }

    /// Keep who leads (with the address it heartbeats) for [`NotLeader`].
    async fn remember(&self, lease: Option<&Lease>) {
        let known = match lease {
            Some(l) => {
                let hosts = rows::hosts(&self.pool).await.unwrap_or_default();
                let url = hosts.iter().find(|h| h.id == l.holder).map(|h| h.address.clone()).unwrap_or_default();
                Some((l.holder.clone(), l.epoch, url))
            }
            None => None,
        };
        *self.leadership.0.known.lock() = known;
    }

    /// Leave at a graceful shutdown: give the lease up so that another host
    /// leads at once, and mark this host gone.
    pub async fn leave(&self) {
        self.stopping.store(true, Ordering::Release);
        if let Some(epoch) = self.leadership.held() {
            self.leadership.set(None, Instant::now(), Duration::ZERO);
            if let Err(e) = rows::release(&self.pool, &self.host_id, &self.instance, epoch).await {
                tracing::warn!("fleet: cannot give the lease up (it expires by itself): {e}");
            }
        }
        let gone = sqlx::query("UPDATE fleet_hosts SET heartbeat_at = 0 WHERE id = $1 AND instance = $2")
            .bind(&self.host_id)
            .bind(&self.instance)
            .execute(&self.pool)
            .await;
        if let Err(e) = gone {
            tracing::warn!("fleet: cannot mark this host gone: {e}");
        }
    }

    /// The fleet as this host sees it now.
    pub async fn view(&self) -> Result<FleetView, StoreError> {
        let (lease, now) = rows::lease(&self.pool).await?;
        let hosts = rows::hosts(&self.pool).await?;
        let gone_after = 2 * self.config.lease().as_millis() as i64;
        let hosts = hosts
            .into_iter()
            .map(|h| {
                let age = now - h.heartbeat_at;
                let leads =
                    lease.as_ref().is_some_and(|l| l.holder == h.id && l.instance == h.instance && l.expires_at > now);
                let role = if leads {
                    "leader"
                } else if age > gone_after {
                    "gone"
                } else {
                    "follower"
                };
                MemberView { host: h, role: role.into(), heartbeat_age_ms: age }
            })
            .collect();
        Ok(FleetView { this_host: self.host_id.clone(), lease, now, hosts })
    }

    /// The revision of the desired state this host serves.
    pub fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Record that this host serves the desired state of `revision`.
    /// What this host's slots serve now, by slot, for the next heartbeat
    /// to report when it changed (see [`crate::store::fleet::HostRow::serving`]).
    pub fn report_serving(&self, serving: &std::collections::BTreeMap<String, String>) {
        let json = serde_json::to_string(serving).unwrap_or_else(|_| "{}".into());
        let mut s = self.serving.lock();
        if s.0 != json {
            *s = (json, true);
        }
    }

    pub fn set_applied(&self, revision: i64) {
        self.applied.fetch_max(revision, Ordering::AcqRel);
    }

    /// Forget which revision this host serves, so that the next round
    /// applies the whole desired state again (a deposed leader, whose slots
    /// its stopped rollouts may have left anywhere).
    pub fn reset_applied(&self) {
        self.applied.store(0, Ordering::Release);
    }

    /// The newest revision of the desired state.
    pub async fn desired_revision(&self) -> Result<i64, StoreError> {
        rows::desired_revision(&self.pool).await
    }

    /// When the control state last changed anywhere in the fleet (Unix ms).
    pub async fn control_changed_at(&self) -> Result<i64, StoreError> {
        rows::control_changed_at(&self.pool).await
    }

    /// A listener on the desired state's, the control state's and the
    /// submitted candidates' notifications (`kaizen_desired`,
    /// `kaizen_control`, `kaizen_submitted`).
    pub async fn listen(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut l = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        l.listen_all(["kaizen_desired", "kaizen_control", "kaizen_submitted"]).await?;
        Ok(l)
    }

    /// Ship the calls the shipper holds.
    pub async fn ship(&self) -> Result<usize, StoreError> {
        self.shipper.ship(&self.pool).await
    }

    /// Leader's housekeeping: forget shipped calls older than ten minutes.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        rows::prune_arm_calls(&self.pool, 600_000).await
    }

    /// Queue candidate `module_id` (its bytes kept already) for the leader's loop.
    pub async fn submit(&self, module_id: &str, source: &str) -> Result<i64, StoreError> {
        rows::submit(&self.pool, module_id, source, &self.host_id).await
    }

    /// The candidates followers queued and no leader took yet: (id, module
    /// id, source, host).
    pub async fn submissions(&self) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        rows::submissions(&self.pool).await
    }

    /// Mark a follower's submission taken into this leader's queue.
    pub async fn mark_taken(&self, id: i64) -> Result<(), StoreError> {
        rows::mark_taken(&self.pool, id).await
    }

    /// Pass a rollback request made here to the leader.
    pub async fn request_rollback(&self, target: &str, reason: &str) -> Result<(), StoreError> {
        rows::request_rollback(&self.pool, &self.host_id, target, reason).await
    }

    /// Take the rollback requests followers passed on: (host, target, reason).
    pub async fn take_rollback_requests(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        rows::take_rollback_requests(&self.pool).await
    }

    /// When this process started, Unix ms.
    pub fn started_at(&self) -> i64 {
        self.started_at
    }

    /// Keep the bytes of a module (`kind` `module`) or config version
    /// (`config`) in the database, for hosts that never saw them.
    pub async fn keep_blob(&self, kind: &str, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if !rows::has_blob(&self.pool, kind, sha256).await? {
            rows::put_blob(&self.pool, kind, sha256, bytes).await?;
        }
        Ok(())
    }

    /// The bytes of `kind` kept under `sha256`, verified against it.
    pub async fn fetch_blob(&self, kind: &str, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(bytes) = rows::blob(&self.pool, kind, sha256).await? else { return Ok(None) };
        let got = crate::runtime::blobs::sha256_hex(&bytes);
        if got != sha256 {
            return Err(StoreError::Corrupt(format!("{kind} {sha256} in the database hashes to {got}")));
        }
        Ok(Some(bytes))
    }
}

/// A follower's shipment of the calls of the slots in canary, for the
/// leader's judge ([`crate::store::fleet::ship`]): the call path appends
/// to a buffer; a task ships it every [`SHIP_EVERY`].
pub struct Shipper {
    host: String,
    buffer: Mutex<Vec<rows::ArmCall>>,
    /// Slots whose calls are shipped now.
    pub slots: Mutex<std::collections::HashSet<String>>,
}

/// How often a follower ships its calls of the slots in canary.
pub const SHIP_EVERY: Duration = Duration::from_millis(100);

/// Calls shipped in one statement.
const SHIP_CHUNK: usize = 5_000;

/// At most this many calls wait for shipping (the rest are dropped while the
/// database does not answer).
const SHIP_BUFFER: usize = 200_000;

impl Shipper {
    pub fn new(host: &str) -> Shipper {
        Shipper { host: host.to_string(), buffer: Mutex::default(), slots: Mutex::default() }
    }

    /// Ship what the buffer holds, in statements of at most
    /// [`SHIP_CHUNK`] calls (PostgreSQL takes at most 65 535 parameters,
    /// seven per call). What could not be shipped goes back to the buffer.
    pub async fn ship(&self, pool: &PgPool) -> Result<usize, StoreError> {
        let calls = std::mem::take(&mut *self.buffer.lock());
        for (i, chunk) in calls.chunks(SHIP_CHUNK).enumerate() {
            if let Err(e) = rows::ship(pool, chunk).await {
                let mut buffer = self.buffer.lock();
                let mut kept = calls[i * SHIP_CHUNK..].to_vec();
                kept.append(&mut buffer);
                kept.truncate(SHIP_BUFFER);
                *buffer = kept;
                return Err(e);
            }
        }
        Ok(calls.len())
    }
}

impl crate::invoke::CallListener for Shipper {
    fn on_call(&self, r: &crate::invoke::CallRecord) {
        let class = r.class();
        let mut buffer = self.buffer.lock();
        if buffer.len() < SHIP_BUFFER {
            buffer.push(rows::ArmCall {
                host: self.host.clone(),
                slot: r.slot.clone(),
                sha256: r.sha256.clone(),
                control: r.control,
                started_at: r.started_at,
                latency_ms: r.latency_ms,
                class,
            });
        }
    }
}
