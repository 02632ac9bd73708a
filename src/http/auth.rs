//! The caller, from `Authorization: Bearer <api key>`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
use chrono::Utc;

use crate::keys::{self, Role};
use crate::payments::Caller;
use crate::store::SharedStore;

use super::error::ApiError;
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

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let store = request.app_data::<web::Data<SharedStore>>().cloned();
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|key| key.trim().to_string());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone());
        Box::pin(async move {
            let store = store.ok_or(ApiError::Unauthorized)?;
            let presented = presented.ok_or(ApiError::Unauthorized)?;
            let lookup = keys::lookup_of(&presented).ok_or(ApiError::Unauthorized)?;
            let record = store
                .find_api_key(lookup)
                .await
                .map_err(|e| ApiError::Payment(e.into()))?
                .filter(|record| record.revoked_at.is_none())
                .filter(|record| keys::matches(record, &presented))
                .ok_or(ApiError::Unauthorized)?;
            let now = Utc::now();
            if record
                .last_used_at
                .is_none_or(|at| (now - at).num_seconds() >= TOUCH_EVERY_SECS)
            {
                if let Err(error) = store.touch_api_key(record.id, now).await {
                    tracing::warn!(error = %error, "could not record key use");
                }
            }
            Ok(Principal {
                client: record.client,
                role: record.role,
                request_id,
            })
        })
    }
}
