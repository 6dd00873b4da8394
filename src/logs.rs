//! Logging of the `kaizen` command: a `KAIZEN_LOG` filter over a default,
//! to stderr, human or JSON.
//!
//! In JSON, a plugin's structured log line (`host.log(level, message,
//! fields)`, target `kaizen::plugin`) carries the plugin's fields as one
//! JSON object, `"fields": {"fields": {"order": "42"}}`: tracing has no
//! field names decided at run time, so the host records them as the text of
//! a JSON object and [`PluginFieldsAsJson`] puts the object itself in the
//! line, where a log query can reach each field.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Install the global subscriber: `KAIZEN_LOG` when set, else `default`.
pub fn init_logs(default: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KAIZEN_LOG").unwrap_or_else(|_| default.into());
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        b.fmt_fields(JsonFields::new()).event_format(PluginFieldsAsJson(Format::default().json())).init()
    } else {
        b.init()
    }
}

/// The target of the lines a plugin logs through the host's `log` import.
const PLUGIN_TARGET: &str = "kaizen::plugin";

/// The JSON event format, with a plugin line's `fields` field (the text of
/// a JSON object) replaced by the object.
struct PluginFieldsAsJson(Format<Json>);

impl<S, N> FormatEvent<S, N> for PluginFieldsAsJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        if event.metadata().target() != PLUGIN_TARGET {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&splice_plugin_fields(&line))
    }
}

/// `line` (one JSON log line) with `fields.fields` parsed when it is the
/// text of a JSON object; otherwise `line` unchanged.
fn splice_plugin_fields(line: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(line.trim_end()) else {
        return line.to_string();
    };
    let Some(slot) = v.pointer_mut("/fields/fields") else {
        return line.to_string();
    };
    match slot.as_str().map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(object @ serde_json::Value::Object(_))) => *slot = object,
        _ => return line.to_string(),
    }
    format!("{v}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugins_fields_become_an_object_and_other_lines_stay() {
        let line =
            r#"{"level":"INFO","fields":{"message":"m","fields":"{\"order\":\"42\"}"},"target":"kaizen::plugin"}"#;
        let v: serde_json::Value = serde_json::from_str(&splice_plugin_fields(line)).unwrap();
        assert_eq!(v["fields"]["fields"]["order"], "42");
        assert_eq!(v["fields"]["message"], "m");
        for kept in [r#"{"fields":{"fields":"not json"}}"#, r#"{"fields":{"message":"x"}}"#, "not json at all"] {
            assert_eq!(splice_plugin_fields(kept), kept);
        }
    }
}
