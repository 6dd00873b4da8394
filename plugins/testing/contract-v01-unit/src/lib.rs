//! Test unit `legacy-echo`, built against `wit/v0.1` (`kaizen:plugin@0.1.0`)
//! exactly as an author did before contract 0.2: answers
//! `0.1:<request>`, and refuses an empty request as `invalid-input`.

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "unit", path: "../../../wit/v0.1" });

use kaizen::plugin::types::{ErrorClass, PluginKind};

struct LegacyEcho;

impl Guest for LegacyEcho {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-echo".into(),
            kind: PluginKind::Unit,
            version: "0.1.0".into(),
            description: "Test unit built against contract 0.1.0".into(),
        }
    }

    fn invoke(context: CallContext, request: Vec<u8>) -> Result<Vec<u8>, UnitError> {
        if request.is_empty() {
            return Err(UnitError { error_class: ErrorClass::InvalidInput, message: "empty request".into() });
        }
        let greeting = kaizen::plugin::host::config("prefix").unwrap_or_else(|| "0.1".into());
        let mut out = format!("{greeting}:attempt{}:", context.attempt).into_bytes();
        out.extend_from_slice(&request);
        Ok(out)
    }
}

export!(LegacyEcho);
