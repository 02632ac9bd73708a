//! `GET /v1/reports/reconciliation?date=YYYY-MM-DD`: the deposit reconciliation of one business
//! day (API.md, "Deposit: reconciliation and monitoring"). The chain itself is
//! [`crate::payments::reconciliation`]; this reads the day with a margin, cuts it by position on
//! the chain, and reconciles it off the async workers.

use std::collections::HashMap;

use actix_web::{get, web, HttpResponse};

use crate::domain::ValidationError;
use crate::payments::reconciliation::{business_day, reconcile, Reconciliation, DAY_MARGIN};
use crate::payments::PaymentError;
use crate::store::SharedStore;

use super::auth::Principal;
use super::error::ApiError;
use super::openapi::ErrorResponse;
use super::search::{report_day, BusinessZone};

/// Deposit reconciliation
///
/// For one business day: the day's succeeded payments and purchases chained by the balance the
/// upstream reported after each (its order, not the gateway's clock), with the readings of the
/// balance; every break of the chain is money that moved outside the gateway (a top-up, or a
/// charge the gateway does not know of). Finance and admin.
#[utoipa::path(
    operation_id = "reconciliationReport",
    tag = "reports",
    params(("date" = Option<NaiveDate>, Query, description = "The business day, `YYYY-MM-DD` (default: today in the business time zone).")),
    responses(
        (status = 200, description = "The day's reconciliation.", body = Reconciliation),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: an operator key.", body = ErrorResponse),
        (status = 422, description = "`invalid_field` (`field`: `date`).", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/reports/reconciliation")]
pub async fn report(
    principal: Principal,
    query: web::Query<HashMap<String, String>>,
    store: web::Data<SharedStore>,
    zone: web::Data<BusinessZone>,
) -> Result<HttpResponse, ApiError> {
    principal.require(principal.role.reads_all())?;
    let zone = zone.0;
    let (date, start, end) = report_day(query.get("date").map(String::as_str), zone, |message| {
        ApiError::Invalid(ValidationError::new("date", message))
    })?;
    let window = store.reconciliation_window(start, end, DAY_MARGIN).await?;
    let report = web::block(move || {
        reconcile(
            date,
            zone.name(),
            &business_day(&window, start, end, DAY_MARGIN),
        )
    })
    .await
    .map_err(|error| PaymentError::Unexpected(anyhow::anyhow!("reconciliation: {error}")))?;
    Ok(HttpResponse::Ok().json(report))
}
