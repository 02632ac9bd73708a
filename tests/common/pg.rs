//! A fresh Postgres database per test.
//!
//! The server is the one at `TEST_DATABASE_URL` (an admin URL, any database; default
//! `postgres://postgres@127.0.0.1:5432/postgres`). If it cannot be reached the calling test
//! panics: Postgres tests are never skipped.
//!
//! Use from a test binary with `#[path = "common/pg.rs"] mod pg;`.
#![allow(dead_code)]

use sqlx::{AssertSqlSafe, Connection, PgConnection};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The admin URL: `TEST_DATABASE_URL` or the local default.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string())
}

/// `url` with its database name replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

async fn admin_connection() -> PgConnection {
    let admin = with_database(&admin_url(), "postgres");
    PgConnection::connect(&admin).await.unwrap_or_else(|error| {
        panic!(
            "Postgres is required for these tests but is unreachable at {admin} \
             (set TEST_DATABASE_URL to an admin URL): {error}"
        )
    })
}

/// Creates an empty database `test_<uuid>` and returns its URL.
pub async fn fresh_postgres_url() -> String {
    let name = format!("test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = admin_connection().await;
    drop_stale_databases(&mut admin).await;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|error| panic!("creating the test database {name}: {error}"));
    let _ = admin.close().await;
    with_database(&admin_url(), &name)
}

/// Test databases left by earlier runs (a test that panicked, a suite that keeps its database
/// for a restart) are dropped once they are over an hour old: their names are UUIDv7s, which
/// carry their creation time. Once per test process, best effort.
async fn drop_stale_databases(admin: &mut PgConnection) {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    else {
        return;
    };
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for name in names {
        let created = uuid::Uuid::parse_str(&name["test_".len()..])
            .ok()
            .and_then(|id| id.get_timestamp())
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos)
            });
        if created.is_some_and(|created| created < hour_ago) {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut *admin).await;
        }
    }
}

/// Drops a database made by [`fresh_postgres_url`] (closing any connection still open to
/// it). Best effort: failures are printed, not raised.
pub async fn drop_postgres_database(url: &str) {
    let Some(name) = database_name(url) else {
        return;
    };
    if !name.starts_with("test_") {
        return;
    }
    let mut admin = admin_connection().await;
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    if let Err(error) = sqlx::query(AssertSqlSafe(sql)).execute(&mut admin).await {
        eprintln!("dropping the test database {name}: {error}");
    }
    let _ = admin.close().await;
}

fn database_name(url: &str) -> Option<String> {
    let base = url.split('?').next()?;
    let authority_start = base.find("://")? + 3;
    let slash = base[authority_start..].find('/')?;
    let name = &base[authority_start + slash + 1..];
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| name.to_string())
}
