//! What clients send in bodies and query strings: the JSON bodies of inquiry, payment and
//! purchase (`http::body::JsonBody` into the `*Body` types the handlers in `src/http/bills.rs`
//! and `src/http/purchases.rs` parse, with their field newtypes), and the query string of the
//! transaction search (`http::search::parse_filter`) and of the daily report's `date`.
//!
//! The first input byte picks the route (and a business zone), the rest is the body or query
//! string.
//!
//! Properties: a bad request is a client error (400, 413 or 422) with an error body whose
//! `field` is one of the route's fields, never a panic or a 500; an accepted body's canonical
//! form (the idempotency hash input) is a JSON object that canonicalises to itself; an accepted
//! amount is a non-negative integer; a search is scoped to the operator's own client.

#![no_main]

use std::collections::HashMap;

use actix_web::body::MessageBody;
use actix_web::http::StatusCode;
use actix_web::web::Query;
use actix_web::ResponseError;
use chrono::{DateTime, Datelike, Days, Utc};
use chrono_tz::Tz;
use libfuzzer_sys::fuzz_target;
use mpospay_gateway::http::auth::Principal;
use mpospay_gateway::http::bills::{InquiryBody, PaymentBody};
use mpospay_gateway::http::body::JsonBody;
use mpospay_gateway::http::error::ApiError;
use mpospay_gateway::http::purchases::PurchaseBody;
use mpospay_gateway::http::search::{day_start, parse_date, parse_filter};
use mpospay_gateway::keys::Role;

/// The business zones a gateway is configured with (GATEWAY_UPSTREAM_TIMEZONE).
const ZONES: [Tz; 4] = [
    chrono_tz::Asia::Jakarta,
    chrono_tz::Asia::Makassar,
    chrono_tz::Asia::Jayapura,
    chrono_tz::UTC,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    // The rest of the first byte picks the business zone of the date filters.
    let zone = ZONES[usize::from(selector / 5) % ZONES.len()];
    match selector % 5 {
        0 => {
            let result = inquiry(payload);
            check(result.map(|_| ()), &["body", "product"]);
        }
        1 => {
            let result = payment(payload);
            if let Ok(body) = &result {
                let again = JsonBody::<PaymentBody>::parse(body.canonical.as_bytes());
                check_canonical(payload, &body.canonical, again.map(|again| again.canonical));
                if let Some(amount) = body.value.amount {
                    assert!(amount >= 0);
                }
            }
            check(
                result.map(|_| ()),
                &["body", "product", "inquiryId", "amount"],
            );
        }
        2 => {
            let result = purchase(payload);
            if let Ok(body) = &result {
                let again = JsonBody::<PurchaseBody>::parse(body.canonical.as_bytes());
                check_canonical(payload, &body.canonical, again.map(|again| again.canonical));
            }
            check(result.map(|_| ()), &["body", "product", "customerNumber"]);
        }
        selector => {
            let Ok(query) = std::str::from_utf8(payload) else {
                return;
            };
            // actix answers 400 itself for a query string it cannot decode.
            let Ok(query) = Query::<HashMap<String, String>>::from_query(query) else {
                return;
            };
            if selector == 3 {
                search(&query, zone);
            } else {
                check(daily_report(&query, zone), &["date"]);
            }
        }
    }
});

/// `POST /v1/bills/{billNumber}/inquiry`, after the path.
fn inquiry(bytes: &[u8]) -> Result<InquiryBody, ApiError> {
    let body = JsonBody::<InquiryBody>::parse(bytes)?;
    assert_eq!(sent(bytes)["product"], body.value.product.as_str());
    Ok(body.value)
}

/// `POST /v1/bills/{billNumber}/payment`, after the path and the Idempotency-Key.
fn payment(bytes: &[u8]) -> Result<JsonBody<PaymentBody>, ApiError> {
    let body = JsonBody::<PaymentBody>::parse(bytes)?;
    let sent = sent(bytes);
    assert_eq!(sent["product"], body.value.product.as_str());
    let inquiry_id = sent["inquiryId"].as_str().expect("a string");
    assert_eq!(
        uuid::Uuid::parse_str(inquiry_id).unwrap(),
        body.value.inquiry_id
    );
    assert_eq!(sent["amount"].as_i64(), body.value.amount);
    Ok(body)
}

/// `POST /v1/purchases`, after the Idempotency-Key.
fn purchase(bytes: &[u8]) -> Result<JsonBody<PurchaseBody>, ApiError> {
    let body = JsonBody::<PurchaseBody>::parse(bytes)?;
    let sent = sent(bytes);
    assert_eq!(sent["product"], body.value.product.as_str());
    assert_eq!(sent["customerNumber"], body.value.customer_number.as_str());
    Ok(body)
}

/// The accepted body as plain JSON.
fn sent(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("an accepted body is JSON")
}

/// `GET /v1/transactions?…`: the filter, for an operator and for finance.
fn search(query: &HashMap<String, String>, zone: Tz) {
    let fields = ["type", "status", "product", "billNumber", "from", "to"];
    for role in [Role::Operator, Role::Finance] {
        let principal = Principal {
            client: "pos-web".into(),
            role,
            request_id: None,
        };
        let result = parse_filter(query, &principal, zone);
        if let Ok(filter) = &result {
            let expected_client = (role == Role::Operator).then(|| "pos-web".to_string());
            assert_eq!(filter.client, expected_client, "search not scoped");
            assert_eq!(filter.from.is_some(), query.contains_key("from"));
            assert_eq!(filter.to.is_some(), query.contains_key("to"));
            for bound in filter.from.iter().chain(&filter.to) {
                assert!(storable(*bound), "{bound} cannot be a query parameter");
            }
            assert_eq!(filter.kind.is_some(), query.contains_key("type"));
            for status in &filter.statuses {
                assert!(["pending", "sending", "succeeded", "failed", "review"]
                    .contains(&status.as_str()));
            }
        }
        check(result.map(|_| ()), &fields);
    }
}

/// `GET /v1/reports/daily?date=…`, as `src/http/reports.rs` reads it.
fn daily_report(query: &HashMap<String, String>, zone: Tz) -> Result<(), ApiError> {
    let Some(raw) = query.get("date") else {
        return Ok(());
    };
    let date = parse_date(raw).ok_or_else(|| ApiError::Malformed {
        field: "date".into(),
        message: "must be a date YYYY-MM-DD".into(),
    })?;
    let next = date
        .checked_add_days(Days::new(1))
        .ok_or_else(|| ApiError::Malformed {
            field: "date".into(),
            message: "is out of range".into(),
        })?;
    let (start, end) = (day_start(date, zone), day_start(next, zone));
    assert!(start < end, "{date}: {start} .. {end}");
    assert!(storable(start) && storable(end), "{date}: {start} .. {end}");
    Ok(())
}

/// Within what a Postgres `timestamptz` holds (4713 BC to 294276 AD): a time outside it would
/// make the database fail a client's mistake as a 5xx.
fn storable(time: DateTime<Utc>) -> bool {
    (-4712..=294_275).contains(&time.year())
}

/// A rejected request is a client error with a well-formed body naming one of `fields`.
fn check(result: Result<(), ApiError>, fields: &[&str]) {
    let Err(error) = result else {
        return;
    };
    let status = error.status_code();
    assert!(
        [
            StatusCode::BAD_REQUEST,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNPROCESSABLE_ENTITY
        ]
        .contains(&status),
        "{error:?} answers {status}"
    );
    let response = error.error_response();
    assert_eq!(response.status(), status);
    let body = response
        .into_body()
        .try_into_bytes()
        .expect("an error body is complete");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("an error body is JSON");
    assert_eq!(body["error"]["code"], error.code());
    if status != StatusCode::PAYLOAD_TOO_LARGE {
        let field = body["error"]["field"].as_str().expect("names its field");
        assert!(fields.contains(&field), "unexpected field {field:?}");
    }
}

/// The canonical body (the idempotency hash input) is a JSON object with the keys sent, and
/// canonicalising it again changes nothing.
/// `again` is the canonical form of `canonical` read as a body.
fn check_canonical(bytes: &[u8], canonical: &str, again: Result<String, ApiError>) {
    let again = again.expect("the canonical form parses");
    let keys = |value: serde_json::Value| {
        let mut keys: Vec<String> = value
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(sent(canonical.as_bytes())), keys(sent(bytes)));
    assert_eq!(again, canonical);
}
