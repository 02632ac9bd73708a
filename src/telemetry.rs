//! Tracing set-up, in one place: JSON lines in production, readable text locally.
//!
//! Secrets never reach the logs: our own code logs no credential (they are `secrecy` types and
//! the API key is never a field), and the few dependency targets that print whole HTTP heads —
//! with the upstream's `Authorization: Basic` header — at their most verbose levels are capped
//! below those levels whatever `RUST_LOG` says (see [`secret_safe_caps`]). `tests/api/logs.rs` runs
//! the binary at `RUST_LOG=debug` and searches its output for every secret.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Upper bounds for dependency targets that would log request heads (headers included):
/// awc prints the whole request head of HTTP/2 requests at `trace`, and h2 traces header
/// frames. Everything else is left to `RUST_LOG`.
pub fn secret_safe_caps() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("awc", LevelFilter::DEBUG)
        .with_target("h2", LevelFilter::INFO)
}

/// Installs the global subscriber. `format` is `json` or anything else for readable text.
/// The level comes from `RUST_LOG` (default `info`). Logs go to stderr, so that commands like
/// `keys create` keep stdout for their result. JSON lines carry the current span's fields
/// (the request id) in `span` and every enclosing span's in `spans`.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .finish()
            .with(secret_safe_caps())
            .try_init()
    } else {
        builder
            .compact()
            .finish()
            .with(secret_safe_caps())
            .try_init()
    };
    // A second call (tests) keeps the first subscriber.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn targets_that_print_request_heads_are_capped_and_ours_are_not() {
        let caps = secret_safe_caps();
        assert!(!caps.would_enable("awc::client::h2proto", &Level::TRACE));
        assert!(caps.would_enable("awc::client", &Level::DEBUG));
        assert!(!caps.would_enable("h2::frame::headers", &Level::DEBUG));
        assert!(caps.would_enable("mpospay_gateway::payments", &Level::TRACE));
        assert!(caps.would_enable("sqlx::query", &Level::DEBUG));
    }
}
