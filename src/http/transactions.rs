//! `GET /v1/transactions/{id}` and `POST /v1/transactions/{id}/advice`.

use actix_web::{get, post, web, HttpResponse};
use uuid::Uuid;

use crate::payments::{PaymentError, Payments};

use super::auth::Principal;
use super::error::ApiError;
use super::views::{status_for, ExchangeView, TransactionView};

fn transaction_id(raw: &str) -> Result<Uuid, ApiError> {
    // A malformed id names no transaction.
    Uuid::parse_str(raw).map_err(|_| ApiError::Payment(PaymentError::NotFound("transaction")))
}

#[get("/v1/transactions/{id}")]
pub async fn show(
    principal: Principal,
    path: web::Path<String>,
    payments: web::Data<Payments>,
) -> Result<HttpResponse, ApiError> {
    let id = transaction_id(&path)?;
    let transaction = payments.transaction(&principal.caller(), id).await?;
    let exchanges = payments
        .store()
        .list_exchanges(id)
        .await
        .map_err(PaymentError::from)?;
    let mut view = TransactionView::from(&transaction);
    view.exchanges = Some(exchanges.iter().map(ExchangeView::from).collect());
    Ok(HttpResponse::Ok().json(view))
}

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
