//! `GET /v1/reports/daily?date=YYYY-MM-DD`: one business day's payments and purchases.

use std::collections::{BTreeMap, HashMap};

use actix_web::{get, web, HttpResponse};
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{TransactionKind, TransactionStatus as DomainStatus};
use crate::store::SharedStore;

use super::auth::Principal;
use super::error::ApiError;
use super::openapi::ErrorResponse;
use super::search::{report_day, BusinessZone};
use super::views::{TransactionStatus, TransactionType};

/// Counts and rupiah sums.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sums {
    pub count: i64,
    pub amount: i64,
    pub admin_fee: i64,
    pub total: i64,
}

impl Sums {
    /// Adds one group's counts and sums; `None` (and `self` unchanged) if any would overflow.
    fn add(&mut self, count: i64, amount: i64, admin_fee: i64) -> Option<()> {
        let sums = Sums {
            count: self.count.checked_add(count)?,
            amount: self.amount.checked_add(amount)?,
            admin_fee: self.admin_fee.checked_add(admin_fee)?,
            total: self.total.checked_add(amount.checked_add(admin_fee)?)?,
        };
        *self = sums;
        Some(())
    }
}

/// The payments or purchases of one product with one status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// `payment` or `purchase`.
    #[serde(rename = "type")]
    #[schema(value_type = TransactionType)]
    pub kind: String,
    pub product: String,
    #[schema(value_type = TransactionStatus)]
    pub status: String,
    #[serde(flatten)]
    pub sums: Sums,
}

/// One business day's payments and purchases.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyReport {
    pub date: NaiveDate,
    /// The business day's time zone.
    #[schema(example = "Asia/Jakarta")]
    pub time_zone: String,
    /// Inquiries made that day.
    pub inquiries: i64,
    /// Payments and purchases by type, product and status.
    pub groups: Vec<Group>,
    /// The succeeded payments and purchases: the money that moved.
    pub totals: Sums,
}

/// Daily report
///
/// For one business day: payments and purchases grouped by type, product and status (count,
/// amount, admin fee, total), the succeeded totals, and the number of inquiries. Finance and
/// admin.
#[utoipa::path(
    operation_id = "dailyReport",
    tag = "reports",
    params(("date" = Option<NaiveDate>, Query, description = "The business day, `YYYY-MM-DD` (default: today in the business time zone).")),
    responses(
        (status = 200, description = "The day's report.", body = DailyReport),
        (status = 400, description = "`invalid_request` (`field`: `date`).", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: an operator key.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/reports/daily")]
pub async fn daily(
    principal: Principal,
    query: web::Query<HashMap<String, String>>,
    store: web::Data<SharedStore>,
    zone: web::Data<BusinessZone>,
) -> Result<HttpResponse, ApiError> {
    principal.require(principal.role.reads_all())?;
    let zone = zone.0;
    let (date, start, end) = report_day(query.get("date").map(String::as_str), zone, |message| {
        ApiError::Malformed {
            field: "date".into(),
            message: message.into(),
        }
    })?;
    let rows = store.report_rows(start, end).await?;
    let mut inquiries = 0;
    let mut totals = Sums::default();
    let mut groups: BTreeMap<(&str, String, &str), Sums> = BTreeMap::new();
    for row in rows {
        if row.kind == TransactionKind::Inquiry {
            inquiries += row.count;
            continue;
        }
        if row.status == DomainStatus::Succeeded {
            totals
                .add(row.count, row.amount, row.admin_fee)
                .ok_or_else(sums_overflow)?;
        }
        groups
            .entry((row.kind.as_str(), row.product, row.status.public()))
            .or_default()
            .add(row.count, row.amount, row.admin_fee)
            .ok_or_else(sums_overflow)?;
    }
    Ok(HttpResponse::Ok().json(DailyReport {
        date,
        time_zone: zone.to_string(),
        inquiries,
        groups: groups
            .into_iter()
            .map(|((kind, product, status), sums)| Group {
                kind: kind.to_string(),
                product,
                status: status.to_string(),
                sums,
            })
            .collect(),
        totals,
    }))
}

/// Amounts are held to 12 digits when an answer is parsed, so a day's sums fit in 64 bits by
/// far; if they ever do not, the report says so rather than wrap or panic.
fn sums_overflow() -> ApiError {
    ApiError::Payment(anyhow::anyhow!("the day's sums exceed 64-bit integers").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_add_with_checked_arithmetic() {
        let mut sums = Sums::default();
        assert_eq!(sums.add(2, 304000, 1550), Some(()));
        assert_eq!(sums.total, 305550);
        let before = sums;
        assert_eq!(sums.add(1, i64::MAX, 0), None);
        assert_eq!(
            sums.add(1, i64::MAX - 304000, 1),
            None,
            "the total overflows"
        );
        assert_eq!(sums, before, "an overflowing add changes nothing");
    }
}
