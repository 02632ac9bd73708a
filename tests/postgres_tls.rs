//! Postgres over TLS (API.md, "Running it": a Postgres URL may ask for TLS the sqlx way): a
//! private cluster started with `ssl=on` and a certificate of a test CA; the gateway's store
//! connects with `sslmode=verify-full&sslrootcert=…` and works, and refuses a server its CA file
//! does not verify.
//!
//! Needs the PostgreSQL server binaries (see testkit's PrivatePostgres).

use std::path::Path;
use std::process::Command;

use mpospay_gateway::store;
use mpospay_testkit::test_ca::TestCa;
use mpospay_testkit::PrivatePostgres;
use sqlx::Connection;

/// A cluster serving TLS with a certificate for 127.0.0.1 from `ca`.
async fn cluster_with_tls(ca: &TestCa, dir: &Path) -> PrivatePostgres {
    let (cert, key) = ca.issue("127.0.0.1").write(dir, "server");
    give_to_postgres(dir, &[&cert, &key]);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    tokio::task::spawn_blocking(move || {
        PrivatePostgres::start_with(&[
            ("ssl", "on"),
            ("ssl_cert_file", &cert),
            ("ssl_key_file", &key),
        ])
    })
    .await
    .expect("the private cluster starts")
}

/// The server reads its key only if it owns it and nobody else may read it (mode 0600); when we
/// are root the server runs as `postgres`, which must also reach the directory.
fn give_to_postgres(dir: &Path, files: &[&Path]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for file in files {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .args(files)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown of the server's certificate files");
    }
}

fn verify_full(cluster: &PrivatePostgres, ca_file: &Path) -> String {
    format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.url(),
        ca_file.display()
    )
}

#[actix_rt::test]
async fn the_store_connects_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mpospay postgres test CA");
    let cluster = cluster_with_tls(&ca, dir.path()).await;
    let url = verify_full(&cluster, &ca.write(dir.path(), "ca.pem"));

    let store = store::connect(&url, 2)
        .await
        .unwrap_or_else(|error| panic!("the store connects over TLS: {error:#}"));
    assert!(store.list_api_keys().await.expect("a query").is_empty());

    // The same URL's connections really are TLS ones.
    let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert!(ssl, "the connection is encrypted");
}

#[actix_rt::test]
async fn a_server_the_ca_file_does_not_verify_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster_with_tls(&TestCa::new("the server's CA"), dir.path()).await;
    let other_ca = TestCa::new("another CA").write(dir.path(), "other-ca.pem");

    let error = match store::connect(&verify_full(&cluster, &other_ca), 2).await {
        Ok(_) => panic!("a server certificate of another CA must not verify"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("connecting to Postgres"), "{error}");
    assert!(
        error.to_lowercase().contains("certificate"),
        "the error names the certificate problem: {error}"
    );
}
