//! Logging of the `kaizen` command: a `KAIZEN_LOG` filter over a default,
//! to stderr, human or JSON.

/// Install the global subscriber: `KAIZEN_LOG` when set, else `default`.
pub fn init_logs(default: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KAIZEN_LOG").unwrap_or_else(|_| default.into());
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json { b.json().init() } else { b.init() }
}
