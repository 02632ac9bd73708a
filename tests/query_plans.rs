//! The queries that must stay fast on a large table use an index (Postgres, 200,000 rows).

use mpospay_testkit::postgres;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

async fn plan(connection: &mut PgConnection, sql: &str) -> String {
    let rows = sqlx::query(AssertSqlSafe(format!("EXPLAIN {sql}")))
        .fetch_all(&mut *connection)
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn large_table_queries_use_indexes() {
    let url = postgres::fresh_postgres_url().await;
    // Migrations, as the gateway applies them.
    mpospay_gateway::store::connect(&url, 1).await.unwrap();
    let mut connection = PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO transactions (id, kind, status, client, product, bill_number, trx_id, \
         retrieval, amount, admin_fee, balance_after, created_at, updated_at, completed_at) \
         SELECT gen_random_uuid(), \
                (ARRAY['inquiry','payment','purchase'])[1 + n % 3], \
                (ARRAY['succeeded','succeeded','failed','pending'])[1 + n % 4], \
                'client-' || (n % 20), '2042', 'BILL' || (n % 5000), lpad((n % 99999999 + 1)::text, 8, '0'), \
                '20261127000000000', 1000, 100, 5000000 - n, \
                now() - (n || ' seconds')::interval, now(), now() - (n || ' seconds')::interval \
         FROM generate_series(1, 200000) AS n",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    sqlx::query("ANALYZE transactions")
        .execute(&mut connection)
        .await
        .unwrap();

    let columns = "SELECT * FROM transactions";
    let cases = [
        ("the first page", format!("{columns} WHERE TRUE ORDER BY id DESC LIMIT 51")),
        (
            "a page after a cursor",
            format!("{columns} WHERE TRUE AND id < '01a21d3e-0000-7000-8000-000000000000' ORDER BY id DESC LIMIT 51"),
        ),
        ("one client's rows", format!("{columns} WHERE TRUE AND client = 'client-3' ORDER BY id DESC LIMIT 51")),
        ("one bill's rows", format!("{columns} WHERE TRUE AND bill_number = 'BILL42' ORDER BY id DESC LIMIT 51")),
        (
            "one business day",
            format!(
                "{columns} WHERE TRUE AND created_at >= now() - interval '1 hour' \
                 AND created_at < now() - interval '50 minutes' ORDER BY id DESC LIMIT 51"
            ),
        ),
        (
            "the daily report",
            "SELECT kind, product, status, COUNT(*) FROM transactions \
             WHERE created_at >= now() - interval '1 hour' AND created_at < now() \
             GROUP BY kind, product, status"
                .to_string(),
        ),
        (
            "the duplicate purchase guard's earlier purchase",
            "SELECT id FROM transactions WHERE kind = 'purchase' AND bill_number = 'BILL42' \
             AND created_at >= now() - interval '120 seconds' AND client = 'client-2' \
             AND product = '2042' AND status IN ('succeeded', 'pending', 'sending', 'review') \
             ORDER BY created_at DESC, id DESC LIMIT 1"
                .to_string(),
        ),
        (
            "the reconciler's due payments",
            "SELECT id FROM transactions WHERE status = 'pending' AND next_advice_at <= now() \
             ORDER BY next_advice_at LIMIT 16"
                .to_string(),
        ),
    ];
    for (what, sql) in cases {
        let plan = plan(&mut connection, &sql).await;
        println!("{what}:\n{plan}\n");
        assert!(
            !plan.contains("Seq Scan on transactions"),
            "{what} scans the whole table:\n{plan}"
        );
    }

    // The deposit's statements, as the store sends them, with a business day's bounds.
    sqlx::query(
        "INSERT INTO balance_readings (id, balance, read_at) \
         SELECT gen_random_uuid(), 5000000 - n, now() - (n || ' seconds')::interval \
         FROM generate_series(1, 200000) AS n",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    sqlx::query("ANALYZE balance_readings")
        .execute(&mut connection)
        .await
        .unwrap();
    let day = |sql: &str| {
        sql.replace("$1", "now() - interval '1 hour'")
            .replace("$2", "now()")
    };
    use mpospay_gateway::store::deposit;
    let cases = [
        ("a day's chain", day(deposit::WINDOW_TRANSACTIONS)),
        ("a day's pending and review", day(deposit::DAY_OPEN_COUNTS)),
        ("a day's readings", day(deposit::WINDOW_READINGS)),
        (
            "the monitor's latest balanceAfter",
            day(deposit::LATEST_BALANCE_AFTER),
        ),
        ("the monitor's latest reading", day(deposit::LATEST_READING)),
    ];
    for (what, sql) in cases {
        let plan = plan(&mut connection, &sql).await;
        println!("{what}:\n{plan}\n");
        for table in ["transactions", "balance_readings"] {
            assert!(
                !plan.contains(&format!("Seq Scan on {table}")),
                "{what} scans the whole of {table}:\n{plan}"
            );
        }
    }
}
