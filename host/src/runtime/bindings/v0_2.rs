//! Host-side bindings of contract version 0.2 (`kaizen:plugin@0.2.0`, the
//! WIT in `wit/v0.2/`): the current contract, whose types are the host's own.
//!
//! As in [`super::v0_1`], the detector world owns the shared `types` and
//! `host` interfaces and the other worlds map onto them with `with`, exports
//! are bound `async` and the `host` imports stay synchronous.

/// The package version of this contract, as its WIT declares it.
pub const VERSION: &str = "0.2.0";

/// The WIT folder of this contract version, relative to the repository root.
pub const WIT_DIR: &str = "wit/v0.2";

pub mod detector {
    wasmtime::component::bindgen!({
        world: "detector",
        path: "../wit/v0.2",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
        exports: { default: async },
    });
}

pub mod recovery {
    wasmtime::component::bindgen!({
        world: "recovery",
        path: "../wit/v0.2",
        with: {
            "kaizen:plugin/types": crate::runtime::bindings::v0_2::detector::kaizen::plugin::types,
            "kaizen:plugin/host": crate::runtime::bindings::v0_2::detector::kaizen::plugin::host,
        },
        exports: { default: async },
    });
}

pub mod unit {
    wasmtime::component::bindgen!({
        world: "unit",
        path: "../wit/v0.2",
        with: {
            "kaizen:plugin/types": crate::runtime::bindings::v0_2::detector::kaizen::plugin::types,
            "kaizen:plugin/host": crate::runtime::bindings::v0_2::detector::kaizen::plugin::host,
        },
        exports: { default: async },
    });
}

pub mod improver {
    wasmtime::component::bindgen!({
        world: "improver",
        path: "../wit/v0.2",
        with: {
            "kaizen:plugin/types": crate::runtime::bindings::v0_2::detector::kaizen::plugin::types,
            "kaizen:plugin/host": crate::runtime::bindings::v0_2::detector::kaizen::plugin::host,
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
