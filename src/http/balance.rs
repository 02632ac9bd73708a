//! `GET /v1/balance`.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::payments::Payments;

use super::auth::Principal;
use super::error::ApiError;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BalanceView {
    balance: i64,
    checked_at: DateTime<Utc>,
}

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
