//! `POST /v1/bills/{billNumber}/inquiry` and `POST /v1/bills/{billNumber}/payment`.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{BillNumber, IdempotencyKey, ProductCode};
use crate::payments::{PaymentRequest, Payments};
use crate::store::SharedStore;

use super::auth::Principal;
use super::body::{self, JsonBody, RawBody};
use super::error::ApiError;
use super::idempotency::{self, key_from, request_hash};
use super::openapi::ErrorResponse;
use super::views::TransactionView;

/// `POST /v1/bills/{billNumber}/inquiry`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InquiryBody {
    pub product: ProductCode,
}

/// `POST /v1/bills/{billNumber}/payment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentBody {
    /// The inquiry's product.
    pub product: ProductCode,
    /// The id of the succeeded inquiry of this bill.
    #[serde(deserialize_with = "body::transaction_id")]
    pub inquiry_id: Uuid,
    /// Optional guard: the inquired total (rupiah) must equal it (422 `amount_mismatch`).
    #[serde(default, deserialize_with = "body::optional_rupiah")]
    #[schema(minimum = 0, example = 305550)]
    pub amount: Option<i64>,
}

/// Inquire a bill
///
/// Looks the bill up at the upstream. The succeeded inquiry (with its total and `expiresAt`) is
/// what a payment pays. Operator and admin.
#[utoipa::path(
    operation_id = "inquireBill",
    tag = "bills",
    params(
        ("billNumber" = BillNumber, Path, description = "1–1500 letters, digits, `-`, `.`, `_`."),
    ),
    request_body = InquiryBody,
    responses(
        (status = 200, description = "The bill: a succeeded inquiry.", body = TransactionView,
            links(("payBill" = (
                operation_id = "payBill",
                parameters(("billNumber" = "$request.path.billNumber")),
                request_body = json!({"product": "$request.body#/product", "inquiryId": "$response.body#/id"}),
                description = "Pay the inquired bill (with a new `Idempotency-Key`)."
            )))),
        (status = 400, description = "`invalid_request`: the body is not a JSON object (or could not be read), or `product` is missing or not a string.", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: a finance key.", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`: the body is over 64 KiB.", body = ErrorResponse),
        (status = 422, description = "`invalid_field` (`billNumber`, `product`); upstream `cutoff_time`, `invalid_product`, `biller_declined` (with `upstream`).", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 502, description = "`upstream_rejected`, `upstream_error`, `upstream_unavailable`.", body = ErrorResponse),
        (status = 503, description = "`upstream_maintenance` (`Retry-After: 180`), `upstream_unavailable` (the circuit breaker is open: nothing was recorded or sent; `Retry-After`) or `database_unavailable`.", body = ErrorResponse),
        (status = 504, description = "`upstream_timeout`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[post("/v1/bills/{billNumber}/inquiry")]
pub async fn inquire(
    principal: Principal,
    path: web::Path<String>,
    body: RawBody,
    payments: web::Data<Payments>,
) -> Result<HttpResponse, ApiError> {
    principal.require_transact()?;
    let bill_number = BillNumber::parse("billNumber", &path)?;
    let body = JsonBody::<InquiryBody>::parse(&body.0)?;
    let inquiry = payments
        .inquire(&principal.caller(), &bill_number, &body.value.product)
        .await?;
    Ok(HttpResponse::Ok().json(TransactionView::from(&inquiry)))
}

/// Pay an inquired bill
///
/// Pays the bill with the paymentCode its inquiry got. Needs `Idempotency-Key`: a repeat of the
/// same request returns the first answer (declines too) with `Idempotent-Replayed: true` and
/// sends nothing upstream. If the upstream's answer is lost the payment is `pending` (202) and
/// the gateway resolves it with advice. Operator and admin.
#[utoipa::path(
    operation_id = "payBill",
    tag = "bills",
    params(
        ("billNumber" = BillNumber, Path, description = "The inquired bill: 1–1500 letters, digits, `-`, `.`, `_`."),
        ("Idempotency-Key" = IdempotencyKey, Header, description = "Required: 1–255 visible ASCII characters, unique per intended payment, scoped to the client. Kept at least 7 days."),
    ),
    request_body = PaymentBody,
    responses(
        (status = 200, description = "Paid (`succeeded`).", body = TransactionView,
            links(
                ("getTransaction" = (operation_id = "getTransaction", parameters(("id" = "$response.body#/id")),
                    description = "Read it again, with its upstream exchanges.")),
                ("adviseTransaction" = (operation_id = "adviseTransaction", parameters(("id" = "$response.body#/id")),
                    description = "Ask the upstream about it now."))
            ),
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
        (status = 202, description = "Outcome not known yet (`pending`): the gateway asks the upstream with advice; poll `GET /v1/transactions/{id}`. A replay may show `review` (advice gave up: a person must look).", body = TransactionView,
            links(
                ("getTransaction" = (operation_id = "getTransaction", parameters(("id" = "$response.body#/id")),
                    description = "Read it again, with its upstream exchanges.")),
                ("adviseTransaction" = (operation_id = "adviseTransaction", parameters(("id" = "$response.body#/id")),
                    description = "Ask the upstream about it now."))
            ),
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
        (status = 400, description = "`idempotency_key_required`; `invalid_request` (malformed body or Idempotency-Key).", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: a finance key.", body = ErrorResponse),
        (status = 404, description = "`not_found` (`field`: `inquiryId`): no such inquiry for this client.", body = ErrorResponse),
        (status = 409, description = "`already_paid` (the earlier payment in `transactionId`), `inquiry_expired` (inquire again), `idempotency_key_in_use`.", body = ErrorResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
        (status = 413, description = "`payload_too_large`.", body = ErrorResponse),
        (status = 422, description = "`invalid_field`, `inquiry_mismatch`, `inquiry_not_payable`, `amount_mismatch`, `idempotency_key_mismatch`; declined upstream: `cutoff_time`, `invalid_product`, `biller_declined` (with `upstream` and `transactionId`).", body = ErrorResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 502, description = "`upstream_rejected` or `upstream_unavailable`: nothing was paid.", body = ErrorResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
        (status = 503, description = "`upstream_maintenance` (`Retry-After: 180`), `upstream_unavailable` (the circuit breaker is open: nothing was recorded or sent; `Retry-After`) or `database_unavailable`.", body = ErrorResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier identical request."))),
    ),
    security(("bearerAuth" = [])),
)]
#[post("/v1/bills/{billNumber}/payment")]
pub async fn pay(
    principal: Principal,
    request: HttpRequest,
    path: web::Path<String>,
    body: RawBody,
    payments: web::Data<Payments>,
    store: web::Data<SharedStore>,
) -> Result<HttpResponse, ApiError> {
    principal.require_transact()?;
    let key = key_from(&request)?;
    let bill_number = BillNumber::parse("billNumber", &path)?;
    let body = JsonBody::<PaymentBody>::parse(&body.0)?;
    let hash = request_hash(&format!("payment {bill_number}"), &body.canonical);
    let PaymentBody {
        product,
        inquiry_id,
        amount,
    } = body.value;
    let payment = PaymentRequest {
        bill_number,
        product,
        inquiry_id,
        amount,
    };
    let caller = principal.caller();
    idempotency::run_once(&store, &caller, &key, &hash, || {
        payments.pay(&caller, &payment, &key)
    })
    .await
}
