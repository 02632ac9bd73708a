//! `GET /v1/balance`.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::payments::Payments;

use super::auth::Principal;
use super::error::ApiError;
use super::openapi::ErrorResponse;

/// The deposit balance at the upstream.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct BalanceView {
    /// Rupiah.
    #[schema(example = 2451000)]
    balance: i64,
    checked_at: DateTime<Utc>,
}

/// Deposit balance
///
/// Asks the upstream (`balanceInquiry`). Every role.
#[utoipa::path(
    operation_id = "getBalance",
    tag = "balance",
    responses(
        (status = 200, description = "The balance now.", body = BalanceView),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 502, description = "`upstream_rejected`, `upstream_error`, `upstream_unavailable`.", body = ErrorResponse),
        (status = 503, description = "`upstream_maintenance` (`Retry-After: 180`), `upstream_unavailable` (the circuit breaker is open: nothing was recorded or sent; `Retry-After`) or `database_unavailable`.", body = ErrorResponse),
        (status = 504, description = "`upstream_timeout`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/balance")]
pub async fn balance(
    principal: Principal,
    payments: web::Data<Payments>,
) -> Result<HttpResponse, ApiError> {
    principal.require_any()?;
    let balance = payments.balance(&principal.caller()).await?;
    Ok(HttpResponse::Ok().json(BalanceView {
        balance: balance.balance,
        checked_at: balance.checked_at,
    }))
}
