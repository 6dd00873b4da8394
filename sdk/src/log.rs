//! Structured logging into the host's tracing. Natively (in tests) the lines
//! go to stderr instead, so the same plugin code runs in both places.

use crate::bindings::detector::kaizen::plugin::host::LogLevel;

/// Log `message` with key/value `fields` at `level`.
pub fn log(level: LogLevel, message: &str, fields: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    {
        let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        crate::bindings::detector::kaizen::plugin::host::log(level, message, &fields);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message} {fields:?}");
}

pub fn debug(message: &str) {
    log(LogLevel::Debug, message, &[]);
}

pub fn info(message: &str) {
    log(LogLevel::Info, message, &[]);
}

pub fn warn(message: &str) {
    log(LogLevel::Warn, message, &[]);
}

pub fn error(message: &str) {
    log(LogLevel::Error, message, &[]);
}
