//! `…/v1/webhook-endpoints…` and `POST /v1/webhook-deliveries/{id}/retry`: admins manage the
//! endpoints events are delivered to, rotate their secrets, read and retry their deliveries
//! (API.md, "Notifications"). A secret is answered only by create and rotate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::Notify;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::ClientName;
use crate::keys::Role;
use crate::payments::PaymentError;
use crate::store::{DeliveryRecord, SharedStore, WebhookEndpointRecord};
use crate::webhooks::{
    DeliveryStatus, EncryptionKey, EndpointSecret, EndpointUrl, EventFilter, EventType, Rotation,
    MAX_URL_LEN,
};

use super::auth::Principal;
use super::body::{JsonBody, RawBody};
use super::error::ApiError;
use super::openapi::ErrorResponse;

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;

/// What the routes need: the key secrets are encrypted with (or why there is none), the
/// rotation overlap, and the worker's wake-up.
pub struct WebhookAdmin {
    key: Result<Arc<EncryptionKey>, String>,
    rotation_overlap: Duration,
    wake: Arc<Notify>,
}

impl WebhookAdmin {
    /// `key`: the encryption key, or the reason webhooks are off (the routes answer it).
    pub fn new(
        key: Result<Arc<EncryptionKey>, String>,
        rotation_overlap: Duration,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            key,
            rotation_overlap,
            wake,
        }
    }

    /// The key, when webhooks are on: every endpoint route needs them on.
    fn key(&self) -> Result<&EncryptionKey, ApiError> {
        match &self.key {
            Ok(key) => Ok(key),
            Err(reason) => Err(ApiError::WebhooksUnavailable(reason.clone())),
        }
    }
}

/// `POST /v1/webhook-endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateEndpointBody {
    /// Where events are posted: `http` or `https`, at most 2048 characters, no user info.
    #[serde(deserialize_with = "endpoint_url")]
    #[schema(value_type = String, example = "https://hooks.example/mpospay", max_length = 2048)]
    pub url: EndpointUrl,
    /// Only this client's transaction events; left out: every client's, and `deposit.*`.
    #[serde(default)]
    pub client: Option<ClientName>,
    /// The event types to send; left out (or empty): all.
    #[serde(default, deserialize_with = "event_types")]
    #[schema(value_type = Option<Vec<crate::webhooks::EventType>>)]
    pub events: Option<Vec<EventType>>,
}

fn endpoint_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<EndpointUrl, D::Error> {
    let text = String::deserialize(deserializer)?;
    EndpointUrl::parse(&text).map_err(serde::de::Error::custom)
}

fn event_types<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<EventType>>, D::Error> {
    let Some(names) = Option::<Vec<String>>::deserialize(deserializer)? else {
        return Ok(None);
    };
    names
        .iter()
        .map(|name| EventType::parse(name))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(|unknown| {
            serde::de::Error::custom(format!(
                "{unknown}: the types are transaction.pending, transaction.succeeded, \
                 transaction.failed, transaction.review and deposit.low"
            ))
        })
}

/// An endpoint as listed: never its secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub id: Uuid,
    #[schema(example = "https://hooks.example/mpospay")]
    pub url: String,
    /// `null`: every client's transaction events, and `deposit.*`.
    #[schema(required = true, example = "pos-web")]
    pub client: Option<String>,
    /// The event types it receives.
    #[schema(value_type = Vec<crate::webhooks::EventType>)]
    pub events: Vec<&'static str>,
    pub created_at: DateTime<Utc>,
}

impl From<&WebhookEndpointRecord> for EndpointView {
    fn from(e: &WebhookEndpointRecord) -> Self {
        Self {
            id: e.id,
            url: e.url.clone(),
            client: e.client.clone(),
            events: e
                .events
                .types()
                .into_iter()
                .map(EventType::as_str)
                .collect(),
            created_at: e.created_at,
        }
    }
}

/// A new endpoint: the only answer besides rotation that shows its secret.
#[derive(Serialize, ToSchema)]
struct CreatedEndpoint {
    #[serde(flatten)]
    view: EndpointView,
    /// `whsec_` + base64 of 32 random bytes: verify deliveries with it. Shown only here.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
}

/// The endpoints.
#[derive(Serialize, ToSchema)]
struct EndpointList {
    data: Vec<EndpointView>,
}

/// A rotated secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RotatedSecret {
    id: Uuid,
    /// The new secret, shown only here.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
    /// Until then deliveries carry the previous secret's signature too.
    previous_secret_expires_at: DateTime<Utc>,
}

/// Where a delivery is (documentation only).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum DeliveryStatusSchema {
    Pending,
    Delivered,
    Failed,
}

/// One delivery of an event to an endpoint.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryView {
    id: Uuid,
    #[schema(example = "evt_0193a8f05e2a7c31b4d2e0f1a2b3c4d5")]
    event_id: String,
    #[serde(rename = "type")]
    #[schema(value_type = crate::webhooks::EventType)]
    kind: &'static str,
    #[schema(value_type = DeliveryStatusSchema)]
    status: &'static str,
    /// Attempts made.
    attempts: i32,
    #[schema(required = true)]
    last_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status on the last attempt, when it answered.
    #[schema(required = true)]
    last_status_code: Option<i32>,
    /// Why the last attempt failed.
    #[schema(required = true)]
    last_error: Option<String>,
    /// For `pending`: when the next attempt is due.
    #[schema(required = true)]
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<&DeliveryRecord> for DeliveryView {
    fn from(d: &DeliveryRecord) -> Self {
        let pending = d.status == DeliveryStatus::Pending;
        Self {
            id: d.id,
            event_id: d.event_id.to_string(),
            kind: d.event_type.as_str(),
            status: d.status.as_str(),
            attempts: d.attempts,
            last_attempt_at: d.last_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at.filter(|_| pending),
            created_at: d.created_at,
        }
    }
}

/// One page of deliveries, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryPage {
    data: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

fn require_admin(principal: &Principal) -> Result<(), ApiError> {
    principal.require(principal.role == Role::Admin)
}

fn not_found(what: &'static str) -> ApiError {
    ApiError::Payment(PaymentError::NotFound(what))
}

fn malformed(field: &str, message: &str) -> ApiError {
    ApiError::Malformed {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// Create a webhook endpoint
///
/// Events are posted to it per the Standard Webhooks specification, signed with its secret,
/// which this answer shows once. Admin.
#[utoipa::path(
    operation_id = "createWebhookEndpoint",
    tag = "webhooks",
    request_body = CreateEndpointBody,
    responses(
        (status = 201, description = "The new endpoint, with its secret (shown only here).", body = CreatedEndpoint),
        (status = 400, description = "`invalid_request`: the body is not a JSON object, or `url` is missing or a field has the wrong JSON type.", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: not an admin key.", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`.", body = ErrorResponse),
        (status = 422, description = "`invalid_field` (`url`, `client`, `events`).", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`webhooks_unavailable` (no encryption key configured), `database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[post("/v1/webhook-endpoints")]
pub async fn create(
    principal: Principal,
    body: RawBody,
    store: web::Data<SharedStore>,
    admin: web::Data<WebhookAdmin>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&principal)?;
    let key = admin.key()?;
    let CreateEndpointBody {
        url,
        client,
        events,
    } = JsonBody::<CreateEndpointBody>::parse(&body.0)?.value;
    debug_assert!(url.as_str().len() <= MAX_URL_LEN);
    let secret = EndpointSecret::generate();
    let endpoint = WebhookEndpointRecord {
        id: Uuid::now_v7(),
        url: url.as_str().to_string(),
        client: client.map(|c| c.as_str().to_string()),
        events: events.map_or_else(EventFilter::all, EventFilter::only),
        secret: key.encrypt(&secret),
        previous_secret: None,
        previous_secret_until: None,
        // What both databases keep: the list shows the same instant.
        created_at: Utc::now().trunc_subsecs(6),
        deleted_at: None,
    };
    store.insert_webhook_endpoint(&endpoint).await?;
    tracing::info!(endpoint_id = %endpoint.id, client = ?endpoint.client, "webhook endpoint created");
    Ok(HttpResponse::Created().json(CreatedEndpoint {
        view: EndpointView::from(&endpoint),
        secret: secret.expose().to_string(),
    }))
}

/// List webhook endpoints
///
/// The endpoints not deleted, oldest first, never their secrets. Admin.
#[utoipa::path(
    operation_id = "listWebhookEndpoints",
    tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints.", body = EndpointList),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: not an admin key.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`webhooks_unavailable`, `database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/webhook-endpoints")]
pub async fn list(
    principal: Principal,
    store: web::Data<SharedStore>,
    admin: web::Data<WebhookAdmin>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&principal)?;
    admin.key()?;
    let endpoints = store.list_webhook_endpoints().await?;
    Ok(HttpResponse::Ok().json(EndpointList {
        data: endpoints.iter().map(EndpointView::from).collect(),
    }))
}

/// Delete a webhook endpoint
///
/// Nothing more is sent to it; its pending deliveries fail. Admin.
#[utoipa::path(
    operation_id = "deleteWebhookEndpoint",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: not an admin key.", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such endpoint.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`webhooks_unavailable`, `database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[delete("/v1/webhook-endpoints/{id}")]
pub async fn remove(
    principal: Principal,
    path: web::Path<String>,
    store: web::Data<SharedStore>,
    admin: web::Data<WebhookAdmin>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&principal)?;
    admin.key()?;
    let id = Uuid::parse_str(&path).map_err(|_| not_found("webhook endpoint"))?;
    if !store.delete_webhook_endpoint(id, Utc::now()).await? {
        return Err(not_found("webhook endpoint"));
    }
    tracing::info!(endpoint_id = %id, "webhook endpoint deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a webhook endpoint's secret
///
/// A new secret, shown once. For `webhooks.rotation_overlap_secs` (default a day) deliveries
/// carry both signatures, so receivers can switch without missing one. Admin.
#[utoipa::path(
    operation_id = "rotateWebhookSecret",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The new secret (shown only here).", body = RotatedSecret),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: not an admin key.", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such endpoint.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`webhooks_unavailable`, `database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[post("/v1/webhook-endpoints/{id}/rotate-secret")]
pub async fn rotate_secret(
    principal: Principal,
    path: web::Path<String>,
    store: web::Data<SharedStore>,
    admin: web::Data<WebhookAdmin>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&principal)?;
    let key = admin.key()?;
    let id = Uuid::parse_str(&path).map_err(|_| not_found("webhook endpoint"))?;
    let rotation = Rotation::start(Utc::now(), admin.rotation_overlap);
    let stored = key.encrypt(&rotation.secret);
    if !store
        .rotate_webhook_secret(id, &stored, rotation.previous_until)
        .await?
    {
        return Err(not_found("webhook endpoint"));
    }
    tracing::info!(endpoint_id = %id, until = %rotation.previous_until, "webhook secret rotated");
    Ok(HttpResponse::Ok().json(RotatedSecret {
        id,
        secret: rotation.secret.expose().to_string(),
        previous_secret_expires_at: rotation.previous_until,
    }))
}

/// List an endpoint's deliveries
///
/// Newest first, cursor-paginated. Admin.
#[utoipa::path(
    operation_id = "listWebhookDeliveries",
    tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "The endpoint's id."),
        ("status" = Option<DeliveryStatusSchema>, Query, description = "Only this status."),
        ("limit" = Option<i64>, Query, description = "Page size, 1–500 (default 50).", minimum = 1, maximum = 500),
        ("cursor" = Option<Uuid>, Query, description = "`nextCursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "One page, newest first.", body = DeliveryPage),
        (status = 400, description = "`invalid_request` (`field`: `status`, `limit` or `cursor`).", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: not an admin key.", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such endpoint.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`webhooks_unavailable`, `database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/webhook-endpoints/{id}/deliveries")]
pub async fn deliveries(
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    store: web::Data<SharedStore>,
    admin: web::Data<WebhookAdmin>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&principal)?;
    admin.key()?;
    let id = Uuid::parse_str(&path).map_err(|_| not_found("webhook endpoint"))?;
    let status = query
        .get("status")
        .map(|status| {
            DeliveryStatus::parse(status)
                .ok_or_else(|| malformed("status", "must be pending, delivered or failed"))
        })
        .transpose()?;
    let limit = match query.get("limit") {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<i64>() {
            Ok(limit) if (1..=MAX_PAGE).contains(&limit) => limit,
            _ => return Err(malformed("limit", "must be a whole number from 1 to 500")),
        },
    };
    let before = query
        .get("cursor")
        .map(|cursor| {
            Uuid::parse_str(cursor)
                .map_err(|_| malformed("cursor", "is not a cursor this API gave out"))
        })
        .transpose()?;
    if store.get_webhook_endpoint(id).await?.is_none() {
        return Err(not_found("webhook endpoint"));
    }
    // One row more than asked tells whether there is a next page.
    let mut rows = store.list_deliveries(id, status, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().expect("a full page").id.to_string());
    Ok(HttpResponse::Ok().json(DeliveryPage {
        data: rows.iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}

/// Retry a delivery now
///
/// Sends it again at once, also a delivered or failed one (the same `webhook-id`). Admin.
#[utoipa::path(
    operation_id = "retryWebhookDelivery",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The delivery's id.")),
    responses(
        (status = 202, description = "The delivery, due now.", body = DeliveryView),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 403, description = "`forbidden`: not an admin key.", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such delivery (or its endpoint was deleted).", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`webhooks_unavailable`, `database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[post("/v1/webhook-deliveries/{id}/retry")]
pub async fn retry(
    principal: Principal,
    path: web::Path<String>,
    store: web::Data<SharedStore>,
    admin: web::Data<WebhookAdmin>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&principal)?;
    admin.key()?;
    let id = Uuid::parse_str(&path).map_err(|_| not_found("webhook delivery"))?;
    let delivery = store
        .retry_delivery(id, Utc::now())
        .await?
        .ok_or_else(|| not_found("webhook delivery"))?;
    admin.wake.notify_one();
    tracing::info!(delivery_id = %id, "webhook delivery retried");
    Ok(HttpResponse::Accepted().json(DeliveryView::from(&delivery)))
}
