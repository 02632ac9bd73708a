//! `POST/GET/DELETE /v1/api-keys`: admins manage our clients' API keys.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::ClientName;
use crate::keys::{self, ApiKeyRecord, Role};
use crate::payments::PaymentError;
use crate::store::SharedStore;

use super::auth::Principal;
use super::body::{JsonBody, RawBody};
use super::error::ApiError;
use super::key_cache::KeyCache;
use super::openapi::{ApiRole, ErrorResponse};

/// `POST /v1/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateKeyBody {
    #[serde(deserialize_with = "role")]
    #[schema(value_type = ApiRole)]
    pub role: Role,
    pub name: ClientName,
}

/// A role's name; an unknown one is not acceptable (422), anything but a string is malformed.
fn role<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Role, D::Error> {
    let name = String::deserialize(deserializer)?;
    Role::parse(&name).ok_or_else(|| serde::de::Error::custom("must be operator, finance or admin"))
}

/// A key as listed: never its secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: Uuid,
    /// The public part of the key, to recognise it.
    #[schema(example = "mpg_k3j9x0a2b7qw")]
    pub prefix: String,
    #[schema(value_type = ApiRole)]
    pub role: &'static str,
    /// The client (name) the key belongs to.
    #[schema(example = "pos-web")]
    pub client: String,
    pub created_at: DateTime<Utc>,
    /// `null` while the key is valid.
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Refreshed at most once a minute.
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&ApiKeyRecord> for ApiKeyView {
    fn from(k: &ApiKeyRecord) -> Self {
        Self {
            id: k.id,
            prefix: k.lookup.clone(),
            role: k.role.as_str(),
            client: k.client.clone(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A new key: the only answer that shows the key itself.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedKey {
    /// The key itself: shown only in this answer.
    key: String,
    #[serde(flatten)]
    view: ApiKeyView,
}

/// Every key, revoked ones included.
#[derive(Serialize, ToSchema)]
struct KeyList {
    data: Vec<ApiKeyView>,
}

fn require_admin(principal: &Principal) -> Result<(), ApiError> {
    principal.require(principal.role == Role::Admin)
}

/// Create an API key
///
/// Returns the key once; only its hash is stored. Admin.
#[utoipa::path(
    operation_id = "createApiKey",
    tag = "api-keys",
    request_body = CreateKeyBody,
    responses(
        (status = 201, description = "The new key, with the key itself (shown only here).", body = CreatedKey),
        (status = 400, description = "`invalid_request`: the body is not a JSON object (or could not be read), or `role` or `name` is missing or not a string.", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: not an admin key.", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`.", body = ErrorResponse),
        (status = 422, description = "`invalid_field` (`role`, `name`).", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[post("/v1/api-keys")]
pub async fn create(
    principal: Principal,
    body: RawBody,
    store: web::Data<SharedStore>,
    cache: web::Data<KeyCache>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&principal)?;
    let CreateKeyBody { role, name } = JsonBody::<CreateKeyBody>::parse(&body.0)?.value;
    let name = name.as_str();
    let new = keys::generate(name, role, Utc::now());
    store.insert_api_key(&new.record).await?;
    // It may have been tried (and found unknown) a moment ago.
    cache.forget(&new.record.lookup);
    tracing::info!(key = %new.record.lookup, client = name, role = role.as_str(), "API key created");
    Ok(HttpResponse::Created().json(CreatedKey {
        key: new.plain,
        view: ApiKeyView::from(&new.record),
    }))
}

/// List API keys
///
/// Every key, without its secret. Admin.
#[utoipa::path(
    operation_id = "listApiKeys",
    tag = "api-keys",
    responses(
        (status = 200, description = "The keys.", body = KeyList),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: not an admin key.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/api-keys")]
pub async fn list(
    principal: Principal,
    store: web::Data<SharedStore>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&principal)?;
    let keys = store.list_api_keys().await?;
    Ok(HttpResponse::Ok().json(KeyList {
        data: keys.iter().map(ApiKeyView::from).collect(),
    }))
}

/// Revoke an API key
///
/// The key stops working at once. Admin.
#[utoipa::path(
    operation_id = "revokeApiKey",
    tag = "api-keys",
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "The revoked key.", body = ApiKeyView),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: not an admin key.", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such key.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[delete("/v1/api-keys/{id}")]
pub async fn revoke(
    principal: Principal,
    path: web::Path<String>,
    store: web::Data<SharedStore>,
    cache: web::Data<KeyCache>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&principal)?;
    let not_found = || ApiError::Payment(PaymentError::NotFound("API key"));
    let id = Uuid::parse_str(&path).map_err(|_| not_found())?;
    if !store.revoke_api_key(id, Utc::now()).await? {
        return Err(not_found());
    }
    // This process stops accepting it at once; others within the cache's TTL.
    cache.forget_id(id);
    tracing::info!(%id, "API key revoked");
    let keys = store.list_api_keys().await?;
    let key = keys.iter().find(|k| k.id == id).ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(key)))
}
