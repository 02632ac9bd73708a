//! A corpus of hostile requests, each with the status it must get; none may reach the upstream
//! or leave a transaction behind.

use crate::both_backends;
use crate::helpers::{spawn_app, Backend};

both_backends!(hostile_requests_get_their_documented_status);

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    idempotency_key: Option<String>,
    authorization: Option<String>,
    status: u16,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &str,
    body: Option<&str>,
    status: u16,
) -> Case {
    Case {
        name,
        method,
        path: path.to_string(),
        body: body.map(|b| b.as_bytes().to_vec()),
        idempotency_key: None,
        authorization: None,
        status,
    }
}

fn inquiry(name: &'static str, body: &str, status: u16) -> Case {
    case(
        name,
        "POST",
        "/v1/bills/AF085713323054/inquiry",
        Some(body),
        status,
    )
}

fn bill(name: &'static str, encoded_bill: &str, status: u16) -> Case {
    case(
        name,
        "POST",
        &format!("/v1/bills/{encoded_bill}/inquiry"),
        Some(r#"{"product":"2042"}"#),
        status,
    )
}

fn purchase(name: &'static str, body: &str, status: u16) -> Case {
    Case {
        idempotency_key: Some(format!("hostile-{}", name.replace(' ', "-"))),
        ..case(name, "POST", "/v1/purchases", Some(body), status)
    }
}

fn payment(name: &'static str, body: String, status: u16) -> Case {
    Case {
        idempotency_key: Some(format!("hostile-{}", name.replace(' ', "-"))),
        body: Some(body.into_bytes()),
        ..case(
            name,
            "POST",
            "/v1/bills/AF085713323054/payment",
            None,
            status,
        )
    }
}

fn with_key(name: &'static str, key: &str, status: u16) -> Case {
    Case {
        idempotency_key: Some(key.to_string()),
        ..purchase(
            name,
            r#"{"product":"3100","customerNumber":"08132259999"}"#,
            status,
        )
    }
}

fn with_auth(name: &'static str, authorization: &str) -> Case {
    Case {
        authorization: Some(authorization.to_string()),
        ..inquiry(name, r#"{"product":"2042"}"#, 401)
    }
}

fn corpus() -> Vec<Case> {
    let nil = "00000000-0000-0000-0000-000000000000";
    let pay = |extra: &str| format!(r#"{{"product":"2042","inquiryId":"{nil}"{extra}}}"#);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    vec![
        // Sizes
        inquiry(
            "body over 64 KiB",
            &format!(r#"{{"product":"2042","x":"{}"}}"#, "a".repeat(66 * 1024)),
            413,
        ),
        inquiry("body of 2 MiB", &"a".repeat(2 * 1024 * 1024), 413),
        bill("bill number of 1501 characters", &"9".repeat(1501), 422),
        // Wrong types and shapes
        inquiry("product as a number", r#"{"product":2042}"#, 400),
        inquiry("product null", r#"{"product":null}"#, 400),
        inquiry("product as an array", r#"{"product":["2042"]}"#, 400),
        inquiry("product as an object", r#"{"product":{"$ne":""}}"#, 400),
        inquiry("empty body", "", 400),
        inquiry("body null", "null", 400),
        inquiry("body a string", r#""2042""#, 400),
        inquiry("trailing garbage", r#"{"product":"2042"} x"#, 400),
        inquiry("byte order mark", "\u{feff}{\"product\":\"2042\"}", 400),
        inquiry("nesting 5000 deep", &deep, 400),
        inquiry("invalid UTF-8", "{\"product\":\"20\u{fffd}42\"}", 422),
        // Values
        inquiry("empty product", r#"{"product":""}"#, 422),
        inquiry("product too long", r#"{"product":"204200"}"#, 422),
        inquiry("product with a space", r#"{"product":"20 42"}"#, 422),
        inquiry("full-width digits", r#"{"product":"２０４２"}"#, 422),
        inquiry("product with NUL", r#"{"product":"2042\u0000"}"#, 422),
        inquiry("product SQL", r#"{"product":"1';--"}"#, 422),
        // Bill numbers in the path
        bill("path traversal, encoded", "..%2F..%2Fetc%2Fpasswd", 422),
        bill("SQL in bill number", "1%27%20OR%20%271%27%3D%271", 422),
        bill(
            "statement in bill number",
            "1%3BDROP%20TABLE%20transactions",
            422,
        ),
        bill(
            "formula in bill number",
            "%3Dcmd%7C%27%20%2FC%20calc%27%21A0",
            422,
        ),
        bill("Cyrillic homoglyph", "%D0%90F085713323054", 422),
        bill("right-to-left override", "AF0857%E2%80%AE13323054", 422),
        bill("zero-width space", "AF0857%E2%80%8B13323054", 422),
        bill("encoded NUL", "AF0857%0013323054", 422),
        bill("encoded newline", "AF0857%0A13323054", 422),
        case(
            "path traversal, literal",
            "POST",
            "/v1/bills/../../etc/passwd/inquiry",
            Some(r#"{"product":"2042"}"#),
            404,
        ),
        // Purchases
        purchase(
            "customer number with plus",
            r#"{"product":"3100","customerNumber":"+6281322599"}"#,
            422,
        ),
        purchase(
            "negative customer number",
            r#"{"product":"3100","customerNumber":"-1"}"#,
            422,
        ),
        purchase(
            "customer number as number",
            r#"{"product":"3100","customerNumber":8132259999}"#,
            400,
        ),
        purchase(
            "customer number with newline",
            "{\"product\":\"3100\",\"customerNumber\":\"0813225999\\n\"}",
            422,
        ),
        purchase(
            "formula as customer number",
            r#"{"product":"3100","customerNumber":"=SUM(A1)"}"#,
            422,
        ),
        purchase(
            "customer number of 21 digits",
            r#"{"product":"3100","customerNumber":"081322599990813225999"}"#,
            422,
        ),
        // Payments and amounts
        payment("negative amount", pay(r#","amount":-1"#), 422),
        payment("huge amount", pay(r#","amount":1e30"#), 422),
        payment(
            "amount past i64",
            pay(r#","amount":9223372036854775808"#),
            422,
        ),
        payment("fractional amount", pay(r#","amount":1.5"#), 422),
        payment("amount as text", pay(r#","amount":"305550""#), 400),
        payment("amount as boolean", pay(r#","amount":true"#), 400),
        payment(
            "SQL as inquiry id",
            r#"{"product":"2042","inquiryId":"' OR 1=1 --"}"#.into(),
            422,
        ),
        payment(
            "inquiry id as number",
            r#"{"product":"2042","inquiryId":123}"#.into(),
            400,
        ),
        payment("nil inquiry id", pay(""), 404),
        // Idempotency-Key header
        with_key("key of 256 characters", &"k".repeat(256), 400),
        with_key("key with a space", "two words", 400),
        with_key("key with a tab", "a\tb", 400),
        with_key("empty key", "", 400),
        // Authorization
        with_auth("SQL bearer token", "Bearer ' OR '1'='1"),
        with_auth(
            "basic credentials",
            "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ=",
        ),
        with_auth(
            "bearer of 8 KiB",
            &format!("Bearer mpg_{}", "A".repeat(8 * 1024)),
        ),
        with_auth(
            "key with the right shape but unknown",
            "Bearer mpg_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
        ),
        // Other routes
        case(
            "transaction id with traversal",
            "GET",
            "/v1/transactions/..%2F..%2Fetc",
            None,
            404,
        ),
        case(
            "transaction id with SQL",
            "GET",
            "/v1/transactions/1%27%20OR%201%3D1",
            None,
            404,
        ),
        case(
            "advice on a made-up id",
            "POST",
            "/v1/transactions/not-an-id/advice",
            Some("{}"),
            404,
        ),
        case(
            "negative page size",
            "GET",
            "/v1/transactions?limit=-1",
            None,
            400,
        ),
        case(
            "page size past u64",
            "GET",
            "/v1/transactions?limit=99999999999999999999",
            None,
            400,
        ),
        case(
            "impossible date",
            "GET",
            "/v1/transactions?from=2026-02-30",
            None,
            400,
        ),
        case(
            "SQL in a filter",
            "GET",
            "/v1/transactions?billNumber=%27%20OR%201%3D1",
            None,
            422,
        ),
        case(
            "cursor of the wrong length",
            "GET",
            "/v1/transactions?cursor=AAAA",
            None,
            400,
        ),
        case(
            "formula as a date filter",
            "GET",
            "/v1/transactions?to=%3Dcmd",
            None,
            400,
        ),
        case(
            "unknown method on a route",
            "PUT",
            "/v1/bills/AF085713323054/inquiry",
            Some("{}"),
            404,
        ),
    ]
}

async fn hostile_requests_get_their_documented_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = corpus();
    assert!(cases.len() >= 50, "a corpus of at least 50 cases");
    for case in cases {
        let key = app.operator_key.clone();
        let mut request = app.http.request(
            awc::http::Method::from_bytes(case.method.as_bytes()).unwrap(),
            app.url(&case.path),
        );
        request = request.insert_header((
            "Authorization",
            case.authorization
                .unwrap_or_else(|| format!("Bearer {key}")),
        ));
        if let Some(idempotency_key) = &case.idempotency_key {
            request = request.insert_header(("Idempotency-Key", idempotency_key.as_str()));
        }
        let response = match case.body {
            Some(body) => {
                request
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(body)
                    .await
            }
            None => request.send().await,
        };
        let mut response = response.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(response.status().as_u16(), case.status, "{}", case.name);
        if case.status != 413 && case.status != 404 {
            let body: serde_json::Value = response
                .json()
                .limit(1 << 20)
                .await
                .unwrap_or_else(|e| panic!("{}: not the JSON error shape: {e}", case.name));
            assert!(body["error"]["code"].is_string(), "{}: {body}", case.name);
        }
    }
    assert_eq!(
        app.upstream_total(),
        0,
        "nothing hostile reached the upstream"
    );
    let stored = app
        .store
        .search_transactions(&Default::default(), None, 10)
        .await
        .unwrap();
    assert!(stored.is_empty(), "nothing hostile was recorded");
}
