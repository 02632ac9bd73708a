//! `GET /healthz` (the process answers) and `GET /readyz` (the database answers and is migrated,
//! as the background probe last found).

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::store::SharedStore;

use super::openapi::{Liveness, Readiness};
use super::probes::Probes;

/// Liveness
///
/// The process answers. No API key.
#[utoipa::path(
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "Alive.", body = Liveness)),
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness
///
/// The database is reachable and its migrations are applied. No API key.
#[utoipa::path(
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready (`status`: `ready`).", body = Readiness),
        (status = 503, description = "Not ready (`status`: `unavailable`).", body = Readiness),
    ),
)]
#[get("/readyz")]
pub async fn readyz(store: web::Data<SharedStore>, probes: web::Data<Probes>) -> HttpResponse {
    // The background probe's last result (src/http/probes.rs): this request touches nothing.
    match probes.last().await.map(|probed| probed.ready) {
        Some(Ok(())) => {
            HttpResponse::Ok().json(json!({"status": "ready", "database": store.backend()}))
        }
        Some(Err(_)) | None => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "database": store.backend()})),
    }
}
