//! A unit that does what a hostile or broken plugin would, chosen by the
//! request text: `loop` spins forever, `balloon` allocates without bound,
//! `recurse` overflows the stack, `depth:<n>` recurses `n` calls deep on
//! the wasm stack alone (no shadow-stack frames) and answers `n`, `trap`
//! panics, `flood` answers 16 MiB,
//! `sleep:<ms>` waits that long in a WASI sleep (running no wasm meanwhile)
//! and then answers `slept`; anything else is echoed.
//! The host must turn each into one failed call and stay up.

use kaizen_sdk::{CallContext, Config, PluginInfo, PluginKind, Unit, UnitError};

pub struct Hostile;

#[inline(never)]
fn recurse(depth: u64, pad: &mut [u8; 256]) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    pad[(depth % 256) as usize] = depth as u8;
    let mut next = [0u8; 256];
    next.copy_from_slice(pad);
    std::hint::black_box(recurse(depth + 1, std::hint::black_box(&mut next))) + pad[0] as u64
}

/// `n` nested calls using only the wasm stack: no local has its address
/// taken (no `black_box`), so nothing of theirs lives in the shadow stack
/// in linear memory and only the engine's stack limit can stop them. The
/// work after the call keeps the optimizer from turning it into a loop.
#[inline(never)]
fn depth(n: u64) -> u64 {
    if n == 0 { 0 } else { depth(n - 1).wrapping_mul(3).wrapping_add(n) % 1_000_003 }
}

impl Unit for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "hostile",
            PluginKind::Unit,
            env!("CARGO_PKG_VERSION"),
            "Test unit that loops, balloons, recurses or traps on request",
        )
    }

    fn invoke(_ctx: &CallContext, request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        match request {
            b"loop" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            b"balloon" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            b"recurse" => Ok(recurse(0, &mut [0u8; 256]).to_le_bytes().to_vec()),
            b"trap" => panic!("hostile guest asked to trap"),
            b"flood" => Ok(vec![b'x'; 16 << 20]),
            other if other.starts_with(b"depth:") => {
                let n = std::str::from_utf8(&other[6..]).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
                // Kept (not optimized away); the answer is the depth reached.
                std::hint::black_box(depth(n));
                Ok(n.to_string().into_bytes())
            }
            other if other.starts_with(b"sleep:") => {
                let ms = std::str::from_utf8(&other[6..]).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(b"slept".to_vec())
            }
            other => Ok(other.to_vec()),
        }
    }
}

kaizen_sdk::export_unit!(Hostile);
