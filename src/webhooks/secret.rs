//! Endpoint secrets: `whsec_` + base64 of 32 random bytes, shown once at creation or rotation
//! (API.md, "Webhook endpoints"). Kept in a `secrecy` box: Debug never shows one.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

/// The prefix of every endpoint secret (the Standard Webhooks convention).
pub const SECRET_PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret.
#[derive(Clone)]
pub struct EndpointSecret(SecretString);

/// Text that is not an endpoint secret (the text itself is not repeated).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an endpoint secret: expected {SECRET_PREFIX} and base64 of {SECRET_BYTES} bytes")]
pub struct InvalidSecret;

impl EndpointSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let bytes: [u8; SECRET_BYTES] = rand::random();
        Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)).into())
    }

    /// Parses the text form, as decrypted from the store.
    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(InvalidSecret)?;
        match STANDARD.decode(encoded) {
            Ok(bytes) if bytes.len() == SECRET_BYTES => Ok(Self(text.into())),
            _ => Err(InvalidSecret),
        }
    }

    /// The `whsec_…` text: for the one answer that shows it, for signing and for encryption.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_is_whsec_and_base64_of_32_random_bytes() {
        let secret = EndpointSecret::generate();
        let encoded = secret.expose().strip_prefix("whsec_").expect("prefix");
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), 32);
        assert_ne!(secret.expose(), EndpointSecret::generate().expose());
        assert_eq!(
            EndpointSecret::parse(secret.expose()).unwrap().expose(),
            secret.expose()
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = EndpointSecret::generate();
        let shown = format!("{secret:?}");
        assert!(!shown.contains(secret.expose()), "{shown}");
        assert!(!shown.contains("whsec_"), "{shown}");
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for text in ["", "whsec_", "abc", "whsec_!!!!", "whsec_AAAA"] {
            assert_eq!(
                EndpointSecret::parse(text).unwrap_err(),
                InvalidSecret,
                "{text}"
            );
        }
    }
}
