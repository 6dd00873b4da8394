//! `calculator` 2.0.0 — the fix. Same contract as v1 (`{"op", "a", "b"}` →
//! `{"result"}`), but arithmetic is checked: dividing by zero or overflowing
//! is the caller's `invalid-input`, answered as a typed error, never a crash.

use kaizen_sdk::payload::{decode_with, encode};
use kaizen_sdk::serde_json::{Value, json};
use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError};

pub struct Calculator;

/// Checked integer arithmetic; `Err` says why the inputs have no answer.
pub fn compute(op: &str, a: i64, b: i64) -> Result<i64, String> {
    let out = match op {
        "add" => a.checked_add(b),
        "sub" => a.checked_sub(b),
        "mul" => a.checked_mul(b),
        "div" if b == 0 => return Err("division by zero".into()),
        "div" => a.checked_div(b),
        other => return Err(format!("unknown op `{other}`")),
    };
    out.ok_or_else(|| format!("{op}({a}, {b}) overflows a 64-bit integer"))
}

impl Unit for Calculator {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "calculator",
            PluginKind::Unit,
            env!("CARGO_PKG_VERSION"),
            "Integer calculator (v2: checked arithmetic)",
        )
    }

    fn invoke(_ctx: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError> {
        let (req, enc) = decode_with::<Value>(request, config)?;
        let (Some(op), Some(a), Some(b)) = (req["op"].as_str(), req["a"].as_i64(), req["b"].as_i64()) else {
            return Err(UnitError::new(ErrorClass::InvalidInput, "expected {op, a, b} with integer a and b"));
        };
        let result = compute(op, a, b).map_err(|e| UnitError::new(ErrorClass::InvalidInput, e))?;
        Ok(encode(&json!({ "result": result }), enc))
    }
}

kaizen_sdk::export_unit!(Calculator);

kaizen_sdk::cases!(
    r#"[
    {"input": {"op": "add", "a": 2, "b": 3}, "expect": {"output": {"result": 5}}},
    {"input": {"op": "mul", "a": -4, "b": 5}, "expect": {"output": {"result": -20}}},
    {"input": {"op": "div", "a": 7, "b": 2}, "expect": {"output": {"result": 3}}},
    {"input": {"op": "div", "a": 1, "b": 0}, "expect": {"error": "invalid-input"}}
]"#
);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::invoke_json;

    #[test]
    fn computes_and_refuses_what_has_no_answer() {
        assert_eq!(invoke_json::<Calculator>(&json!({"op": "mul", "a": 6, "b": 7})).unwrap(), json!({"result": 42}));
        let err = invoke_json::<Calculator>(&json!({"op": "div", "a": 1, "b": 0})).unwrap_err();
        assert_eq!(err.error_class, ErrorClass::InvalidInput);
        assert!(err.message.contains("division by zero"));
        assert!(invoke_json::<Calculator>(&json!({"op": "add", "a": i64::MAX, "b": 1})).is_err());
    }
}
