//! The OpenAPI 3 document of the REST API, collected from the registrations of the documented
//! route handlers ([`super::documented_routes`], through utoipa-actix-web) with their
//! `#[utoipa::path]` annotations and the views' `ToSchema` derives, served at
//! `GET /openapi.json`, and a Swagger UI page to read it at `GET /docs/` (assets embedded in the
//! binary: no CDN). Neither needs a key.
//!
//! The request bodies it describes are the types the handlers parse ([`super::body::JsonBody`]),
//! and the patterns of bodies, paths, headers and filters are the domain newtypes' own
//! ([`crate::domain::Documented`]): the document cannot drift from the parser. Headers every
//! response carries (`X-Request-Id`) and `Retry-After` on the `/v1` routes' 429 and 503 answers
//! are added to each operation by [`Conventions`], so that no route can forget them.

use actix_web::http::header;
use actix_web::{web, App, HttpResponse};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

/// Every error answer: the body that [`super::error::ApiError`] serves is the one documented.
pub use super::error::ErrorBody as ErrorResponse;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// The name of the security scheme every `/v1` operation requires.
pub const BEARER_SCHEME: &str = "bearerAuth";

const DESCRIPTION: &str = "\
A safe REST gateway in front of Pos Indonesia's MPospay B2B host-to-host bill-payment API.

**Conventions**

- JSON bodies with camelCase names. Money is an integer number of rupiah (`304000`), never a string.
- Times are RFC 3339 with offset. Day boundaries (reports, date filters) are the upstream's \
business day: `Asia/Jakarta` unless configured otherwise.
- Every `/v1` route needs `Authorization: Bearer <api key>` (unknown or revoked key: 401; right \
key, wrong role: 403). Roles: `operator` inquires, pays, purchases, advises and reads its own \
client's transactions; `finance` reads everything, exports and reports but never transacts; \
`admin` does everything and manages API keys.
- A request id is taken from `X-Request-Id` (or made) and sent back in `X-Request-Id`.
- Errors always have the shape `{\"error\": {\"code\", \"message\", \"field\"?, \"upstream\"?: \
{\"code\", \"description\"}, \"transactionId\"?}}` with a stable machine-readable `code`. Bad \
input: 400 (malformed) or 422 (well-formed but not acceptable), with `field`. Bodies over 64 KiB: 413.
- Payment and purchase need an `Idempotency-Key` (1–255 visible ASCII characters), scoped to the \
client: a repeat of the same request returns the first answer with `Idempotent-Replayed: true` \
and sends nothing upstream; the same key with another request is 422 \
`idempotency_key_mismatch`; while the first still runs, 409 `idempotency_key_in_use`.
- A payment whose outcome is not known yet is answered `202` with status `pending`; the gateway \
resolves it with advice. Status `review` means a person must look.
- Upstream maintenance is 503 `upstream_maintenance` with `Retry-After: 180`; too many requests \
is 429 `rate_limited` with `Retry-After`.";

#[derive(OpenApi)]
#[openapi(
    info(title = "mpospay-gateway", version = env!("CARGO_PKG_VERSION"), description = DESCRIPTION),
    components(schemas(
        super::views::TransactionView,
        super::views::TransactionType,
        super::views::TransactionStatus,
        ErrorResponse,
        // Referred to by path and header parameters, which do not collect their schemas.
        crate::domain::BillNumber,
        crate::domain::IdempotencyKey,
        super::receipts::ReceiptWidth,
    )),
    tags(
        (name = "bills", description = "Postpaid bills: inquiry, then payment of the inquired bill."),
        (name = "purchases", description = "Prepaid purchases."),
        (name = "transactions", description = "Reading transactions, searching and exporting them, and asking the upstream (advice) for a payment's outcome."),
        (name = "reports", description = "Daily totals for finance."),
        (name = "balance", description = "The deposit balance at the upstream."),
        (name = "api-keys", description = "Admins manage the API keys of the gateway's clients."),
        (name = "events", description = "The event feed: what happened to transactions and the deposit, oldest first."),
        (name = "webhooks", description = "Admins manage the endpoints events are delivered to (Standard Webhooks), and their deliveries."),
        (name = "operations", description = "Liveness, readiness and Prometheus metrics: no API key."),
    )
)]
struct ApiDoc;

/// The OpenAPI document of the whole API, as [`super::register`] serves it: collected from the
/// same registrations ([`super::documented_routes`]) on an app that is never served.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, document) = App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(super::documented_routes)
        .split_for_parts();
    with_conventions(document)
}

/// What the registrations do not say: info, tags, and the schemas no operation collects.
pub(super) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Adds to the collected operations what they all share ([`Conventions`]).
pub(super) fn with_conventions(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    Conventions.modify(&mut document);
    document
}

/// Registers `GET /openapi.json` (serving `document`) and the Swagger UI under `/docs/` (`/docs`
/// redirects there).
pub fn routes(config: &mut web::ServiceConfig, document: utoipa::openapi::OpenApi) {
    config
        .route("/docs", web::get().to(redirect_to_docs))
        .service(SwaggerUi::new("/docs/{_:.*}").url(OPENAPI_PATH, document));
}

/// The page's assets are relative to `/docs/`.
async fn redirect_to_docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// What every operation shares: the bearer scheme, `X-Request-Id` in and out, and `Retry-After`
/// on the `/v1` routes' 429 (rate limit) and 503 (maintenance, database) answers.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                BEARER_SCHEME,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("API key")
                        .description(Some(
                            "An API key made with `mpospay-gateway keys create`, as \
                             `Authorization: Bearer <key>`.",
                        ))
                        .build(),
                ),
            );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let versioned = path.starts_with("/v1/");
            for operation in operations_mut(item) {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(RefOr::T(
                        ParameterBuilder::new()
                            .name("X-Request-Id")
                            .parameter_in(ParameterIn::Header)
                            .required(Required::False)
                            .description(Some(
                                "Carried into logs and upstream records and sent back; made \
                                 when missing or not 1–128 of letters, digits, `-_.:`.",
                            ))
                            .schema(Some(
                                ObjectBuilder::new()
                                    .schema_type(Type::String)
                                    .max_length(Some(128))
                                    .pattern(Some(super::request_id::PATTERN)),
                            ))
                            .build(),
                    ));
                for (status, response) in operation.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    response.headers.insert(
                        "X-Request-Id".into(),
                        RefOr::T(
                            HeaderBuilder::new()
                                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                                .description(Some("The request's id."))
                                .build(),
                        ),
                    );
                    if versioned && (status == "429" || status == "503") {
                        response.headers.insert(
                            "Retry-After".into(),
                            RefOr::T(
                                HeaderBuilder::new()
                                    .schema(Some(
                                        ObjectBuilder::new()
                                            .schema_type(Type::Integer)
                                            .minimum(Some(1)),
                                    ))
                                    .description(Some(
                                        "Seconds to wait before retrying (180 on upstream \
                                         maintenance).",
                                    ))
                                    .build(),
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// What an API key may do (API.md, "Roles").
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ApiRole {
    Operator,
    Finance,
    Admin,
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Liveness {
    #[schema(example = "ok")]
    pub status: String,
}

/// `GET /readyz`.
#[derive(ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: String,
    /// The database backend.
    #[schema(example = "postgres")]
    pub database: String,
}
