//! `GET /v1/transactions/{id}/receipt`: a payment's or purchase's receipt as plain text for a
//! thermal printer of 32 or 48 columns (API.md, "Cashier protections and receipts").

use std::collections::HashMap;

use actix_web::{get, web, HttpResponse};
use chrono_tz::Tz;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use crate::domain::{Transaction, TransactionKind, TransactionStatus, ValidationError};
use crate::payments::{PaymentError, Payments};

use super::auth::Principal;
use super::error::ApiError;
use super::openapi::ErrorResponse;
use super::search::BusinessZone;

/// The paper widths receipts are laid out for, in characters; the first is the default.
const WIDTHS: [usize; 2] = [32, 48];

/// The `width` query parameter as the document shows it: one of [`WIDTHS`].
pub(crate) struct ReceiptWidth;

impl utoipa::PartialSchema for ReceiptWidth {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .enum_values(Some(WIDTHS))
            .default(Some(WIDTHS[0].into()))
            .into()
    }
}

impl utoipa::ToSchema for ReceiptWidth {}

/// A transaction's receipt
///
/// Plain text for a thermal printer: the biller's text (`info2`), every label and value of the
/// upstream's receipt, bill number, product, trxId, date and time in the business time zone,
/// amount, admin fee, total and status; no line is longer than `width` characters (long values
/// wrap). A transaction that has not succeeded says it is not proof of payment. Same roles and
/// scoping as `GET /v1/transactions/{id}`; an inquiry has no receipt.
#[utoipa::path(
    operation_id = "getReceipt",
    tag = "transactions",
    params(
        ("id" = Uuid, Path, description = "The payment's or purchase's id."),
        ("width" = Option<ReceiptWidth>, Query, description = "Characters per line: `32` (default) or `48`."),
    ),
    responses(
        (status = 200, description = "The receipt, one printed line per text line.", body = String,
            content_type = "text/plain; charset=utf-8"),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such payment or purchase (an inquiry, or another client's transaction for an operator).", body = ErrorResponse),
        (status = 422, description = "`invalid_field` (`field`: `width`): not 32 or 48.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/transactions/{id}/receipt")]
pub async fn receipt(
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    payments: web::Data<Payments>,
    zone: web::Data<BusinessZone>,
) -> Result<HttpResponse, ApiError> {
    let width = match query.get("width") {
        None => WIDTHS[0],
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|width| WIDTHS.contains(width))
            .ok_or_else(|| ValidationError::new("width", "must be 32 or 48"))?,
    };
    let not_found = || ApiError::Payment(PaymentError::NotFound("transaction"));
    let id = uuid::Uuid::parse_str(&path).map_err(|_| not_found())?;
    let transaction = payments.transaction(&principal.caller(), id).await?;
    if transaction.kind == TransactionKind::Inquiry {
        return Err(not_found());
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(render(&transaction, width, zone.0)))
}

/// The receipt of `t`, `width` characters wide at most, each line ending in `\n`.
pub fn render(t: &Transaction, width: usize, zone: Tz) -> String {
    let mut out = Receipt {
        width,
        lines: Vec::new(),
    };
    // The biller's text: `|`-separated lines; `##` starts a part of its own (printed without
    // the marker); a marker with only a number (`##1`) is a sheet number, not text.
    for line in t.info2.as_deref().unwrap_or_default().split(['|', '\n']) {
        let line = line.trim();
        let text = line.trim_start_matches('#').trim();
        let sheet_number = line.starts_with("##") && text.bytes().all(|b| b.is_ascii_digit());
        if !text.is_empty() && !sheet_number {
            out.wrapped(text);
        }
    }
    out.rule();
    for line in t.receipt() {
        out.pair(&line.label, &line.value);
    }
    let number_label = match t.kind {
        TransactionKind::Purchase => "Customer number",
        _ => "Bill number",
    };
    out.pair(number_label, &t.bill_number);
    out.pair("Product", &t.product);
    out.pair("trxId", &t.trx_id);
    let at = t.completed_at.unwrap_or(t.created_at).with_timezone(&zone);
    out.pair("Date", &at.format("%Y-%m-%d %H:%M:%S %Z").to_string());
    out.rule();
    out.pair("Amount", &rupiah(t.amount));
    out.pair("Admin fee", &rupiah(t.admin_fee));
    out.pair("Total", &rupiah(t.total()));
    out.pair("Status", &t.status.public().to_ascii_uppercase());
    if t.status != TransactionStatus::Succeeded {
        out.rule();
        out.wrapped("NOT PROOF OF PAYMENT: this transaction has not succeeded.");
    }
    let mut text = out.lines.join("\n");
    text.push('\n');
    text
}

/// Rupiah with `.` between thousands, as Indonesian receipts print them (`Rp 305.550`).
fn rupiah(amount: Option<i64>) -> String {
    let Some(amount) = amount else {
        return "-".into();
    };
    let digits = amount.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(digit);
    }
    let sign = if amount < 0 { "-" } else { "" };
    format!("Rp {sign}{grouped}")
}

struct Receipt {
    width: usize,
    lines: Vec<String>,
}

impl Receipt {
    fn rule(&mut self) {
        self.lines.push("-".repeat(self.width));
    }

    /// `label` left and `value` right on one line when both fit, else the label, then the
    /// value wrapped.
    fn pair(&mut self, label: &str, value: &str) {
        let (label, value) = (label.trim(), value.trim());
        let used = label.chars().count() + value.chars().count();
        if used < self.width {
            let gap = self.width - used;
            self.lines
                .push(format!("{label}{}{value}", " ".repeat(gap)));
        } else {
            if !label.is_empty() {
                self.wrapped(label);
            }
            self.wrapped(value);
        }
    }

    /// `text` wrapped at spaces to the width; a word longer than the width is cut.
    fn wrapped(&mut self, text: &str) {
        let mut line = String::new();
        let mut line_chars = 0;
        for word in text.split_whitespace() {
            let mut word: Vec<char> = word.chars().collect();
            if line_chars > 0 && line_chars + 1 + word.len() <= self.width {
                line.push(' ');
                line.extend(&word);
                line_chars += 1 + word.len();
                continue;
            }
            if line_chars > 0 {
                self.lines.push(std::mem::take(&mut line));
            }
            while word.len() > self.width {
                let rest = word.split_off(self.width);
                self.lines.push(word.into_iter().collect());
                word = rest;
            }
            line_chars = word.len();
            line = word.into_iter().collect();
        }
        if line_chars > 0 {
            self.lines.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupiah_groups_thousands() {
        assert_eq!(rupiah(Some(305550)), "Rp 305.550");
        assert_eq!(rupiah(Some(999)), "Rp 999");
        assert_eq!(rupiah(Some(1000)), "Rp 1.000");
        assert_eq!(rupiah(Some(999999999999)), "Rp 999.999.999.999");
        assert_eq!(rupiah(None), "-");
    }

    #[test]
    fn long_words_and_values_wrap_to_the_width() {
        let mut paper = Receipt {
            width: 10,
            lines: Vec::new(),
        };
        paper.wrapped("abcdefghijklmnopqrstuvwxyz short words here");
        paper.pair("Nama", "Eduard Budiharto Sumarsono");
        assert!(
            paper.lines.iter().all(|l| l.chars().count() <= 10),
            "{:?}",
            paper.lines
        );
        assert_eq!(paper.lines[0], "abcdefghij");
        assert_eq!(paper.lines[2], "uvwxyz");
        assert_eq!(paper.lines[3], "short");
        assert!(paper.lines.contains(&"Nama".to_string()));
    }
}
