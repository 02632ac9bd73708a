//! Printable receipts (issue 14; API.md, "Cashier protections and receipts"):
//! `GET /v1/transactions/{id}/receipt?width=32|48`, plain text, no line wider than the paper.

use crate::both_backends;
use crate::helpers::{spawn_app, Answer, Backend, TestApp};

both_backends!(
    a_paid_bill_prints_on_32_and_48_columns,
    receipts_follow_the_transaction_scoping,
    a_receipt_that_is_not_proof_of_payment_says_so,
);

async fn receipt(app: &TestApp, id: &str, query: &str, key: &str) -> Answer {
    app.get(&format!("/v1/transactions/{id}/receipt{query}"), key)
        .await
}

fn text(answer: &Answer) -> &str {
    answer.body.as_str().expect("a text body")
}

fn assert_fits(text: &str, width: usize) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= width,
            "{line:?} is wider than {width}:\n{text}"
        );
    }
}

async fn a_paid_bill_prints_on_32_and_48_columns(backend: Backend) {
    let app = spawn_app(backend).await;
    let payment = app.inquire_and_pay("AF085713323054", "2042").await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);
    let paid = &payment.body;
    let default = receipt(&app, &payment.id(), "", &app.operator_key).await;
    assert_eq!(default.status, 200, "{:?}", default.body);
    assert_eq!(
        default.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    let narrow = text(&default);
    assert_fits(narrow, 32);
    for expected in [
        "AF085713323054",
        "2042",
        paid["trxId"].as_str().unwrap(),
        "Rp 304.000",
        "Rp 1.550",
        "Rp 305.550",
        "SUCCEEDED",
        "WIB",
    ] {
        assert!(narrow.contains(expected), "{expected} missing in\n{narrow}");
    }
    for line in paid["receipt"].as_array().unwrap() {
        let value = line["value"].as_str().unwrap();
        let first_word = value.split_whitespace().next().unwrap_or_default();
        assert!(narrow.contains(first_word), "{value} missing in\n{narrow}");
    }
    let biller_text = paid["info2"].as_str().unwrap_or_default();
    let first_part = biller_text.split('|').next().unwrap().trim();
    assert!(
        narrow.contains(first_part),
        "{first_part} missing in\n{narrow}"
    );
    assert!(!narrow.contains("NOT PROOF"), "{narrow}");

    let wide = receipt(&app, &payment.id(), "?width=48", &app.operator_key).await;
    assert_eq!(wide.status, 200);
    assert_fits(text(&wide), 48);
    assert!(text(&wide).lines().any(|line| line.chars().count() > 32));

    for bad in ["?width=40", "?width=abc", "?width="] {
        let refused = receipt(&app, &payment.id(), bad, &app.operator_key).await;
        assert_eq!(refused.status, 422, "{bad}: {:?}", refused.body);
        assert_eq!(refused.body["error"]["field"], "width");
    }

    // A long bill number wraps instead of running off the paper.
    let long_bill = format!("99000{}", "7".repeat(100));
    let long = app.inquire_and_pay(&long_bill, "2042").await;
    assert_eq!(long.status, 200, "{:?}", long.body);
    let long_receipt = receipt(&app, &long.id(), "", &app.operator_key).await;
    assert_fits(text(&long_receipt), 32);
    let joined: String = text(&long_receipt).lines().collect();
    assert!(joined.contains(&long_bill));
}

async fn receipts_follow_the_transaction_scoping(backend: Backend) {
    let app = spawn_app(backend).await;
    let purchase = app.purchase("3100", "08132259999", "receipt-buy").await;
    assert_eq!(purchase.status, 200, "{:?}", purchase.body);
    let id = purchase.id();
    for key in [&app.operator_key, &app.finance_key, &app.admin_key] {
        let answer = receipt(&app, &id, "", key).await;
        assert_eq!(answer.status, 200);
        assert!(text(&answer).contains("08132259999"));
    }
    let other = receipt(&app, &id, "", &app.other_operator_key).await;
    assert_eq!(other.status, 404);
    assert_eq!(other.error_code(), "not_found");
    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_eq!(
        receipt(&app, &inquiry.id(), "", &app.operator_key)
            .await
            .status,
        404,
        "an inquiry has no receipt"
    );
    for id in ["01930000-0000-7000-8000-000000000000", "not-a-uuid"] {
        assert_eq!(receipt(&app, id, "", &app.operator_key).await.status, 404);
    }
    let anonymous = app
        .send(
            "GET",
            &format!("/v1/transactions/{id}/receipt"),
            None,
            None,
            None,
        )
        .await;
    assert_eq!(anonymous.status, 401);
}

async fn a_receipt_that_is_not_proof_of_payment_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    let declined = app.inquire_and_pay("98051000001", "2042").await;
    assert_eq!(declined.status, 422, "{:?}", declined.body);
    let id = declined.body["error"]["transactionId"].as_str().unwrap();
    let answer = receipt(&app, id, "", &app.operator_key).await;
    assert_eq!(answer.status, 200);
    assert_fits(text(&answer), 32);
    assert!(text(&answer).contains("FAILED"), "{}", text(&answer));
    assert!(
        text(&answer).contains("NOT PROOF OF PAYMENT"),
        "{}",
        text(&answer)
    );
    let review = app.purchase("3100", "97001000001", "lost-buy").await;
    assert_eq!(review.status, 202);
    let answer = receipt(&app, &review.id(), "?width=48", &app.operator_key).await;
    assert!(text(&answer).contains("REVIEW"));
    assert!(text(&answer).contains("NOT PROOF OF PAYMENT"));
}
