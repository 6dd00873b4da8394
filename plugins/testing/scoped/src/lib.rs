//! Test unit `scoped`: sums a JSON list of numbers, but refuses lists longer
//! than 100 items with `too-large` unless the call asks for a reduced scope,
//! in which case it sums that share of the list and says so.

use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError};

pub struct Scoped;

impl Unit for Scoped {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "scoped",
            PluginKind::Unit,
            env!("CARGO_PKG_VERSION"),
            "Test unit that needs a reduced scope for large inputs",
        )
    }

    fn invoke(ctx: &CallContext, request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        let items: Vec<f64> = kaizen_sdk::serde_json::from_slice(request)
            .map_err(|e| UnitError::new(ErrorClass::InvalidInput, e.to_string()))?;
        let take = match ctx.scope_pct {
            Some(pct) => items.len() * usize::from(pct) / 100,
            None if items.len() > 100 => {
                return Err(UnitError::new(
                    ErrorClass::Other("too-large".into()),
                    format!("{} items exceed 100", items.len()),
                ));
            }
            None => items.len(),
        };
        let sum: f64 = items[..take].iter().sum();
        Ok(format!(r#"{{"sum":{sum},"items":{take}}}"#).into_bytes())
    }
}

kaizen_sdk::export_unit!(Scoped);
