//! The REST API: actix routes grouped by resource, the auth extractor, request ids, and the one
//! mapping of errors to HTTP.

mod api_keys;
pub mod auth;
mod balance;
pub mod bills;
pub mod body;
pub mod error;
mod health;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod purchases;
pub mod rate_limit;
mod reports;
pub mod request_id;
pub mod search;
mod transactions;
pub mod views;

use actix_web::web;

use error::ApiError;

/// Registers every route.
pub fn routes(config: &mut web::ServiceConfig) {
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
        .service(api_keys::create)
        .service(api_keys::list)
        .service(api_keys::revoke)
        .configure(openapi::routes)
        .configure(crate::ui::routes)
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ApiError::RouteNotFound)
        }));
}
