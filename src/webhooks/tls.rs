//! TLS to `https://` receivers: the gateway's one client configuration ([`crate::tls`]) with the
//! system's roots plus those of `webhooks.ca_file` where configured. Webhooks present no client
//! certificate. Certificate and host name are always verified.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;

pub use crate::tls::TlsConfigError;

/// The client configuration every webhook sender shares (build it once: reading the system's
/// roots takes a while).
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsConfigError> {
    crate::tls::client_config(ca_file, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = client_config(Some(&missing)).unwrap_err().to_string();
        assert!(error.contains("missing.pem"), "{error}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = client_config(Some(&empty)).unwrap_err().to_string();
        assert!(error.contains("holds no PEM certificate"), "{error}");
    }
}
