//! The caller, from `Authorization: Bearer <api key>`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
use chrono::Utc;

use crate::keys::{self, ApiKeyRecord, Role};
use crate::payments::Caller;
use crate::store::{SharedStore, StoreError};

use super::error::ApiError;
use super::key_cache::{Cached, KeyCache};
use super::request_id::RequestId;

/// `last_used_at` is refreshed at most this often, to keep reads free of writes.
const TOUCH_EVERY_SECS: i64 = 60;

/// An authenticated API client.
#[derive(Debug, Clone)]
pub struct Principal {
    pub client: String,
    pub role: Role,
    pub request_id: Option<String>,
}

impl Principal {
    /// The caller as the use cases see it.
    pub fn caller(&self) -> Caller {
        Caller {
            client: self.client.clone(),
            reads_all: self.role.reads_all(),
            request_id: self.request_id.clone(),
        }
    }

    /// Inquire, pay, purchase, advise: operator and admin.
    pub fn require_transact(&self) -> Result<(), ApiError> {
        self.require(self.role.may_transact())
    }

    /// Balance: every role.
    pub fn require_any(&self) -> Result<(), ApiError> {
        Ok(())
    }

    pub fn require(&self, allowed: bool) -> Result<(), ApiError> {
        allowed.then_some(()).ok_or(ApiError::Forbidden)
    }
}

/// What the rate-limit middleware found of the request's key, for the extractor (which
/// then needs no second look-up).
#[derive(Debug, Clone)]
pub enum Authentication {
    Verified(ApiKeyRecord),
    Refused,
}

/// What checking a presented key came to.
#[derive(Debug)]
pub enum Verdict {
    Verified(ApiKeyRecord),
    /// Missing, malformed, unknown, revoked or wrong: 401.
    Refused,
    /// Only the database could tell, and the caller said not to ask it.
    NotLookedUp,
    /// The database could not be asked.
    Unavailable(StoreError),
}

/// The `Authorization: Bearer` credential, if any.
pub fn presented_key(headers: &header::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Checks `presented` against the cache, and the database where the cache cannot tell and
/// `may_look_up` allows it. A verified key's use is recorded at most once a minute per process.
pub async fn authenticate(
    store: &SharedStore,
    cache: &KeyCache,
    presented: Option<&str>,
    may_look_up: impl FnOnce() -> bool,
) -> Verdict {
    let Some(presented) = presented else {
        return Verdict::Refused;
    };
    let Some(lookup) = keys::lookup_of(presented) else {
        return Verdict::Refused;
    };
    let record = match cache.get(lookup) {
        Cached::Fresh(record) => record,
        // A wrong secret or a revoked key is refused however old the record: neither changes.
        Cached::Stale(record)
            if record.revoked_at.is_some() || !keys::matches(&record, presented) =>
        {
            return Verdict::Refused;
        }
        // The right secret: read the record again (it may have been revoked elsewhere).
        Cached::Stale(_) => match look_up(store, cache, lookup).await {
            Ok(record) => record,
            Err(error) => return Verdict::Unavailable(error),
        },
        Cached::Unknown if !may_look_up() => return Verdict::NotLookedUp,
        Cached::Unknown => match look_up(store, cache, lookup).await {
            Ok(record) => record,
            Err(error) => return Verdict::Unavailable(error),
        },
    };
    let Some(record) = record
        .filter(|record| record.revoked_at.is_none())
        .filter(|record| keys::matches(record, presented))
    else {
        return Verdict::Refused;
    };
    let now = Utc::now();
    if cache.claim_touch(lookup, now, chrono::Duration::seconds(TOUCH_EVERY_SECS)) {
        if let Err(error) = store.touch_api_key(record.id, now).await {
            tracing::warn!(error = %error, "could not record key use");
        }
    }
    Verdict::Verified(record)
}

async fn look_up(
    store: &SharedStore,
    cache: &KeyCache,
    lookup: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let record = store.find_api_key(lookup).await?;
    cache.put(lookup, record.clone());
    Ok(record)
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let store = request.app_data::<web::Data<SharedStore>>().cloned();
        let cache = request.app_data::<web::Data<KeyCache>>().cloned();
        let presented = presented_key(request.headers()).map(str::to_string);
        let checked = request.extensions().get::<Authentication>().cloned();
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone());
        Box::pin(async move {
            let record = match checked {
                Some(Authentication::Verified(record)) => record,
                Some(Authentication::Refused) => return Err(ApiError::Unauthorized),
                // Not checked by the middleware (an app without it).
                None => {
                    let store = store.ok_or(ApiError::Unauthorized)?;
                    let cache = cache.unwrap_or_default();
                    match authenticate(&store, &cache, presented.as_deref(), || true).await {
                        Verdict::Verified(record) => record,
                        Verdict::Refused | Verdict::NotLookedUp => {
                            return Err(ApiError::Unauthorized)
                        }
                        Verdict::Unavailable(error) => return Err(ApiError::Payment(error.into())),
                    }
                }
            };
            Ok(Principal {
                client: record.client,
                role: record.role,
                request_id,
            })
        })
    }
}
