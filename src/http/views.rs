//! The public JSON shapes of API.md ("The transaction").

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{Transaction, TransactionKind};
use crate::store::ExchangeRecord;

#[derive(Debug, Serialize)]
pub struct ReceiptLineView {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct ResultView {
    pub code: String,
    pub description: String,
}

/// A transaction as clients see it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: &'static str,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub product: String,
    pub bill_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    pub trx_id: String,
    pub retrieval: String,
    pub amount: Option<i64>,
    pub admin_fee: Option<i64>,
    pub total: Option<i64>,
    pub payment_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inquiry_id: Option<Uuid>,
    pub receipt: Vec<ReceiptLineView>,
    pub info1: Option<String>,
    pub info2: Option<String>,
    pub info3: Option<String>,
    pub sheets: Option<i32>,
    pub balance_after: Option<i64>,
    pub result: Option<ResultView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    pub advice_attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub message_type: String,
    pub trx_id: String,
    pub request: serde_json::Value,
    pub response: Option<serde_json::Value>,
    pub http_status: Option<i32>,
    pub outcome: String,
    pub result_code: Option<String>,
    pub latency_ms: i64,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&ExchangeRecord> for ExchangeView {
    fn from(e: &ExchangeRecord) -> Self {
        Self {
            id: e.id,
            message_type: e.message_type.clone(),
            trx_id: e.trx_id.clone(),
            request: serde_json::from_str(&e.request).unwrap_or(serde_json::Value::Null),
            // A raw answer that is not JSON is shown as a string.
            response: e.response.as_ref().map(|raw| {
                serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.clone()))
            }),
            http_status: e.http_status,
            outcome: e.outcome.clone(),
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
