//! The public JSON shapes of API.md ("The transaction").

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Transaction, TransactionKind};
use crate::store::ExchangeRecord;

/// One `Label : value` line of the upstream's receipt (`info1`), in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptLineView {
    pub label: String,
    pub value: String,
}

/// The upstream's result code and text.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultView {
    #[schema(example = "000")]
    pub code: String,
    pub description: String,
}

/// What a transaction is (the `type` of a transaction view; documentation only).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum TransactionType {
    Inquiry,
    Payment,
    Purchase,
}

/// Where a transaction is (the `status` of a transaction view; documentation only).
/// `succeeded` and `failed` are final; `pending`: the outcome is not known yet and the gateway is
/// asking the upstream with advice; `review`: still unknown after the advice schedule ran out (or
/// a purchase with an unknown outcome), a person must look.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum TransactionStatus {
    Succeeded,
    Failed,
    Pending,
    Review,
}

/// A transaction as clients see it. Fields that are `null` until known are always present;
/// the others (not required) are left out when they do not apply.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionView {
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(value_type = TransactionType)]
    pub kind: &'static str,
    #[schema(value_type = TransactionStatus)]
    pub status: &'static str,
    /// True for `succeeded` and `failed`.
    #[serde(rename = "final")]
    pub is_final: bool,
    #[schema(example = "2042")]
    pub product: String,
    /// The bill number (for a purchase: the customer number).
    #[schema(example = "AF085713323054")]
    pub bill_number: String,
    /// From the receipt, where it names the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub customer_name: Option<String>,
    /// The upstream transaction number (8 digits).
    #[schema(example = "00000002")]
    pub trx_id: String,
    #[schema(example = "20261127143025123")]
    pub retrieval: String,
    /// Rupiah.
    #[schema(required = true, example = 304000)]
    pub amount: Option<i64>,
    /// Rupiah.
    #[schema(required = true, example = 1550)]
    pub admin_fee: Option<i64>,
    /// `amount + adminFee`, rupiah.
    #[schema(required = true, example = 305550)]
    pub total: Option<i64>,
    /// The code a payment pays with (from its inquiry) or a purchase got.
    #[schema(required = true)]
    pub payment_code: Option<String>,
    /// For a payment: the inquiry it pays.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub inquiry_id: Option<Uuid>,
    pub receipt: Vec<ReceiptLineView>,
    #[schema(required = true)]
    pub info1: Option<String>,
    #[schema(required = true)]
    pub info2: Option<String>,
    #[schema(required = true)]
    pub info3: Option<String>,
    #[schema(required = true)]
    pub sheets: Option<i32>,
    /// The deposit balance after this transaction, rupiah.
    #[schema(required = true)]
    pub balance_after: Option<i64>,
    /// The upstream's answer, once there is one.
    #[schema(required = true)]
    pub result: Option<ResultView>,
    /// The public error code of a declined transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "biller_declined")]
    pub error_code: Option<String>,
    /// Why a person must look (status `review`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub review_reason: Option<String>,
    pub advice_attempts: i32,
    /// For an inquiry: until when it may be paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(required = true)]
    pub completed_at: Option<DateTime<Utc>>,
    /// Only on `GET /v1/transactions/{id}`: the upstream exchanges, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub exchanges: Option<Vec<ExchangeView>>,
}

impl From<&Transaction> for TransactionView {
    fn from(t: &Transaction) -> Self {
        Self {
            id: t.id,
            kind: t.kind.as_str(),
            status: t.status.public(),
            is_final: t.status.is_final(),
            product: t.product.clone(),
            bill_number: t.bill_number.clone(),
            customer_name: t.customer_name(),
            trx_id: t.trx_id.clone(),
            retrieval: t.retrieval.clone(),
            amount: t.amount,
            admin_fee: t.admin_fee,
            total: t.total(),
            payment_code: t.payment_code.clone(),
            inquiry_id: t.inquiry_id,
            receipt: t
                .receipt()
                .into_iter()
                .map(|line| ReceiptLineView {
                    label: line.label,
                    value: line.value,
                })
                .collect(),
            info1: t.info1.clone(),
            info2: t.info2.clone(),
            info3: t.info3.clone(),
            sheets: t.sheets,
            balance_after: t.balance_after,
            result: t.result_code.as_ref().map(|code| ResultView {
                code: code.clone(),
                description: t.result_description.clone().unwrap_or_default(),
            }),
            error_code: t.error_code.clone(),
            review_reason: t.review_reason.clone(),
            advice_attempts: t.advice_attempts,
            expires_at: t.expires_at.filter(|_| t.kind == TransactionKind::Inquiry),
            created_at: t.created_at,
            updated_at: t.updated_at,
            completed_at: t.completed_at,
            exchanges: None,
        }
    }
}

/// One upstream exchange, as recorded (the signature was never stored).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeView {
    pub id: Uuid,
    /// The upstream message type (`inquiry`, `payment`, `advice`, …).
    #[serde(rename = "type")]
    pub message_type: String,
    pub trx_id: String,
    /// The message sent, without secrets.
    pub request: serde_json::Value,
    /// The raw answer (a string when it was not JSON); `null` when none came.
    #[schema(required = true)]
    pub response: Option<serde_json::Value>,
    #[schema(required = true)]
    pub http_status: Option<i32>,
    pub outcome: String,
    #[schema(required = true)]
    pub result_code: Option<String>,
    pub latency_ms: i64,
    #[schema(required = true)]
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&ExchangeRecord> for ExchangeView {
    fn from(e: &ExchangeRecord) -> Self {
        Self {
            id: e.id,
            message_type: e.message_type.as_str().to_string(),
            trx_id: e.trx_id.clone(),
            request: serde_json::from_str(&e.request).unwrap_or(serde_json::Value::Null),
            // A raw answer that is not JSON is shown as a string.
            response: e.response.as_ref().map(|raw| {
                serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.clone()))
            }),
            http_status: e.http_status,
            outcome: e.outcome.as_str().to_string(),
            result_code: e.result_code.clone(),
            latency_ms: e.latency_ms,
            request_id: e.request_id.clone(),
            created_at: e.created_at,
        }
    }
}

/// The HTTP status for a transaction returned by a use case: 200 when final, 202 while the
/// outcome is still being resolved.
pub fn status_for(transaction: &Transaction) -> actix_web::http::StatusCode {
    if transaction.status.is_final() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::ACCEPTED
    }
}
