//! Kaizen's bundled plugins and test guests, built from source for
//! `wasm32-wasip2` by this crate's build script. Each guest is a constant
//! named after its crate (`UNIT_CALCULATOR_V2`, `TEST_HOSTILE`, ...); the
//! test guests and `TESTING` exist only with the `testing` feature (on for
//! the root package's tests and benches, off in the `kaizen` binary).

/// One guest component.
#[derive(Debug, Clone, Copy)]
pub struct Guest {
    /// Cargo package name.
    pub package: &'static str,
    /// `detectors`, `recovery`, `units` or `testing`.
    pub group: &'static str,
    /// Where the build left the `.wasm` (valid on the machine that built it).
    pub path: &'static str,
    /// The component's bytes, embedded.
    pub bytes: &'static [u8],
}

impl Guest {
    /// The component's bytes, as an owned buffer.
    pub fn load(&self) -> std::io::Result<Vec<u8>> {
        Ok(self.bytes.to_vec())
    }
}

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
