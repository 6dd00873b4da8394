//! Test unit built against `kaizen:plugin@0.9.0`, a version no host loads:
//! the host must refuse it naming that version.

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "unit", path: "wit" });

struct Future;

impl Guest for Future {
    fn describe() -> PluginInfo {
        PluginInfo { name: "from-the-future".into(), version: "9.0.0".into() }
    }

    fn invoke(request: Vec<u8>) -> Vec<u8> {
        request
    }
}

export!(Future);
