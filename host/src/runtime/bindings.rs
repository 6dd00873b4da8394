//! Host-side bindings of the `kaizen:plugin@0.1.0` worlds.
//!
//! The detector world owns the shared `types` and `host` interfaces and the
//! other two map onto them with `with`, so the host has one Rust type per WIT
//! type whichever world a plugin targets. Types derive serde so that findings,
//! windows and error classes can be stored and served as they are.

pub mod detector {
    wasmtime::component::bindgen!({
        world: "detector",
        path: "../wit",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

pub mod recovery {
    wasmtime::component::bindgen!({
        world: "recovery",
        path: "../wit",
        with: {
            "kaizen:plugin/types": crate::runtime::bindings::detector::kaizen::plugin::types,
            "kaizen:plugin/host": crate::runtime::bindings::detector::kaizen::plugin::host,
        },
    });
}

pub mod unit {
    wasmtime::component::bindgen!({
        world: "unit",
        path: "../wit",
        with: {
            "kaizen:plugin/types": crate::runtime::bindings::detector::kaizen::plugin::types,
            "kaizen:plugin/host": crate::runtime::bindings::detector::kaizen::plugin::host,
        },
    });
}

pub use detector::kaizen::plugin::host as host_api;
pub use detector::kaizen::plugin::types;
