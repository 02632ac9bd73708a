//! Endpoint secrets encrypted at rest (API.md: "stored encrypted with a key from
//! configuration"): AES-256-GCM with a random nonce per secret, stored as
//! `v1:` + base64(nonce ‖ ciphertext). The key is a file of 64 hex digits
//! (`openssl rand -hex 32`); `serve --sandbox` makes one with [`ensure_key_file`].

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox};

use super::secret::EndpointSecret;

/// The name of the key file `serve --sandbox` creates in its data folder.
pub const KEY_FILE_NAME: &str = "webhooks-encryption.key";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
const STORED_PREFIX: &str = "v1:";

/// The key that encrypts endpoint secrets.
pub struct EncryptionKey(SecretBox<[u8; KEY_BYTES]>);

/// Why the key file cannot be used. Never contains the file's content.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("webhooks encryption key file {path} does not exist (create one with `openssl rand -hex 32 > {path}`)")]
    Missing { path: String },
    #[error("webhooks encryption key file {path} cannot be read: {error}")]
    Unreadable { path: String, error: std::io::Error },
    #[error("webhooks encryption key file {path} must hold 64 hex digits (32 bytes), found {found} characters")]
    WrongLength { path: String, found: usize },
    #[error("webhooks encryption key file {path} must hold 64 hex digits (32 bytes): it holds other characters")]
    NotHex { path: String },
}

/// Why webhooks are off: the routes answer an error and the start-up log says this.
#[derive(Debug, thiserror::Error)]
pub enum WebhooksUnavailable {
    #[error(
        "webhooks are off: no encryption key for endpoint secrets; set \
         webhooks.encryption_key_file (GATEWAY_WEBHOOKS_ENCRYPTION_KEY_FILE) to a file of 64 hex \
         digits, e.g. from `openssl rand -hex 32`"
    )]
    NotConfigured,
    #[error("webhooks are off: {0}")]
    KeyFile(#[from] KeyFileError),
}

/// The key at start-up, from `webhooks.encryption_key_file`.
pub fn load_encryption_key(path: Option<&Path>) -> Result<EncryptionKey, WebhooksUnavailable> {
    let path = path.ok_or(WebhooksUnavailable::NotConfigured)?;
    Ok(EncryptionKey::load(path)?)
}

/// A stored secret that this key cannot open: another key, or a damaged value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecryptError {
    #[error("stored secret has an unknown format")]
    Format,
    #[error("stored secret does not decrypt with this key (wrong key or damaged value)")]
    WrongKey,
}

/// An encrypted endpoint secret, as stored in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret(String);

impl StoredSecret {
    /// Wraps a value read from the database.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EncryptionKey {
    /// Reads a key file: 64 hex digits, surrounding white space ignored.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyFileError::Missing { path: shown })
            }
            Err(error) => return Err(KeyFileError::Unreadable { path: shown, error }),
        };
        Self::from_hex(text.trim()).map_err(|problem| match problem {
            HexProblem::Length(found) => KeyFileError::WrongLength { path: shown, found },
            HexProblem::NotHex => KeyFileError::NotHex { path: shown },
        })
    }

    fn from_hex(text: &str) -> Result<Self, HexProblem> {
        if text.chars().count() != 2 * KEY_BYTES {
            return Err(HexProblem::Length(text.chars().count()));
        }
        let mut bytes = [0u8; KEY_BYTES];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| HexProblem::NotHex)?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.0.expose_secret()))
    }

    /// Encrypts a secret with a fresh random nonce.
    pub fn encrypt(&self, secret: &EndpointSecret) -> StoredSecret {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher()
            .encrypt(&nonce, secret.expose().as_bytes())
            .expect("AES-GCM encrypts any secret-sized input");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        StoredSecret(format!("{STORED_PREFIX}{}", STANDARD.encode(sealed)))
    }

    /// Decrypts a stored secret.
    pub fn decrypt(&self, stored: &StoredSecret) -> Result<EndpointSecret, DecryptError> {
        let encoded = stored
            .0
            .strip_prefix(STORED_PREFIX)
            .ok_or(DecryptError::Format)?;
        let sealed = STANDARD.decode(encoded).map_err(|_| DecryptError::Format)?;
        if sealed.len() <= NONCE_BYTES {
            return Err(DecryptError::Format);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at the nonce's length");
        let plain = self
            .cipher()
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| DecryptError::WrongKey)?;
        let text = String::from_utf8(plain).map_err(|_| DecryptError::Format)?;
        EndpointSecret::parse(&text).map_err(|_| DecryptError::Format)
    }
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

enum HexProblem {
    Length(usize),
    NotHex,
}

/// Makes `dir/`[`KEY_FILE_NAME`] with a new random key (mode 0600) unless it exists; returns
/// its path. For `serve --sandbox`, whose data folder then holds everything it needs.
pub fn ensure_key_file(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join(KEY_FILE_NAME);
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    let key: [u8; KEY_BYTES] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            writeln!(file, "{}", hex::encode(key))?;
            file.sync_all()?;
            Ok(path)
        }
        // Another process made it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(path),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_in(dir: &Path) -> EncryptionKey {
        EncryptionKey::load(&ensure_key_file(dir).unwrap()).unwrap()
    }

    #[test]
    fn a_secret_round_trips_and_its_stored_form_never_contains_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_in(dir.path());
        let secret = EndpointSecret::generate();
        let stored = key.encrypt(&secret);
        assert!(stored.as_str().starts_with("v1:"), "{}", stored.as_str());
        let encoded = secret.expose().strip_prefix("whsec_").unwrap();
        assert!(!stored.as_str().contains(encoded));
        assert_eq!(key.decrypt(&stored).unwrap().expose(), secret.expose());
        // A fresh nonce each time: the same secret never gives the same stored form.
        assert_ne!(key.encrypt(&secret), stored);
    }

    #[test]
    fn another_key_or_a_damaged_value_does_not_decrypt() {
        let (one, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let stored = key_in(one.path()).encrypt(&EndpointSecret::generate());
        assert_eq!(
            key_in(other.path()).decrypt(&stored).unwrap_err(),
            DecryptError::WrongKey
        );
        let key = key_in(one.path());
        let mut damaged = STANDARD
            .decode(stored.as_str().strip_prefix("v1:").unwrap())
            .unwrap();
        *damaged.last_mut().unwrap() ^= 1;
        let damaged = StoredSecret::from_stored(format!("v1:{}", STANDARD.encode(damaged)));
        assert_eq!(key.decrypt(&damaged).unwrap_err(), DecryptError::WrongKey);
        for bad in ["", "whsec_abc", "v1:", "v1:!!", "v2:AAAA"] {
            let bad = StoredSecret::from_stored(bad.into());
            assert_eq!(key.decrypt(&bad).unwrap_err(), DecryptError::Format);
        }
    }

    #[test]
    fn the_key_file_is_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = ensure_key_file(&dir.path().join("data")).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(first.trim().len(), 64);
        assert_eq!(ensure_key_file(&dir.path().join("data")).unwrap(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn without_a_key_webhooks_are_off_and_the_message_says_how_to_fix_it() {
        let error = load_encryption_key(None).unwrap_err().to_string();
        assert!(
            error.contains("GATEWAY_WEBHOOKS_ENCRYPTION_KEY_FILE"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let error = load_encryption_key(Some(&dir.path().join("gone")))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("webhooks are off: "), "{error}");
        assert!(error.contains("does not exist"), "{error}");
        let path = ensure_key_file(dir.path()).unwrap();
        assert!(load_encryption_key(Some(&path)).is_ok());
    }

    #[test]
    fn a_bad_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = EncryptionKey::load(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, KeyFileError::Missing { .. }), "{missing}");
        assert!(missing.to_string().contains("does not exist"));
        let short = dir.path().join("short");
        std::fs::write(&short, "abcd\n").unwrap();
        let error = EncryptionKey::load(&short).unwrap_err();
        assert!(
            matches!(error, KeyFileError::WrongLength { found: 4, .. }),
            "{error}"
        );
        let not_hex = dir.path().join("not-hex");
        std::fs::write(&not_hex, "z".repeat(64)).unwrap();
        let error = EncryptionKey::load(&not_hex).unwrap_err();
        assert!(matches!(error, KeyFileError::NotHex { .. }), "{error}");
        assert!(!error.to_string().contains("zzzz"), "{error}");
    }
}
