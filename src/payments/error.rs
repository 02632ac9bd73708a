//! What can go wrong in a use case, in the terms of API.md. `http::error` maps it to HTTP.

use uuid::Uuid;

use crate::domain::ValidationError;
use crate::store::StoreError;

/// Why the upstream did not give a usable answer, as API.md's "Upstream result → HTTP" table
/// groups it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// `102`, `998`.
    Maintenance,
    /// `103`, `105`.
    CutOff,
    /// `104`; `995` on inquiry or purchase.
    InvalidProduct,
    /// `996` on payment: the paymentCode is unknown; inquire again.
    InquiryExpired,
    /// Our side is misconfigured (`991`–`994`, `996` on inquiry, `106`, `107`, `301`, `997`).
    Rejected,
    /// `108`, `109`, `198` on inquiry or balance.
    Error,
    /// No answer in time.
    Timeout,
    /// Refused, reset, HTTP ≠ 200, unparseable.
    Unavailable,
    /// A biller's own code.
    BillerDeclined,
}

impl UpstreamFailure {
    /// The public `error.code`.
    pub fn code(self) -> &'static str {
        match self {
            UpstreamFailure::Maintenance => "upstream_maintenance",
            UpstreamFailure::CutOff => "cutoff_time",
            UpstreamFailure::InvalidProduct => "invalid_product",
            UpstreamFailure::InquiryExpired => "inquiry_expired",
            UpstreamFailure::Rejected => "upstream_rejected",
            UpstreamFailure::Error => "upstream_error",
            UpstreamFailure::Timeout => "upstream_timeout",
            UpstreamFailure::Unavailable => "upstream_unavailable",
            UpstreamFailure::BillerDeclined => "biller_declined",
        }
    }
}

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("invalid {}: {}", .0.field, .0.message)]
    Validation(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the inquiry was for another {field}")]
    InquiryMismatch { field: &'static str },
    #[error("the inquiry did not succeed, so there is nothing to pay")]
    InquiryNotPayable { inquiry_id: Uuid },
    #[error("the inquiry expired; inquire again")]
    InquiryExpired { inquiry_id: Uuid },
    #[error("the inquired total is {expected}, not {given}")]
    AmountMismatch { expected: i64, given: i64 },
    #[error("this inquiry is already paid (or being paid) by transaction {0}")]
    AlreadyPaid(Uuid),
    #[error("advice is not possible for this transaction: {reason}")]
    AdviceUnavailable {
        transaction_id: Uuid,
        reason: &'static str,
    },
    #[error("the upstream did not accept the request: {}", .failure.code())]
    Upstream {
        failure: UpstreamFailure,
        /// The upstream's result code and text, when it answered.
        result: Option<(String, String)>,
        transaction_id: Option<Uuid>,
    },
    /// Another request with the same Idempotency-Key linked its transaction first (two
    /// repeats taking over one abandoned claim together): this one recorded and sent nothing.
    #[error("a request with this Idempotency-Key is still being processed")]
    KeyTaken,
    #[error("the database is unavailable")]
    StoreUnavailable(#[source] StoreError),
    /// The circuit breaker toward the upstream is open: nothing was recorded or sent.
    #[error("the upstream is not answering; nothing was sent: retry after {} s", .0.retry_after_secs())]
    CircuitOpen(crate::h2h::CircuitOpen),
    /// A recent purchase of the same product for the same customer number may be this one's
    /// double (the duplicate purchase guard); carries the earlier purchase's id.
    #[error("a purchase of this product for this customer number was made moments ago ({0}); send \"allowDuplicate\": true to buy again")]
    PossibleDuplicate(Uuid),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for PaymentError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyPaid(id) => PaymentError::AlreadyPaid(id),
            StoreError::KeyTaken => PaymentError::KeyTaken,
            StoreError::Unavailable(_) | StoreError::NotWritable(..) => {
                PaymentError::StoreUnavailable(error)
            }
            other => PaymentError::Unexpected(anyhow::Error::new(other)),
        }
    }
}
