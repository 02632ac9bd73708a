//! The REST API: actix routes grouped by resource, the auth extractor, request ids, and the one
//! mapping of errors to HTTP.

pub mod auth;
mod balance;
mod bills;
pub mod body;
pub mod error;
mod health;
pub mod idempotency;
mod purchases;
pub mod request_id;
mod transactions;
pub mod views;

use actix_web::web;

use error::ApiError;

/// Registers every route.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(health::healthz)
        .service(health::readyz)
        .service(bills::inquire)
        .service(bills::pay)
        .service(purchases::purchase)
        .service(transactions::show)
        .service(transactions::advise)
        .service(balance::balance)
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ApiError::RouteNotFound)
        }));
}
