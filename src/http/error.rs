//! Every failure a client can see, mapped to HTTP status and the error body of API.md in this
//! one place. Internal detail goes to the log, never into the response.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::ValidationError;
use crate::payments::{PaymentError, UpstreamFailure};
use crate::store::StoreError;

/// How long clients should wait on upstream maintenance (the vendor says 3 minutes).
const MAINTENANCE_RETRY_AFTER_SECS: &str = "180";

/// A failure as the public API reports it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (not JSON, wrong JSON type, missing field): 400.
    #[error("{field}: {message}")]
    Malformed { field: String, message: String },
    /// The request is well-formed but a value is not acceptable: 422.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("a valid API key is required")]
    Unauthorized,
    #[error("this API key's role may not do this")]
    Forbidden,
    #[error("not found")]
    RouteNotFound,
    #[error("Idempotency-Key header is required")]
    IdempotencyKeyRequired,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyMismatch,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyKeyInUse,
    /// The client is over its request rate: 429 with `Retry-After`.
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The request body did not arrive within `http.client_timeout_ms`: 408, and the
    /// connection is closed.
    #[error("the request body was not sent in time")]
    RequestTimeout,
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// Webhooks are off in this gateway (no encryption key for endpoint secrets): 503. Carries
    /// the reason, which names the setting.
    #[error("{0}")]
    WebhooksUnavailable(String),
}

/// A handler's own store call fails as a use case's would.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Payment(error.into())
    }
}

/// Every error answer (API.md, "Conventions").
// Documented as `ErrorResponse`, under the names it has always had there.
#[derive(Serialize, ToSchema)]
#[schema(as = ErrorResponse, example = json!({"error": {
    "code": "upstream_maintenance",
    "message": "the upstream did not accept the request: upstream_maintenance",
    "upstream": {"code": "102", "description": "SISTEM SEDANG MAINTENANCE"},
    "transactionId": "0192f1a4-7c1e-7d2a-9b1e-3f5c2d9e8a10"
}}))]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ErrorObject)]
struct ErrorDetail<'a> {
    /// Stable, machine-readable: `invalid_request`, `invalid_field`, `payload_too_large`,
    /// `unauthorized`, `forbidden`, `not_found`, `rate_limited`, `idempotency_key_required`,
    /// `idempotency_key_mismatch`, `idempotency_key_in_use`, `inquiry_mismatch`,
    /// `inquiry_not_payable`, `inquiry_expired`, `amount_mismatch`, `already_paid`,
    /// `advice_unavailable`, `upstream_maintenance`, `cutoff_time`, `invalid_product`,
    /// `upstream_rejected`, `upstream_error`, `upstream_timeout`, `upstream_unavailable`,
    /// `biller_declined`, `database_unavailable`, `webhooks_unavailable`, `internal_error`,
    /// `possible_duplicate`.
    #[schema(example = "invalid_field")]
    code: &'a str,
    /// For people; never internal detail. On `biller_declined`, the biller's own text.
    message: String,
    /// The request field (or header) at fault, on 400 and 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "billNumber")]
    field: Option<&'a str>,
    /// The upstream's result, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    upstream: Option<UpstreamDetail<'a>>,
    /// The transaction concerned, when there is one (a declined payment, the earlier payment of
    /// `already_paid`, the inquiry of `inquiry_expired`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    transaction_id: Option<Uuid>,
}

/// An upstream result code and its text, unchanged.
#[derive(Serialize, ToSchema)]
#[schema(as = UpstreamResult)]
struct UpstreamDetail<'a> {
    #[schema(example = "102")]
    code: &'a str,
    description: &'a str,
}

impl ApiError {
    /// The stable machine-readable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Malformed { .. } => "invalid_request",
            ApiError::Invalid(_) => "invalid_field",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::RouteNotFound => "not_found",
            ApiError::IdempotencyKeyRequired => "idempotency_key_required",
            ApiError::IdempotencyKeyMismatch => "idempotency_key_mismatch",
            ApiError::IdempotencyKeyInUse => "idempotency_key_in_use",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::WebhooksUnavailable(_) => "webhooks_unavailable",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::Payment(error) => match error {
                PaymentError::Validation(_) => "invalid_field",
                PaymentError::NotFound(_) => "not_found",
                PaymentError::InquiryMismatch { .. } => "inquiry_mismatch",
                PaymentError::InquiryNotPayable { .. } => "inquiry_not_payable",
                PaymentError::InquiryExpired { .. } => "inquiry_expired",
                PaymentError::AmountMismatch { .. } => "amount_mismatch",
                PaymentError::AlreadyPaid(_) => "already_paid",
                PaymentError::AdviceUnavailable { .. } => "advice_unavailable",
                PaymentError::KeyTaken => "idempotency_key_in_use",
                PaymentError::Upstream { failure, .. } => failure.code(),
                PaymentError::StoreUnavailable(_) => "database_unavailable",
                PaymentError::Unexpected(_) => "internal_error",
                PaymentError::CircuitOpen(_) => "upstream_unavailable",
                PaymentError::PossibleDuplicate(_) => "possible_duplicate",
            },
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::Malformed { field, .. } => Some(field),
            ApiError::Invalid(error) | ApiError::Payment(PaymentError::Validation(error)) => {
                Some(&error.field)
            }
            ApiError::IdempotencyKeyRequired => Some("Idempotency-Key"),
            ApiError::Payment(PaymentError::InquiryMismatch { field }) => Some(field),
            ApiError::Payment(PaymentError::AmountMismatch { .. }) => Some("amount"),
            ApiError::Payment(PaymentError::NotFound("inquiry")) => Some("inquiryId"),
            _ => None,
        }
    }

    fn transaction_id(&self) -> Option<Uuid> {
        match self {
            ApiError::Payment(error) => match error {
                PaymentError::InquiryNotPayable { inquiry_id }
                | PaymentError::InquiryExpired { inquiry_id } => Some(*inquiry_id),
                PaymentError::AlreadyPaid(id) | PaymentError::PossibleDuplicate(id) => Some(*id),
                PaymentError::AdviceUnavailable { transaction_id, .. } => Some(*transaction_id),
                PaymentError::Upstream { transaction_id, .. } => *transaction_id,
                _ => None,
            },
            _ => None,
        }
    }

    /// The client-facing message: never internal detail.
    fn message(&self) -> String {
        match self {
            ApiError::Payment(PaymentError::Unexpected(_)) => {
                "an internal error occurred; it has been logged".into()
            }
            ApiError::Payment(PaymentError::StoreUnavailable(StoreError::NotWritable(why, _))) => {
                format!("the database {why}; retry later")
            }
            ApiError::Payment(PaymentError::Upstream {
                result: Some((_, description)),
                failure: UpstreamFailure::BillerDeclined,
                ..
            }) if !description.is_empty() => description.clone(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Malformed { .. } | ApiError::IdempotencyKeyRequired => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Invalid(_) | ApiError::IdempotencyKeyMismatch => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::IdempotencyKeyInUse => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::WebhooksUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Payment(error) => match error {
                PaymentError::Validation(_)
                | PaymentError::InquiryMismatch { .. }
                | PaymentError::InquiryNotPayable { .. }
                | PaymentError::AmountMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                PaymentError::NotFound(_) => StatusCode::NOT_FOUND,
                PaymentError::InquiryExpired { .. }
                | PaymentError::AlreadyPaid(_)
                | PaymentError::AdviceUnavailable { .. }
                | PaymentError::KeyTaken => StatusCode::CONFLICT,
                PaymentError::Upstream { failure, .. } => match failure {
                    UpstreamFailure::Maintenance => StatusCode::SERVICE_UNAVAILABLE,
                    UpstreamFailure::CutOff
                    | UpstreamFailure::InvalidProduct
                    | UpstreamFailure::BillerDeclined => StatusCode::UNPROCESSABLE_ENTITY,
                    UpstreamFailure::InquiryExpired => StatusCode::CONFLICT,
                    UpstreamFailure::Rejected
                    | UpstreamFailure::Error
                    | UpstreamFailure::Unavailable => StatusCode::BAD_GATEWAY,
                    UpstreamFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
                },
                PaymentError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                PaymentError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
                PaymentError::CircuitOpen(_) => StatusCode::SERVICE_UNAVAILABLE,
                PaymentError::PossibleDuplicate(_) => StatusCode::CONFLICT,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            ApiError::Payment(PaymentError::Unexpected(error)) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
            }
            ApiError::Payment(PaymentError::StoreUnavailable(error)) => {
                tracing::error!(error = %error, "database unavailable");
            }
            ApiError::Payment(PaymentError::Upstream {
                failure: UpstreamFailure::Rejected,
                result,
                ..
            }) => {
                tracing::error!(
                    ?result,
                    "upstream rejected our request: check the gateway's upstream configuration"
                );
            }
            _ => {}
        }
        let upstream = match self {
            ApiError::Payment(PaymentError::Upstream {
                result: Some((code, description)),
                ..
            }) => Some(UpstreamDetail { code, description }),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.message(),
                field: self.field(),
                upstream,
                transaction_id: self.transaction_id(),
            },
        };
        let mut response = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let retry_after = match self {
                ApiError::Payment(PaymentError::StoreUnavailable(_)) => "5".to_string(),
                ApiError::Payment(PaymentError::CircuitOpen(open)) => {
                    open.retry_after_secs().to_string()
                }
                _ => MAINTENANCE_RETRY_AFTER_SECS.to_string(),
            };
            response.insert_header((header::RETRY_AFTER, retry_after));
        }
        if let ApiError::RateLimited { retry_after_secs } = self {
            response.insert_header((header::RETRY_AFTER, (*retry_after_secs).max(1).to_string()));
        }
        if matches!(self, ApiError::RequestTimeout) {
            response.force_close();
        }
        response.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(error: ApiError) -> (StatusCode, &'static str, Option<Uuid>) {
        (error.status_code(), error.code(), error.transaction_id())
    }

    #[test]
    fn store_errors_of_a_handler_are_answered_as_a_use_cases() {
        // Two repeats took over one abandoned key together: this one recorded nothing.
        assert_eq!(
            answer(StoreError::KeyTaken.into()),
            (StatusCode::CONFLICT, "idempotency_key_in_use", None)
        );
        let earlier = Uuid::now_v7();
        assert_eq!(
            answer(StoreError::AlreadyPaid(earlier).into()),
            (StatusCode::CONFLICT, "already_paid", Some(earlier))
        );
        assert_eq!(
            answer(StoreError::Conflict.into()),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error", None)
        );
    }
}
