//! Lost, late and garbled answers, `995`, "not found", crashes: every payment ends final with
//! exactly one payment message, resolved by advice carrying the original trxId and paymentCode.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mpospay_gateway::h2h::MessageType;
use mpospay_gateway::keys::Role;
use mpospay_gateway::sandbox::SandboxConfig;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    create_key, spawn_app, spawn_app_with, stored_payments, Backend, TestApp, TestDatabase,
    TestOptions, Upstream,
};

both_backends!(
    lost_late_500_and_garbled_answers_end_succeeded_through_advice,
    answer_995_on_payment_leads_to_advice_not_failure,
    a_payment_that_never_arrived_fails_only_after_confirmation,
    a_never_resolvable_payment_goes_to_review,
    a_purchase_with_an_unknown_outcome_goes_to_review,
    a_gateway_killed_mid_payment_resolves_it_after_restart,
);

/// Asserts the payment reached the upstream once, and every advice carried its trxId and
/// paymentCode.
fn assert_one_payment_and_faithful_advice(app: &TestApp, trx_id: &str, payment_code: &str) {
    let received = app.sandbox.received();
    let payments: Vec<_> = received
        .iter()
        .filter(|m| m.message_type == "payment" && m.trx_id == trx_id)
        .collect();
    assert_eq!(
        payments.len(),
        1,
        "exactly one payment message for {trx_id}"
    );
    assert_eq!(
        received
            .iter()
            .filter(|m| m.message_type == "payment")
            .count(),
        1
    );
    let advice: Vec<_> = received
        .iter()
        .filter(|m| m.message_type == "advice")
        .collect();
    assert!(!advice.is_empty(), "advice was sent");
    for message in advice {
        assert_eq!(message.trx_id, trx_id);
        assert_eq!(message.payment_code.as_deref(), Some(payment_code));
    }
}

async fn lost_late_500_and_garbled_answers_end_succeeded_through_advice(backend: Backend) {
    for bill in ["97001000001", "97002000001", "97003000001", "97004000001"] {
        let app = spawn_app(backend).await;
        let before = app.sandbox.balance();
        let payment = app.inquire_and_pay(bill, "2042").await;
        assert_eq!(payment.status, 202, "{bill}: {:?}", payment.body);
        assert_eq!(payment.body["status"], "pending");
        assert_eq!(payment.body["final"], false);
        let settled = app
            .wait_for_status(&payment.id(), "succeeded", Duration::from_secs(15))
            .await;
        assert_eq!(settled.body["final"], true);
        let total = settled.body["total"].as_i64().unwrap();
        assert_eq!(
            app.sandbox.balance(),
            before - total,
            "{bill}: charged once"
        );
        assert_eq!(settled.body["balanceAfter"], app.sandbox.balance());
        assert!(settled.body["adviceAttempts"].as_i64().unwrap() >= 1);
        assert_one_payment_and_faithful_advice(
            &app,
            payment.body["trxId"].as_str().unwrap(),
            payment.body["paymentCode"].as_str().unwrap(),
        );
    }
}

async fn answer_995_on_payment_leads_to_advice_not_failure(backend: Backend) {
    let app = spawn_app(backend).await;
    let payment = app.inquire_and_pay("97007000001", "2042").await;
    assert_eq!(payment.status, 202, "{:?}", payment.body);
    assert_eq!(payment.body["result"]["code"], "995");
    app.wait_for_status(&payment.id(), "succeeded", Duration::from_secs(15))
        .await;
    assert_one_payment_and_faithful_advice(
        &app,
        payment.body["trxId"].as_str().unwrap(),
        payment.body["paymentCode"].as_str().unwrap(),
    );
}

async fn a_payment_that_never_arrived_fails_only_after_confirmation(backend: Backend) {
    let mut options = TestOptions::default();
    options.payments.not_found_confirm_secs = 2;
    options.payments.advice_schedule_secs = vec![1];
    let app = spawn_app_with(backend, options).await;
    let payment = app.inquire_and_pay("97005000001", "2042").await;
    assert_eq!(payment.status, 202);
    let started = Instant::now();
    let failed = app
        .wait_for_status(&payment.id(), "failed", Duration::from_secs(15))
        .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "996 is confirmed over the configured span"
    );
    assert_eq!(failed.body["errorCode"], "payment_not_found");
    assert!(failed.body["adviceAttempts"].as_i64().unwrap() >= 2);
    assert_eq!(app.sandbox.count(MessageType::Payment), 1);
}

async fn a_never_resolvable_payment_goes_to_review(backend: Backend) {
    let mut options = TestOptions::default();
    options.payments.review_after_secs = 2;
    let app = spawn_app_with(backend, options).await;
    let payment = app.inquire_and_pay("97006000001", "2042").await;
    assert_eq!(payment.status, 202);
    let review = app
        .wait_for_status(&payment.id(), "review", Duration::from_secs(15))
        .await;
    assert_eq!(review.body["final"], false);
    assert!(review.body["reviewReason"]
        .as_str()
        .unwrap()
        .contains("advice"));
    let attempts = app.sandbox.count(MessageType::Advice);
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.sandbox.count(MessageType::Advice),
        attempts,
        "review stops the advice schedule"
    );
    assert_eq!(app.sandbox.count(MessageType::Payment), 1);
}

async fn a_purchase_with_an_unknown_outcome_goes_to_review(backend: Backend) {
    let app = spawn_app(backend).await;
    let purchase = app.purchase("3100", "97001000001", "buy-lost").await;
    assert_eq!(purchase.status, 202, "{:?}", purchase.body);
    assert_eq!(purchase.body["status"], "review");
    assert!(purchase.body["reviewReason"]
        .as_str()
        .unwrap()
        .contains("purchase"));
    let advice = app.advise(&purchase.id()).await;
    assert_eq!(advice.status, 409);
    assert_eq!(advice.error_code(), "advice_unavailable");
    assert_eq!(app.sandbox.count(MessageType::Purchase), 1);
    assert_eq!(app.sandbox.count(MessageType::Advice), 0);
}

async fn a_gateway_killed_mid_payment_resolves_it_after_restart(backend: Backend) {
    let upstream = Upstream::start(SandboxConfig {
        late_delay: Duration::from_secs(3),
        ..SandboxConfig::default()
    })
    .await;
    let database = Arc::new(TestDatabase::new(backend).await);
    let store = mpospay_gateway::store::connect(&database.url, 2)
        .await
        .unwrap();
    let key = create_key(&store, "pos-web", Role::Operator).await;
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut gateway = upstream.gateway_process(&database.url).start().await;

    let base = gateway.base_url();
    let mut inquiry = http
        .post(format!("{base}/v1/bills/97002000001/inquiry"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send_json(&json!({"product": "2042"}))
        .await
        .unwrap();
    assert_eq!(inquiry.status().as_u16(), 200);
    let inquiry: serde_json::Value = inquiry.json().await.unwrap();
    // The payment is sent and left hanging: the simulator applies it and answers late.
    let pending_request = http
        .post(format!("{base}/v1/bills/97002000001/payment"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Idempotency-Key", "crash-1"))
        .send_json(&json!({"product": "2042", "inquiryId": inquiry["id"]}));
    let in_flight = actix_rt::spawn(async move {
        let _ = pending_request.await;
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.sandbox.count(MessageType::Payment) == 0 {
        assert!(
            Instant::now() < deadline,
            "the payment never reached the upstream"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.kill();
    in_flight.abort();

    let stored = stored_payments(&store).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].status.as_str(),
        "sending",
        "killed while the payment was in flight"
    );
    let payment_id = stored[0].id;

    gateway.restart().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let settled = loop {
        let mut response = http
            .get(format!("{base}/v1/transactions/{payment_id}"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        if body["status"] == "succeeded" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "not resolved after restart: {body}"
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    };
    gateway.kill();
    let received = upstream.sandbox.received();
    assert_eq!(
        received
            .iter()
            .filter(|m| m.message_type == "payment")
            .count(),
        1,
        "exactly one payment message"
    );
    let advice: Vec<_> = received
        .iter()
        .filter(|m| m.message_type == "advice")
        .collect();
    assert!(!advice.is_empty());
    assert!(advice
        .iter()
        .all(|m| m.trx_id == settled["trxId"].as_str().unwrap()));
    // A repeat of the lost request returns the transaction's current state.
    gateway.restart().await;
    let mut repeat = http
        .post(format!("{base}/v1/bills/97002000001/payment"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Idempotency-Key", "crash-1"))
        .send_json(&json!({"product": "2042", "inquiryId": inquiry["id"]}))
        .await
        .unwrap();
    assert_eq!(repeat.status().as_u16(), 200);
    let repeat_body: serde_json::Value = repeat.json().await.unwrap();
    assert_eq!(repeat_body["id"], payment_id.to_string());
    assert_eq!(repeat_body["status"], "succeeded");
    gateway.kill();
    assert_eq!(upstream.sandbox.count(MessageType::Payment), 1);
}

both_backends!(
    client_advice_races_the_reconciler_safely,
    in_flight_requests_finish_on_graceful_shutdown,
);

async fn client_advice_races_the_reconciler_safely(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.sandbox.balance();
    let payment = app.inquire_and_pay("97001000002", "2042").await;
    assert_eq!(payment.status, 202);
    let id = payment.id();
    let answers = futures_util::future::join_all((0..10).map(|_| app.advise(&id))).await;
    for answer in &answers {
        assert!(
            answer.status == 200 || answer.status == 202,
            "{:?}",
            answer.body
        );
        assert_eq!(answer.body["id"], id.as_str());
    }
    let settled = app
        .wait_for_status(&id, "succeeded", Duration::from_secs(15))
        .await;
    let total = settled.body["total"].as_i64().unwrap();
    assert_eq!(app.sandbox.balance(), before - total);
    assert_eq!(app.sandbox.count(MessageType::Payment), 1);
    assert!(app.sandbox.count(MessageType::Advice) >= 10);
}

async fn in_flight_requests_finish_on_graceful_shutdown(backend: Backend) {
    let options = TestOptions {
        upstream_timeout: Duration::from_millis(3000),
        late_delay: Duration::from_millis(1000),
        ..Default::default()
    };
    let app = spawn_app_with(backend, options).await;
    let inquiry = app.inquire("97002000003", "2042").await;
    let id = inquiry.id();
    let (payment, ()) = tokio::join!(app.pay("97002000003", "2042", &id, "drain-1"), async {
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        app.server.stop(true).await;
    });
    assert_eq!(
        payment.status, 200,
        "the in-flight payment finished: {:?}",
        payment.body
    );
    assert_eq!(payment.body["status"], "succeeded");
    let refused = app.http.get(app.url("/healthz")).send().await;
    assert!(refused.is_err(), "the server stopped taking requests");
}
