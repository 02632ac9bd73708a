//! Secret rotation: a new secret, and for `webhooks.rotation_overlap_secs` the previous one
//! still signs too, so receivers can switch at their pace (API.md, `rotate-secret`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::encryption::{DecryptError, EncryptionKey, StoredSecret};
use super::secret::EndpointSecret;

/// What a rotation stores: the new current secret, and until when the old one keeps signing.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub secret: EndpointSecret,
    pub previous_until: DateTime<Utc>,
}

impl Rotation {
    pub fn start(now: DateTime<Utc>, overlap: Duration) -> Self {
        let overlap = chrono::Duration::from_std(overlap).unwrap_or(chrono::Duration::MAX);
        Self {
            secret: EndpointSecret::generate(),
            previous_until: now
                .checked_add_signed(overlap)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

/// The secrets a delivery at `now` is signed with: the current one, then the previous one while
/// its overlap lasts.
pub fn live_secrets(
    current: EndpointSecret,
    previous: Option<(EndpointSecret, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> Vec<EndpointSecret> {
    let mut secrets = vec![current];
    if let Some((previous, until)) = previous {
        if now < until {
            secrets.push(previous);
        }
    }
    secrets
}

/// [`live_secrets`] from an endpoint's stored columns (`secret_encrypted`,
/// `previous_secret_encrypted`, `previous_secret_until`); an expired previous secret is not
/// even decrypted.
pub fn open_live_secrets(
    key: &EncryptionKey,
    current: &StoredSecret,
    previous: Option<(&StoredSecret, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> Result<Vec<EndpointSecret>, DecryptError> {
    let previous = match previous {
        Some((stored, until)) if now < until => Some((key.decrypt(stored)?, until)),
        _ => None,
    };
    Ok(live_secrets(key.decrypt(current)?, previous, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_secret_signs_until_the_overlap_ends() {
        let now = Utc::now();
        let old = EndpointSecret::generate();
        let rotation = Rotation::start(now, Duration::from_secs(86_400));
        assert_eq!(rotation.previous_until, now + chrono::Duration::days(1));
        let previous = Some((old.clone(), rotation.previous_until));
        let during = live_secrets(rotation.secret.clone(), previous.clone(), now);
        let exposed: Vec<&str> = during.iter().map(|s| s.expose()).collect();
        assert_eq!(exposed, vec![rotation.secret.expose(), old.expose()]);
        let after = live_secrets(rotation.secret.clone(), previous, rotation.previous_until);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].expose(), rotation.secret.expose());
    }

    #[test]
    fn stored_secrets_open_into_the_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let key =
            EncryptionKey::load(&crate::webhooks::ensure_key_file(dir.path()).unwrap()).unwrap();
        let (new, old) = (EndpointSecret::generate(), EndpointSecret::generate());
        let (new_stored, old_stored) = (key.encrypt(&new), key.encrypt(&old));
        let now = Utc::now();
        let until = now + chrono::Duration::hours(1);
        let open = |at| open_live_secrets(&key, &new_stored, Some((&old_stored, until)), at);
        let during: Vec<String> = open(now)
            .unwrap()
            .iter()
            .map(|s| s.expose().into())
            .collect();
        assert_eq!(during, vec![new.expose(), old.expose()]);
        assert_eq!(open(until).unwrap().len(), 1);
        let damaged = StoredSecret::from_stored("v1:AAAA".into());
        assert!(open_live_secrets(&key, &damaged, None, now).is_err());
    }
}
