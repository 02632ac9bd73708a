//! The HTTP client that sends signed messages upstream, and the outcome type that separates
//! "the upstream answered" from "we do not know what happened" — the distinction payments rest on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use awc::error::{ConnectError, SendRequestError};
use awc::http::header;
use secrecy::ExposeSecret;

use super::message::{Request, Response};
use super::signature::Credentials;
use super::{H2H_PATH, USER_AGENT};

/// Upstream answers are a few kilobytes; anything far larger is not a valid answer.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// What became of one message.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The upstream answered HTTP 200 with a well-formed response carrying a result code.
    Answered(Box<Response>),
    /// No connection could be made: the message certainly never left.
    NotSent(String),
    /// The message may or may not have been processed upstream.
    Unknown(UnknownReason),
}

/// Why an outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownReason {
    /// No complete answer within the configured timeout.
    Timeout,
    /// The connection failed after the message was (perhaps) sent.
    Connection(String),
    /// An HTTP status other than 200.
    HttpStatus(u16),
    /// A body that is not a valid response.
    InvalidBody(String),
}

impl Outcome {
    /// A short stable name, stored with each exchange.
    pub fn kind(&self) -> &'static str {
        super::ExchangeOutcome::from(self).as_str()
    }

    pub fn response(&self) -> Option<&Response> {
        match self {
            Outcome::Answered(response) => Some(response),
            _ => None,
        }
    }
}

/// One message sent and what came back, with what is needed to record it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Request,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    /// The raw answer body, as received (lossy UTF-8).
    pub raw_response: Option<String>,
    pub latency: Duration,
}

/// Sends H2H messages with the exact headers the upstream requires, reusing connections.
///
/// `awc` clients are tied to the thread they were made on: build one per worker.
#[derive(Clone)]
pub struct UpstreamClient {
    http: awc::Client,
    url: String,
    origin: String,
    credentials: Credentials,
    timeout: Duration,
}

impl UpstreamClient {
    /// A client for a plain `http://` upstream. `base_url` is the upstream base; [`H2H_PATH`] is
    /// appended.
    pub fn new(
        base_url: &str,
        origin: &str,
        credentials: Credentials,
        timeout: Duration,
        max_connections: usize,
    ) -> Self {
        Self::build(
            base_url,
            origin,
            credentials,
            timeout,
            max_connections,
            None,
        )
    }

    /// A client that speaks TLS to an `https://` upstream with `tls` (see [`crate::tls`]: the
    /// certificate and host name are always verified; a client certificate where configured).
    /// An `http://` upstream stays plain.
    pub fn with_tls(
        base_url: &str,
        origin: &str,
        credentials: Credentials,
        timeout: Duration,
        max_connections: usize,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        Self::build(
            base_url,
            origin,
            credentials,
            timeout,
            max_connections,
            Some(tls),
        )
    }

    fn build(
        base_url: &str,
        origin: &str,
        credentials: Credentials,
        timeout: Duration,
        max_connections: usize,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        // The connector's timeout bounds the TCP connect and the TLS handshake together.
        let mut connector = awc::Connector::new()
            .limit(max_connections)
            .conn_keep_alive(Duration::from_secs(30))
            .timeout(timeout);
        if let Some(tls) = tls {
            connector = connector.rustls_0_23(tls);
        }
        let http = awc::Client::builder()
            .connector(connector)
            .no_default_headers()
            .timeout(timeout)
            .finish();
        Self {
            http,
            url: format!("{}{}", base_url.trim_end_matches('/'), H2H_PATH),
            origin: origin.to_string(),
            credentials,
            timeout,
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The per-message timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one signed message and classifies what came back. Never retries: a payment must
    /// not be sent twice, so retrying is the caller's decision (via advice).
    pub async fn send(&self, request: Request) -> Exchange {
        let started = Instant::now();
        let body = serde_json::to_vec(&request).expect("a request always serializes");
        let sent = self
            .http
            .post(&self.url)
            .insert_header((header::USER_AGENT, USER_AGENT))
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header((header::ORIGIN, self.origin.as_str()))
            .basic_auth(
                &self.credentials.client_id,
                self.credentials.client_secret.expose_secret(),
            )
            .send_body(body);
        // awc's timeout covers the head; the outer one bounds head and body together.
        let answer = actix_rt::time::timeout(self.timeout, async {
            let mut response = sent.await?;
            let status = response.status().as_u16();
            let body = response.body().limit(MAX_RESPONSE_BYTES).await;
            Ok::<_, SendRequestError>((status, body))
        })
        .await;
        let latency = started.elapsed();
        let (outcome, http_status, raw_response) = match answer {
            Err(_elapsed) => (Outcome::Unknown(UnknownReason::Timeout), None, None),
            Ok(Err(SendRequestError::Timeout)) => {
                (Outcome::Unknown(UnknownReason::Timeout), None, None)
            }
            // awc also reports a connection closed after the request was written, before the
            // answer's head, as `Connect(Disconnected)`: that one is not "not sent". A TLS
            // handshake that fails (a certificate that does not verify, another host's name)
            // fails the connect, before a byte of the request is written: not sent.
            Ok(Err(SendRequestError::Connect(error)))
                if !matches!(error, ConnectError::Disconnected | ConnectError::H2(_)) =>
            {
                (Outcome::NotSent(connect_failure(&error)), None, None)
            }
            Ok(Err(error)) => (
                Outcome::Unknown(UnknownReason::Connection(error.to_string())),
                None,
                None,
            ),
            Ok(Ok((status, Err(error)))) => (
                Outcome::Unknown(UnknownReason::Connection(error.to_string())),
                Some(status),
                None,
            ),
            Ok(Ok((status, Ok(bytes)))) => {
                let raw = String::from_utf8_lossy(&bytes).into_owned();
                (classify(status, &bytes), Some(status), Some(raw))
            }
        };
        Exchange {
            request,
            outcome,
            http_status,
            raw_response,
            latency,
        }
    }
}

/// What a failed connect is called in the stored exchange; a TLS failure says so.
fn connect_failure(error: &ConnectError) -> String {
    match error {
        ConnectError::Io(io) => match crate::tls::tls_failure(io) {
            Some(tls) => format!("TLS failure: {tls}"),
            None => error.to_string(),
        },
        _ => error.to_string(),
    }
}

/// An answer counts only if it is HTTP 200 with a JSON object carrying a result code.
/// Public for the fuzz targets (docs/fuzzing.md).
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    if status != 200 {
        return Outcome::Unknown(UnknownReason::HttpStatus(status));
    }
    match serde_json::from_slice::<Response>(body) {
        Ok(mut response) if !response.result_code.trim().is_empty() => {
            // PROTOCOL.md's sizes for numbers (API.md, "Upstream result → HTTP"): an answer past
            // them is not an answer, so on a payment the outcome is unknown.
            let oversized = response.oversized_numbers();
            if !oversized.is_empty() {
                return Outcome::Unknown(UnknownReason::InvalidBody(format!(
                    "{} past the protocol's size",
                    oversized.join(", ")
                )));
            }
            for (field, chars) in response.bound_texts() {
                tracing::warn!(
                    field,
                    chars,
                    kept = super::message::MAX_TEXT_CHARS,
                    "upstream answer text cut to its first characters"
                );
            }
            Outcome::Answered(Box::new(response))
        }
        Ok(_) => Outcome::Unknown(UnknownReason::InvalidBody("no resultCode".into())),
        Err(error) => Outcome::Unknown(UnknownReason::InvalidBody(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_200_with_a_result_code_is_an_answer() {
        assert!(matches!(
            classify(200, br#"{"resultCode":"000"}"#),
            Outcome::Answered(_)
        ));
        assert_eq!(
            classify(500, br#"{"resultCode":"000"}"#).kind(),
            "http_status"
        );
        assert_eq!(classify(200, b"<html>oops</html>").kind(), "invalid_body");
        assert_eq!(
            classify(200, br#"{"resultDesc":"x"}"#).kind(),
            "invalid_body"
        );
        assert_eq!(classify(200, br#"["000"]"#).kind(), "invalid_body");
        assert_eq!(
            classify(200, br#"{"resultCode":"000","nominal":"304000000000000"}"#).kind(),
            "invalid_body"
        );
        assert_eq!(
            classify(200, br#"{"resultCode":"000","admin":"123456789"}"#).kind(),
            "invalid_body"
        );
    }
}
