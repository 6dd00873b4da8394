//! Test improver `nudge`: for any finding, proposes doubling every
//! canary-safe integer tunable of the target (clamped to its maximum), and,
//! when the target keeps an earlier module version, bringing back the
//! newest one. Its `mode` config makes it misbehave the ways the host must
//! contain: `out-of-bounds` (proposes max + 1 and an undeclared tunable),
//! `unknown-module` (a sha256 the host does not keep), `trap` (panics),
//! `spin` (never returns).

use kaizen_sdk::{
    Change, Config, ImprovementInput, Improver, PluginInfo, PluginKind, Proposal, Setting, TunableType, TunableValue,
};

pub struct Nudge;

impl Improver for Nudge {
    fn describe() -> PluginInfo {
        PluginInfo::new("nudge", PluginKind::Improver, env!("CARGO_PKG_VERSION"), "Test improver doubling knobs")
    }

    fn improve(input: &ImprovementInput, config: &Config) -> Vec<Proposal> {
        let mode = config.get("mode").unwrap_or_default();
        match mode.as_str() {
            "trap" => panic!("nudge was told to trap"),
            "spin" => {
                let mut x = input.seed;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "unknown-module" => {
                return vec![Proposal {
                    change: Change::Module("0".repeat(64)),
                    rationale: "a module nobody has".into(),
                    expected_gain_pct: 1.0,
                }];
            }
            _ => {}
        }
        let mut settings = Vec::new();
        for t in &input.tunables {
            let (TunableType::Integer(range), TunableValue::Integer(now)) = (&t.tunable.type_, &t.current) else {
                continue;
            };
            if !t.tunable.canary_safe {
                continue;
            }
            let value = if mode == "out-of-bounds" { range.max + 1 } else { (now.max(&1) * 2).min(range.max) };
            if value != *now {
                settings.push(Setting { name: t.tunable.name.clone(), value: TunableValue::Integer(value) });
            }
        }
        if mode == "out-of-bounds" {
            settings.push(Setting { name: "no_such_knob".into(), value: TunableValue::Integer(1) });
        }
        let mut out = Vec::new();
        if !settings.is_empty() {
            out.push(Proposal {
                change: Change::Config(settings),
                rationale: format!("double the knobs of {} ({})", input.finding.target, input.finding.kind),
                expected_gain_pct: 10.0,
            });
        }
        if let Some(previous) = input.modules.iter().find(|m| m.state == "previous") {
            out.push(Proposal {
                change: Change::Module(previous.sha256.clone()),
                rationale: format!("bring back {}", previous.version),
                expected_gain_pct: 5.0,
            });
        }
        out
    }
}

kaizen_sdk::export_improver!(Nudge);
