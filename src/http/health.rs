//! `GET /healthz` (the process answers) and `GET /readyz` (the database answers and is migrated).

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::store::SharedStore;

#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[get("/readyz")]
pub async fn readyz(store: web::Data<SharedStore>) -> HttpResponse {
    match store.check_ready().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": store.backend()})),
        Err(error) => {
            tracing::warn!(error = %error, "not ready");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "database": store.backend()}))
        }
    }
}
