//! TLS client configuration, one place for every outgoing connection the gateway makes over
//! `https://`: the upstream (API.md, "Running it": `GATEWAY_UPSTREAM_CA_FILE`, the client
//! certificate for mutual TLS) and webhook receivers (`webhooks.ca_file`).
//!
//! rustls with the ring provider (no C toolchain needed); trusted roots are the system's plus
//! those of a CA file where configured. Certificate and host name are always verified: there is
//! no setting to turn that off.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// A certificate and its private key (PEM files) the client presents to a server that asks for
/// one (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A TLS configuration that cannot be built; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("CA file {path}: {problem}")]
    CaFile { path: String, problem: String },
    #[error("client certificate file {path}: {problem}")]
    ClientCertFile { path: String, problem: String },
    #[error("client key file {path}: {problem}")]
    ClientKeyFile { path: String, problem: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds a client configuration: the system's roots plus `ca_file`'s, and `identity` when a
/// server demands a client certificate. Build it once and share it (reading the system's roots
/// takes a while). Only HTTP/1.1 is offered: one request per message is all either peer needs.
pub fn client_config(
    ca_file: Option<&Path>,
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    // Unreadable or unparsable system certificates are skipped, like every TLS client does.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots.add(cert).map_err(|error| TlsConfigError::CaFile {
                path: path.display().to_string(),
                problem: error.to_string(),
            })?;
        }
    }
    if roots.is_empty() {
        // http:// peers still work; every https:// one fails its TLS check, visibly.
        tracing::warn!(
            "no trusted root certificate (the system has none, no CA file): https:// peers \
             will fail their TLS check"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let (certs, key) = read_identity(identity)?;
            builder.with_client_auth_cert(certs, key).map_err(|error| {
                TlsConfigError::ClientKeyFile {
                    path: identity.key_file.display().to_string(),
                    problem: format!("does not go with the client certificate: {error}"),
                }
            })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates of a PEM CA bundle: at least one.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let problem = |problem: String| TlsConfigError::CaFile {
        path: path.display().to_string(),
        problem,
    };
    let certs = read_certs(path).map_err(problem)?;
    if certs.is_empty() {
        return Err(problem("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// A client certificate chain and its key, both read and parsed.
pub fn read_identity(
    identity: &ClientIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsConfigError> {
    let cert_problem = |problem: String| TlsConfigError::ClientCertFile {
        path: identity.cert_file.display().to_string(),
        problem,
    };
    let certs = read_certs(&identity.cert_file).map_err(cert_problem)?;
    if certs.is_empty() {
        return Err(cert_problem("holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&identity.key_file).map_err(|error| {
        TlsConfigError::ClientKeyFile {
            path: identity.key_file.display().to_string(),
            problem: match error {
                rustls::pki_types::pem::Error::NoItemsFound => "holds no PEM private key".into(),
                other => other.to_string(),
            },
        }
    })?;
    Ok((certs, key))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| error.to_string())
}

/// The TLS error behind a failed connection, if that is what it was: rustls reports handshake
/// failures (a certificate that does not verify, a host name that does not match, an alert from
/// the server) through the I/O error of the connection.
pub fn tls_failure(error: &io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = client_config(Some(&missing), None).unwrap_err().to_string();
        assert!(error.starts_with("CA file"), "{error}");
        assert!(error.contains("missing.pem"), "{error}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let identity = ClientIdentity {
            cert_file: empty.clone(),
            key_file: missing.clone(),
        };
        let error = client_config(None, Some(&identity))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("client certificate file"), "{error}");
        assert!(error.contains("holds no PEM certificate"), "{error}");
    }

    #[test]
    fn a_key_that_is_missing_or_not_the_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_file = dir.path().join("client.pem");
        std::fs::write(&cert_file, cert.pem()).unwrap();
        let identity = ClientIdentity {
            cert_file: cert_file.clone(),
            key_file: dir.path().join("nokey.pem"),
        };
        let error = client_config(None, Some(&identity))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("client key file"), "{error}");
        assert!(error.contains("nokey.pem"), "{error}");

        let other_key = dir.path().join("other-key.pem");
        std::fs::write(
            &other_key,
            rcgen::KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let identity = ClientIdentity {
            cert_file,
            key_file: other_key,
        };
        let error = client_config(None, Some(&identity))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("does not go with the client certificate"),
            "{error}"
        );

        let key_file = dir.path().join("client-key.pem");
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        let identity = ClientIdentity {
            cert_file: dir.path().join("client.pem"),
            key_file,
        };
        assert!(client_config(None, Some(&identity)).is_ok());
    }
}
