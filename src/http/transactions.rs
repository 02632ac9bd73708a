//! `GET /v1/transactions/{id}` and `POST /v1/transactions/{id}/advice`.

use actix_web::{get, post, web, HttpResponse};
use uuid::Uuid;

use crate::payments::{PaymentError, Payments};

use super::auth::Principal;
use super::error::ApiError;
use super::openapi::ErrorResponse;
use super::views::{status_for, ExchangeView, TransactionView};

fn transaction_id(raw: &str) -> Result<Uuid, ApiError> {
    // A malformed id names no transaction.
    Uuid::parse_str(raw).map_err(|_| ApiError::Payment(PaymentError::NotFound("transaction")))
}

/// One transaction
///
/// With its upstream exchanges (no secrets). An operator sees only its own client's
/// transactions; finance and admin see all.
#[utoipa::path(
    operation_id = "getTransaction",
    tag = "transactions",
    params(("id" = Uuid, Path, description = "The transaction's id.")),
    responses(
        (status = 200, description = "The transaction, with `exchanges`.", body = TransactionView),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such transaction (or another client's, for an operator).", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/transactions/{id}")]
pub async fn show(
    principal: Principal,
    path: web::Path<String>,
    payments: web::Data<Payments>,
) -> Result<HttpResponse, ApiError> {
    let id = transaction_id(&path)?;
    let transaction = payments.transaction(&principal.caller(), id).await?;
    let exchanges = payments.store().list_exchanges(id).await?;
    let mut view = TransactionView::from(&transaction);
    view.exchanges = Some(exchanges.iter().map(ExchangeView::from).collect());
    Ok(HttpResponse::Ok().json(view))
}

/// Ask the upstream about a payment (advice)
///
/// Sends advice now, with the payment's own trxId and paymentCode, and applies the answer if the
/// payment is still unresolved. Safe to repeat. Operator and admin.
#[utoipa::path(
    operation_id = "adviseTransaction",
    tag = "transactions",
    params(("id" = Uuid, Path, description = "The payment's id.")),
    responses(
        (status = 200, description = "The payment, now final (`succeeded` or `failed`).", body = TransactionView),
        (status = 202, description = "Still unresolved (`pending` or `review`); the gateway keeps asking.", body = TransactionView),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: a finance key.", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such transaction (or another client's, for an operator).", body = ErrorResponse),
        (status = 409, description = "`advice_unavailable`: a purchase or an inquiry (advice asks about payments only).", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[post("/v1/transactions/{id}/advice")]
pub async fn advise(
    principal: Principal,
    path: web::Path<String>,
    payments: web::Data<Payments>,
) -> Result<HttpResponse, ApiError> {
    principal.require_transact()?;
    let id = transaction_id(&path)?;
    let transaction = payments.advise_now(&principal.caller(), id).await?;
    Ok(HttpResponse::build(status_for(&transaction)).json(TransactionView::from(&transaction)))
}
