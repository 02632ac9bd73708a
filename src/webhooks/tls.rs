//! TLS to `https://` receivers: rustls (the TLS client the upstream gets too) with the system's
//! roots, plus those of a CA file where configured (`webhooks.ca_file`; the tests' own CA).
//! Certificate and host name are always verified.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// A TLS configuration that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("webhooks CA file {path}: {problem}")]
    CaFile { path: String, problem: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configuration every webhook sender shares (build it once: reading the system's
/// roots takes a while).
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    // Unreadable or unparsable system certificates are skipped, like every TLS client does.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|error| TlsConfigError::CaFile {
                path: shown.clone(),
                problem: error.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsConfigError::CaFile {
                path: shown,
                problem: "holds no PEM certificate".into(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|error| TlsConfigError::CaFile {
                path: shown.clone(),
                problem: error.to_string(),
            })?;
        }
    }
    if roots.is_empty() {
        // http:// receivers still work; every https:// one fails its TLS check, visibly.
        tracing::warn!(
            "no trusted root certificate for webhooks (the system has none, no CA file): \
             https:// receivers will fail"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // One short request per delivery: HTTP/1.1 is all a receiver needs to speak.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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
