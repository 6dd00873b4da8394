//! `calculator` 1.0.0 — the buggy first version of the seed story. It does
//! integer arithmetic on `{"op": "add"|"sub"|"mul"|"div", "a": int, "b": int}`
//! (JSON or MessagePack) and answers `{"result": int}` in the same encoding,
//! but it divides without looking: `b = 0` panics, which the host sees as a
//! trap. Kaizen is meant to notice and replace it.

use kaizen_sdk::payload::{decode_with, encode};
use kaizen_sdk::serde_json::{Value, json};
use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError};

pub struct Calculator;

impl Unit for Calculator {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "calculator",
            PluginKind::Unit,
            env!("CARGO_PKG_VERSION"),
            "Integer calculator (v1: crashes on divide by zero)",
        )
    }

    fn invoke(_ctx: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError> {
        let (req, enc) = decode_with::<Value>(request, config)?;
        let (op, a, b) = (req["op"].as_str(), req["a"].as_i64(), req["b"].as_i64());
        let (Some(op), Some(a), Some(b)) = (op, a, b) else {
            return Err(UnitError::new(ErrorClass::InvalidInput, "expected {op, a, b} with integer a and b"));
        };
        let result = match op {
            "add" => a.wrapping_add(b),
            "sub" => a.wrapping_sub(b),
            "mul" => a.wrapping_mul(b),
            "div" => std::hint::black_box(a) / std::hint::black_box(b),
            other => {
                return Err(UnitError::new(ErrorClass::InvalidInput, format!("unknown op `{other}`")));
            }
        };
        Ok(encode(&json!({ "result": result }), enc))
    }
}

kaizen_sdk::export_unit!(Calculator);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::serde_json::json;
    use kaizen_sdk::testing::invoke_json;

    #[test]
    fn computes() {
        assert_eq!(invoke_json::<Calculator>(&json!({"op": "add", "a": 2, "b": 3})).unwrap(), json!({"result": 5}));
        assert_eq!(invoke_json::<Calculator>(&json!({"op": "div", "a": 7, "b": 2})).unwrap(), json!({"result": 3}));
    }

    #[test]
    #[should_panic(expected = "divide by zero")]
    fn crashes_on_divide_by_zero() {
        let _ = invoke_json::<Calculator>(&json!({"op": "div", "a": 1, "b": 0}));
    }
}
