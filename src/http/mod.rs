//! The REST API: actix routes grouped by resource, the auth extractor, request ids, and the one
//! mapping of errors to HTTP.

mod api_keys;
pub mod auth;
mod balance;
pub mod bills;
pub mod body;
pub mod error;
pub mod events;
mod health;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod purchases;
pub mod rate_limit;
pub mod receipts;
mod reconciliation;
mod reports;
pub mod request_id;
pub mod search;
mod transactions;
pub mod views;
pub mod webhooks;

pub mod client_address;
pub mod connections;
pub mod key_cache;
pub mod probes;
pub mod security_headers;

use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::{web, App};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;

use error::ApiError;

/// Registers every route on `app`. The documented ones go through utoipa-actix-web, so the
/// served OpenAPI document is collected from the very registrations the app serves: a served
/// route is in it, and nothing is in it that is not served. The routes outside the document (the
/// document itself, its Swagger UI, the finance page) are registered the plain actix way.
pub fn register<T>(app: App<T>) -> App<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    let (app, document) = app
        .into_utoipa_app()
        .openapi(openapi::base())
        .configure(documented_routes)
        .split_for_parts();
    let document = openapi::with_conventions(document);
    app.configure(|config| openapi::routes(config, document))
        .configure(crate::ui::routes)
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ApiError::RouteNotFound)
        }))
}

/// The routes the OpenAPI document describes, each handler carrying its `#[utoipa::path]`.
pub(crate) fn documented_routes(config: &mut ServiceConfig) {
    config
        .service(health::healthz)
        .service(health::readyz)
        .service(metrics::scrape)
        .service(bills::inquire)
        .service(bills::pay)
        .service(purchases::purchase)
        // export.csv before {id}: the first matching route wins.
        .service(search::search)
        .service(search::export)
        .service(transactions::show)
        .service(transactions::advise)
        .service(balance::balance)
        .service(reports::daily)
        .service(reconciliation::report)
        .service(api_keys::create)
        .service(api_keys::list)
        .service(api_keys::revoke)
        .service(events::list)
        .service(webhooks::create)
        .service(webhooks::list)
        .service(webhooks::remove)
        .service(webhooks::rotate_secret)
        .service(webhooks::deliveries)
        .service(webhooks::retry)
        .service(receipts::receipt);
}
