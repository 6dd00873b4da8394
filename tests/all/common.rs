//! Helpers shared by the tests.

use std::path::PathBuf;
use std::sync::Arc;

use kaizen_host::runtime::types::{CallContext, PluginKind};
use kaizen_host::{Runtime, RuntimeConfig};
use kaizen_plugins::Guest;

/// Compiled components are cached here across tests and runs, so a debug
/// build compiles each guest once rather than once per test.
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kaizen-compiled-cache")
}

/// A runtime over a fresh temporary data directory.
pub fn runtime_with(edit: impl FnOnce(&mut RuntimeConfig)) -> (tempfile::TempDir, Arc<Runtime>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig { cache_dir: Some(shared_cache()), ..Default::default() };
    edit(&mut config);
    let rt = Runtime::new(dir.path(), config).expect("runtime starts");
    (dir, rt)
}

pub fn runtime() -> (tempfile::TempDir, Arc<Runtime>) {
    runtime_with(|_| {})
}

/// Load and install `guest`, returning its bytes.
pub fn install(rt: &Runtime, guest: &Guest) -> Arc<kaizen_host::Plugin> {
    let bytes = guest.load().expect("guest built");
    let plugin = rt.load(guest.package, &bytes).unwrap_or_else(|e| panic!("{} loads: {e}", guest.package));
    rt.install(plugin.clone()).expect("installs");
    plugin
}

pub fn ctx() -> CallContext {
    CallContext { attempt: 1, scope_pct: None, deadline_ms: 5_000 }
}

pub fn json(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

pub fn kind_of(group: &str) -> PluginKind {
    match group {
        "detectors" => PluginKind::Detector,
        "recovery" => PluginKind::Recovery,
        "improvers" => PluginKind::Improver,
        _ => PluginKind::Unit,
    }
}

/// A fresh SQLite database file in a temporary directory.
pub async fn sqlite_db() -> (tempfile::TempDir, kaizen_host::store::Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = kaizen_host::store::Db::open_sqlite_file(&dir.path().join("kaizen.db")).await.unwrap();
    (dir, db)
}

/// The PostgreSQL server the tests use: `KAIZEN_TEST_POSTGRES` (an admin
/// URL such as `postgres://kaizen:kaizen@127.0.0.1:5432/postgres`). Outside
/// CI a missing server skips the test with a notice; in CI it fails it.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("KAIZEN_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must run the PostgreSQL tests: set KAIZEN_TEST_POSTGRES (.ci/run does)")
        }
        _ => {
            eprintln!("NOTICE: PostgreSQL test skipped: KAIZEN_TEST_POSTGRES is not set (see README, Testing)");
            None
        }
    }
}

/// A fresh, empty PostgreSQL database (dropped with the guard).
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> Option<PgDatabase> {
        use sqlx::Connection;
        let admin = postgres_admin_url()?;
        let name = format!("kaizen_test_{}_{}", std::process::id(), rand_suffix());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL reachable at KAIZEN_TEST_POSTGRES");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Some(PgDatabase { url: format!("{base}/{name}"), admin, name })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Best effort, on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
                }
            })
        })
        .join();
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish() % 1_000_000_000
}

/// A host over a fresh data directory, with settings fit for tests: small
/// judge sample sizes, short steps, every request kept for replay.
pub async fn host_with(
    edit: impl FnOnce(&mut kaizen_host::host::HostConfig),
) -> (tempfile::TempDir, std::sync::Arc<kaizen_host::host::Host>) {
    let dir = tempfile::tempdir().unwrap();
    let config = test_host_config(dir.path());
    let mut config = config;
    edit(&mut config);
    let (host, _) = kaizen_host::host::Host::open(config).await.unwrap();
    (dir, host)
}

pub fn test_host_config(dir: &std::path::Path) -> kaizen_host::host::HostConfig {
    let mut c = kaizen_host::host::HostConfig { data_dir: dir.to_path_buf(), ..Default::default() };
    c.runtime.cache_dir = Some(shared_cache());
    // `noisy` draws its transient errors from `wasi:random`.
    c.runtime
        .grants
        .insert("noisy".into(), kaizen_host::Grants { capabilities: vec!["random".into()], ..Default::default() });
    c.telemetry.sample_requests_every = 1;
    c.improve.window_secs = 60;
    c.improve.baseline_secs = 60;
    c.improve.analysis_ms = 50;
    c.improve.prove.shadow_secs = 2;
    c.improve.prove.shadow_min_calls = 5;
    let l = &mut c.safety.limits;
    l.min_executions = 30;
    l.judge.min_samples = 30;
    l.judge.max_samples = 3000;
    l.step_timeout_secs = 60;
    l.bake_secs = 1;
    c
}

/// Deploy a bundled guest directly.
pub async fn deploy(host: &kaizen_host::host::Host, guest: &Guest) -> std::sync::Arc<kaizen_host::Plugin> {
    let p = host.runtime.load(guest.package, &guest.load().unwrap()).unwrap();
    host.deploy(p.clone(), "test", "test setup").await.unwrap();
    p
}

/// Live traffic for `calculator`: the host's own generator at 2000 calls/s.
pub fn traffic(host: &kaizen_host::host::Host) -> kaizen_host::traffic::Traffic {
    kaizen_host::traffic::Traffic::start(host.invoker.clone(), 2000)
}
