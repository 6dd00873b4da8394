//! A fleet end to end: real `kaizen serve` processes, each with its own
//! data directory and port, on one real PostgreSQL database on loopback.
//! One leads; the others serve what it deploys; a follower refuses to
//! change what serves; an emergency stop on any host reaches all; kill -9
//! of the leader hands the lease to another within the lease, at a higher
//! epoch, and the database refuses the deposed leader's writes.

use std::time::{Duration, Instant};

use kaizen_plugins::UNIT_CALCULATOR_V2;

use crate::common::PgDatabase;
use crate::kaizen_bin::{Server, wait_for};

const ADD: &str = r#"{"op":"add","a":2,"b":3}"#;

/// The lease the tests run with (the default is 5 s).
const LEASE_SECS: &str = "2";

fn database() -> Option<PgDatabase> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(PgDatabase::create())
}

fn host(dir: &std::path::Path, db: &PgDatabase) -> Server {
    Server::start(dir, &[("KAIZEN_FLEET__LEASE_SECS", LEASE_SECS)], &["--database-url", &db.url])
}

fn fleet(s: &Server) -> serde_json::Value {
    s.get("/api/v1/fleet")
}

fn leading(s: &Server) -> bool {
    s.http
        .get(format!("{}/api/v1/fleet", s.url))
        .bearer_auth(&s.admin)
        .send()
        .ok()
        .and_then(|r| r.json::<serde_json::Value>().ok())
        .is_some_and(|f| f["leading"] == true)
}

/// The epochs of the `lead` entries of the audit trail, oldest first.
fn lead_epochs(s: &Server) -> Vec<i64> {
    let audit = s.get("/api/v1/audit?limit=500");
    let mut epochs: Vec<(i64, i64)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "lead" && e["target"] == "fleet")
        .map(|e| (e["id"].as_i64().unwrap(), e["detail"]["epoch"].as_i64().unwrap()))
        .collect();
    epochs.sort();
    epochs.into_iter().map(|(_, e)| e).collect()
}

#[test]
fn a_fleet_follows_one_leader_and_fails_over_when_it_dies() {
    let Some(db) = database() else { return };
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = host(da.path(), &db);
    let f = fleet(&a);
    assert_eq!((f["enabled"].as_bool(), f["leading"].as_bool()), (Some(true), Some(true)), "{f}");
    assert_eq!(f["lease"]["epoch"], 1, "the first leader's term is epoch 1: {f}");
    let a_id = f["this_host"].as_str().unwrap().to_string();

    // B never saw a module: it restores every slot from the database's bytes.
    let b = host(db_dir.path(), &db);
    let f = fleet(&b);
    assert_eq!(f["leading"], false, "{f}");
    let roles: Vec<(String, String)> = f["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].as_str().unwrap().into(), h["role"].as_str().unwrap().into()))
        .collect();
    assert_eq!(roles.iter().filter(|(_, r)| r == "leader").count(), 1, "{roles:?}");
    assert!(roles.contains(&(a_id.clone(), "leader".into())), "{roles:?}");
    assert_eq!(b.invoke("calculator", ADD), (200, "1.0.0".into(), r#"{"result":5}"#.into()));

    // A follower does not change what serves: it names the leader.
    let r = b
        .http
        .post(format!("{}/api/v1/plugins?mode=deploy", b.url))
        .bearer_auth(&b.admin)
        .header("content-type", "application/wasm")
        .body(UNIT_CALCULATOR_V2.load().unwrap())
        .send()
        .unwrap();
    let (status, body) = (r.status().as_u16(), r.text().unwrap());
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not-leader") && body.contains(&a_id) && body.contains(&a.url), "{body}");
    assert_eq!(b.serving("calculator").as_deref(), Some("1.0.0"));

    // What the leader deploys, every host serves.
    a.deploy(UNIT_CALCULATOR_V2.load().unwrap());
    wait_for("the follower to serve calculator 2.0.0", Duration::from_secs(10), || {
        b.invoke("calculator", ADD).1 == "2.0.0"
    });
    let applied =
        fleet(&a)["hosts"].as_array().unwrap().iter().map(|h| h["applied_revision"].as_i64()).collect::<Vec<_>>();
    assert!(applied.iter().all(|r| r.is_some_and(|r| r > 0)), "{applied:?}");

    // An emergency stop on a follower reaches the leader.
    let (ok, out, err) = b.cli(&["stop"]);
    assert!(ok, "{out}{err}");
    wait_for("the leader to see the stop", Duration::from_secs(10), || a.get("/api/v1/status")["state"] == "stopped");
    let (ok, out, err) = a.cli(&["stop", "--release"]);
    assert!(ok, "{out}{err}");
    wait_for("the follower to see the release", Duration::from_secs(10), || {
        b.get("/api/v1/status")["state"] == "running"
    });

    let (ok, out, err) = b.cli(&["status"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("fleet: {a_id} leads (epoch 1)")) && out.contains("follower"), "{out}");

    // kill -9 the leader: B leads within the lease (plus a poll), at epoch 2.
    let session = {
        let f = fleet(&a);
        format!("kaizen/{}/{}", a_id, f["lease"]["instance"].as_str().unwrap())
    };
    let killed = Instant::now();
    if let Some(mut c) = a.child.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    wait_for("the follower to lead", Duration::from_secs(10), || leading(&b));
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(2 + 2), "failover took {took:?} with a 2 s lease");
    let f = fleet(&b);
    assert_eq!(f["lease"]["epoch"], 2, "{f}");
    assert_eq!(lead_epochs(&b), vec![1, 2], "the audit trail records each term's epoch, increasing");
    assert_eq!(b.invoke("calculator", ADD).1, "2.0.0", "the new leader serves the last desired state");

    // The deposed leader's late write is refused by the database itself.
    let refused = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        use sqlx::ConnectOptions;
        use std::str::FromStr;
        let mut conn = sqlx::postgres::PgConnectOptions::from_str(&db.url)
            .unwrap()
            .application_name(&session)
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE deployments SET reason = 'late write' WHERE slot = 'calculator'")
            .execute(&mut conn)
            .await
            .unwrap_err()
    });
    let code = refused.as_database_error().and_then(|d| d.code()).map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("KZFEN"), "{refused}");

    // The old leader comes back as a follower, serving what B serves.
    let a = host(da.path(), &db);
    assert_eq!(fleet(&a)["leading"], false);
    assert_eq!(fleet(&a)["this_host"], a_id.as_str(), "the host id is kept in the data directory");
    assert_eq!(a.invoke("calculator", ADD).1, "2.0.0");

    // A graceful stop of the leader hands over at once, without waiting out the lease.
    let stopped = Instant::now();
    assert!(b.stop().success());
    wait_for("the restarted host to lead", Duration::from_secs(10), || leading(&a));
    assert!(stopped.elapsed() < Duration::from_secs(2 + 2), "{:?}", stopped.elapsed());
    assert_eq!(lead_epochs(&a), vec![1, 2, 3]);
}
