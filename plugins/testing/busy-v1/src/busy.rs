//! The `busy` test unit, shared by its versions: each call does `work`
//! (config, default 1 000 000, about 2 ms) times the version's factor rounds of
//! arithmetic, then echoes the request.
//!
//! With `tail_every` = N (config, default 0: off) it has a slow mode too:
//! a call whose request hashes to 0 mod N does `tail_work` (config, default
//! 5 × `work`) times the version's tail factor instead — a bimodal unit
//! whose p50 lies in the fast mode, and whose p95 lies in the slow one when
//! N < 20. The mode is a function of the request: a request replayed does
//! the same work, and each arm gets the same share of slow calls.

/// The request's FNV-1a hash: seeds the work and picks the slow mode.
pub fn hash(request: &[u8]) -> u64 {
    request.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

/// Rounds of work for `request`: `work` × `factor`, or in the slow mode
/// (see the module's docs) `tail_work` × `tail_factor`.
pub fn rounds(request: &[u8], config: &kaizen_sdk::Config, factor: f64, tail_factor: f64) -> u64 {
    let work = config.u64("work", 1_000_000);
    let every = config.u64("tail_every", 0);
    // Fibonacci hashing spreads FNV's weak low bits over the whole word;
    // with the slow mode off, no hash at all.
    let slow = every > 0 && (hash(request).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32).is_multiple_of(every);
    if slow { (config.u64("tail_work", 5 * work) as f64 * tail_factor) as u64 } else { (work as f64 * factor) as u64 }
}

/// `rounds` of a xorshift mix seeded by the request; its result decides
/// nothing, but the optimiser cannot skip it.
pub fn work(request: &[u8], rounds: u64) -> Vec<u8> {
    let mut x = hash(request) | 1;
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

/// Export the `busy` unit doing `$factor` times the configured work, and
/// `$tail` (default `$factor`) times it in the slow mode. Each version's
/// crate includes this file as its root's `mod busy` (`#[path]`), which
/// the expansion reaches through `$crate`.
#[macro_export]
macro_rules! busy_unit {
    ($factor:expr) => {
        $crate::busy_unit!($factor, $factor);
    };
    ($factor:expr, $tail:expr) => {
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
                Ok($crate::busy::work(request, $crate::busy::rounds(request, config, $factor, $tail)))
            }
        }

        kaizen_sdk::export_unit!(Busy);
    };
}
