//! The `busy` test unit, shared by its versions: each call does `work`
//! (config, default 1 000 000, about 2 ms) times the version's factor rounds of
//! arithmetic, then echoes the request.

/// `rounds` of a xorshift mix seeded by the request; its result decides
/// nothing, but the optimiser cannot skip it.
pub fn work(request: &[u8], rounds: u64) -> Vec<u8> {
    let mut x = request.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    let mut out = request.to_vec();
    if std::hint::black_box(x) == 0 {
        out.push(b'!');
    }
    out
}

/// Export the `busy` unit doing `$factor` times the configured work.
#[macro_export]
macro_rules! busy_unit {
    ($factor:expr) => {
        use kaizen_sdk::{CallContext, Config, PluginInfo, PluginKind, Unit, UnitError};

        pub struct Busy;

        impl Unit for Busy {
            fn describe() -> PluginInfo {
                PluginInfo::new(
                    "busy",
                    PluginKind::Unit,
                    env!("CARGO_PKG_VERSION"),
                    "Test unit doing fixed work per call",
                )
            }

            fn invoke(_ctx: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError> {
                Ok(busy::work(request, (config.u64("work", 1_000_000) as f64 * $factor) as u64))
            }
        }

        kaizen_sdk::export_unit!(Busy);
    };
}
