//! API keys and roles at the edge (API.md, "Roles").

use serde_json::json;

use crate::both_backends;
use crate::helpers::{spawn_app, Backend};

both_backends!(
    keys_are_required_and_roles_are_enforced,
    operators_see_only_their_own_transactions,
    a_revoked_key_stops_working_at_once,
);

async fn keys_are_required_and_roles_are_enforced(backend: Backend) {
    let app = spawn_app(backend).await;
    let inquiry_body = br#"{"product":"2042"}"#;
    let path = "/v1/bills/AF085713323054/inquiry";
    let missing = app.send("POST", path, None, None, Some(inquiry_body)).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error_code(), "unauthorized");
    let unknown = app
        .send(
            "POST",
            path,
            Some("mpg_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"),
            None,
            Some(inquiry_body),
        )
        .await;
    assert_eq!(unknown.status, 401);
    let garbage = app
        .send("POST", path, Some("hello"), None, Some(inquiry_body))
        .await;
    assert_eq!(garbage.status, 401);

    // Finance reads but never transacts.
    let finance = app
        .post(path, &app.finance_key, None, json!({"product": "2042"}))
        .await;
    assert_eq!(finance.status, 403);
    assert_eq!(finance.error_code(), "forbidden");
    let finance_buy = app
        .post(
            "/v1/purchases",
            &app.finance_key,
            Some("f1"),
            json!({"product": "3100", "customerNumber": "08132259999"}),
        )
        .await;
    assert_eq!(finance_buy.status, 403);
    assert_eq!(app.upstream_total(), 0, "a forbidden request sends nothing");

    let admin = app
        .post(path, &app.admin_key, None, json!({"product": "2042"}))
        .await;
    assert_eq!(admin.status, 200);
    let payment = app.inquire_and_pay("AF085713323054", "2042").await;
    let finance_advice = app
        .post(
            &format!("/v1/transactions/{}/advice", payment.id()),
            &app.finance_key,
            None,
            json!({}),
        )
        .await;
    assert_eq!(finance_advice.status, 403);
    let finance_read = app
        .get(
            &format!("/v1/transactions/{}", payment.id()),
            &app.finance_key,
        )
        .await;
    assert_eq!(finance_read.status, 200);
}

async fn operators_see_only_their_own_transactions(backend: Backend) {
    let app = spawn_app(backend).await;
    let inquiry = app.inquire("AF085713323054", "2042").await;
    let theirs = app
        .get(
            &format!("/v1/transactions/{}", inquiry.id()),
            &app.other_operator_key,
        )
        .await;
    assert_eq!(theirs.status, 404);
    // Nor may another client pay this client's inquiry.
    let pay = app
        .post(
            "/v1/bills/AF085713323054/payment",
            &app.other_operator_key,
            Some("steal-1"),
            json!({"product": "2042", "inquiryId": inquiry.id()}),
        )
        .await;
    assert_eq!(pay.status, 404);
    let advice = app
        .post(
            &format!("/v1/transactions/{}/advice", inquiry.id()),
            &app.other_operator_key,
            None,
            json!({}),
        )
        .await;
    assert_eq!(advice.status, 404);
    let admin = app
        .get(
            &format!("/v1/transactions/{}", inquiry.id()),
            &app.admin_key,
        )
        .await;
    assert_eq!(admin.status, 200);
}

async fn a_revoked_key_stops_working_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/v1/balance", &app.operator_key).await.status, 200);
    let lookup = mpospay_gateway::keys::lookup_of(&app.operator_key)
        .unwrap()
        .to_string();
    let record = app.store.find_api_key(&lookup).await.unwrap().unwrap();
    // Through this gateway's route (a revocation elsewhere takes the key cache's few seconds:
    // tests/api/abuse.rs).
    let revoked = app
        .send(
            "DELETE",
            &format!("/v1/api-keys/{}", record.id),
            Some(&app.admin_key),
            None,
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(app.get("/v1/balance", &app.operator_key).await.status, 401);
}
