//! trxId allocation: unique under concurrency and across processes, 8 digits, wrapping.

use std::collections::HashSet;

use futures_util::future::join_all;
use mpospay_gateway::h2h::MessageType;

use crate::both_backends;
use crate::helpers::{spawn_app, spawn_gateway, Backend, TestOptions};

both_backends!(
    fifty_concurrent_inquiries_get_fifty_distinct_trx_ids,
    trx_ids_wrap_to_00000001
);

async fn fifty_concurrent_inquiries_get_fifty_distinct_trx_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    let answers = join_all((0..50).map(|_| app.inquire("AF085713323054", "2042"))).await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 200, "{:?}", a.body);
            a.body["trxId"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 50);
    let upstream: HashSet<String> = app
        .sandbox
        .received()
        .into_iter()
        .map(|m| m.trx_id)
        .collect();
    assert_eq!(upstream, ids, "the upstream saw exactly these 50 trxIds");
}

async fn trx_ids_wrap_to_00000001(backend: Backend) {
    let app = spawn_app(backend).await;
    set_counter(&app.database.url, 99_999_998).await;
    let first = app.inquire("AF085713323054", "2042").await;
    let second = app.inquire("AF085713323054", "2042").await;
    assert_eq!(first.body["trxId"], "99999999");
    assert_eq!(second.body["trxId"], "00000001");
    assert_eq!(app.upstream_count(MessageType::Inquiry), 2);
    assert_eq!(
        second.status, 200,
        "the simulator accepts the wrapped trxId"
    );
}

async fn set_counter(url: &str, last: u32) {
    if url.starts_with("sqlite:") {
        mpospay_gateway::store::sqlite::SqliteStore::connect(url, 1)
            .await
            .unwrap()
            .set_trx_counter(last)
            .await
            .unwrap();
    } else {
        mpospay_gateway::store::postgres::PostgresStore::connect(url, 1)
            .await
            .unwrap()
            .set_trx_counter(last)
            .await
            .unwrap();
    }
}

#[actix_rt::test]
async fn two_gateway_instances_on_one_postgres_never_share_a_trx_id() {
    let first = spawn_app(Backend::Postgres).await;
    let second = spawn_gateway(
        first.upstream.clone(),
        first.database.clone(),
        TestOptions::default(),
    )
    .await;
    let (a, b) = tokio::join!(
        join_all((0..30).map(|_| first.inquire("AF085713323054", "2042"))),
        join_all((0..30).map(|_| second.inquire("AF085713323054", "2042"))),
    );
    let ids: HashSet<String> = a
        .iter()
        .chain(b.iter())
        .map(|answer| {
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            answer.body["trxId"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 60, "no trxId was handed out twice");
    assert_eq!(first.upstream_count(MessageType::Inquiry), 60);
}
