//! Per-client rate limiting of the `/v1` routes (GCRA, from the `governor` crate).
//!
//! A request is counted against the public part of its API key (`mpg_xxxxxxxxxxxx`, see
//! [`keys::lookup_of`]): every key has its own budget, whichever client it belongs to. Requests
//! without a key-shaped `Authorization: Bearer` credential are counted against the peer address
//! (behind a reverse proxy that is the proxy's address: such requests share one budget, which is
//! fine since they are refused 401 anyway). The limit is checked before the key is verified, so
//! that a flood of requests does not become a flood of database look-ups. Over the limit: 429
//! `rate_limited` with `Retry-After`. `/healthz`, `/readyz` and `/metrics` are never limited.
//!
//! The budgets live in this process: with several gateway processes, each allows the configured
//! rate.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitSettings;
use crate::keys;
use crate::metrics;

use super::error::ApiError;

/// Idle budgets (back to full) are forgotten every this many checks, to bound the memory that
/// many distinct keys or addresses could take.
const PRUNE_EVERY_CHECKS: u64 = 4096;

/// Whom a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    /// The public lookup part of an API key.
    ApiKey(String),
    /// The peer address, when no key-shaped credential was presented.
    Peer(Option<IpAddr>),
}

/// The budgets of every client, shared by all workers.
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<ClientKey>,
    checks: AtomicU64,
}

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let per_second = NonZeroU32::new(settings.requests_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            ),
            checks: AtomicU64::new(0),
        }
    }

    /// `Ok` if the client may go on; otherwise the whole seconds (≥ 1) to wait.
    fn check(&self, key: &ClientKey) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY_CHECKS
            == PRUNE_EVERY_CHECKS - 1
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

/// Only the versioned API is limited.
fn is_limited_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

fn client_key(request: &ServiceRequest) -> ClientKey {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|presented| keys::lookup_of(presented.trim()))
        .map(|lookup| ClientKey::ApiKey(lookup.to_string()))
        .unwrap_or_else(|| ClientKey::Peer(request.peer_addr().map(|address| address.ip())))
}

/// Middleware (for `actix_web::middleware::from_fn`); the [`RateLimiter`] comes from the app
/// data (without one, nothing is limited).
pub async fn limit<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if is_limited_path(request.path()) {
        if let Some(limiter) = request.app_data::<web::Data<RateLimiter>>() {
            if let Err(retry_after_secs) = limiter.check(&client_key(&request)) {
                metrics::record_rate_limited();
                tracing::info!(
                    retry_after_secs,
                    "request refused: client over its rate limit"
                );
                let response = ApiError::RateLimited { retry_after_secs }.error_response();
                return Ok(request.into_response(response).map_into_right_body());
            }
        }
    }
    Ok(next.call(request).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_burst_waits_at_least_a_second_and_others_are_unaffected() {
        let limiter = RateLimiter::new(&RateLimitSettings {
            requests_per_second: 1,
            burst: 2,
        });
        let one = ClientKey::ApiKey("mpg_aaaaaaaaaaaa".into());
        let two = ClientKey::ApiKey("mpg_bbbbbbbbbbbb".into());
        assert_eq!(limiter.check(&one), Ok(()));
        assert_eq!(limiter.check(&one), Ok(()));
        let wait = limiter.check(&one).unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert_eq!(limiter.check(&two), Ok(()));
        assert_eq!(limiter.check(&ClientKey::Peer(None)), Ok(()));
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
