//! A short-lived in-memory cache of API key records, and of look-ups that found nothing (API.md,
//! "Abuse and slow clients": made-up keys never reach the database per request).
//!
//! A record is trusted for [`KEY_CACHE_TTL`]; after that, a request that presents its right
//! secret reads it again (so a key revoked by another process, `keys revoke`, stops working here
//! within the TTL; the revoke route of this process forgets the key at once). What never changes
//! needs no second look: a key's hash is fixed, so a wrong secret is refused from the cache however
//! old the record, and so is a revoked key (revocation is final).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::keys::ApiKeyRecord;

/// How long a cached record or "no such key" stays trusted.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// At most this many "no such key" answers are kept (records of real keys are few).
const MAX_UNKNOWN: usize = 10_000;

/// What the cache knows of a key's public part.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// Looked up less than the TTL ago: `None` is "no such key".
    Fresh(Option<ApiKeyRecord>),
    /// A record read longer ago: still good for what never changes (its hash, a revocation).
    Stale(ApiKeyRecord),
    /// Never looked up, or "no such key" too long ago.
    Unknown,
}

#[derive(Debug)]
struct Entry {
    record: Option<ApiKeyRecord>,
    read_at: Instant,
}

/// The cache, shared by every worker of the process.
#[derive(Debug)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, Entry>>,
    ttl: Duration,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(KEY_CACHE_TTL)
    }
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, lookup: &str) -> Cached {
        let entries = self.entries();
        match entries.get(lookup) {
            Some(entry) if entry.read_at.elapsed() < self.ttl => {
                Cached::Fresh(entry.record.clone())
            }
            Some(Entry {
                record: Some(record),
                ..
            }) => Cached::Stale(record.clone()),
            _ => Cached::Unknown,
        }
    }

    /// Remembers what the database said of `lookup`.
    pub fn put(&self, lookup: &str, record: Option<ApiKeyRecord>) {
        let mut entries = self.entries();
        if record.is_none() && entries.len() >= MAX_UNKNOWN {
            let ttl = self.ttl;
            entries.retain(|_, entry| entry.record.is_some() || entry.read_at.elapsed() < ttl);
            if entries.len() >= MAX_UNKNOWN {
                entries.retain(|_, entry| entry.record.is_some());
            }
        }
        entries.insert(
            lookup.to_string(),
            Entry {
                record,
                read_at: Instant::now(),
            },
        );
    }

    /// Forgets the key `id` (revoked here), so that its next use reads the database.
    pub fn forget_id(&self, id: Uuid) {
        self.entries()
            .retain(|_, entry| entry.record.as_ref().is_none_or(|record| record.id != id));
    }

    /// Forgets what is known of `lookup` (a key just created here may have been tried before).
    pub fn forget(&self, lookup: &str) {
        self.entries().remove(lookup);
    }

    /// Whether the caller should record that the key was used at `now`: true at most once per
    /// `every` per key in this process, however many requests race (the cached record takes the
    /// new time before the write).
    pub fn claim_touch(&self, lookup: &str, now: DateTime<Utc>, every: chrono::Duration) -> bool {
        let mut entries = self.entries();
        let Some(record) = entries
            .get_mut(lookup)
            .and_then(|entry| entry.record.as_mut())
        else {
            return false;
        };
        if record.last_used_at.is_some_and(|at| now - at < every) {
            return false;
        }
        record.last_used_at = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{self, Role};

    #[test]
    fn records_go_stale_unknowns_are_forgotten_and_revocation_forgets_at_once() {
        let cache = KeyCache::new(Duration::from_millis(50));
        let key = keys::generate("pos-web", Role::Operator, Utc::now()).record;
        cache.put(&key.lookup, Some(key.clone()));
        cache.put("mpg_nothinghere", None);
        assert_eq!(cache.get(&key.lookup), Cached::Fresh(Some(key.clone())));
        assert_eq!(cache.get("mpg_nothinghere"), Cached::Fresh(None));
        assert_eq!(cache.get("mpg_neverasked0"), Cached::Unknown);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&key.lookup), Cached::Stale(key.clone()));
        assert_eq!(cache.get("mpg_nothinghere"), Cached::Unknown);
        cache.forget_id(key.id);
        assert_eq!(cache.get(&key.lookup), Cached::Unknown);
    }

    #[test]
    fn a_key_use_is_claimed_once_per_period() {
        let cache = KeyCache::default();
        let key = keys::generate("pos-web", Role::Operator, Utc::now()).record;
        cache.put(&key.lookup, Some(key.clone()));
        let now = Utc::now();
        let minute = chrono::Duration::seconds(60);
        assert!(cache.claim_touch(&key.lookup, now, minute));
        assert!(!cache.claim_touch(&key.lookup, now + chrono::Duration::seconds(59), minute));
        assert!(cache.claim_touch(&key.lookup, now + minute, minute));
    }

    #[test]
    fn unknowns_are_bounded() {
        let cache = KeyCache::default();
        for i in 0..MAX_UNKNOWN + 10 {
            cache.put(&format!("mpg_{i:012}"), None);
        }
        assert!(cache.entries().len() <= MAX_UNKNOWN);
    }
}
