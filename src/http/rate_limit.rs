//! Rate limiting of the `/v1` routes (GCRA, from the `governor` crate), after the API key is
//! checked (API.md, "Abuse and slow clients").
//!
//! A request with a verified key is counted against that key (its public part, `mpg_xxxxxxxxxxxx`,
//! see [`crate::keys::lookup_of`]): every key has its own budget, whichever client it belongs to, and
//! nobody else can spend it. A request whose key is missing, unknown or wrong is counted against
//! its client address ([`TrustedProxies::client_of`]) at `rate_limit.failed_auth_per_minute`.
//! Keys are checked through the [`KeyCache`], so known keys and recent unknown ones cost no
//! database read; an address over its failed-auth limit gets no database read at all: only a key
//! the cache can verify goes on (a real client behind the same address keeps working), anything
//! else is answered 429 at once. Over a limit: 429 `rate_limited` with `Retry-After`. `/healthz`,
//! `/readyz` and `/metrics` are never limited.
//!
//! The budgets live in this process: with several gateway processes, each allows the configured
//! rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitSettings;
use crate::metrics;
use crate::store::SharedStore;

use super::auth::{self, Authentication, Verdict};
use super::client_address::TrustedProxies;
use super::error::ApiError;
use super::key_cache::KeyCache;

/// Idle budgets (back to full) are forgotten every this many checks, to bound the memory that
/// many distinct keys or addresses could take.
const PRUNE_EVERY_CHECKS: u64 = 4096;

/// Whom a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    /// The public lookup part of a verified API key.
    ApiKey(String),
    /// The client address, for requests without a valid key.
    Address(Option<IpAddr>),
}

/// The budgets of every client, shared by all workers.
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<ClientKey>,
    failed_auth: DefaultKeyedRateLimiter<ClientKey>,
    /// Addresses over their failed-auth limit, and until when.
    blocked: Mutex<HashMap<Option<IpAddr>, Instant>>,
    trusted_proxies: TrustedProxies,
    checks: AtomicU64,
}

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let per_second = NonZeroU32::new(settings.requests_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        let failed_per_minute =
            NonZeroU32::new(settings.failed_auth_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            ),
            failed_auth: DefaultKeyedRateLimiter::keyed(Quota::per_minute(failed_per_minute)),
            blocked: Mutex::new(HashMap::new()),
            trusted_proxies: TrustedProxies::new(&settings.trusted_proxies),
            checks: AtomicU64::new(0),
        }
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    fn prune(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY_CHECKS
            == PRUNE_EVERY_CHECKS - 1
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            self.failed_auth.retain_recent();
            self.failed_auth.shrink_to_fit();
            let now = Instant::now();
            self.blocked().retain(|_, until| *until > now);
        }
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, HashMap<Option<IpAddr>, Instant>> {
        self.blocked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Ok` if the client may go on; otherwise the whole seconds (≥ 1) to wait.
    fn check(&self, key: &ClientKey) -> Result<(), u64> {
        self.prune();
        self.limiter
            .check_key(key)
            .map_err(|not_until| whole_secs(not_until.wait_time_from(self.limiter.clock().now())))
    }

    /// Counts one failed authentication against `address`: `Err` (seconds to wait) when over.
    fn charge_failed_auth(&self, address: Option<IpAddr>) -> Result<(), u64> {
        self.prune();
        self.failed_auth
            .check_key(&ClientKey::Address(address))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.failed_auth.clock().now());
                self.blocked().insert(address, Instant::now() + wait);
                whole_secs(wait)
            })
    }

    /// How long `address` is still over its failed-auth limit (`None`: it is not).
    fn blocked_for(&self, address: Option<IpAddr>) -> Option<u64> {
        let until = *self.blocked().get(&address)?;
        let left = until.checked_duration_since(Instant::now())?;
        Some(whole_secs(left))
    }
}

fn whole_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Only the versioned API is limited.
fn is_limited_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

fn refuse<B>(
    request: ServiceRequest,
    retry_after_secs: u64,
    why: &'static str,
) -> ServiceResponse<EitherBody<B>> {
    metrics::record_rate_limited();
    tracing::info!(
        retry_after_secs,
        why,
        "request refused: over the rate limit"
    );
    let response = ApiError::RateLimited { retry_after_secs }.error_response();
    request.into_response(response).map_into_right_body()
}

/// Middleware (for `actix_web::middleware::from_fn`): checks the key, then the budget of the
/// key or of the address. The [`RateLimiter`], the store and the [`KeyCache`] come from the app
/// data (without them, nothing is limited and the extractor checks the key itself).
pub async fn limit<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if is_limited_path(request.path()) {
        let limiter = request.app_data::<web::Data<RateLimiter>>().cloned();
        let store = request.app_data::<web::Data<SharedStore>>().cloned();
        let cache = request.app_data::<web::Data<KeyCache>>().cloned();
        if let (Some(limiter), Some(store), Some(cache)) = (limiter, store, cache) {
            let address = limiter.trusted_proxies().client_of(&request);
            let presented = auth::presented_key(request.headers()).map(str::to_string);
            let verdict = auth::authenticate(&store, &cache, presented.as_deref(), || {
                limiter.blocked_for(address).is_none()
            })
            .await;
            match verdict {
                Verdict::Verified(record) => {
                    let key = ClientKey::ApiKey(record.lookup.clone());
                    if let Err(wait) = limiter.check(&key) {
                        return Ok(refuse(request, wait, "key over its limit"));
                    }
                    request
                        .extensions_mut()
                        .insert(Authentication::Verified(record));
                }
                Verdict::Refused => {
                    if let Err(wait) = limiter.charge_failed_auth(address) {
                        return Ok(refuse(request, wait, "address over its failed-auth limit"));
                    }
                    request.extensions_mut().insert(Authentication::Refused);
                }
                Verdict::NotLookedUp => {
                    let wait = limiter.blocked_for(address).unwrap_or(1);
                    return Ok(refuse(request, wait, "address over its failed-auth limit"));
                }
                // Answered as any handler's database failure is (503 `database_unavailable`).
                Verdict::Unavailable(error) => {
                    tracing::warn!(error = %error, "could not check the API key");
                    let response = ApiError::Payment(error.into()).error_response();
                    return Ok(request.into_response(response).map_into_right_body());
                }
            }
        }
    }
    Ok(next.call(request).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        requests_per_second: u32,
        burst: u32,
        failed_auth_per_minute: u32,
    ) -> RateLimitSettings {
        RateLimitSettings {
            requests_per_second,
            burst,
            failed_auth_per_minute,
            ..RateLimitSettings::default()
        }
    }

    #[test]
    fn a_client_over_its_burst_waits_at_least_a_second_and_others_are_unaffected() {
        let limiter = RateLimiter::new(&settings(1, 2, 60));
        let one = ClientKey::ApiKey("mpg_aaaaaaaaaaaa".into());
        let two = ClientKey::ApiKey("mpg_bbbbbbbbbbbb".into());
        assert_eq!(limiter.check(&one), Ok(()));
        assert_eq!(limiter.check(&one), Ok(()));
        let wait = limiter.check(&one).unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert_eq!(limiter.check(&two), Ok(()));
        assert_eq!(limiter.check(&ClientKey::Address(None)), Ok(()));
    }

    #[test]
    fn an_address_over_its_failed_auth_limit_is_blocked_and_others_are_not() {
        let limiter = RateLimiter::new(&settings(100, 100, 3));
        let flooder = Some("192.0.2.1".parse().unwrap());
        let other = Some("192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(limiter.charge_failed_auth(flooder), Ok(()));
            assert_eq!(limiter.blocked_for(flooder), None);
        }
        let wait = limiter.charge_failed_auth(flooder).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.blocked_for(flooder).is_some());
        assert_eq!(limiter.blocked_for(other), None);
        assert_eq!(limiter.charge_failed_auth(other), Ok(()));
    }

    #[test]
    fn only_the_versioned_api_is_limited() {
        assert!(is_limited_path("/v1/bills/1/inquiry"));
        assert!(is_limited_path("/v1"));
        for path in ["/healthz", "/readyz", "/metrics", "/v10/x", "/openapi.json"] {
            assert!(!is_limited_path(path), "{path}");
        }
    }
}
