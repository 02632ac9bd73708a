//! Fresh Postgres databases on a shared server.
//!
//! For tests the server is the one at `TEST_DATABASE_URL` (an admin URL, any database; default
//! `postgres://postgres@127.0.0.1:5432/postgres`). If it cannot be reached the calling test
//! panics: Postgres tests are never skipped. The load harness names its own server
//! ([`PostgresServer::new`]) and gets errors instead of panics.
//!
//! Every database is named `<prefix>_<UUIDv7>`; the UUID carries its creation time, so that
//! databases left by an earlier run (a test that panicked, a suite that keeps its database for a
//! restart, an interrupted benchmark) are dropped once they are over an hour old.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
// Database names are made here (a prefix and a UUID), never taken from outside input.
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The prefix of the tests' databases.
const TEST_PREFIX: &str = "test";

/// The tests' admin URL: `TEST_DATABASE_URL` or the local default.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string())
}

/// Creates an empty database `test_<uuid>` on the tests' server and returns its URL.
pub async fn fresh_postgres_url() -> String {
    let server = PostgresServer::new(&admin_url());
    let name = server
        .create_database(TEST_PREFIX)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "Postgres is required for these tests (set TEST_DATABASE_URL to an admin URL): \
                 {error:#}"
            )
        });
    server.url(&name)
}

/// Drops a database made by [`fresh_postgres_url`] (closing any connection still open to it).
/// Best effort: failures are printed, not raised.
pub async fn drop_postgres_database(url: &str) {
    let Some(name) = database_name(url) else {
        return;
    };
    if name.starts_with(&format!("{TEST_PREFIX}_")) {
        PostgresServer::new(url).drop_database(&name).await;
    }
}

/// A Postgres server on which databases are made and dropped, through an admin connection to
/// its `postgres` database.
pub struct PostgresServer {
    url: String,
    /// The databases made through this value, for [`PostgresServer::drop_created`].
    created: Mutex<Vec<String>>,
}

impl PostgresServer {
    /// The server at `url` (any database on it; its user must be allowed to create databases).
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            created: Mutex::new(Vec::new()),
        }
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        with_database(&self.url, database)
    }

    /// Creates an empty database `<prefix>_<uuid>` and returns its name. The first call in a
    /// process also drops the `<prefix>_…` databases that are over an hour old.
    pub async fn create_database(&self, prefix: &str) -> anyhow::Result<String> {
        let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        let mut admin = self.admin().await?;
        drop_stale_databases(&mut admin, prefix).await;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating the database {name}"))?;
        let _ = admin.close().await;
        self.created
            .lock()
            .expect("not poisoned")
            .push(name.clone());
        Ok(name)
    }

    /// Drops `database`, closing any connection still open to it. Best effort: failures are
    /// printed, not raised.
    pub async fn drop_database(&self, database: &str) {
        let dropped = async {
            let mut admin = self.admin().await?;
            let sql = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
            sqlx::query(AssertSqlSafe(sql)).execute(&mut admin).await?;
            let _ = admin.close().await;
            anyhow::Ok(())
        };
        if let Err(error) = dropped.await {
            eprintln!("dropping the database {database}: {error:#}");
        }
        self.created
            .lock()
            .expect("not poisoned")
            .retain(|name| name != database);
    }

    /// Drops every database made through this value and not dropped yet (what an error path
    /// left behind).
    pub async fn drop_created(&self) {
        let names = std::mem::take(&mut *self.created.lock().expect("not poisoned"));
        for name in names {
            self.drop_database(&name).await;
        }
    }

    async fn admin(&self) -> anyhow::Result<PgConnection> {
        let admin = with_database(&self.url, "postgres");
        PgConnection::connect(&admin)
            .await
            .with_context(|| format!("connecting to Postgres at {admin}"))
    }
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

/// The `<prefix>_<uuid>` databases created over an hour ago are dropped. Once per prefix and
/// process, best effort.
async fn drop_stale_databases(admin: &mut PgConnection, prefix: &str) {
    static DONE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    {
        let mut done = DONE.lock().expect("not poisoned");
        if done.iter().any(|p| p == prefix) {
            return;
        }
        done.push(prefix.to_string());
    }
    let Ok(names) =
        sqlx::query_scalar::<_, String>("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{prefix}\\_%"))
            .fetch_all(&mut *admin)
            .await
    else {
        return;
    };
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for name in names {
        let created = uuid::Uuid::parse_str(&name[prefix.len() + 1..])
            .ok()
            .and_then(|id| id.get_timestamp())
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                UNIX_EPOCH + Duration::new(secs, nanos)
            });
        if created.is_some_and(|created| created < hour_ago) {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut *admin).await;
        }
    }
}

fn database_name(url: &str) -> Option<String> {
    let base = url.split('?').next()?;
    let authority_start = base.find("://")? + 3;
    let slash = base[authority_start..].find('/')?;
    let name = &base[authority_start + slash + 1..];
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "test_1"),
            "postgres://u@h:5432/test_1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            database_name("postgres://u@h:1/test_ab12?x=1").as_deref(),
            Some("test_ab12")
        );
        assert_eq!(database_name("postgres://u@h:1/a;b"), None);
    }
}
