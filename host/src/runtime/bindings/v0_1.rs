//! Host-side bindings of contract version 0.1 (`kaizen:plugin@0.1.0`, the
//! WIT in `wit/v0.1/`).
//!
//! The detector world owns the shared `types` and `host` interfaces and the
//! other two map onto them with `with`, so the host has one Rust type per WIT
//! type whichever world a plugin targets. Types derive serde so that findings,
//! windows and error classes can be stored and served as they are.
//!
//! Exports are bound `async` (`call_async`, on a fiber: a guest yields to
//! the scheduler every epoch slice, and its call can be dropped at its
//! deadline). The `host` imports stay synchronous: `log` and `config` never
//! block, so they need no future.
//!
//! `bindgen!` takes its WIT folder as a literal, so the folder is named here
//! and in [`WIT_DIR`]; a test checks both against [`VERSION`].

/// The package version of this contract, as its WIT declares it.
pub const VERSION: &str = "0.1.0";

/// The WIT folder of this contract version, relative to the repository root.
pub const WIT_DIR: &str = "wit/v0.1";

pub mod detector {
    wasmtime::component::bindgen!({
        world: "detector",
        path: "../wit/v0.1",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
        exports: { default: async },
    });
}

pub mod recovery {
    wasmtime::component::bindgen!({
        world: "recovery",
        path: "../wit/v0.1",
        with: {
            "kaizen:plugin/types": crate::runtime::bindings::v0_1::detector::kaizen::plugin::types,
            "kaizen:plugin/host": crate::runtime::bindings::v0_1::detector::kaizen::plugin::host,
        },
        exports: { default: async },
    });
}

pub mod unit {
    wasmtime::component::bindgen!({
        world: "unit",
        path: "../wit/v0.1",
        with: {
            "kaizen:plugin/types": crate::runtime::bindings::v0_1::detector::kaizen::plugin::types,
            "kaizen:plugin/host": crate::runtime::bindings::v0_1::detector::kaizen::plugin::host,
        },
        exports: { default: async },
    });
}

pub use detector::kaizen::plugin::host as host_api;
pub use detector::kaizen::plugin::types;

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants and the WIT the bindings were generated from agree.
    #[test]
    fn version_and_folder_match_the_wit() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let package = format!("package kaizen:plugin@{VERSION};");
        for file in ["types.wit", "worlds.wit"] {
            let text = std::fs::read_to_string(root.join(WIT_DIR).join(file)).unwrap();
            assert_eq!(text.lines().next(), Some(package.as_str()), "{WIT_DIR}/{file}");
        }
    }
}
