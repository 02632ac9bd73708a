//! The three Standard Webhooks headers, signed with the specification's own Rust implementation
//! (the `standardwebhooks` crate) rather than by hand: `v1,` + base64 of HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, one signature per live secret.

use standardwebhooks::{
    Webhook, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP,
};

use super::secret::EndpointSecret;

/// The headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The event id: the same on every attempt, receivers de-duplicate by it.
    pub id: String,
    /// Unix seconds of this attempt.
    pub timestamp: i64,
    /// Space-separated `v1,…` signatures, one per live secret.
    pub signature: String,
}

/// A signature that could not be made. Names no secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    #[error("no live secret to sign with")]
    NoSecret,
    #[error("cannot sign: {0}")]
    Library(String),
}

impl SignedHeaders {
    /// `(name, value)` pairs, ready for a request.
    pub fn pairs(&self) -> [(&'static str, String); 3] {
        [
            (HEADER_WEBHOOK_ID, self.id.clone()),
            (HEADER_WEBHOOK_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_WEBHOOK_SIGNATURE, self.signature.clone()),
        ]
    }
}

/// Signs `body` for `event_id` at `timestamp` with each of `secrets` (the current one first).
pub fn sign(
    event_id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[EndpointSecret],
) -> Result<SignedHeaders, SigningError> {
    if secrets.is_empty() {
        return Err(SigningError::NoSecret);
    }
    let signatures = secrets
        .iter()
        .map(|secret| {
            Webhook::new(secret.expose())
                .and_then(|webhook| webhook.sign(event_id, timestamp, body))
                .map_err(|error| SigningError::Library(error.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SignedHeaders {
        id: event_id.to_string(),
        timestamp,
        signature: signatures.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_verify_with_the_specification_library() {
        let secret = EndpointSecret::generate();
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"id":"evt_1","type":"deposit.low"}"#;
        let headers = sign("evt_1", now, body, std::slice::from_ref(&secret)).unwrap();
        assert_eq!(headers.id, "evt_1");
        assert!(
            headers.signature.starts_with("v1,"),
            "{}",
            headers.signature
        );
        let mut map = http::HeaderMap::new();
        for (name, value) in headers.pairs() {
            map.insert(name, value.parse().unwrap());
        }
        let webhook = Webhook::new(secret.expose()).unwrap();
        webhook.verify(body, &map).expect("verifies");
        assert!(webhook.verify(br#"{"id":"evt_2"}"#, &map).is_err());
    }

    #[test]
    fn a_rotation_gives_two_space_separated_signatures() {
        let (new, old) = (EndpointSecret::generate(), EndpointSecret::generate());
        let both = sign("evt_1", 1, b"{}", &[new.clone(), old.clone()]).unwrap();
        let one = |secret| sign("evt_1", 1, b"{}", &[secret]).unwrap().signature;
        assert_eq!(both.signature, format!("{} {}", one(new), one(old)));
        assert_eq!(sign("evt_1", 1, b"{}", &[]), Err(SigningError::NoSecret));
    }
}
