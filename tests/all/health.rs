//! Host health: checks stored with what was tried; a slot whose warm
//! instances keep trapping is remediated automatically, the action logged.

use kaizen_host::health::{self, HealthConfig};
use kaizen_host::store;
use kaizen_plugins as guests;

use crate::common::{ctx, deploy, host_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_host_reports_every_dependency_and_slot() {
    let (dir, host) = host_with(|_| {}).await;
    deploy(&host, &guests::UNIT_CALCULATOR_V2).await;
    deploy(&host, &guests::DETECTOR_ANOMALY).await;
    let watch = dir.path().join("watch");
    std::fs::create_dir_all(&watch).unwrap();
    let cfg = HealthConfig { watch_dir: Some(watch), min_free_bytes: 1, ..Default::default() };
    let r = health::run(&host, &cfg).await.unwrap();
    assert!(r.healthy, "{r:?}");
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["database", "disk", "watch-folder", "slot:anomaly", "slot:calculator"]);
    let stored = store::health::recent(&host.db, 1).await.unwrap();
    assert!(stored[0].2);
    assert_eq!(stored[0].3["checks"][4]["detail"], "calculator 2.0.0 answers describe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_dependency_says_what_was_tried() {
    let (dir, host) = host_with(|_| {}).await;
    let cfg =
        HealthConfig { watch_dir: Some(dir.path().join("missing")), min_free_bytes: u64::MAX, ..Default::default() };
    let r = health::run(&host, &cfg).await.unwrap();
    assert!(!r.healthy);
    let watch = r.checks.iter().find(|c| c.name == "watch-folder").unwrap();
    assert!(
        !watch.healthy && watch.tried.contains("create and remove") && watch.detail.contains("missing"),
        "{watch:?}"
    );
    let disk = r.checks.iter().find(|c| c.name == "disk").unwrap();
    assert!(!disk.healthy && disk.tried.starts_with("statvfs("), "{disk:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_slot_that_keeps_trapping_is_remediated() {
    let (_dir, host) = host_with(|_| {}).await;
    let hostile = deploy(&host, &guests::TEST_HOSTILE).await;
    hostile.set_warm(true);
    for _ in 0..3 {
        hostile.invoke(&ctx(), b"trap").await.unwrap_err();
    }
    assert_eq!(hostile.warm_traps(), 3);
    let r = health::run(&host, &HealthConfig { min_free_bytes: 1, ..Default::default() }).await.unwrap();
    let slot = r.checks.iter().find(|c| c.name == "slot:hostile").unwrap();
    assert!(slot.remediation.as_deref().unwrap().contains("3 consecutive traps"), "{slot:?}");
    assert!(!hostile.warm_enabled(), "fresh instances from now on");
    let audit = store::audit::recent(&host.db, Some("hostile"), 5).await.unwrap();
    assert_eq!(audit[0].action, "remediate");
    assert_eq!(hostile.invoke(&ctx(), b"fine").await.unwrap(), b"fine");
}
