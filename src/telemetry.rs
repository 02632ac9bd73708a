//! Tracing set-up, in one place: JSON lines in production, readable text locally.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. `format` is `json` or anything else for readable text.
/// The level comes from `RUST_LOG` (default `info`). Logs go to stderr, so that commands like
/// `keys create` keep stdout for their result.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
    // A second call (tests) keeps the first subscriber.
    let _ = result;
}
