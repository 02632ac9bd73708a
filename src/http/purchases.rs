//! `POST /v1/purchases`: prepaid products.

use actix_web::{post, web, HttpRequest, HttpResponse};

use crate::domain::{CustomerNumber, ProductCode};
use crate::payments::{Payments, PurchaseRequest};
use crate::store::SharedStore;

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::idempotency::{self, key_from, request_hash};

#[post("/v1/purchases")]
pub async fn purchase(
    principal: Principal,
    request: HttpRequest,
    body: web::Bytes,
    payments: web::Data<Payments>,
    store: web::Data<SharedStore>,
) -> Result<HttpResponse, ApiError> {
    principal.require_transact()?;
    let key = key_from(&request)?;
    let body = JsonBody::parse(&body)?;
    let purchase = PurchaseRequest {
        product: ProductCode::parse("product", body.string("product")?)?,
        customer_number: CustomerNumber::parse("customerNumber", body.string("customerNumber")?)?,
    };
    let hash = request_hash("purchase", &body.canonical());
    let caller = principal.caller();
    idempotency::run_once(&store, &caller, &key, &hash, || {
        payments.purchase(&caller, &purchase, &key)
    })
    .await
}
