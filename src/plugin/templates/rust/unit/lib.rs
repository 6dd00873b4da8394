//! Unit `__NAME__`: greets by name. Request `{"name": "Ada"}`, answer
//! `{"greeting": "Hello, Ada!"}`; a request without a name is refused with
//! the `invalid-input` class.

use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError, serde_json};

pub struct __TYPE__;

impl Unit for __TYPE__ {
    fn describe() -> PluginInfo {
        PluginInfo::new("__NAME__", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Greets by name")
    }

    fn invoke(_ctx: &CallContext, request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        let req: serde_json::Value = serde_json::from_slice(request)
            .map_err(|e| UnitError::new(ErrorClass::InvalidInput, format!("request is not JSON: {e}")))?;
        let name = req["name"]
            .as_str()
            .ok_or_else(|| UnitError::new(ErrorClass::InvalidInput, "missing \"name\""))?;
        Ok(serde_json::to_vec(&serde_json::json!({ "greeting": format!("Hello, {name}!") })).expect("JSON"))
    }
}

kaizen_sdk::export_unit!(__TYPE__);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::invoke_json;

    #[test]
    fn greets_and_refuses_nameless_requests() {
        let out = invoke_json::<__TYPE__>(&serde_json::json!({"name": "Ada"})).unwrap();
        assert_eq!(out["greeting"], "Hello, Ada!");
        let err = invoke_json::<__TYPE__>(&serde_json::json!({})).unwrap_err();
        assert_eq!(err.error_class, ErrorClass::InvalidInput);
    }
}
