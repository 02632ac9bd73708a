//! The duplicate purchase guard (issue 14; API.md, "Cashier protections"): a cashier's double
//! tap (a fresh Idempotency-Key, the same product and customer number) is refused `409
//! possible_duplicate` with the earlier purchase's id, before anything is recorded or sent;
//! `"allowDuplicate": true` buys anyway.

use mpospay_gateway::config::PaymentSettings;
use mpospay_gateway::domain::TransactionKind;
use mpospay_gateway::h2h::MessageType;
use mpospay_gateway::store::TransactionFilter;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, TestOptions};

both_backends!(
    a_double_tap_is_refused_with_the_earlier_purchase,
    a_parallel_double_tap_buys_once,
    pending_review_and_failed_purchases_and_the_window,
);

async fn stored_purchases(app: &TestApp) -> usize {
    app.store
        .search_transactions(
            &TransactionFilter {
                kind: Some(TransactionKind::Purchase),
                ..Default::default()
            },
            None,
            1000,
        )
        .await
        .unwrap()
        .len()
}

async fn a_double_tap_is_refused_with_the_earlier_purchase(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.purchase("3100", "08132259999", "tap-1").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = app.purchase("3100", "08132259999", "tap-2").await;
    assert_eq!(second.status, 409, "{:?}", second.body);
    assert_eq!(second.error_code(), "possible_duplicate");
    assert_eq!(second.body["error"]["transactionId"], first.body["id"]);
    assert_eq!(app.upstream_count(MessageType::Purchase), 1);
    assert_eq!(stored_purchases(&app).await, 1, "nothing recorded");

    // The refused key was not kept: the cashier confirms with it and buys.
    let confirmed = app
        .post(
            "/v1/purchases",
            &app.operator_key,
            Some("tap-2"),
            json!({"product": "3100", "customerNumber": "08132259999", "allowDuplicate": true}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    assert_ne!(confirmed.body["id"], first.body["id"]);
    assert_eq!(app.upstream_count(MessageType::Purchase), 2);
    // A repeat of the first key is still a replay, not a duplicate.
    let replay = app.purchase("3100", "08132259999", "tap-1").await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));

    // Another customer number, another product or another client is no duplicate.
    assert_eq!(
        app.purchase("3100", "08132250001", "tap-3").await.status,
        200
    );
    assert_eq!(
        app.purchase("3200", "08132259999", "tap-4").await.status,
        200
    );
    let other_client = app
        .post(
            "/v1/purchases",
            &app.other_operator_key,
            Some("kiosk-tap"),
            json!({"product": "3100", "customerNumber": "08132259999"}),
        )
        .await;
    assert_eq!(other_client.status, 200, "{:?}", other_client.body);
}

async fn a_parallel_double_tap_buys_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let taps = futures_util::future::join_all((0..6).map(|n| {
        let key = format!("parallel-tap-{n}");
        let app = &app;
        async move { app.purchase("3100", "08132259999", &key).await }
    }))
    .await;
    let bought: Vec<_> = taps.iter().filter(|tap| tap.status == 200).collect();
    assert_eq!(
        bought.len(),
        1,
        "{:?}",
        taps.iter().map(|t| t.status).collect::<Vec<_>>()
    );
    for tap in taps.iter().filter(|tap| tap.status != 200) {
        assert_eq!(tap.status, 409, "{:?}", tap.body);
        assert_eq!(tap.error_code(), "possible_duplicate");
        assert_eq!(tap.body["error"]["transactionId"], bought[0].body["id"]);
    }
    assert_eq!(app.upstream_count(MessageType::Purchase), 1);
    assert_eq!(stored_purchases(&app).await, 1);
}

async fn pending_review_and_failed_purchases_and_the_window(backend: Backend) {
    let app = spawn_app(backend).await;
    // A purchase whose answer was lost is in review: a second tap may be a double payment.
    let lost = app.purchase("3100", "97001000001", "lost-1").await;
    assert_eq!(lost.status, 202, "{:?}", lost.body);
    assert_eq!(lost.body["status"], "review");
    let again = app.purchase("3100", "97001000001", "lost-2").await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.body["error"]["transactionId"], lost.body["id"]);
    // A declined purchase bought nothing: trying again is no duplicate.
    let declined = app.purchase("3100", "99063000001", "declined-1").await;
    assert_eq!(declined.status, 422, "{:?}", declined.body);
    let retry = app.purchase("3100", "99063000001", "declined-2").await;
    assert_eq!(retry.status, 422, "{:?}", retry.body);
    assert_eq!(retry.error_code(), "biller_declined");

    // `duplicate_window_secs = 0` turns the guard off.
    let off = spawn_app_with(
        backend,
        TestOptions {
            payments: PaymentSettings {
                duplicate_window_secs: 0,
                ..TestOptions::default().payments
            },
            ..TestOptions::default()
        },
    )
    .await;
    assert_eq!(
        off.purchase("3100", "08132259999", "off-1").await.status,
        200
    );
    assert_eq!(
        off.purchase("3100", "08132259999", "off-2").await.status,
        200
    );
    assert_eq!(off.upstream_count(MessageType::Purchase), 2);
}
