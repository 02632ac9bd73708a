//! Sends one delivery attempt and classifies what came back (API.md, "Delivery"): a 2xx within
//! `webhooks.timeout_ms` is delivered; any other status, a timeout, a refused or reset
//! connection or a TLS failure is retried. Redirects are not followed.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::error::ParseError;
use awc::error::{ConnectError, SendRequestError};
use awc::http::header;

use super::signature::SignedHeaders;

/// A receiver's answer body is read at most this far (and then ignored): only its status counts.
pub const MAX_RECEIVER_BODY_BYTES: usize = 4 * 1024;
const USER_AGENT: &str = concat!("mpospay-gateway-webhooks/", env!("CARGO_PKG_VERSION"));
const MAX_ERROR_LEN: usize = 200;

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer within the timeout.
    Delivered { status: u16 },
    /// Anything else; `status` when the receiver answered at all. `error` is short, for the
    /// deliveries log, and never holds a secret (nothing signed is ever put in it).
    Retry { status: Option<u16>, error: String },
}

/// Posts events to receivers. An `awc` client is tied to the thread it was made on: one sender
/// per worker thread, all sharing one TLS configuration.
#[derive(Clone)]
pub struct WebhookSender {
    http: awc::Client,
    timeout: Duration,
}

impl WebhookSender {
    pub fn new(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Self {
        let connector = awc::Connector::new()
            .rustls_0_23(tls)
            .timeout(timeout)
            .conn_keep_alive(Duration::from_secs(30));
        let http = awc::Client::builder()
            .connector(connector)
            .disable_redirects()
            .no_default_headers()
            .timeout(timeout)
            .finish();
        Self { http, timeout }
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Posts `body` to `url` with the signed headers. Never retries by itself.
    pub async fn send(&self, url: &str, body: &[u8], signed: &SignedHeaders) -> AttemptOutcome {
        let started = Instant::now();
        let mut request = self
            .http
            .post(url)
            .insert_header((header::USER_AGENT, USER_AGENT))
            .insert_header((header::CONTENT_TYPE, "application/json"));
        for (name, value) in signed.pairs() {
            request = request.insert_header((name, value));
        }
        // awc's timeout covers the answer's head; this one bounds connecting too.
        let answer = actix_rt::time::timeout(self.timeout, request.send_body(body.to_vec())).await;
        let mut response = match answer {
            Err(_elapsed) => return self.timed_out(),
            Ok(Err(error)) => return self.failed(error),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        // Read a little of the body, so that a short answer leaves the connection reusable;
        // what it says does not matter, and a slow one does not hold the attempt up.
        let remaining = self.timeout.saturating_sub(started.elapsed());
        let _ = actix_rt::time::timeout(remaining, response.body().limit(MAX_RECEIVER_BODY_BYTES))
            .await;
        if status.is_success() {
            AttemptOutcome::Delivered {
                status: status.as_u16(),
            }
        } else {
            AttemptOutcome::Retry {
                status: Some(status.as_u16()),
                error: format!("HTTP {status}"),
            }
        }
    }

    fn timed_out(&self) -> AttemptOutcome {
        retry(format!(
            "timeout: no answer within {} ms",
            self.timeout.as_millis()
        ))
    }

    fn failed(&self, error: SendRequestError) -> AttemptOutcome {
        match error {
            SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout) => {
                self.timed_out()
            }
            SendRequestError::Connect(ConnectError::Io(error)) => retry(connect_failure(&error)),
            SendRequestError::Connect(ConnectError::Resolver(_) | ConnectError::NoRecords) => {
                retry("connection failed: host name not resolved".into())
            }
            SendRequestError::Connect(error) => retry(format!("connection failed: {error}")),
            SendRequestError::Send(error) => retry(io_failure("sending", &error)),
            SendRequestError::Url(error) => retry(format!("invalid URL: {error}")),
            SendRequestError::Response(ParseError::Io(error)) => {
                retry(io_failure("reading the answer", &error))
            }
            SendRequestError::Response(error) => retry(format!("invalid answer: {error}")),
            other => retry(format!("request failed: {other}")),
        }
    }
}

fn retry(error: String) -> AttemptOutcome {
    let mut error = error;
    if error.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
    }
    AttemptOutcome::Retry {
        status: None,
        error,
    }
}

/// A failure while connecting: refused, reset, or the TLS handshake (rustls reports its errors
/// through the I/O error).
fn connect_failure(error: &io::Error) -> String {
    if let Some(tls) = crate::tls::tls_failure(error) {
        return format!("TLS failure: {tls}");
    }
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => io_failure("connecting", error),
    }
}

fn io_failure(doing: &str, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionReset => format!("connection reset while {doing}"),
        io::ErrorKind::ConnectionAborted => format!("connection aborted while {doing}"),
        io::ErrorKind::BrokenPipe => format!("connection closed while {doing}"),
        _ => format!("connection failed while {doing}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let AttemptOutcome::Retry { error, status } = retry("é".repeat(300)) else {
            panic!("a retry");
        };
        assert_eq!(status, None);
        assert!(error.len() <= MAX_ERROR_LEN);
        assert!(error.chars().all(|c| c == 'é'));
    }
}
