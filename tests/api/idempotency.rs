//! Idempotency-Key: one payment per key, whatever the retries, races, restarts and instances.

use std::time::Duration;

use futures_util::future::join_all;
use mpospay_gateway::h2h::MessageType;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{spawn_app, spawn_gateway, Backend, TestOptions};

both_backends!(
    twenty_concurrent_requests_with_one_key_pay_once,
    a_repeat_replays_the_first_answer_and_sends_nothing,
    a_key_reused_for_another_request_is_refused,
    a_key_in_flight_is_reported_in_use,
    a_repeat_after_a_restart_is_replayed,
    a_paid_inquiry_cannot_be_paid_under_another_key,
    declines_are_replayed_too,
);

async fn twenty_concurrent_requests_with_one_key_pay_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let inquiry = app.inquire("AF085713323054", "2042").await;
    let id = inquiry.id();
    let answers =
        join_all((0..20).map(|_| app.pay("AF085713323054", "2042", &id, "same-key"))).await;
    assert_eq!(
        app.upstream_count(MessageType::Payment),
        1,
        "exactly one payment reached the upstream"
    );
    let mut payment_ids = std::collections::HashSet::new();
    for answer in &answers {
        match answer.status {
            200 => {
                payment_ids.insert(answer.id());
            }
            409 => assert_eq!(answer.error_code(), "idempotency_key_in_use"),
            other => panic!("unexpected {other}: {:?}", answer.body),
        }
    }
    assert_eq!(payment_ids.len(), 1, "every success names the same payment");
    let replay = app.pay("AF085713323054", "2042", &id, "same-key").await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert!(payment_ids.contains(&replay.id()));
}

async fn a_repeat_replays_the_first_answer_and_sends_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.purchase("3100", "08132259999", "buy-once").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = app.purchase("3100", "08132259999", "buy-once").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        again.body, first.body,
        "the first answer, byte for byte in meaning"
    );
    assert_eq!(app.upstream_count(MessageType::Purchase), 1);
    // Keys are per client: another client may use the same key for its own purchase.
    let theirs = app
        .post(
            "/v1/purchases",
            &app.other_operator_key,
            Some("buy-once"),
            json!({"product": "3100", "customerNumber": "08132259999"}),
        )
        .await;
    assert_eq!(theirs.status, 200);
    assert_ne!(theirs.id(), first.id());
    assert_eq!(app.upstream_count(MessageType::Purchase), 2);
}

async fn a_key_reused_for_another_request_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        app.purchase("3100", "08132259999", "k-mismatch")
            .await
            .status,
        200
    );
    let other = app.purchase("3100", "08132250000", "k-mismatch").await;
    assert_eq!(other.status, 422);
    assert_eq!(other.error_code(), "idempotency_key_mismatch");
    assert_eq!(app.upstream_count(MessageType::Purchase), 1);
}

async fn a_key_in_flight_is_reported_in_use(backend: Backend) {
    let options = TestOptions {
        upstream_timeout: Duration::from_millis(3000),
        late_delay: Duration::from_millis(1500),
        ..Default::default()
    };
    let app = spawn_app_with_options(backend, options).await;
    let inquiry = app.inquire("97002000001", "2042").await;
    let id = inquiry.id();
    let (first, second) = tokio::join!(app.pay("97002000001", "2042", &id, "slow-key"), async {
        actix_rt::time::sleep(Duration::from_millis(400)).await;
        app.pay("97002000001", "2042", &id, "slow-key").await
    });
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(second.status, 409, "{:?}", second.body);
    assert_eq!(second.error_code(), "idempotency_key_in_use");
    assert_eq!(app.upstream_count(MessageType::Payment), 1);
}

async fn spawn_app_with_options(backend: Backend, options: TestOptions) -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(backend, options).await
}

async fn a_repeat_after_a_restart_is_replayed(backend: Backend) {
    let app = spawn_app(backend).await;
    let inquiry = app.inquire("AF085713323054", "2042").await;
    let first = app
        .pay("AF085713323054", "2042", &inquiry.id(), "restart-key")
        .await;
    assert_eq!(first.status, 200);
    app.server.stop(true).await;
    let database = app.database.clone();
    let operator_key = app.operator_key.clone();
    let restarted = spawn_gateway(app.upstream.clone(), database, TestOptions::default()).await;
    let again = restarted
        .post(
            "/v1/bills/AF085713323054/payment",
            &operator_key,
            Some("restart-key"),
            json!({"product": "2042", "inquiryId": inquiry.id()}),
        )
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.id(), first.id());
    assert_eq!(restarted.upstream_count(MessageType::Payment), 1);
}

async fn a_paid_inquiry_cannot_be_paid_under_another_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let inquiry = app.inquire("AF085713323054", "2042").await;
    let first = app
        .pay("AF085713323054", "2042", &inquiry.id(), "first-key")
        .await;
    assert_eq!(first.status, 200);
    let second = app
        .pay("AF085713323054", "2042", &inquiry.id(), "second-key")
        .await;
    assert_eq!(second.status, 409, "{:?}", second.body);
    assert_eq!(second.error_code(), "already_paid");
    assert_eq!(second.body["error"]["transactionId"], first.id().as_str());
    // Many keys at once: still one payment.
    let inquiry_id = app.inquire("AF085713323055", "2042").await.id();
    let answers = join_all((0..10).map(|i| {
        let (app, inquiry_id) = (&app, &inquiry_id);
        async move {
            app.pay("AF085713323055", "2042", inquiry_id, &format!("race-{i}"))
                .await
        }
    }))
    .await;
    let succeeded = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(succeeded, 1);
    assert!(answers
        .iter()
        .all(|a| a.status == 200 || a.error_code() == "already_paid"));
    assert_eq!(app.upstream_count(MessageType::Payment), 2);
}

async fn declines_are_replayed_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let inquiry = app.inquire("98051000003", "2042").await;
    let first = app
        .pay("98051000003", "2042", &inquiry.id(), "decline-key")
        .await;
    assert_eq!(first.status, 422);
    let again = app
        .pay("98051000003", "2042", &inquiry.id(), "decline-key")
        .await;
    assert_eq!(again.status, 422);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(app.upstream_count(MessageType::Payment), 1);
}

#[actix_rt::test]
async fn two_instances_on_one_postgres_receiving_one_key_send_one_payment() {
    let first = spawn_app(Backend::Postgres).await;
    let second = spawn_gateway(
        first.upstream.clone(),
        first.database.clone(),
        TestOptions::default(),
    )
    .await;
    let inquiry = first.inquire("AF085713323054", "2042").await;
    let id = inquiry.id();
    let body = json!({"product": "2042", "inquiryId": id});
    let key = first.operator_key.clone();
    let (a, b) = tokio::join!(
        join_all((0..5).map(|_| first.post(
            "/v1/bills/AF085713323054/payment",
            &key,
            Some("shared"),
            body.clone()
        ))),
        join_all((0..5).map(|_| second.post(
            "/v1/bills/AF085713323054/payment",
            &key,
            Some("shared"),
            body.clone()
        ))),
    );
    assert_eq!(first.upstream_count(MessageType::Payment), 1);
    let ok: std::collections::HashSet<String> = a
        .iter()
        .chain(b.iter())
        .filter(|x| x.status == 200)
        .map(|x| x.id())
        .collect();
    assert_eq!(ok.len(), 1);
}
