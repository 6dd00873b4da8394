//! Kaizen's bundled plugins and test guests, built from source for
//! `wasm32-wasip2` by this crate's build script. Each guest is a constant
//! named after its crate (`UNIT_CALCULATOR_V2`, `TEST_HOSTILE`, ...).

/// One guest component.
#[derive(Debug, Clone, Copy)]
pub struct Guest {
    /// Cargo package name.
    pub package: &'static str,
    /// `detectors`, `recovery`, `units` or `testing`.
    pub group: &'static str,
    /// Where the build left the `.wasm` (valid on the machine that built it).
    pub path: &'static str,
    /// The component's bytes, embedded for bundled plugins; empty for test
    /// guests, which are read from `path`.
    pub bytes: &'static [u8],
}

impl Guest {
    /// The component's bytes, from the binary or from `path`.
    pub fn load(&self) -> std::io::Result<Vec<u8>> {
        if self.bytes.is_empty() { std::fs::read(self.path) } else { Ok(self.bytes.to_vec()) }
    }
}

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
