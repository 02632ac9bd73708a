//! The transaction: one client-visible inquiry, payment or purchase, and its life cycle.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionKind {
    Inquiry,
    Payment,
    Purchase,
}

impl TransactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Inquiry => "inquiry",
            TransactionKind::Payment => "payment",
            TransactionKind::Purchase => "purchase",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inquiry" => Some(TransactionKind::Inquiry),
            "payment" => Some(TransactionKind::Payment),
            "purchase" => Some(TransactionKind::Purchase),
            _ => None,
        }
    }

    /// Payments and purchases move money.
    pub fn moves_money(self) -> bool {
        !matches!(self, TransactionKind::Inquiry)
    }
}

/// Where a transaction is in its life.
///
/// `Sending` is committed before a money message leaves (write-ahead); clients see it as
/// `pending`, since the outcome is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    Sending,
    Pending,
    Succeeded,
    Failed,
    Review,
}

impl TransactionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionStatus::Sending => "sending",
            TransactionStatus::Pending => "pending",
            TransactionStatus::Succeeded => "succeeded",
            TransactionStatus::Failed => "failed",
            TransactionStatus::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sending" => Some(TransactionStatus::Sending),
            "pending" => Some(TransactionStatus::Pending),
            "succeeded" => Some(TransactionStatus::Succeeded),
            "failed" => Some(TransactionStatus::Failed),
            "review" => Some(TransactionStatus::Review),
            _ => None,
        }
    }

    /// The status a client sees (`sending` is shown as `pending`).
    pub fn public(self) -> &'static str {
        match self {
            TransactionStatus::Sending => "pending",
            other => other.as_str(),
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransactionStatus::Succeeded | TransactionStatus::Failed
        )
    }
}

/// One transaction as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub id: Uuid,
    pub kind: TransactionKind,
    pub status: TransactionStatus,
    /// The API client (its name) that made it.
    pub client: String,
    pub request_id: Option<String>,
    pub product: String,
    pub bill_number: String,
    pub trx_id: String,
    pub retrieval: String,
    pub amount: Option<i64>,
    pub admin_fee: Option<i64>,
    pub payment_code: Option<String>,
    /// For a payment: the inquiry it pays.
    pub inquiry_id: Option<Uuid>,
    pub info1: Option<String>,
    pub info2: Option<String>,
    pub info3: Option<String>,
    pub sheets: Option<i32>,
    pub balance_after: Option<i64>,
    pub result_code: Option<String>,
    pub result_description: Option<String>,
    /// The public error code when the transaction was declined or could not be sent.
    pub error_code: Option<String>,
    pub advice_attempts: i32,
    /// When the reconciler should next ask (pending payments only).
    pub next_advice_at: Option<DateTime<Utc>>,
    /// When advice first answered "not found" (`996`).
    pub not_found_since: Option<DateTime<Utc>>,
    /// Why a person must look (status `review`).
    pub review_reason: Option<String>,
    /// For an inquiry: until when it may be paid.
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Transaction {
    /// A new transaction about to be sent: status `sending`, nothing known yet.
    pub fn begin(
        kind: TransactionKind,
        client: &str,
        product: &str,
        bill_number: &str,
        trx_id: &str,
        retrieval: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind,
            status: TransactionStatus::Sending,
            client: client.to_string(),
            request_id: None,
            product: product.to_string(),
            bill_number: bill_number.to_string(),
            trx_id: trx_id.to_string(),
            retrieval: retrieval.to_string(),
            amount: None,
            admin_fee: None,
            payment_code: None,
            inquiry_id: None,
            info1: None,
            info2: None,
            info3: None,
            sheets: None,
            balance_after: None,
            result_code: None,
            result_description: None,
            error_code: None,
            advice_attempts: 0,
            next_advice_at: None,
            not_found_since: None,
            review_reason: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
        }
    }

    /// `amount + adminFee`, when both are known.
    pub fn total(&self) -> Option<i64> {
        Some(self.amount? + self.admin_fee.unwrap_or(0))
    }

    /// The receipt (`info1`) as ordered label/value pairs.
    pub fn receipt(&self) -> Vec<ReceiptLine> {
        self.info1.as_deref().map(parse_receipt).unwrap_or_default()
    }

    /// The customer's name, where the receipt names one.
    pub fn customer_name(&self) -> Option<String> {
        self.receipt()
            .into_iter()
            .find(|line| {
                let label = line.label.to_ascii_lowercase();
                matches!(
                    label.as_str(),
                    "nama" | "nama pelanggan" | "customer name" | "name"
                )
            })
            .map(|line| line.value)
            .filter(|name| !name.is_empty())
    }
}

/// One `Label : value` line of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptLine {
    pub label: String,
    pub value: String,
}

/// Parses `info1`: `Label : value` pairs separated by `|`. Blank parts are skipped; a part with
/// no colon becomes a line with an empty label. Whitespace runs inside values are folded.
pub fn parse_receipt(info: &str) -> Vec<ReceiptLine> {
    info.split('|')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once(':') {
            Some((label, value)) => ReceiptLine {
                label: fold_whitespace(label),
                value: fold_whitespace(value),
            },
            None => ReceiptLine {
                label: String::new(),
                value: fold_whitespace(part),
            },
        })
        .collect()
}

fn fold_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendor_receipt_parses_in_order_with_the_customer_name() {
        let info1 = "Kode Bayar  : AF085713323054|Kode Reff   : 900017|ID Transaksi: TKP154821699|Nama        : Eduard Budiharto|Desk.Order  : Pembelian dari Tokopedia|Jml Tagihan : Rp.     304.000|";
        let lines = parse_receipt(info1);
        let labels: Vec<_> = lines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Kode Bayar",
                "Kode Reff",
                "ID Transaksi",
                "Nama",
                "Desk.Order",
                "Jml Tagihan"
            ]
        );
        assert_eq!(lines[0].value, "AF085713323054");
        assert_eq!(lines[5].value, "Rp. 304.000");
        let mut transaction = Transaction::begin(
            TransactionKind::Inquiry,
            "c",
            "2042",
            "AF085713323054",
            "00000001",
            "r",
            Utc::now(),
        );
        transaction.info1 = Some(info1.to_string());
        assert_eq!(
            transaction.customer_name().as_deref(),
            Some("Eduard Budiharto")
        );
    }

    #[test]
    fn values_may_hold_colons_and_parts_may_lack_labels() {
        let lines = parse_receipt("Jam : 10:30|LUNAS||");
        assert_eq!(
            lines[0],
            ReceiptLine {
                label: "Jam".into(),
                value: "10:30".into()
            }
        );
        assert_eq!(
            lines[1],
            ReceiptLine {
                label: "".into(),
                value: "LUNAS".into()
            }
        );
        assert_eq!(lines.len(), 2);
    }
}
