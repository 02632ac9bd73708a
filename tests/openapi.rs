//! The OpenAPI document (`GET /openapi.json`) against the code it describes.
//!
//! The documented routes are registered through utoipa-actix-web (`http::register`), so the
//! document's paths are collected from the registrations the app serves: a served route is in
//! it by construction, and nothing in it goes unserved. What is left to check here: that it lists
//! exactly the operations API.md promises ([`OPERATIONS`]), that the conventions of API.md hold
//! on every operation, that the patterns the document publishes are the domain newtypes' own
//! (written once, on the type), and that the schemas of the served views are what the code
//! really serializes (`skip_serializing_if` and `null` are not seen by the derive). Request
//! bodies need no such check: the `*Body` types the document describes are the ones the
//! handlers parse.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::ResponseError;
use chrono::Utc;
use mpospay_gateway::domain::{
    BillNumber, ClientName, CustomerNumber, Documented, IdempotencyKey, ProductCode, Transaction,
    TransactionKind, TransactionStatus,
};
use mpospay_gateway::http::error::ApiError;
use mpospay_gateway::http::views::TransactionView;
use mpospay_gateway::http::{openapi, request_id};
use mpospay_gateway::payments::{PaymentError, UpstreamFailure};
use serde_json::Value;

/// The operations the document describes (API.md, "Routes"): (method, path). The routes served
/// but left out of it on purpose (the document itself, `/docs`, the finance page under `/ui`)
/// are registered outside utoipa-actix-web, in `http::register`.
const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/bills/{billNumber}/inquiry"),
    ("POST", "/v1/bills/{billNumber}/payment"),
    ("POST", "/v1/purchases"),
    ("GET", "/v1/transactions"),
    ("GET", "/v1/transactions/export.csv"),
    ("GET", "/v1/transactions/{id}"),
    ("POST", "/v1/transactions/{id}/advice"),
    ("GET", "/v1/balance"),
    ("GET", "/v1/reports/daily"),
    ("POST", "/v1/api-keys"),
    ("GET", "/v1/api-keys"),
    ("DELETE", "/v1/api-keys/{id}"),
    ("GET", "/v1/events"),
    ("POST", "/v1/webhook-endpoints"),
    ("GET", "/v1/webhook-endpoints"),
    ("DELETE", "/v1/webhook-endpoints/{id}"),
    ("POST", "/v1/webhook-endpoints/{id}/rotate-secret"),
    ("GET", "/v1/webhook-endpoints/{id}/deliveries"),
    ("POST", "/v1/webhook-deliveries/{id}/retry"),
    ("GET", "/v1/transactions/{id}/receipt"),
    ("GET", "/v1/reports/reconciliation"),
];

const METHODS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

fn document() -> Value {
    let document = openapi::document();
    let json = document.to_json().expect("the document serializes");
    serde_json::from_str(&json).expect("the document is JSON")
}

/// Resolves a local `$ref` (`#/components/schemas/X`).
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            document.pointer(pointer).unwrap_or_else(|| {
                panic!("{reference} does not resolve");
            })
        }
        None => value,
    }
}

fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut all = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                all.push((method.to_uppercase(), path.clone(), operation));
            }
        }
    }
    all
}

fn parameter<'a>(operation: &'a Value, name: &str, location: &str) -> Option<&'a Value> {
    operation["parameters"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name && p["in"] == location)
}

fn schema_strings(schema: &Value, key: &str) -> BTreeSet<String> {
    schema[key]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_document_lists_exactly_the_api_operations() {
    let document = document();
    let listed: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(
        listed.difference(&expected).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented (so served) but not in OPERATIONS: add them to API.md's routes and OPERATIONS"
    );
    assert_eq!(
        expected.difference(&listed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in OPERATIONS but not documented: register the handler in http::documented_routes"
    );
}

#[test]
fn the_document_describes_the_api() {
    let document = document();
    assert!(
        document["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{}",
        document["openapi"]
    );
    assert_eq!(document["info"]["title"], "mpospay-gateway");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(document["info"]["description"]
        .as_str()
        .unwrap_or("")
        .contains("Idempotency-Key"));
    let scheme = &document["components"]["securitySchemes"][openapi::BEARER_SCHEME];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let tags: BTreeSet<String> = document["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or("").to_string())
        .collect();

    let mut operation_ids = BTreeSet::new();
    for (method, path, operation) in operations(&document) {
        let at = format!("{method} {path}");
        let id = operation["operationId"].as_str().unwrap_or("");
        assert!(
            !id.is_empty() && operation_ids.insert(id.to_string()),
            "{at}: operationId {id:?} missing or not unique"
        );
        let versioned = path.starts_with("/v1/");
        // Tagged with a declared tag, summarised.
        let operation_tags = schema_strings(operation, "tags");
        assert!(
            !operation_tags.is_empty() && operation_tags.is_subset(&tags),
            "{at}: tags {operation_tags:?}"
        );
        assert!(operation["summary"].is_string(), "{at}: no summary");
        // Bearer on every /v1 route, nothing elsewhere.
        let security = &operation["security"];
        if versioned {
            assert_eq!(
                security,
                &serde_json::json!([{ openapi::BEARER_SCHEME: [] }]),
                "{at}"
            );
        } else {
            assert!(
                security.is_null() || security == &serde_json::json!([]),
                "{at}: {security}"
            );
        }
        // Path parameters match the template.
        for name in path
            .split('{')
            .skip(1)
            .filter_map(|part| part.split('}').next())
        {
            let parameter = parameter(operation, name, "path")
                .unwrap_or_else(|| panic!("{at}: path parameter {name} is not documented"));
            assert_eq!(parameter["required"], true, "{at}: {name}");
        }
        let path_parameters = operation["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == "path").count())
            .unwrap_or(0);
        assert_eq!(
            path_parameters,
            path.matches('{').count(),
            "{at}: extra path parameters"
        );
        // X-Request-Id in and out.
        assert!(
            parameter(operation, "X-Request-Id", "header").is_some(),
            "{at}: X-Request-Id"
        );
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let response = resolve(&document, response);
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{at} {status}: no description"
            );
            assert!(
                response["headers"]["X-Request-Id"].is_object(),
                "{at} {status}: X-Request-Id"
            );
            if versioned && status.starts_with(['4', '5']) {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorResponse",
                    "{at} {status}: errors have the error body"
                );
            }
            if versioned && (status == "429" || status == "503") {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{at} {status}: Retry-After"
                );
            }
        }
        if versioned {
            // What every /v1 route can answer: no key, too fast, the database down, a bug.
            for status in ["401", "429", "500", "503"] {
                assert!(responses.contains_key(status), "{at}: {status} missing");
            }
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{at}: no success"
            );
        }
    }

    // Idempotency on payment and purchase.
    for path in ["/v1/bills/{billNumber}/payment", "/v1/purchases"] {
        let operation = &document["paths"][path]["post"];
        let key = parameter(operation, "Idempotency-Key", "header")
            .unwrap_or_else(|| panic!("{path}: Idempotency-Key"));
        assert_eq!(key["required"], true, "{path}");
        for status in ["200", "202"] {
            assert!(
                operation["responses"][status]["headers"]["Idempotent-Replayed"].is_object(),
                "{path} {status}: Idempotent-Replayed"
            );
        }
        assert!(
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .is_some_and(|r| r.ends_with("Body")),
            "{path}: request body"
        );
    }
    for (path, method) in [
        ("/v1/bills/{billNumber}/inquiry", "post"),
        ("/v1/api-keys", "post"),
    ] {
        assert!(
            document["paths"][path][method]["requestBody"]["required"] == true,
            "{method} {path}: request body"
        );
    }

    // Search filters.
    for path in ["/v1/transactions", "/v1/transactions/export.csv"] {
        let operation = &document["paths"][path]["get"];
        let mut wanted = vec!["type", "status", "product", "billNumber", "from", "to"];
        if path == "/v1/transactions" {
            wanted.extend(["limit", "cursor"]);
        }
        let query: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(query, BTreeSet::from_iter(wanted), "{path}");
    }
    assert!(
        document["paths"]["/v1/transactions/export.csv"]["get"]["responses"]["200"]["content"]
            ["text/csv"]
            .is_object()
    );

    // The enumerations of API.md.
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schema_strings(&schemas["TransactionStatus"], "enum"),
        BTreeSet::from(["succeeded", "failed", "pending", "review"].map(String::from))
    );
    assert_eq!(
        schema_strings(&schemas["TransactionType"], "enum"),
        BTreeSet::from(["inquiry", "payment", "purchase"].map(String::from))
    );
    assert_eq!(
        schema_strings(&schemas["ApiRole"], "enum"),
        BTreeSet::from(["operator", "finance", "admin"].map(String::from))
    );
}

/// Every `pattern` in the document, with where it is (a JSON pointer).
fn patterns(value: &Value, at: String, into: &mut Vec<(String, String)>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("pattern", Value::String(pattern)) => into.push((at.clone(), pattern.clone())),
                    _ => {
                        let key = key.replace('~', "~0").replace('/', "~1");
                        patterns(value, format!("{at}/{key}"), into)
                    }
                }
            }
        }
        Value::Array(values) => {
            for (index, value) in values.iter().enumerate() {
                patterns(value, format!("{at}/{index}"), into);
            }
        }
        _ => {}
    }
}

/// A value's schema, through its `$ref` and the `oneOf` of an optional one.
fn referenced(document: &Value, schema: &Value) -> String {
    let schema = match schema["oneOf"].as_array() {
        Some(one) => one
            .iter()
            .find(|s| s["type"] != "null")
            .expect("a non-null alternative"),
        None => schema,
    };
    let reference = schema["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("not a reference: {schema}"));
    resolve(document, schema);
    reference.rsplit('/').next().unwrap_or_default().to_string()
}

/// The patterns clients are held to are the parsers' own (each domain newtype's `PATTERN`, which
/// its unit tests check against its `parse`), published once as a schema component that bodies,
/// paths, headers and filters refer to: nowhere is a pattern written out a second time.
#[test]
fn the_documents_patterns_are_the_domains() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    let domain = [
        ("BillNumber", BillNumber::PATTERN),
        ("ProductCode", ProductCode::PATTERN),
        ("CustomerNumber", CustomerNumber::PATTERN),
        ("IdempotencyKey", IdempotencyKey::PATTERN),
        ("ClientName", ClientName::PATTERN),
    ];
    for (name, pattern) in domain {
        assert_eq!(schemas[name]["pattern"], pattern, "{name}");
    }
    let mut found = Vec::new();
    patterns(&document, String::new(), &mut found);
    for (at, pattern) in &found {
        let owner = domain
            .iter()
            .find(|(name, _)| *at == format!("/components/schemas/{name}"))
            .map(|(_, pattern)| *pattern);
        let expected = if let Some(pattern) = owner {
            pattern
        } else if at.contains("/parameters/") && pattern == request_id::PATTERN {
            // The request id is not a domain value: the middleware keeps or replaces it.
            request_id::PATTERN
        } else if document
            .pointer(at.trim_end_matches("/schema"))
            .is_some_and(|parameter| parameter["in"] == "query" && parameter["name"] == "cursor")
        {
            // The search cursor is opaque: the format of what the gateway gave out.
            pattern.as_str()
        } else {
            panic!("{at}: pattern {pattern} is written out here; refer to a domain newtype")
        };
        assert_eq!(pattern, expected, "{at}");
    }

    // Bodies, paths, headers and filters refer to the newtypes.
    let body = |path: &str, name: &str| {
        let schema = resolve(
            &document,
            &document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
                ["schema"],
        );
        referenced(&document, &schema["properties"][name])
    };
    assert_eq!(
        body("/v1/bills/{billNumber}/inquiry", "product"),
        "ProductCode"
    );
    assert_eq!(
        body("/v1/bills/{billNumber}/payment", "product"),
        "ProductCode"
    );
    assert_eq!(body("/v1/purchases", "product"), "ProductCode");
    assert_eq!(body("/v1/purchases", "customerNumber"), "CustomerNumber");
    assert_eq!(body("/v1/api-keys", "name"), "ClientName");
    let parameter_schema = |path: &str, method: &str, name: &str, location: &str| {
        let operation = &document["paths"][path][method];
        let parameter = parameter(operation, name, location)
            .unwrap_or_else(|| panic!("{method} {path}: {name}"));
        referenced(&document, &parameter["schema"])
    };
    for path in [
        "/v1/bills/{billNumber}/inquiry",
        "/v1/bills/{billNumber}/payment",
    ] {
        assert_eq!(
            parameter_schema(path, "post", "billNumber", "path"),
            "BillNumber"
        );
    }
    for path in ["/v1/bills/{billNumber}/payment", "/v1/purchases"] {
        assert_eq!(
            parameter_schema(path, "post", "Idempotency-Key", "header"),
            "IdempotencyKey"
        );
    }
    for path in ["/v1/transactions", "/v1/transactions/export.csv"] {
        assert_eq!(
            parameter_schema(path, "get", "product", "query"),
            "ProductCode"
        );
        assert_eq!(
            parameter_schema(path, "get", "billNumber", "query"),
            "BillNumber"
        );
    }
}

/// Keys of a JSON object.
fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Checks a serialized value against its object schema: no key the schema lacks, every
/// required key present, `null` only where the schema allows it.
fn conforms(document: &Value, schema: &Value, value: &Value, what: &str) {
    let schema = resolve(document, schema);
    let properties = keys(&schema["properties"]);
    let required = schema_strings(schema, "required");
    let present = keys(value);
    let unknown: Vec<_> = present.difference(&properties).collect();
    assert!(unknown.is_empty(), "{what}: not in the schema: {unknown:?}");
    let missing: Vec<_> = required.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "{what}: required but absent: {missing:?}"
    );
    for (key, field) in value.as_object().expect("an object") {
        if field.is_null() {
            let property = &schema["properties"][key];
            let nullable = property["type"]
                .as_array()
                .is_some_and(|types| types.iter().any(|t| t == "null"))
                || property["oneOf"]
                    .as_array()
                    .is_some_and(|one| one.iter().any(|s| s["type"] == "null"));
            assert!(
                nullable,
                "{what}: {key} is null but not nullable: {property}"
            );
        }
    }
}

#[test]
fn the_transaction_schema_matches_what_is_served() {
    let document = document();
    let schema = &document["components"]["schemas"]["TransactionView"];
    let now = Utc::now();
    let mut transaction = Transaction::begin(
        TransactionKind::Payment,
        "pos-web",
        "2042",
        "AF085713323054",
        "00000002",
        "20261127143025123",
        now,
    );
    let bare = serde_json::to_value(TransactionView::from(&transaction)).unwrap();
    conforms(&document, schema, &bare, "a payment being sent");

    transaction.status = TransactionStatus::Failed;
    transaction.amount = Some(304_000);
    transaction.admin_fee = Some(1_550);
    transaction.payment_code = Some("21b555433f8de4b86144642d29d56839".into());
    transaction.inquiry_id = Some(uuid::Uuid::now_v7());
    transaction.info1 = Some("Nama : BUDI | Kode Bayar : AF085713323054".into());
    transaction.result_code = Some("014".into());
    transaction.result_description = Some("TAGIHAN SUDAH LUNAS".into());
    transaction.error_code = Some("biller_declined".into());
    transaction.review_reason = Some("x".into());
    transaction.completed_at = Some(now);
    let mut view = TransactionView::from(&transaction);
    view.exchanges = Some(Vec::new());
    let full = serde_json::to_value(view).unwrap();
    assert!(full.get("customerName").is_some() && full.get("errorCode").is_some());
    conforms(&document, schema, &full, "a declined payment");
    assert_eq!(full["status"], "failed");
}

#[actix_rt::test]
async fn the_error_schema_matches_what_is_served() {
    let document = document();
    let schema = &document["components"]["schemas"]["ErrorResponse"];
    let errors = [
        ApiError::Payment(PaymentError::Upstream {
            failure: UpstreamFailure::Maintenance,
            result: Some(("102".into(), "SISTEM SEDANG MAINTENANCE".into())),
            transaction_id: Some(uuid::Uuid::now_v7()),
        }),
        ApiError::Malformed {
            field: "limit".into(),
            message: "must be a whole number from 1 to 500".into(),
        },
        ApiError::Unauthorized,
    ];
    let mut seen = BTreeMap::new();
    for error in errors {
        let response = error.error_response();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("a body");
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        conforms(&document, schema, &body, "an error");
        let detail_schema = resolve(
            &document,
            &resolve(&document, schema)["properties"]["error"],
        );
        conforms(&document, detail_schema, &body["error"], "error");
        if let Some(upstream) = body["error"].get("upstream") {
            conforms(
                &document,
                &detail_schema["properties"]["upstream"],
                upstream,
                "error.upstream",
            );
        }
        for key in keys(&body["error"]) {
            seen.insert(key, ());
        }
    }
    // The optional members were exercised too.
    for key in ["field", "upstream", "transactionId"] {
        assert!(seen.contains_key(key), "{key}");
    }
}
