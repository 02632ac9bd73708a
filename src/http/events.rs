//! `GET /v1/events`: the event feed (API.md, "Notifications"), oldest first after a cursor.

use std::collections::HashMap;

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::SharedStore;
use crate::webhooks::{Event, EventId, EventType};

use super::auth::Principal;
use super::error::ApiError;
use super::openapi::ErrorResponse;

pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 500;
/// Events younger than this are not listed yet: an event's id is taken just before its commit,
/// so two commits racing could land out of id order, and a reader whose cursor passed the later
/// one would never see the earlier one. Commits finish well within this.
const SETTLE: chrono::Duration = chrono::Duration::seconds(1);
/// The cursor before every event (a feed read before any event was recorded).
const START_CURSOR: &str = "evt_00000000000000000000000000000000";

/// An event, exactly the body its webhooks carry (documentation only).
#[derive(Serialize, ToSchema)]
#[schema(as = Event)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct EventSchema {
    /// `evt_` and 32 hex digits; the `webhook-id` of its deliveries.
    #[schema(example = "evt_0193a8f05e2a7c31b4d2e0f1a2b3c4d5")]
    id: String,
    #[serde(rename = "type")]
    kind: EventType,
    created_at: DateTime<Utc>,
    /// `{"transaction": {…}}` (the transaction as `GET /v1/transactions/{id}` shows it,
    /// without `exchanges`) for `transaction.*`; `{"balance", "threshold"}` for `deposit.low`.
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

/// One page of the feed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventPage {
    #[schema(value_type = Vec<EventSchema>)]
    data: Vec<Event>,
    /// Pass as `after` to get only newer events; always present, also when this page is empty.
    #[schema(example = "evt_0193a8f05e2a7c31b4d2e0f1a2b3c4d5")]
    next_cursor: String,
}

fn malformed(field: &str, message: &str) -> ApiError {
    ApiError::Malformed {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// List events
///
/// Oldest first, after the event id (or cursor) `after`. An operator sees its own client's
/// transaction events only; finance and admin see all. Events are kept at least 30 days.
#[utoipa::path(
    operation_id = "listEvents",
    tag = "events",
    params(
        ("type" = Option<EventType>, Query, description = "Only this type."),
        ("after" = Option<String>, Query, description = "An event id (`evt_` and 32 lowercase hex digits) or a `nextCursor`: only events after it."),
        ("limit" = Option<i64>, Query, description = "Page size, 1–500 (default 100).", minimum = 1, maximum = 500),
    ),
    responses(
        (status = 200, description = "One page, oldest first.", body = EventPage),
        (status = 400, description = "`invalid_request` (`field`: `type`, `after` or `limit`).", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: no valid API key.", body = ErrorResponse),
        (status = 429, description = "`rate_limited`.", body = ErrorResponse),
        (status = 500, description = "`internal_error`.", body = ErrorResponse),
        (status = 503, description = "`database_unavailable`.", body = ErrorResponse),
    ),
    security(("bearerAuth" = [])),
)]
#[get("/v1/events")]
pub async fn list(
    principal: Principal,
    query: web::Query<HashMap<String, String>>,
    store: web::Data<SharedStore>,
) -> Result<HttpResponse, ApiError> {
    principal.require_any()?;
    let kind = query
        .get("type")
        .map(|kind| {
            EventType::parse(kind).map_err(|_| {
                malformed(
                    "type",
                    "must be transaction.pending, transaction.succeeded, transaction.failed, \
                     transaction.review or deposit.low",
                )
            })
        })
        .transpose()?;
    let after = query
        .get("after")
        .map(|after| {
            EventId::parse(after).ok_or_else(|| malformed("after", "is not an event id or cursor"))
        })
        .transpose()?;
    let limit = match query.get("limit") {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<i64>() {
            Ok(limit) if (1..=MAX_PAGE).contains(&limit) => limit,
            _ => return Err(malformed("limit", "must be a whole number from 1 to 500")),
        },
    };
    let client = (!principal.role.reads_all()).then_some(principal.client.as_str());
    let events = store
        .list_events(client, kind, after.as_ref(), Utc::now() - SETTLE, limit)
        .await?;
    let next_cursor = events
        .last()
        .map(|event| event.id.to_string())
        .or_else(|| after.map(|after| after.to_string()))
        .unwrap_or_else(|| START_CURSOR.to_string());
    Ok(HttpResponse::Ok().json(EventPage {
        data: events,
        next_cursor,
    }))
}
