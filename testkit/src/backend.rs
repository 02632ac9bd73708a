//! One test body, run on each database the gateway supports.

use std::path::PathBuf;

use crate::postgres;

/// Which database a test (or a benchmark block) runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named async test body against both databases, as two test functions
/// `name::sqlite` and `name::postgres`, under the given test attribute.
///
/// - `both_backends!(#[actix_rt::test] a, b)` calls `a(Backend::Sqlite).await` and
///   `a(Backend::Postgres).await`.
/// - `both_backends!(#[tokio::test] run => a, b)` calls `run(Backend::Sqlite, a).await` and
///   `run(Backend::Postgres, a).await`: `run` makes what the bodies take (a database, a store)
///   and cleans up after them.
#[macro_export]
macro_rules! both_backends {
    (#[$test:meta] $run:path => $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[$test]
                async fn sqlite() {
                    $run($crate::Backend::Sqlite, super::$name).await
                }

                #[$test]
                async fn postgres() {
                    $run($crate::Backend::Postgres, super::$name).await
                }
            }
        )+
    };
    (#[$test:meta] $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[$test]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }

                #[$test]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )+
    };
}

/// An empty database made for one test: a file in a new temporary directory (SQLite; the file's
/// directory does not exist yet, whoever opens it first creates it) or a fresh database on the
/// shared Postgres server (see [`postgres`]).
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let path = dir.path().join("data").join("gateway.db");
                Self {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => Self {
                backend,
                url: postgres::fresh_postgres_url().await,
                _dir: None,
            },
        }
    }

    /// The database file (SQLite only).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.url.strip_prefix("sqlite://").map(PathBuf::from)
    }

    /// Drops the Postgres database (the SQLite directory goes with `self`). Databases of tests
    /// that did not get here are dropped by a later run, see [`postgres::fresh_postgres_url`].
    pub async fn finish(self) {
        if self.backend == Backend::Postgres {
            postgres::drop_postgres_database(&self.url).await;
        }
    }
}
