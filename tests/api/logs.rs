//! No secret ever reaches the logs: the gateway binary, run as an operator runs it (JSON logs,
//! `RUST_LOG=debug`, secrets from the environment and from a `…_FILE`), serves an inquiry, a
//! payment, a failing inquiry and a request with a wrong API key; then its whole output is
//! searched for every secret it was given and every API key secret it saw.

use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use mpospay_gateway::keys::{self, Role};
use mpospay_gateway::sandbox::SandboxConfig;
use serde_json::{json, Value};

use crate::helpers::Upstream;

/// Distinctive values, so that a match in the output can only be a leak.
const CLIENT_SECRET: &str = "LEAKCHECK-basic-secret-7f3a91";
const PASSWORD: &str = "LEAKCHECK-api-password-c4d2e8";
const KEY: &str = "LEAKCHECK-sign-key-19b6f0";
const REQUEST_ID: &str = "log-test-1";

/// Sends one JSON request; returns the status and body.
async fn call(
    http: &awc::Client,
    url: String,
    api_key: &str,
    idempotency_key: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = http
        .post(url)
        .insert_header(("Authorization", format!("Bearer {api_key}")))
        .insert_header(("X-Request-Id", REQUEST_ID));
    if let Some(key) = idempotency_key {
        request = request.insert_header(("Idempotency-Key", key));
    }
    let mut response = request.send_json(&body).await.expect("the gateway answers");
    let bytes = response.body().await.expect("a body");
    (
        response.status().as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn secrets_never_reach_the_logs_and_request_lines_carry_the_request_id() {
    let config = SandboxConfig {
        client_secret: CLIENT_SECRET.into(),
        password: PASSWORD.into(),
        key: KEY.into(),
        ..SandboxConfig::default()
    };
    let upstream = Upstream::start(config.clone()).await;
    let workdir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/gateway.db", workdir.path().display());
    let store = mpospay_gateway::store::connect(&database_url, 2)
        .await
        .expect("database");
    let new_key = keys::generate("pos-web", Role::Operator, Utc::now());
    store.insert_api_key(&new_key.record).await.unwrap();
    let api_key = new_key.plain.clone();
    let api_key_secret = api_key[new_key.record.lookup.len() + 1..].to_string();
    // The right public part with a wrong secret: refused, and its secret must not be logged either.
    let wrong_secret = "WrongSecretWrongSecretWrongSecretWrong99";
    let wrong_key = format!("{}_{wrong_secret}", new_key.record.lookup);
    assert_eq!(
        keys::lookup_of(&wrong_key),
        Some(new_key.record.lookup.as_str())
    );

    // The Basic-auth secret comes from a file, the signature secrets from the environment.
    let secret_file = workdir.path().join("client_secret");
    std::fs::write(&secret_file, format!("{}\n", config.client_secret)).unwrap();
    let mut gateway = upstream
        .gateway_process(&database_url)
        .workdir(workdir.path())
        .env("RUST_LOG", "debug")
        .env("GATEWAY_LOG_FORMAT", "json")
        .env("GATEWAY_UPSTREAM_CLIENT_SECRET_FILE", &secret_file)
        .env_remove("GATEWAY_UPSTREAM_CLIENT_SECRET")
        .env("GATEWAY_UPSTREAM_TIMEOUT_MS", "2000")
        .start()
        .await;
    let base = gateway.base_url();
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();

    let (status, inquiry) = call(
        &http,
        format!("{base}/v1/bills/AF085713323054/inquiry"),
        &api_key,
        None,
        json!({"product": "2042"}),
    )
    .await;
    assert_eq!(status, 200, "{inquiry}");
    let (status, payment) = call(
        &http,
        format!("{base}/v1/bills/AF085713323054/payment"),
        &api_key,
        Some("log-test-payment"),
        json!({"product": "2042", "inquiryId": inquiry["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{payment}");
    // 994 (signature mismatch): the gateway logs it loudly — still without a secret.
    let (status, failed) = call(
        &http,
        format!("{base}/v1/bills/99994000001/inquiry"),
        &api_key,
        None,
        json!({"product": "2042"}),
    )
    .await;
    assert_eq!(status, 502, "{failed}");
    let (status, refused) = call(
        &http,
        format!("{base}/v1/bills/AF085713323054/inquiry"),
        &wrong_key,
        None,
        json!({"product": "2042"}),
    )
    .await;
    assert_eq!(status, 401, "{refused}");

    gateway.stop().await;
    let output = gateway.log();
    assert!(!output.trim().is_empty(), "the gateway logged nothing");

    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", config.client_id, CLIENT_SECRET));
    for (what, secret) in [
        ("upstream client secret", CLIENT_SECRET),
        ("upstream client secret (Basic header)", basic.as_str()),
        ("upstream API password", PASSWORD),
        ("upstream signature key", KEY),
        ("API key", api_key.as_str()),
        ("API key secret part", api_key_secret.as_str()),
        ("wrong API key secret part", wrong_secret),
    ] {
        if let Some(at) = output.find(secret) {
            let start = output[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = output[at..].find('\n').map_or(output.len(), |i| at + i);
            panic!("the {what} leaked into the logs: {}", &output[start..end]);
        }
    }

    // JSON lines, and the per-request lines carry the request id.
    let lines: Vec<Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.is_object())
        .collect();
    assert!(lines.len() >= 10, "expected JSON log lines, got:\n{output}");
    let request_id_of = |line: &Value| -> Option<String> {
        line["span"]["request_id"]
            .as_str()
            .or_else(|| {
                line["spans"]
                    .as_array()?
                    .iter()
                    .find_map(|span| span["request_id"].as_str())
            })
            .map(str::to_string)
    };
    let ours: Vec<&Value> = lines
        .iter()
        .filter(|line| request_id_of(line).as_deref() == Some(REQUEST_ID))
        .collect();
    let messages: Vec<&str> = ours
        .iter()
        .filter_map(|line| line["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .filter(|m| **m == "request finished")
            .count()
            >= 4,
        "every request's finishing line carries the request id: {messages:?}\n{output}"
    );
    assert!(
        messages.contains(&"upstream exchange"),
        "upstream exchanges are logged with the request id: {messages:?}"
    );
    for line in &ours {
        assert!(
            line["level"].is_string() && line["timestamp"].is_string(),
            "{line}"
        );
    }
    // Nothing logged while serving a request lacks its id.
    for line in &lines {
        if line["message"] == "request finished" {
            assert!(request_id_of(line).is_some(), "{line}");
        }
    }
}
