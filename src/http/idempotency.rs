//! Idempotency-Key handling for payment and purchase (API.md, "Payments never happen twice").
//!
//! A key is claimed atomically in the database before anything else happens, so that of
//! concurrent requests with one key (in one process or several) exactly one runs. A repeat
//! while the first still runs gets 409 `idempotency_key_in_use` (documented choice: no waiting).

use std::future::Future;

use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::domain::{IdempotencyKey, Transaction, TransactionStatus};
use crate::payments::{Caller, PaymentError};
use crate::store::{KeyClaim, SharedStore};

use super::error::ApiError;
use super::views::{status_for, TransactionView};

pub const KEY_HEADER: &str = "Idempotency-Key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A claim with nothing recorded behind it after this long belongs to a request that died
/// before it committed anything; it may be taken over.
const ABANDONED_AFTER_SECS: i64 = 60;

/// The validated key from the request headers.
pub fn key_from(request: &HttpRequest) -> Result<IdempotencyKey, ApiError> {
    let value = request
        .headers()
        .get(KEY_HEADER)
        .ok_or(ApiError::IdempotencyKeyRequired)?;
    let value = value.to_str().map_err(|_| ApiError::Malformed {
        field: KEY_HEADER.into(),
        message: "must be 1 to 255 visible ASCII characters".into(),
    })?;
    IdempotencyKey::parse(KEY_HEADER, value).map_err(|e| ApiError::Malformed {
        field: KEY_HEADER.into(),
        message: e.message,
    })
}

/// SHA-256 of the route and the canonical body: "the same request".
pub fn request_hash(route: &str, canonical_body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_body.as_bytes());
    hex::encode(hasher.finalize())
}

/// The response for a use case's result.
pub fn respond(result: Result<Transaction, PaymentError>) -> HttpResponse {
    match result {
        Ok(transaction) => {
            HttpResponse::build(status_for(&transaction)).json(TransactionView::from(&transaction))
        }
        Err(error) => ApiError::from(error).error_response(),
    }
}

/// Errors raised before anything was recorded for this key: the client may fix the request
/// and retry with the same key.
fn recorded_nothing(error: &PaymentError) -> bool {
    matches!(
        error,
        PaymentError::Validation(_)
            | PaymentError::NotFound(_)
            | PaymentError::InquiryMismatch { .. }
            | PaymentError::InquiryNotPayable { .. }
            | PaymentError::InquiryExpired { .. }
            | PaymentError::AmountMismatch { .. }
            | PaymentError::AlreadyPaid(_)
            | PaymentError::CircuitOpen(_)
            | PaymentError::PossibleDuplicate(_)
    )
}

/// Runs `work` at most once per (client, key), replaying its first answer to repeats.
pub async fn run_once<F, Fut>(
    store: &SharedStore,
    caller: &Caller,
    key: &IdempotencyKey,
    hash: &str,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Transaction, PaymentError>>,
{
    let claim = store
        .claim_idempotency_key(&caller.client, key.as_str(), hash, Utc::now())
        .await?;
    if let KeyClaim::Existing(record) = claim {
        if record.request_hash != hash {
            return Err(ApiError::IdempotencyKeyMismatch);
        }
        if let (Some(status), Some(body)) = (record.response_status, record.response_body) {
            return Ok(replayed(
                StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
                body,
            ));
        }
        let transaction = match record.transaction_id {
            Some(id) => store.get_transaction(id).await?,
            None => None,
        };
        match transaction {
            // The first request is still talking to the upstream.
            Some(t) if t.status == TransactionStatus::Sending => {
                return Err(ApiError::IdempotencyKeyInUse)
            }
            // Its answer was never stored (the process died, or it is just finishing):
            // the transaction's current state.
            Some(t) => {
                let mut response = respond(Ok(t));
                mark_replayed(&mut response);
                return Ok(response);
            }
            None if (Utc::now() - record.created_at).num_seconds() < ABANDONED_AFTER_SECS => {
                return Err(ApiError::IdempotencyKeyInUse)
            }
            // Abandoned before anything was committed: nothing was sent, run it now.
            None => {}
        }
    }

    let result = work().await;
    if let Err(error) = &result {
        // Another request with this key linked its transaction first: the key and its answer
        // are that request's, so nothing is released or stored for it here.
        if matches!(error, PaymentError::KeyTaken) {
            return Err(ApiError::from(result.unwrap_err()));
        }
        if recorded_nothing(error) {
            store
                .release_idempotency_key(&caller.client, key.as_str())
                .await?;
            return Err(ApiError::from(result.unwrap_err()));
        }
        if matches!(
            error,
            PaymentError::StoreUnavailable(_) | PaymentError::Unexpected(_)
        ) {
            // Whatever was committed is found again through the key's transaction.
            return Err(ApiError::from(result.unwrap_err()));
        }
    }
    let (response, body) = split_body(respond(result));
    let status = response.status().as_u16() as i32;
    if let Err(error) = store
        .complete_idempotency_key(&caller.client, key.as_str(), status, &body)
        .await
    {
        tracing::warn!(error = %error, "could not store the answer for replay; repeats will read the transaction");
    }
    Ok(response)
}

fn replayed(status: StatusCode, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(body);
    mark_replayed(&mut response);
    response
}

fn mark_replayed(response: &mut HttpResponse) {
    crate::metrics::record_idempotent_replay();
    response.headers_mut().insert(
        HeaderName::from_static(REPLAYED_HEADER),
        HeaderValue::from_static("true"),
    );
}

/// Takes the complete body out of a response built by [`respond`] and puts it back.
fn split_body(response: HttpResponse) -> (HttpResponse, String) {
    use actix_web::body::{BoxBody, MessageBody};
    let (head, body) = response.into_parts();
    let bytes = body.try_into_bytes().unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (head.set_body(BoxBody::new(bytes)), text)
}
