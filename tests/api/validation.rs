//! Every validation rule: a clear 4xx naming the field, and nothing sent upstream.

use std::time::Duration;

use mpospay_gateway::h2h::MessageType;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestOptions};

both_backends!(
    bad_inquiries_name_their_field_and_send_nothing,
    bad_payments_name_their_field_and_send_nothing,
    bad_purchases_name_their_field_and_send_nothing,
    an_expired_inquiry_cannot_be_paid,
);

async fn bad_inquiries_name_their_field_and_send_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.operator_key.clone();
    let long_bill = "9".repeat(1501);
    let huge = format!(r#"{{"product":"2042","pad":"{}"}}"#, "x".repeat(70 * 1024));
    let cases: Vec<(String, Vec<u8>, u16, &str)> = vec![
        (
            "/v1/bills/AF%20085/inquiry".into(),
            br#"{"product":"2042"}"#.to_vec(),
            422,
            "billNumber",
        ),
        (
            "/v1/bills/a'b/inquiry".into(),
            br#"{"product":"2042"}"#.to_vec(),
            422,
            "billNumber",
        ),
        (
            format!("/v1/bills/{long_bill}/inquiry"),
            br#"{"product":"2042"}"#.to_vec(),
            422,
            "billNumber",
        ),
        (
            "/v1/bills/AF085713323054/inquiry".into(),
            br#"{}"#.to_vec(),
            400,
            "product",
        ),
        (
            "/v1/bills/AF085713323054/inquiry".into(),
            br#"{"product":2042}"#.to_vec(),
            400,
            "product",
        ),
        (
            "/v1/bills/AF085713323054/inquiry".into(),
            br#"{"product":"123456"}"#.to_vec(),
            422,
            "product",
        ),
        (
            "/v1/bills/AF085713323054/inquiry".into(),
            br#"{"product":"20-2"}"#.to_vec(),
            422,
            "product",
        ),
        (
            "/v1/bills/AF085713323054/inquiry".into(),
            b"product=2042".to_vec(),
            400,
            "body",
        ),
        (
            "/v1/bills/AF085713323054/inquiry".into(),
            br#"["2042"]"#.to_vec(),
            400,
            "body",
        ),
        (
            "/v1/bills/AF085713323054/inquiry".into(),
            huge.into_bytes(),
            413,
            "",
        ),
    ];
    for (path, body, status, field) in cases {
        let answer = app.send("POST", &path, Some(&key), None, Some(&body)).await;
        assert_eq!(answer.status, status, "{path}: {:?}", answer.body);
        if !field.is_empty() {
            assert_eq!(
                answer.body["error"]["field"], field,
                "{path}: {:?}",
                answer.body
            );
        }
        assert!(answer.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(
        app.upstream_total(),
        0,
        "nothing invalid reaches the upstream"
    );
}

async fn bad_payments_name_their_field_and_send_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_eq!(inquiry.status, 200);
    let id = inquiry.id();
    let path = "/v1/bills/AF085713323054/payment";
    let key = app.operator_key.clone();
    let cases = [
        (
            json!({"inquiryId": id}),
            Some("k1"),
            400,
            "product",
            "invalid_request",
        ),
        (
            json!({"product": "2042"}),
            Some("k2"),
            400,
            "inquiryId",
            "invalid_request",
        ),
        (
            json!({"product": "2042", "inquiryId": "not-a-uuid"}),
            Some("k3"),
            422,
            "inquiryId",
            "invalid_field",
        ),
        (
            json!({"product": "2042", "inquiryId": id, "amount": -5}),
            Some("k4"),
            422,
            "amount",
            "invalid_field",
        ),
        (
            json!({"product": "2042", "inquiryId": id, "amount": "305550"}),
            Some("k5"),
            400,
            "amount",
            "invalid_request",
        ),
        (
            json!({"product": "2042", "inquiryId": id, "amount": 305000}),
            Some("k6"),
            422,
            "amount",
            "amount_mismatch",
        ),
        (
            json!({"product": "1001", "inquiryId": id}),
            Some("k7"),
            422,
            "product",
            "inquiry_mismatch",
        ),
        (
            json!({"product": "2042", "inquiryId": uuid::Uuid::now_v7().to_string()}),
            Some("k8"),
            404,
            "inquiryId",
            "not_found",
        ),
        (
            json!({"product": "2042", "inquiryId": id}),
            None,
            400,
            "Idempotency-Key",
            "idempotency_key_required",
        ),
    ];
    for (body, idempotency_key, status, field, code) in cases {
        let raw = body.to_string();
        let answer = app
            .send(
                "POST",
                path,
                Some(&key),
                idempotency_key,
                Some(raw.as_bytes()),
            )
            .await;
        assert_eq!(answer.status, status, "{body}: {:?}", answer.body);
        assert_eq!(
            answer.body["error"]["field"], field,
            "{body}: {:?}",
            answer.body
        );
        assert_eq!(answer.error_code(), code, "{body}");
    }
    // Another bill than the inquiry's.
    let other = app
        .post(
            "/v1/bills/AF085713323055/payment",
            &key,
            Some("k9"),
            json!({"product": "2042", "inquiryId": id}),
        )
        .await;
    assert_eq!(other.status, 422);
    assert_eq!(other.error_code(), "inquiry_mismatch");
    assert_eq!(other.body["error"]["field"], "billNumber");
    let long_key = "k".repeat(256);
    let answer = app
        .post(
            path,
            &key,
            Some(&long_key),
            json!({"product": "2042", "inquiryId": id}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["field"], "Idempotency-Key");

    assert_eq!(
        app.upstream_count(MessageType::Payment),
        0,
        "no payment was sent"
    );
    // A rejected request stored nothing: the same key works once the body is fixed.
    let fixed = app
        .post(
            path,
            &key,
            Some("k6"),
            json!({"product": "2042", "inquiryId": id, "amount": 305550}),
        )
        .await;
    assert_eq!(fixed.status, 200, "{:?}", fixed.body);
    assert_eq!(app.upstream_count(MessageType::Payment), 1);
}

async fn bad_purchases_name_their_field_and_send_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (json!({"product": "3100"}), 400, "customerNumber"),
        (
            json!({"product": "3100", "customerNumber": "0813-2259"}),
            422,
            "customerNumber",
        ),
        (
            json!({"product": "3100", "customerNumber": "1".repeat(21)}),
            422,
            "customerNumber",
        ),
        (
            json!({"product": "3100", "customerNumber": 8132259999u64}),
            400,
            "customerNumber",
        ),
        (
            json!({"product": "", "customerNumber": "08132259999"}),
            422,
            "product",
        ),
    ];
    for (index, (body, status, field)) in cases.into_iter().enumerate() {
        let answer = app
            .post(
                "/v1/purchases",
                &app.operator_key,
                Some(&format!("p{index}")),
                body.clone(),
            )
            .await;
        assert_eq!(answer.status, status, "{body}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["field"], field, "{body}");
    }
    assert_eq!(app.upstream_total(), 0);
}

async fn an_expired_inquiry_cannot_be_paid(backend: Backend) {
    let mut options = TestOptions::default();
    options.payments.inquiry_ttl_secs = 1;
    let app = spawn_app_with(backend, options).await;
    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_eq!(inquiry.status, 200);
    actix_rt::time::sleep(Duration::from_millis(1200)).await;
    let answer = app
        .pay("AF085713323054", "2042", &inquiry.id(), "late-pay")
        .await;
    assert_eq!(answer.status, 409, "{:?}", answer.body);
    assert_eq!(answer.error_code(), "inquiry_expired");
    assert_eq!(app.upstream_count(MessageType::Payment), 0);
}
