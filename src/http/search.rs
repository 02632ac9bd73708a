//! `GET /v1/transactions` (search, newest first, keyset pagination) and
//! `GET /v1/transactions/export.csv` (the same filters, streamed).

use std::collections::HashMap;

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{get, web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use futures_util::stream;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{BillNumber, ProductCode, Transaction, TransactionKind, TransactionStatus};
use crate::store::{SharedStore, TransactionFilter};

use super::auth::Principal;
use super::error::ApiError;
use super::openapi::ErrorResponse;
use super::views::{TransactionStatus as StatusSchema, TransactionType, TransactionView};

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;
/// Rows fetched per round trip while exporting.
const EXPORT_BATCH: i64 = 1000;

/// The business time zone (reports, date filters).
#[derive(Debug, Clone, Copy)]
pub struct BusinessZone(pub Tz);

fn malformed(field: &str, message: &str) -> ApiError {
    ApiError::Malformed {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// Start of a business day, as UTC.
pub fn day_start(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    zone.from_local_datetime(&midnight)
        .earliest()
        .expect("Indonesian zones have no DST gaps")
        .with_timezone(&Utc)
}

/// A business date, `YYYY-MM-DD`, in the years 1 to 9999. chrono alone also reads signed years
/// of any length: the day `-262143-01-01` starts before the first UTC time (`day_start`
/// panicked), and such years are out of Postgres's range (docs/fuzzing.md, "Findings").
pub fn parse_date(value: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|date| (1..=9999).contains(&date.year()))
}

/// The business day a report's `date` parameter names (default: today in `zone`) and the
/// instants it starts and ends at. `invalid` makes the error naming `date` (the daily report
/// answers 400, the reconciliation 422).
pub fn report_day(
    raw: Option<&str>,
    zone: Tz,
    invalid: impl Fn(&'static str) -> ApiError,
) -> Result<(NaiveDate, DateTime<Utc>, DateTime<Utc>), ApiError> {
    let date = match raw {
        Some(raw) => parse_date(raw).ok_or_else(|| invalid("must be a date YYYY-MM-DD"))?,
        None => Utc::now().with_timezone(&zone).date_naive(),
    };
    let next = date
        .checked_add_days(chrono::Days::new(1))
        .ok_or_else(|| invalid("is out of range"))?;
    Ok((date, day_start(date, zone), day_start(next, zone)))
}

/// `from`/`to`: an RFC 3339 time, or a business date (`to` then includes that whole day).
fn parse_bound(field: &str, value: &str, zone: Tz, end: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&Utc));
    }
    let date = parse_date(value)
        .ok_or_else(|| malformed(field, "must be an RFC 3339 time or a date YYYY-MM-DD"))?;
    let date = if end {
        date.checked_add_days(Days::new(1))
            .ok_or_else(|| malformed(field, "is out of range"))?
    } else {
        date
    };
    Ok(day_start(date, zone))
}

/// The filters of API.md, parsed and scoped to what the caller may read.
pub fn parse_filter(
    query: &HashMap<String, String>,
    principal: &Principal,
    zone: Tz,
) -> Result<TransactionFilter, ApiError> {
    let mut filter = TransactionFilter {
        client: (!principal.role.reads_all()).then(|| principal.client.clone()),
        ..TransactionFilter::default()
    };
    if let Some(kind) = query.get("type") {
        filter.kind = Some(
            TransactionKind::parse(kind)
                .ok_or_else(|| malformed("type", "must be inquiry, payment or purchase"))?,
        );
    }
    if let Some(status) = query.get("status") {
        filter.statuses = match status.as_str() {
            // Clients see `sending` as `pending`.
            "pending" => vec![TransactionStatus::Pending, TransactionStatus::Sending],
            other => {
                let parsed = TransactionStatus::parse(other)
                    .filter(|s| *s != TransactionStatus::Sending)
                    .ok_or_else(|| {
                        malformed("status", "must be succeeded, failed, pending or review")
                    })?;
                vec![parsed]
            }
        };
    }
    if let Some(product) = query.get("product") {
        filter.product = Some(ProductCode::parse("product", product)?.as_str().to_string());
    }
    if let Some(bill) = query.get("billNumber") {
        filter.bill_number = Some(BillNumber::parse("billNumber", bill)?.as_str().to_string());
    }
    if let Some(from) = query.get("from") {
        filter.from = Some(parse_bound("from", from, zone, false)?);
    }
    if let Some(to) = query.get("to") {
        filter.to = Some(parse_bound("to", to, zone, true)?);
    }
    Ok(filter)
}

fn parse_limit(query: &HashMap<String, String>) -> Result<i64, ApiError> {
    match query.get("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(raw) => match raw.parse::<i64>() {
            Ok(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
            _ => Err(malformed("limit", "must be a whole number from 1 to 500")),
        },
    }
}

/// Cursors are opaque to clients: the last row's id, base64url-encoded.
fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(raw: &str) -> Result<Uuid, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| malformed("cursor", "is not a cursor this API gave out"))
}

/// One page of a search, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Page {
    data: Vec<TransactionView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Search transactions
///
/// Newest first, cursor-paginated. An operator sees only its own client's transactions;
/// finance and admin see all.
#[utoipa::path(
    operation_id = "searchTransactions",
    tag = "transactions",
    params(
        ("type" = Option<TransactionType>, Query, description = "Only this type."),
        ("status" = Option<StatusSchema>, Query, description = "Only this status."),
        ("product" = Option<ProductCode>, Query, description = "Only this product (1–5 letters or digits)."),
        ("billNumber" = Option<BillNumber>, Query, description = "Only this bill (or customer) number: 1–1500 letters, digits, `-`, `.`, `_`."),
        ("from" = Option<String>, Query, description = "Created at or after: an RFC 3339 time, or a business date `YYYY-MM-DD` (its start).", example = "2026-11-27"),
        ("to" = Option<String>, Query, description = "Created before: an RFC 3339 time, or a business date `YYYY-MM-DD` (that whole day included).", example = "2026-11-27"),
        ("limit" = Option<i64>, Query, description = "Page size, 1–500 (default 50).", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page (opaque).",
            pattern = "^[A-Za-z0-9_-]{21}[AQgw]$"),
    ),
    responses(
        (status = 200, description = "One page.", body = Page),
        (status = 400, description = "`invalid_request` (`field`: `type`, `status`, `from`, `to`, `limit` or `cursor`).", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 422, description = "`invalid_field` (`product`, `billNumber`).", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/transactions")]
pub async fn search(
    principal: Principal,
    query: web::Query<HashMap<String, String>>,
    store: web::Data<SharedStore>,
    zone: web::Data<BusinessZone>,
) -> Result<HttpResponse, ApiError> {
    let filter = parse_filter(&query, &principal, zone.0)?;
    let limit = parse_limit(&query)?;
    let before = query.get("cursor").map(|c| decode_cursor(c)).transpose()?;
    // One row more than asked tells whether there is a next page.
    let mut rows = store
        .search_transactions(&filter, before, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| encode_cursor(rows.last().expect("a full page").id));
    Ok(HttpResponse::Ok().json(Page {
        data: rows.iter().map(TransactionView::from).collect(),
        next_cursor,
    }))
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 19] = [
    "id",
    "createdAt",
    "businessDate",
    "type",
    "status",
    "product",
    "billNumber",
    "customerName",
    "trxId",
    "retrieval",
    "amount",
    "adminFee",
    "total",
    "paymentCode",
    "inquiryId",
    "resultCode",
    "resultDescription",
    "client",
    "completedAt",
];

/// A cell a spreadsheet would run as a formula is prefixed with `'` (CSV injection).
fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

fn csv_row(t: &Transaction, zone: Tz) -> [String; 19] {
    let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
    let text = |s: Option<&str>| neutralise(s.unwrap_or_default());
    [
        t.id.to_string(),
        t.created_at.to_rfc3339(),
        t.created_at.with_timezone(&zone).date_naive().to_string(),
        t.kind.as_str().into(),
        t.status.public().into(),
        text(Some(&t.product)),
        text(Some(&t.bill_number)),
        text(t.customer_name().as_deref()),
        t.trx_id.clone(),
        t.retrieval.clone(),
        number(t.amount),
        number(t.admin_fee),
        number(t.total()),
        text(t.payment_code.as_deref()),
        t.inquiry_id.map(|id| id.to_string()).unwrap_or_default(),
        text(t.result_code.as_deref()),
        text(t.result_description.as_deref()),
        text(Some(&t.client)),
        t.completed_at.map(|c| c.to_rfc3339()).unwrap_or_default(),
    ]
}

fn write_csv<I: IntoIterator<Item = [String; 19]>>(rows: I, header: bool) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if header {
        writer.write_record(CSV_HEADER).expect("writing to memory");
    }
    for row in rows {
        writer.write_record(&row).expect("writing to memory");
    }
    writer.into_inner().expect("flushing to memory")
}

struct ExportState {
    store: SharedStore,
    filter: TransactionFilter,
    zone: Tz,
    before: Option<Uuid>,
    header_sent: bool,
    done: bool,
}

/// Export transactions as CSV
///
/// The search's filters, every matching row streamed as CSV (newest first) for reconciliation.
/// Cells a spreadsheet would run as formulas are prefixed with `'`. Finance and admin.
#[utoipa::path(
    operation_id = "exportTransactions",
    tag = "transactions",
    params(
        ("type" = Option<TransactionType>, Query, description = "Only this type."),
        ("status" = Option<StatusSchema>, Query, description = "Only this status."),
        ("product" = Option<ProductCode>, Query, description = "Only this product (1–5 letters or digits)."),
        ("billNumber" = Option<BillNumber>, Query, description = "Only this bill (or customer) number: 1–1500 letters, digits, `-`, `.`, `_`."),
        ("from" = Option<String>, Query, description = "Created at or after: an RFC 3339 time, or a business date `YYYY-MM-DD` (its start).", example = "2026-11-27"),
        ("to" = Option<String>, Query, description = "Created before: an RFC 3339 time, or a business date `YYYY-MM-DD` (that whole day included).", example = "2026-11-27"),
    ),
    responses(
        (status = 200, description = "CSV with a header row: id, createdAt, businessDate, type, status, product, billNumber, customerName, trxId, retrieval, amount, adminFee, total, paymentCode, inquiryId, resultCode, resultDescription, client, completedAt.",
            body = String, content_type = "text/csv",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"transactions-YYYY-MM-DD.csv\"`"))),
        (status = 400, description = "`invalid_request` (`field`: `type`, `status`, `from` or `to`).", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: an operator key.", body = ErrorResponse),
        (status = 422, description = "`invalid_field` (`product`, `billNumber`).", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/transactions/export.csv")]
pub async fn export(
    principal: Principal,
    query: web::Query<HashMap<String, String>>,
    store: web::Data<SharedStore>,
    zone: web::Data<BusinessZone>,
) -> Result<HttpResponse, ApiError> {
    principal.require(principal.role.reads_all())?;
    let filter = parse_filter(&query, &principal, zone.0)?;
    let state = ExportState {
        store: store.get_ref().clone(),
        filter,
        zone: zone.0,
        before: None,
        header_sent: false,
        done: false,
    };
    // Page by page on the id index: memory stays constant whatever the row count, and no
    // database transaction is held while the client reads.
    let body = stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let page = state
            .store
            .search_transactions(&state.filter, state.before, EXPORT_BATCH)
            .await;
        let rows = match page {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(error = %error, "CSV export failed mid-stream");
                state.done = true;
                return Some((
                    Err(actix_web::error::ErrorInternalServerError("export failed")),
                    state,
                ));
            }
        };
        state.done = (rows.len() as i64) < EXPORT_BATCH;
        state.before = rows.last().map(|t| t.id);
        let chunk = write_csv(
            rows.iter().map(|t| csv_row(t, state.zone)),
            !state.header_sent,
        );
        state.header_sent = true;
        Some((Ok::<_, actix_web::Error>(web::Bytes::from(chunk)), state))
    });
    let filename = format!(
        "transactions-{}.csv",
        Utc::now().with_timezone(&zone.0).date_naive()
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(filename)],
        })
        .streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("+1"), "'+1");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("AF085713323054"), "AF085713323054");
    }

    #[test]
    fn dates_are_business_days_in_jakarta() {
        let zone = chrono_tz::Asia::Jakarta;
        let from = parse_bound("from", "2026-11-27", zone, false).unwrap();
        let to = parse_bound("to", "2026-11-27", zone, true).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-11-26T17:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-11-27T17:00:00+00:00");
        assert!(parse_bound("from", "27/11/2026", zone, false).is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        assert!(decode_cursor("not-a-cursor").is_err());
    }
}
