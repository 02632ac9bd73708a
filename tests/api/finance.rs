//! What finance staff and admins use: search, CSV export, the daily report, API keys, and the
//! role rules of API.md, route by route.

use std::collections::HashSet;

use chrono::Utc;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{spawn_app, Answer, Backend, TestApp};

both_backends!(
    pages_have_no_duplicates_or_gaps_while_new_rows_arrive,
    search_filters_and_owner_scoping,
    csv_export_equals_the_search_results,
    daily_report_totals_equal_the_rows,
    every_route_obeys_the_role_table,
    admins_manage_api_keys,
);

/// Every page of a search, following `nextCursor`.
async fn all_pages(app: &TestApp, key: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/transactions?limit={limit}{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, key).await;
        assert_eq!(page.status, 200, "{path}: {:?}", page.body);
        rows.extend(page.body["data"].as_array().unwrap().iter().cloned());
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return rows,
        }
    }
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn pages_have_no_duplicates_or_gaps_while_new_rows_arrive(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut made = Vec::new();
    for _ in 0..23 {
        made.push(app.inquire("AF085713323054", "2042").await.id());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/transactions?limit=5&cursor={cursor}"),
            None => "/v1/transactions?limit=5".to_string(),
        };
        let page = app.get(&path, &app.finance_key).await;
        seen.extend(ids(page.body["data"].as_array().unwrap()));
        // New rows keep arriving between pages.
        app.inquire("AF085713323055", "2042").await;
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    made.reverse();
    assert_eq!(
        seen, made,
        "every row that existed, newest first, none missing"
    );
    let page = app
        .get("/v1/transactions?limit=501", &app.finance_key)
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(page.body["error"]["field"], "limit");
    let bad = app
        .get("/v1/transactions?cursor=xyz", &app.finance_key)
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["field"], "cursor");
}

async fn search_filters_and_owner_scoping(backend: Backend) {
    let app = spawn_app(backend).await;
    let paid = app.inquire_and_pay("AF085713323054", "2042").await;
    let declined = app.inquire_and_pay("98051000001", "2042").await;
    assert_eq!(declined.status, 422);
    let theirs = app
        .post(
            "/v1/bills/532110000011/inquiry",
            &app.other_operator_key,
            None,
            json!({"product": "1001"}),
        )
        .await;
    assert_eq!(theirs.status, 200);

    let payments = all_pages(&app, &app.finance_key, "&type=payment", 50).await;
    assert_eq!(payments.len(), 2);
    let succeeded = all_pages(&app, &app.finance_key, "&type=payment&status=succeeded", 50).await;
    assert_eq!(ids(&succeeded), vec![paid.id()]);
    let by_bill = all_pages(&app, &app.finance_key, "&billNumber=532110000011", 50).await;
    assert_eq!(by_bill.len(), 1);
    let by_product = all_pages(&app, &app.finance_key, "&product=1001", 50).await;
    assert_eq!(ids(&by_product), ids(&by_bill));
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    let everything = all_pages(&app, &app.finance_key, "", 50).await;
    assert_eq!(everything.len(), 5);
    let dated = all_pages(
        &app,
        &app.finance_key,
        &format!("&from={today}&to={today}"),
        50,
    )
    .await;
    assert_eq!(dated.len(), 5, "today's business day holds them all");
    let tomorrow = today.succ_opt().unwrap();
    assert!(
        all_pages(&app, &app.finance_key, &format!("&from={tomorrow}"), 50)
            .await
            .is_empty()
    );

    // An operator searches only its own client's rows.
    let mine = all_pages(&app, &app.operator_key, "", 50).await;
    assert_eq!(mine.len(), 4);
    let other = all_pages(&app, &app.other_operator_key, "", 50).await;
    assert_eq!(ids(&other), vec![theirs.id()]);
    for bad in [
        "type=refund",
        "status=sending",
        "from=yesterday",
        "product=20-42",
    ] {
        let answer = app
            .get(&format!("/v1/transactions?{bad}"), &app.finance_key)
            .await;
        assert!(
            answer.status == 400 || answer.status == 422,
            "{bad}: {:?}",
            answer.body
        );
        assert_eq!(
            answer.body["error"]["field"],
            bad.split('=').next().unwrap()
        );
    }
}

async fn csv_export_equals_the_search_results(backend: Backend) {
    let app = spawn_app(backend).await;
    for bill in ["AF085713323054", "AF085713323055"] {
        assert_eq!(app.inquire_and_pay(bill, "2042").await.status, 200);
    }
    app.purchase("3100", "08132259999", "csv-buy").await;
    for query in ["", "&type=payment"] {
        let searched = all_pages(&app, &app.finance_key, query, 2).await;
        let path = format!("/v1/transactions/export.csv?x=1{query}");
        let csv = app.get(&path, &app.finance_key).await;
        assert_eq!(csv.status, 200);
        assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
        assert!(csv
            .header("content-disposition")
            .unwrap()
            .contains("attachment"));
        let text = csv.body.as_str().expect("CSV text").to_string();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        assert_eq!(&headers[0], "id");
        assert!(headers.iter().any(|h| h == "businessDate"));
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        let csv_ids: Vec<String> = records.iter().map(|r| r[0].to_string()).collect();
        assert_eq!(csv_ids, ids(&searched), "{query}: same rows, same order");
        let total_column = headers.iter().position(|h| h == "total").unwrap();
        for (record, row) in records.iter().zip(&searched) {
            let expected = row["total"]
                .as_i64()
                .map(|t| t.to_string())
                .unwrap_or_default();
            assert_eq!(&record[total_column], expected);
        }
    }
    let operator = app
        .get("/v1/transactions/export.csv", &app.operator_key)
        .await;
    assert_eq!(operator.status, 403);
}

async fn daily_report_totals_equal_the_rows(backend: Backend) {
    let app = spawn_app(backend).await;
    for bill in ["AF085713323054", "AF085713323055"] {
        assert_eq!(app.inquire_and_pay(bill, "2042").await.status, 200);
    }
    assert_eq!(app.inquire_and_pay("98051000001", "2042").await.status, 422);
    assert_eq!(
        app.purchase("3100", "08132259999", "report-buy")
            .await
            .status,
        200
    );
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    let report = app
        .get(&format!("/v1/reports/daily?date={today}"), &app.finance_key)
        .await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    assert_eq!(report.body["inquiries"], 3);
    assert_eq!(report.body["timeZone"], "Asia/Jakarta");
    let rows = all_pages(&app, &app.finance_key, "", 50).await;
    let money_rows: Vec<&Value> = rows.iter().filter(|r| r["type"] != "inquiry").collect();
    let groups = report.body["groups"].as_array().unwrap();
    let group_count: i64 = groups.iter().map(|g| g["count"].as_i64().unwrap()).sum();
    assert_eq!(group_count, money_rows.len() as i64);
    for group in groups {
        let members: Vec<&&Value> = money_rows
            .iter()
            .filter(|r| {
                r["type"] == group["type"]
                    && r["product"] == group["product"]
                    && r["status"] == group["status"]
            })
            .collect();
        assert_eq!(group["count"], members.len() as i64, "{group}");
        let amount: i64 = members
            .iter()
            .map(|r| r["amount"].as_i64().unwrap_or(0))
            .sum();
        let fee: i64 = members
            .iter()
            .map(|r| r["adminFee"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(group["amount"], amount);
        assert_eq!(group["adminFee"], fee);
        assert_eq!(group["total"], amount + fee);
    }
    let succeeded_total: i64 = money_rows
        .iter()
        .filter(|r| r["status"] == "succeeded")
        .map(|r| r["total"].as_i64().unwrap())
        .sum();
    assert_eq!(report.body["totals"]["total"], succeeded_total);
    assert_eq!(report.body["totals"]["count"], 3);
    let yesterday = today.pred_opt().unwrap();
    let empty = app
        .get(
            &format!("/v1/reports/daily?date={yesterday}"),
            &app.finance_key,
        )
        .await;
    assert_eq!(empty.body["inquiries"], 0);
    assert!(empty.body["groups"].as_array().unwrap().is_empty());
    let bad = app
        .get("/v1/reports/daily?date=27-11-2026", &app.finance_key)
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["field"], "date");
}

/// Sends one request as a role; returns the status.
async fn status_as(
    app: &TestApp,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    idempotency: bool,
) -> u16 {
    let body = body.map(|b| b.to_string());
    let idempotency_key = uuid::Uuid::now_v7().to_string();
    let answer: Answer = app
        .send(
            method,
            path,
            Some(key),
            idempotency.then_some(idempotency_key.as_str()),
            body.as_deref().map(str::as_bytes),
        )
        .await;
    answer.status
}

async fn every_route_obeys_the_role_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let own_payment = app.inquire_and_pay("AF085713323054", "2042").await.id();
    let revocable = app
        .post(
            "/v1/api-keys",
            &app.admin_key,
            None,
            json!({"role": "operator", "name": "temp"}),
        )
        .await
        .id();
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    // (method, path, body, needs Idempotency-Key, expected for operator, finance, admin)
    type Row = (&'static str, String, Option<Value>, bool, [u16; 3]);
    let routes: Vec<Row> = vec![
        (
            "POST",
            "/v1/bills/AF085713323054/inquiry".into(),
            Some(json!({"product": "2042"})),
            false,
            [200, 403, 200],
        ),
        (
            "POST",
            "/v1/purchases".into(),
            Some(json!({"product": "3100", "customerNumber": "08132259999"})),
            true,
            [200, 403, 200],
        ),
        (
            "POST",
            format!("/v1/transactions/{own_payment}/advice"),
            Some(json!({})),
            false,
            [200, 403, 200],
        ),
        (
            "GET",
            format!("/v1/transactions/{own_payment}"),
            None,
            false,
            [200, 200, 200],
        ),
        (
            "GET",
            "/v1/transactions".into(),
            None,
            false,
            [200, 200, 200],
        ),
        (
            "GET",
            "/v1/transactions/export.csv".into(),
            None,
            false,
            [403, 200, 200],
        ),
        (
            "GET",
            format!("/v1/reports/daily?date={today}"),
            None,
            false,
            [403, 200, 200],
        ),
        ("GET", "/v1/balance".into(), None, false, [200, 200, 200]),
        ("GET", "/v1/api-keys".into(), None, false, [403, 403, 200]),
        (
            "POST",
            "/v1/api-keys".into(),
            Some(json!({"role": "finance", "name": "x"})),
            false,
            [403, 403, 201],
        ),
        (
            "DELETE",
            format!("/v1/api-keys/{revocable}"),
            None,
            false,
            [403, 403, 200],
        ),
    ];
    let keys = [
        app.operator_key.clone(),
        app.finance_key.clone(),
        app.admin_key.clone(),
    ];
    for (method, path, body, idempotency, expected) in &routes {
        for (key, want) in keys.iter().zip(expected) {
            let got = status_as(&app, key, method, path, body.clone(), *idempotency).await;
            assert_eq!(got, *want, "{method} {path} as {}", &key[..8]);
        }
        // No key at all: 401 everywhere.
        let answer = app
            .send(
                method,
                path,
                None,
                None,
                body.as_ref()
                    .map(|b| b.to_string())
                    .as_deref()
                    .map(str::as_bytes),
            )
            .await;
        assert_eq!(answer.status, 401, "{method} {path} without a key");
    }
    // Payment: operator and admin may pay; finance may not.
    for (key, want) in keys.iter().zip([200, 403, 200]) {
        let inquiry = app.inquire("AF085713323055", "2042").await.id();
        let got = status_as(
            &app,
            key,
            "POST",
            "/v1/bills/AF085713323055/payment",
            Some(json!({"product": "2042", "inquiryId": inquiry})),
            true,
        )
        .await;
        // The inquiry is the operator's; an admin reads every client's, so may pay it too.
        assert_eq!(got, want, "payment as {}", &key[..8]);
    }
}

async fn admins_manage_api_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .post(
            "/v1/api-keys",
            &app.admin_key,
            None,
            json!({"role": "finance", "name": "auditor"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let key = created.body["key"].as_str().unwrap().to_string();
    assert_eq!(created.body["role"], "finance");
    assert_eq!(created.body["client"], "auditor");
    assert_eq!(app.get("/v1/transactions", &key).await.status, 200);

    let listed = app.get("/v1/api-keys", &app.admin_key).await;
    let text = listed.body.to_string();
    assert!(!text.contains(&key), "a listing never shows a key");
    let entry = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == created.body["id"])
        .unwrap()
        .clone();
    assert!(
        entry["lastUsedAt"].is_string(),
        "the key's use was recorded"
    );
    assert!(key.starts_with(entry["prefix"].as_str().unwrap()));

    let revoked = app
        .send(
            "DELETE",
            &format!("/v1/api-keys/{}", created.id()),
            Some(&app.admin_key),
            None,
            None,
        )
        .await;
    assert_eq!(revoked.status, 200);
    assert!(revoked.body["revokedAt"].is_string());
    assert_eq!(
        app.get("/v1/transactions", &key).await.status,
        401,
        "revocation is immediate"
    );
    let unknown = app
        .send(
            "DELETE",
            &format!("/v1/api-keys/{}", uuid::Uuid::now_v7()),
            Some(&app.admin_key),
            None,
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    let bad = app
        .post(
            "/v1/api-keys",
            &app.admin_key,
            None,
            json!({"role": "root", "name": "x"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["error"]["field"], "role");
}
