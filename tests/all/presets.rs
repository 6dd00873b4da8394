//! Presets through the real `kaizen serve`: a preset sets a coherent
//! bundle, any key set in the file, the environment or a flag wins over
//! it, and the host says for every setting where its value came from.

use serde_json::Value;

use crate::kaizen_bin::{Server, refused};

/// The effective setting `key`: (value, source).
fn setting(config: &Value, key: &str) -> (Value, String) {
    let s = config["settings"].as_array().unwrap().iter().find(|s| s["key"] == key);
    let s = s.unwrap_or_else(|| panic!("no setting {key}"));
    (s["value"].clone(), s["source"].as_str().unwrap().to_string())
}

#[test]
fn a_preset_sets_its_bundle_and_every_explicit_key_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kaizen.toml");
    std::fs::write(
        &file,
        "[safety]\npreset = \"aggressive\"\n[safety.limits]\nbake_secs = 5\n\
         [safety.targets.pay]\npreset = \"conservative\"\n",
    )
    .unwrap();
    let s = Server::start(
        dir.path(),
        &[("KAIZEN_SAFETY__LIMITS__MIN_EXECUTIONS", "7")],
        &["--config", file.to_str().unwrap()],
    );
    let c = s.get("/api/v1/config");
    assert_eq!(c["preset"], "aggressive");
    let from_file = format!("file {}", file.display());
    // The key the file sets, from the file; the rest of the bundle, from
    // the preset; the environment over both; a flag over everything.
    assert_eq!(setting(&c, "safety.limits.bake_secs"), (5.into(), from_file.clone()));
    assert_eq!(setting(&c, "safety.limits.judge.threshold"), (0.15.into(), "preset aggressive".into()));
    assert_eq!(setting(&c, "safety.limits.concurrent_rollouts"), (5.into(), "preset aggressive".into()));
    assert_eq!(setting(&c, "safety.limits.improvements_per_cycle"), (5.into(), "preset aggressive".into()));
    assert_eq!(setting(&c, "loop.interval_secs"), (21600.0.into(), "preset aggressive".into()));
    assert_eq!(
        setting(&c, "safety.limits.min_executions"),
        (7.into(), "env KAIZEN_SAFETY__LIMITS__MIN_EXECUTIONS".into())
    );
    assert_eq!(setting(&c, "listen").1, "flag --listen");
    assert_eq!(setting(&c, "safety.preset"), ("aggressive".into(), from_file.clone()));
    // What nobody set keeps its default.
    assert_eq!(setting(&c, "telemetry.sample_requests_every").1, "default");
    // A target's preset sets its limits over the global ones.
    assert_eq!(
        setting(&c, "safety.targets.pay.limits.judge.threshold"),
        (0.05.into(), "preset conservative for pay".into())
    );
    assert_eq!(setting(&c, "safety.targets.pay.limits.bake_secs").0, 7200);

    // `kaizen status` says the same in words: the preset and every
    // setting not at its default, with its source.
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok, "{err}");
    assert!(out.contains("configuration: preset aggressive"), "{out}");
    let bake = out.lines().find(|l| l.starts_with("safety.limits.bake_secs")).unwrap_or_else(|| panic!("{out}"));
    assert!(bake.contains(" 5 ") && bake.contains(&from_file), "{bake}");
    let threshold = out.lines().find(|l| l.starts_with("safety.limits.judge.threshold ")).unwrap();
    assert!(threshold.contains("0.15") && threshold.ends_with("preset aggressive"), "{threshold}");
}

#[test]
fn an_unknown_preset_is_refused_naming_the_key_and_the_choices() {
    let err = refused("[safety]\npreset = \"reckless\"\n", &[]);
    assert!(err.contains("safety.preset") && err.contains("reckless"), "{err}");
    assert!(err.contains("conservative") && err.contains("aggressive"), "{err}");
    let err = refused("[safety.targets.pay]\npreset = \"fast\"\n", &[]);
    assert!(err.contains("safety.targets.pay.preset") && err.contains("fast"), "{err}");
}
