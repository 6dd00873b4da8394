//! Bindings generated from `wit/v0.2/` (`kaizen:plugin@0.2.0`, the contract
//! version this SDK targets) for the four worlds.
//!
//! The detector world owns the shared `types` and `host` interfaces; the other
//! two reuse them through `with`, so a `Finding` or an `ErrorClass` is one
//! Rust type whichever world a plugin targets. `pub_export_macro` makes
//! wit-bindgen emit only the imports in this crate's custom section and the
//! full world from the export macro, so a plugin component ends up exporting
//! exactly the world it chose.
//!
//! wit-bindgen takes the folder and the `with` keys as literals, versioned as
//! the WIT names its package; the build fails with "missing `with`" if they
//! disagree with the folder, so they cannot drift from it. A new contract
//! version gets its folder beside this one.

#![allow(clippy::too_many_arguments)]

pub mod detector {
    wit_bindgen::generate!({
        world: "detector",
        path: "../wit/v0.2",
        pub_export_macro: true,
        export_macro_name: "export_detector_world",
        default_bindings_module: "kaizen_sdk::bindings::detector",
        additional_derives: [PartialEq],
    });
}

pub mod recovery {
    wit_bindgen::generate!({
        world: "recovery",
        path: "../wit/v0.2",
        pub_export_macro: true,
        export_macro_name: "export_recovery_world",
        default_bindings_module: "kaizen_sdk::bindings::recovery",
        with: {
            "kaizen:plugin/types@0.2.0": crate::bindings::detector::kaizen::plugin::types,
            "kaizen:plugin/host@0.2.0": crate::bindings::detector::kaizen::plugin::host,
        },
    });
}

pub mod unit {
    wit_bindgen::generate!({
        world: "unit",
        path: "../wit/v0.2",
        pub_export_macro: true,
        export_macro_name: "export_unit_world",
        default_bindings_module: "kaizen_sdk::bindings::unit",
        with: {
            "kaizen:plugin/types@0.2.0": crate::bindings::detector::kaizen::plugin::types,
            "kaizen:plugin/host@0.2.0": crate::bindings::detector::kaizen::plugin::host,
        },
    });
}

pub mod improver {
    wit_bindgen::generate!({
        world: "improver",
        path: "../wit/v0.2",
        pub_export_macro: true,
        export_macro_name: "export_improver_world",
        default_bindings_module: "kaizen_sdk::bindings::improver",
        with: {
            "kaizen:plugin/types@0.2.0": crate::bindings::detector::kaizen::plugin::types,
            "kaizen:plugin/host@0.2.0": crate::bindings::detector::kaizen::plugin::host,
        },
    });
}
