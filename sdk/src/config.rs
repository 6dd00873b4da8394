use std::collections::HashMap;

/// A plugin's configuration: the host's values inside a component, a plain map
/// in native tests, so the same logic runs in both.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `None`: ask the host on every lookup (inside a component).
    values: Option<HashMap<String, String>>,
}

impl Config {
    /// Configuration read from the host through `kaizen:plugin/host.config`.
    /// Outside a component there is no host, so this is empty.
    pub fn from_host() -> Self {
        if cfg!(target_arch = "wasm32") { Config { values: None } } else { Config { values: Some(HashMap::new()) } }
    }

    /// Configuration from fixed pairs, for native tests.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Config { values: Some(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect()) }
    }

    /// The raw value for `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        match &self.values {
            Some(map) => map.get(key).cloned(),
            None => host_config(key),
        }
    }

    /// `key` parsed as a number; `default` when unset or unparsable (a bad
    /// value is logged, not fatal: the plugin keeps working on its default).
    pub fn f64(&self, key: &str, default: f64) -> f64 {
        self.parsed(key, default)
    }

    /// `key` parsed as an unsigned integer, `default` when unset or unparsable.
    pub fn u64(&self, key: &str, default: u64) -> u64 {
        self.parsed(key, default)
    }

    fn parsed<T: std::str::FromStr + Copy>(&self, key: &str, default: T) -> T {
        match self.get(key) {
            None => default,
            Some(raw) => match raw.trim().parse() {
                Ok(v) => v,
                Err(_) => {
                    crate::log::warn(&format!("config `{key}` = {raw:?} is not a number; using the default"));
                    default
                }
            },
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn host_config(key: &str) -> Option<String> {
    crate::bindings::detector::kaizen::plugin::host::config(key)
}

#[cfg(not(target_arch = "wasm32"))]
fn host_config(_key: &str) -> Option<String> {
    None
}
