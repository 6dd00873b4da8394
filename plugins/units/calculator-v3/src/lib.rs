//! `calculator` 3.0.0 — correct like v2 but deliberately slow: every call
//! burns `work` iterations (default 400 000, a few milliseconds) before
//! answering. It exists so that the judge has a real latency regression to
//! catch and roll back.

use kaizen_sdk::payload::{decode_with, encode};
use kaizen_sdk::serde_json::{Value, json};
use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError};

pub struct Calculator;

fn checked(op: &str, a: i64, b: i64) -> Result<i64, String> {
    match op {
        "add" => a.checked_add(b),
        "sub" => a.checked_sub(b),
        "mul" => a.checked_mul(b),
        "div" if b == 0 => return Err("division by zero".into()),
        "div" => a.checked_div(b),
        other => return Err(format!("unknown op `{other}`")),
    }
    .ok_or_else(|| format!("{op}({a}, {b}) overflows a 64-bit integer"))
}

/// The regression: pointless work the optimiser cannot remove.
fn busy(iterations: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..iterations {
        x = std::hint::black_box(x.rotate_left(5) ^ i).wrapping_mul(0x0100_0000_01b3);
    }
    x
}

impl Unit for Calculator {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "calculator",
            PluginKind::Unit,
            env!("CARGO_PKG_VERSION"),
            "Integer calculator (v3: correct but slow)",
        )
    }

    fn invoke(_ctx: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError> {
        busy(config.u64("work", 400_000));
        let (req, enc) = decode_with::<Value>(request, config)?;
        let (Some(op), Some(a), Some(b)) = (req["op"].as_str(), req["a"].as_i64(), req["b"].as_i64()) else {
            return Err(UnitError::new(ErrorClass::InvalidInput, "expected {op, a, b} with integer a and b"));
        };
        let result = checked(op, a, b).map_err(|e| UnitError::new(ErrorClass::InvalidInput, e))?;
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
    fn correct_like_v2() {
        assert_eq!(invoke_json::<Calculator>(&json!({"op": "sub", "a": 1, "b": 3})).unwrap(), json!({"result": -2}));
        assert_eq!(
            invoke_json::<Calculator>(&json!({"op": "div", "a": 1, "b": 0})).unwrap_err().error_class,
            ErrorClass::InvalidInput
        );
    }
}
