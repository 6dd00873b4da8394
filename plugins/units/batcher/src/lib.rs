//! `batcher` 1.0.0 — a batch job with two knobs and a known best setting,
//! the unit the tuner improves in the demo's second act.
//!
//! Request `{"items": N, "distinct": D, "seed": S}` (all optional: 1024
//! items over 512 distinct keys, seed 1) → `{"checksum", "items"}`. The
//! knobs `chunk_size` and `cache_entries` are declared as tunables and read
//! from the unit's configuration; they change how long a batch takes, never
//! its answer (see [`work`]), so both are safe to canary.

pub mod work;

use kaizen_sdk::payload::{decode, encode};
use kaizen_sdk::serde_json::{Value, json};
use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Tunable, Unit, UnitError};
use work::Knobs;

pub struct Batcher;

/// Most items one request may ask for.
pub const MAX_ITEMS: u64 = 100_000;

/// The knobs as configured, the shipped defaults where unset.
pub fn knobs(config: &Config) -> Knobs {
    Knobs {
        chunk_size: config.u64("chunk_size", Knobs::DEFAULT.chunk_size as u64) as usize,
        cache_entries: config.u64("cache_entries", Knobs::DEFAULT.cache_entries as u64) as usize,
    }
}

impl Unit for Batcher {
    fn describe() -> PluginInfo {
        let (chunk, cache) = (Knobs::CHUNK_BOUNDS, Knobs::CACHE_BOUNDS);
        PluginInfo::new(
            "batcher",
            PluginKind::Unit,
            env!("CARGO_PKG_VERSION"),
            "Batch job with a tunable chunk size and cache capacity",
        )
        .tunable(
            Tunable::integer("chunk_size", chunk.0 as i64, chunk.1 as i64, Knobs::DEFAULT.chunk_size as i64)
                .unit("items")
                .describe("items processed per chunk: each chunk pays a setup and a cache sweep; a chunk's duplicate scan grows with it"),
        )
        .tunable(
            Tunable::integer("cache_entries", cache.0 as i64, cache.1 as i64, Knobs::DEFAULT.cache_entries as i64)
                .unit("entries")
                .describe("slots of the derived-value cache: too few miss, too many make every sweep longer"),
        )
    }

    fn invoke(_ctx: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError> {
        let (req, enc) = decode::<Value>(request).map_err(|e| UnitError::new(ErrorClass::InvalidInput, e))?;
        let field = |name: &str, default: u64| match req.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| {
                UnitError::new(ErrorClass::InvalidInput, format!("`{name}` must be a non-negative integer"))
            }),
        };
        let (items, distinct, seed) = (field("items", 1024)?, field("distinct", 512)?, field("seed", 1)?);
        if items > MAX_ITEMS {
            return Err(UnitError::new(ErrorClass::InvalidInput, format!("at most {MAX_ITEMS} items per batch")));
        }
        if distinct == 0 {
            return Err(UnitError::new(ErrorClass::InvalidInput, "`distinct` must be at least 1"));
        }
        let keys = work::keys(items as usize, distinct, seed);
        let out = work::process(&keys, knobs(config));
        Ok(encode(&json!({ "checksum": out.checksum, "items": out.items }), enc))
    }
}

kaizen_sdk::export_unit!(Batcher);

kaizen_sdk::cases!(
    r#"[
    {"input": {"items": 10, "distinct": 5, "seed": 1}, "expect": {"output": {"checksum": 4590193566977211849, "items": 10}}},
    {"input": {"items": 200000}, "expect": {"error": "invalid-input"}},
    {"input": {"distinct": 0}, "expect": {"error": "invalid-input"}}
]"#
);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::invoke_json;

    #[test]
    fn answers_the_same_whatever_the_knobs() {
        let req = json!({"items": 500, "distinct": 100, "seed": 9});
        let default = invoke_json::<Batcher>(&req).unwrap();
        assert_eq!(default["items"], 500);
        let tuned = Config::from_pairs([("chunk_size", "128"), ("cache_entries", "4096")]);
        let out = kaizen_sdk::testing::invoke_json_with::<Batcher>(&req, &tuned).unwrap();
        assert_eq!(out, default);
    }

    #[test]
    fn declares_its_knobs_with_the_defaults_it_uses() {
        let info = Batcher::describe();
        let names: Vec<&str> = info.tunables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["chunk_size", "cache_entries"]);
        assert_eq!(info.tunables[0].default, kaizen_sdk::TunableValue::Integer(1));
        assert!(info.tunables.iter().all(|t| t.canary_safe));
        assert_eq!(knobs(&Config::default()), Knobs::DEFAULT);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let err = invoke_json::<Batcher>(&json!({"items": 1_000_000})).unwrap_err();
        assert_eq!(err.error_class, ErrorClass::InvalidInput);
        assert!(invoke_json::<Batcher>(&json!({"items": "many"})).is_err());
    }
}
