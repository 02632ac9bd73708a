//! `POST /v1/bills/{billNumber}/inquiry` and `POST /v1/bills/{billNumber}/payment`.

use actix_web::{post, web, HttpRequest, HttpResponse};

use crate::domain::{BillNumber, ProductCode, ValidationError};
use crate::payments::{PaymentRequest, Payments};
use crate::store::SharedStore;

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::idempotency::{self, key_from, request_hash};
use super::views::TransactionView;

#[post("/v1/bills/{billNumber}/inquiry")]
pub async fn inquire(
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
    payments: web::Data<Payments>,
) -> Result<HttpResponse, ApiError> {
    principal.require_transact()?;
    let bill_number = BillNumber::parse("billNumber", &path)?;
    let body = JsonBody::parse(&body)?;
    let product = ProductCode::parse("product", body.string("product")?)?;
    let inquiry = payments
        .inquire(&principal.caller(), &bill_number, &product)
        .await?;
    Ok(HttpResponse::Ok().json(TransactionView::from(&inquiry)))
}

#[post("/v1/bills/{billNumber}/payment")]
pub async fn pay(
    principal: Principal,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    payments: web::Data<Payments>,
    store: web::Data<SharedStore>,
) -> Result<HttpResponse, ApiError> {
    principal.require_transact()?;
    let key = key_from(&request)?;
    let bill_number = BillNumber::parse("billNumber", &path)?;
    let body = JsonBody::parse(&body)?;
    let product = ProductCode::parse("product", body.string("product")?)?;
    let inquiry_id = uuid::Uuid::parse_str(body.string("inquiryId")?)
        .map_err(|_| ValidationError::new("inquiryId", "must be a transaction id (UUID)"))?;
    let amount = body.optional_amount("amount")?;
    let payment = PaymentRequest {
        bill_number,
        product,
        inquiry_id,
        amount,
    };
    let hash = request_hash(
        &format!("payment {}", payment.bill_number),
        &body.canonical(),
    );
    let caller = principal.caller();
    idempotency::run_once(&store, &caller, &key, &hash, || {
        payments.pay(&caller, &payment, &key)
    })
    .await
}
