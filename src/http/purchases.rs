//! `POST /v1/purchases`: prepaid products.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{CustomerNumber, IdempotencyKey, ProductCode};
use crate::payments::{Payments, PurchaseRequest};
use crate::store::SharedStore;

use super::auth::Principal;
use super::body::{JsonBody, RawBody};
use super::error::ApiError;
use super::idempotency::{self, key_from, request_hash};
use super::openapi::ErrorResponse;
use super::views::TransactionView;

/// `POST /v1/purchases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseBody {
    pub product: ProductCode,
    pub customer_number: CustomerNumber,
    /// Buy even if the same product was bought for the same customer number moments ago (the
    /// duplicate purchase guard's `409 possible_duplicate`).
    #[serde(default)]
    #[schema(default = false)]
    pub allow_duplicate: bool,
}

/// Buy a prepaid product
///
/// Needs `Idempotency-Key`: a repeat of the same request returns the first answer with
/// `Idempotent-Replayed: true` and sends nothing upstream. A purchase whose outcome is unknown
/// goes to `review` (202): a purchase has no paymentCode, so advice cannot ask about it.
/// Operator and admin.
#[utoipa::path(
    operation_id = "purchase",
    tag = "purchases",
    params(
        ("Idempotency-Key" = IdempotencyKey, Header, description = "Required: 1–255 visible ASCII characters, unique per intended purchase, scoped to the client. Kept at least 7 days."),
    ),
    request_body = PurchaseBody,
    responses(
        (status = 200, description = "Bought (`succeeded`).", body = TransactionView,
            links(("getTransaction" = (operation_id = "getTransaction", parameters(("id" = "$response.body#/id")),
                description = "Read it again, with its upstream exchanges."))),
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
        (status = 202, description = "Outcome unknown (`review`): a person must look.", body = TransactionView,
            links(("getTransaction" = (operation_id = "getTransaction", parameters(("id" = "$response.body#/id")),
                description = "Read it again, with its upstream exchanges."))),
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
        (status = 400, description = "`idempotency_key_required`; `invalid_request` (malformed body or Idempotency-Key).", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: a finance key.", body = ErrorResponse),
        (status = 409, description = "`idempotency_key_in_use`: the first request with this key is still running; `possible_duplicate` (with `transactionId`, the earlier purchase): the same product was bought for the same customer number moments ago; nothing was recorded or sent, send `\"allowDuplicate\": true` to buy anyway.", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`.", body = ErrorResponse),
        (status = 422, description = "`invalid_field` (`product`, `customerNumber`), `idempotency_key_mismatch`; declined upstream: `cutoff_time`, `invalid_product`, `biller_declined` (with `upstream` and `transactionId`).", body = ErrorResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 502, description = "`upstream_rejected` or `upstream_unavailable`: nothing was bought.", body = ErrorResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
        (status = 503, description = "`upstream_maintenance` (`Retry-After: 180`), `upstream_unavailable` (the circuit breaker is open: nothing was recorded or sent; `Retry-After`) or `database_unavailable`.", body = ErrorResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
    ),
    security(("bearerAuth" = [])),
)]
#[post("/v1/purchases")]
pub async fn purchase(
    principal: Principal,
    request: HttpRequest,
    body: RawBody,
    payments: web::Data<Payments>,
    store: web::Data<SharedStore>,
) -> Result<HttpResponse, ApiError> {
    principal.require_transact()?;
    let key = key_from(&request)?;
    let body = JsonBody::<PurchaseBody>::parse(&body.0)?;
    let hash = request_hash("purchase", &body.canonical);
    let PurchaseBody {
        product,
        customer_number,
        allow_duplicate,
    } = body.value;
    let purchase = PurchaseRequest {
        product,
        customer_number,
        allow_duplicate,
    };
    let caller = principal.caller();
    idempotency::run_once(&store, &caller, &key, &hash, || {
        payments.purchase(&caller, &purchase, &key)
    })
    .await
}
