//! `GET /openapi.json` and the page that reads it, `GET /docs/`, served by the real gateway
//! without an API key.

use mpospay_gateway::http::openapi;
use serde_json::Value;

use crate::helpers::{spawn_app, Backend};

#[actix_rt::test]
async fn the_document_and_its_reader_are_served_without_a_key() {
    let app = spawn_app(Backend::Sqlite).await;

    let document = app.send("GET", "/openapi.json", None, None, None).await;
    assert_eq!(document.status, 200, "{:?}", document.body);
    assert!(
        document
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/json"),
        "{:?}",
        document.headers
    );
    assert!(document.header("x-request-id").is_some());
    let body = &document.body;
    // The served document is the one collected from the registrations (tests/openapi.rs
    // checks that one).
    assert_eq!(
        *body,
        serde_json::to_value(openapi::document()).expect("the document serializes"),
        "the served document differs from openapi::document()"
    );
    assert!(
        body["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{}",
        body["openapi"]
    );
    let scheme = &body["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    assert!(body["paths"]["/v1/bills/{billNumber}/payment"]["post"].is_object());
    assert_eq!(
        body["paths"]["/v1/balance"]["get"]["security"],
        serde_json::json!([{"bearerAuth": []}])
    );

    let page = app.send("GET", "/docs/", None, None, None).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{:?}",
        page.headers
    );
    match &page.body {
        Value::String(html) => assert!(html.contains("swagger-ui"), "{html}"),
        other => panic!("not HTML: {other}"),
    }

    // The page is configured to read our document.
    let initializer = app
        .send("GET", "/docs/swagger-initializer.js", None, None, None)
        .await;
    assert_eq!(initializer.status, 200);
    match &initializer.body {
        Value::String(script) => assert!(script.contains("/openapi.json"), "{script}"),
        other => panic!("not a script: {other}"),
    }

    // `/docs` leads to `/docs/`.
    let client = awc::Client::builder().disable_redirects().finish();
    let response = client
        .get(app.url("/docs"))
        .send()
        .await
        .expect("the gateway answers");
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/docs/")
    );
}
