//! Unit `__NAME__`: greets by name. Request `{"name": "Ada"}` (JSON or
//! MessagePack), answer `{"greeting": "Hello, Ada!"}` in the same encoding;
//! a request without a name, or nested deeper than the plugin's
//! `payload_max_depth` (default 128), is refused with the `invalid-input`
//! class.

use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError, payload, serde_json};

pub struct __TYPE__;

impl Unit for __TYPE__ {
    fn describe() -> PluginInfo {
        PluginInfo::new("__NAME__", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Greets by name")
    }

    fn invoke(_ctx: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError> {
        let (req, encoding): (serde_json::Value, _) = payload::decode_with(request, config)?;
        let name = req["name"]
            .as_str()
            .ok_or_else(|| UnitError::new(ErrorClass::InvalidInput, "expected {\"name\": \"...\"}"))?;
        Ok(payload::encode(&serde_json::json!({ "greeting": format!("Hello, {name}!") }), encoding))
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

    #[test]
    fn refuses_a_request_nested_too_deep_before_parsing_it() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = __TYPE__::invoke(&kaizen_sdk::testing::context(), deep.as_bytes(), &Config::default()).unwrap_err();
        assert_eq!(err.error_class, ErrorClass::InvalidInput);
        assert!(err.message.contains("nested deeper than 128 levels"), "{}", err.message);
    }
}
