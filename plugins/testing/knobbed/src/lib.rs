//! Test unit `knobbed`: echoes its request, with three tunables —
//! `spin` (extra integer-mixing rounds per call, 0 to 1 000 000: slower,
//! same answer), `fail_pct` (the share of requests, chosen by a hash of the
//! request, answered `internal`: a config that breaks the unit) and
//! `format` (`plain` or `json`, which changes the answer and so is not safe
//! to canary).

use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Tunable, Unit, UnitError};

pub struct Knobbed;

impl Unit for Knobbed {
    fn describe() -> PluginInfo {
        PluginInfo::new("knobbed", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Test unit with tunables")
            .tunable(Tunable::integer("spin", 0, 1_000_000, 0).unit("rounds").describe("extra work per call"))
            .tunable(Tunable::integer("fail_pct", 0, 100, 0).unit("%").describe("requests answered internal"))
            .tunable(Tunable::choice("format", &["plain", "json"], "plain").not_canary_safe())
    }

    fn invoke(_ctx: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError> {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in request {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        for _ in 0..config.u64("spin", 0) {
            h = std::hint::black_box(h.rotate_left(5) ^ 0x9e37_79b9_7f4a_7c15);
        }
        if h % 100 < config.u64("fail_pct", 0) {
            return Err(UnitError::new(ErrorClass::Internal, "failed as fail_pct says"));
        }
        Ok(match config.get("format").as_deref() {
            Some("json") => format!("{{\"echo\":{:?}}}", String::from_utf8_lossy(request)).into_bytes(),
            _ => request.to_vec(),
        })
    }
}

kaizen_sdk::export_unit!(Knobbed);
