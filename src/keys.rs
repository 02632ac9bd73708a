//! API keys of our own clients: generation, hashing and roles (API.md, "Roles").
//!
//! A key reads `mpg_<id>_<secret>`. The id (public) finds the row; the secret is stored only as
//! its SHA-256 and compared in constant time.

use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const PREFIX: &str = "mpg_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 40;
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Operator,
    Finance,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Finance => "finance",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Role::Operator),
            "finance" => Some(Role::Finance),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Inquire, pay, purchase, advise.
    pub fn may_transact(self) -> bool {
        matches!(self, Role::Operator | Role::Admin)
    }

    /// Read every client's transactions, export, reports.
    pub fn reads_all(self) -> bool {
        matches!(self, Role::Finance | Role::Admin)
    }
}

/// A stored key: never the secret itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    /// The public part of the key, `mpg_<id>`, used to find it.
    pub lookup: String,
    /// SHA-256 (hex) of the whole key.
    pub hash: String,
    pub client: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A freshly made key: the plain text is shown once and never stored.
pub struct NewKey {
    pub plain: String,
    pub record: ApiKeyRecord,
}

fn random_string(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn hash_key(plain: &str) -> String {
    hex::encode(Sha256::digest(plain.as_bytes()))
}

/// Makes a new random key for `client` with `role`.
pub fn generate(client: &str, role: Role, now: DateTime<Utc>) -> NewKey {
    let lookup = format!("{PREFIX}{}", random_string(ID_LEN));
    let plain = format!("{lookup}_{}", random_string(SECRET_LEN));
    NewKey {
        record: ApiKeyRecord {
            id: Uuid::now_v7(),
            lookup,
            hash: hash_key(&plain),
            client: client.to_string(),
            role,
            created_at: now,
            revoked_at: None,
            last_used_at: None,
        },
        plain,
    }
}

/// The lookup part of a presented key, if it has the right shape.
pub fn lookup_of(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(PREFIX)?;
    if rest.len() != ID_LEN + 1 + SECRET_LEN || rest.as_bytes()[ID_LEN] != b'_' {
        return None;
    }
    Some(&presented[..PREFIX.len() + ID_LEN])
}

/// Whether `presented` is the key `record` was made from (constant-time on the hash).
pub fn matches(record: &ApiKeyRecord, presented: &str) -> bool {
    hash_key(presented)
        .as_bytes()
        .ct_eq(record.hash.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_matches_only_itself_and_is_not_stored() {
        let new = generate("pos-web", Role::Operator, Utc::now());
        assert!(new.plain.starts_with("mpg_"));
        assert_eq!(lookup_of(&new.plain), Some(new.record.lookup.as_str()));
        assert!(matches(&new.record, &new.plain));
        let mut wrong = new.plain.clone();
        wrong.pop();
        wrong.push('!');
        assert!(!matches(&new.record, &wrong));
        assert!(!format!("{:?}", new.record).contains(&new.plain[new.record.lookup.len()..]));
        assert_eq!(lookup_of("mpg_short"), None);
    }
}
