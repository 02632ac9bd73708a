//! The fault suite, storage side (issue 7): the embedded SQLite database on a disk that fills
//! up, and a database file that is read-only. The gateway must say so clearly (503
//! `database_unavailable`, a message naming the cause), send no money message it could not
//! record first, report itself not ready, lose nothing it sent, and work again once the cause
//! is fixed, without a restart.
//!
//! SQLite only. The disk is a real one: a small tmpfs mounted on the test's database directory
//! (so these tests need root with `CAP_SYS_ADMIN`, as in the project's container). "Read-only"
//! is the file's immutable attribute (`chattr +i`), which stops root too, unlike file modes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use mpospay_gateway::domain::TransactionStatus;
use mpospay_gateway::h2h::MessageType;
use mpospay_gateway::keys::{self, Role};
use mpospay_gateway::sandbox::{ForcedFault, SandboxConfig};
use mpospay_gateway::store::sqlite::SqliteStore;
use mpospay_gateway::store::Store;
use sqlx::Connection;

use crate::helpers::{
    spawn_gateway, spawn_gateway_with_keys, Answer, Backend, TestApp, TestDatabase, TestKeys,
    TestOptions, Upstream,
};

/// The database file of a SQLite test database, in a directory that exists.
fn database_file(database: &TestDatabase) -> PathBuf {
    let file = database.sqlite_file().expect("a SQLite database");
    std::fs::create_dir_all(file.parent().unwrap()).expect("the database's directory");
    file
}

fn run(command: &str, args: &[&str], path: &Path) -> bool {
    Command::new(command)
        .args(args)
        .arg(path)
        .status()
        .is_ok_and(|status| status.success())
}

/// A small tmpfs mounted on a directory: a disk that really fills up. Unmounted on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Self {
        assert!(
            run(
                "mount",
                &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
                dir
            ),
            "mounting a {size} tmpfs on {dir:?} failed: the storage fault tests need root with \
             CAP_SYS_ADMIN"
        );
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Makes sure the next commit has to grow the file system: SQLite's write-ahead log is
    /// checkpointed and truncated to nothing (a log with room left would take a few more
    /// commits), then every free byte of the disk is taken by a file.
    async fn fill(&self, database_url: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut connection = sqlx::SqliteConnection::connect(database_url)
                .await
                .expect("a side connection opens");
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut connection)
                .await
                .expect("checkpoint");
            connection.close().await.expect("closes");
            let wal = std::fs::metadata(format!(
                "{}-wal",
                database_url.strip_prefix("sqlite://").unwrap()
            ))
            .map(|m| m.len())
            .unwrap_or(0);
            if busy == 0 && wal == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the WAL could not be truncated");
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        let mut file = std::fs::File::create(self.filler()).expect("filler file");
        let block = [0u8; 4096];
        loop {
            if let Err(error) = file.write_all(&block) {
                assert_eq!(error.kind(), std::io::ErrorKind::StorageFull, "{error}");
                break;
            }
        }
    }

    /// Frees the space the filler took.
    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("the filler is removed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: the gateway's connections may still hold files open.
        run("umount", &["-l"], &self.dir);
    }
}

/// A file made immutable (`chattr +i`): nobody, root included, may open it for writing.
/// Made mutable again on drop.
struct Immutable {
    path: PathBuf,
}

impl Immutable {
    fn set(path: &Path) -> Self {
        assert!(
            run("chattr", &["+i"], path),
            "chattr +i {path:?} failed: the read-only test needs root and a file system with \
             the immutable attribute"
        );
        Self {
            path: path.to_path_buf(),
        }
    }

    fn clear(&self) {
        assert!(run("chattr", &["-i"], &self.path));
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        run("chattr", &["-i"], &self.path);
    }
}

async fn readiness(app: &TestApp) -> Answer {
    app.send("GET", "/readyz", None, None, None).await
}

/// `/readyz` once the background probe has looked again (it answers its last result).
async fn readiness_after_a_probe(app: &TestApp) -> Answer {
    actix_rt::time::sleep(mpospay_gateway::http::probes::PROBE_INTERVAL + Duration::from_secs(1))
        .await;
    readiness(app).await
}

/// 503 `database_unavailable` with `Retry-After` and a message naming `cause`.
fn assert_database_refused(answer: &Answer, cause: &str, what: &str) {
    assert_eq!(answer.status, 503, "{what}: {:?}", answer.body);
    assert_eq!(answer.error_code(), "database_unavailable", "{what}");
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(cause),
        "{what}: the message {message:?} does not say the database {cause}"
    );
    assert!(
        answer.header("retry-after").is_some(),
        "{what}: Retry-After"
    );
}

fn options() -> TestOptions {
    let mut options = TestOptions {
        upstream_timeout: Duration::from_secs(3),
        ..TestOptions::default()
    };
    options.payments.advice_schedule_secs = vec![0];
    options
}

/// A gateway whose SQLite database is alone on a 16 MiB disk. Drop them in this order: the
/// gateway, the disk, the database's directory.
async fn gateway_on_a_small_disk() -> (Arc<TestDatabase>, SmallDisk, TestApp) {
    let database = Arc::new(TestDatabase::new(Backend::Sqlite).await);
    let file = database_file(&database);
    let disk = SmallDisk::mount(file.parent().unwrap(), "16m");
    let upstream = Upstream::start(SandboxConfig::default()).await;
    let app = spawn_gateway(upstream, database.clone(), options()).await;
    (database, disk, app)
}

#[actix_rt::test]
async fn a_full_disk_refuses_money_clearly_sends_nothing_and_recovers_when_space_is_freed() {
    let (database, disk, app) = gateway_on_a_small_disk().await;
    let balance_before = app.sandbox.balance();
    let paid = app.inquire_and_pay("AF085713323054", "2042").await;
    assert_eq!(paid.status, 200, "{:?}", paid.body);
    let inquiry = app.inquire("AF085713323055", "2042").await;
    assert_eq!(inquiry.status, 200);
    assert_eq!(readiness(&app).await.status, 200);

    disk.fill(&database.url).await;
    let received = app.upstream_total();
    let not_ready = readiness_after_a_probe(&app).await;
    assert_eq!(not_ready.status, 503, "{:?}", not_ready.body);
    assert_eq!(not_ready.body["status"], "unavailable");
    let payment = app
        .pay("AF085713323055", "2042", &inquiry.id(), "full-disk-pay")
        .await;
    assert_database_refused(&payment, "full", "payment");
    let purchase = app.purchase("3100", "08132259999", "full-disk-buy").await;
    assert_database_refused(&purchase, "full", "purchase");
    assert_eq!(
        app.upstream_total(),
        received,
        "nothing is sent upstream that could not be recorded first"
    );
    let refused_inquiry = app.inquire("AF085713323054", "2042").await;
    assert_database_refused(&refused_inquiry, "full", "inquiry");
    // What is stored can still be read.
    let read = app.transaction(&paid.id()).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["status"], "succeeded");

    disk.free();
    app.wait_ready(Duration::from_secs(10)).await;
    // The refused requests stored nothing, not even their keys: the same keys go through now.
    let payment = app
        .pay("AF085713323055", "2042", &inquiry.id(), "full-disk-pay")
        .await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);
    assert_eq!(payment.body["status"], "succeeded");
    assert!(payment.header("idempotent-replayed").is_none());
    let purchase = app.purchase("3100", "08132259999", "full-disk-buy").await;
    assert_eq!(purchase.status, 200, "{:?}", purchase.body);
    assert_eq!(app.upstream_count(MessageType::Payment), 2);
    assert_eq!(app.upstream_count(MessageType::Purchase), 1);
    let charged: i64 = [&paid, &payment, &purchase]
        .iter()
        .map(|a| a.body["total"].as_i64().unwrap())
        .sum();
    assert_eq!(app.sandbox.balance(), balance_before - charged);
}

/// The disk fills while a payment is with the upstream: the payment is applied there, and its
/// answer cannot be stored. The client is told the database is full; the payment stays
/// `sending` in the database, and once there is room again the reconciler resolves it with
/// advice. It is never sent twice, and a repeat of the request finds it.
#[actix_rt::test]
async fn a_payment_whose_answer_cannot_be_stored_is_resolved_not_lost() {
    let (database, disk, app) = gateway_on_a_small_disk().await;
    let balance_before = app.sandbox.balance();
    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_eq!(inquiry.status, 200);

    app.sandbox
        .set_forced_fault(Some(ForcedFault::Delay(Duration::from_millis(1500))));
    let inquiry_id = inquiry.id();
    let pay = app.pay("AF085713323054", "2042", &inquiry_id, "mid-payment-full");
    let fill_while_in_flight = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.upstream_count(MessageType::Payment) == 0 {
            assert!(Instant::now() < deadline, "the payment never left");
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        disk.fill(&database.url).await;
        app.sandbox.set_forced_fault(None);
    };
    let (answer, ()) = tokio::join!(pay, fill_while_in_flight);
    assert_database_refused(
        &answer,
        "full",
        "the payment whose answer could not be stored",
    );
    let sent = app.sandbox.received();
    let payment_message = sent.iter().find(|m| m.message_type == "payment").unwrap();
    assert_eq!(payment_message.result_code, "000", "applied upstream");
    let stored = app.stored_payments().await;
    assert_eq!(
        stored.len(),
        1,
        "the payment's intent was committed before it was sent"
    );
    assert_eq!(stored[0].status, TransactionStatus::Sending);
    assert_eq!(stored[0].trx_id, payment_message.trx_id);
    let id = stored[0].id.to_string();

    // A repeat while the disk is full is not a second payment.
    let repeat = app
        .pay("AF085713323054", "2042", &inquiry.id(), "mid-payment-full")
        .await;
    assert!(
        matches!(repeat.status, 409 | 503),
        "{}: {:?}",
        repeat.status,
        repeat.body
    );
    assert_eq!(app.upstream_count(MessageType::Payment), 1);

    disk.free();
    let settled = app
        .wait_for_status(&id, "succeeded", Duration::from_secs(30))
        .await;
    assert_eq!(settled.body["trxId"], payment_message.trx_id.as_str());
    let repeat = app
        .pay("AF085713323054", "2042", &inquiry.id(), "mid-payment-full")
        .await;
    assert_eq!(repeat.status, 200, "{:?}", repeat.body);
    assert_eq!(repeat.body["id"], id.as_str());
    assert_eq!(repeat.body["status"], "succeeded");
    assert_eq!(
        app.upstream_count(MessageType::Payment),
        1,
        "never sent twice"
    );
    assert!(app
        .sandbox
        .received()
        .iter()
        .filter(|m| m.message_type == "advice")
        .all(|m| m.trx_id == payment_message.trx_id));
    assert_eq!(
        app.sandbox.balance(),
        balance_before - settled.body["total"].as_i64().unwrap()
    );
}

/// A gateway started on a database file it may not write (left read-only by a restore, a
/// permission or attribute mistake): it reads, refuses every write clearly, sends nothing
/// upstream, is not ready; once the file is writable again it works without a restart.
#[actix_rt::test]
async fn a_read_only_database_file_refuses_clearly_and_recovers_when_writable() {
    let database = Arc::new(TestDatabase::new(Backend::Sqlite).await);
    let file = database_file(&database);
    // The database as an operator left it: migrated, with keys, closed cleanly.
    let setup = SqliteStore::connect(&database.url, 1)
        .await
        .expect("the database is created");
    let operator = keys::generate("pos-web", Role::Operator, Utc::now());
    let finance = keys::generate("finance-team", Role::Finance, Utc::now());
    for key in [&operator, &finance] {
        setup.insert_api_key(&key.record).await.expect("key stored");
    }
    setup.pool().close().await;
    let immutable = Immutable::set(&file);

    let upstream = Upstream::start(SandboxConfig::default()).await;
    let keys = TestKeys {
        operator: operator.plain,
        other_operator: String::new(),
        finance: finance.plain,
        admin: String::new(),
    };
    let app = spawn_gateway_with_keys(upstream, database.clone(), options(), Some(keys)).await;

    let not_ready = readiness_after_a_probe(&app).await;
    assert_eq!(not_ready.status, 503, "{:?}", not_ready.body);
    let search = app.get("/v1/transactions", &app.finance_key).await;
    assert_eq!(search.status, 200, "reads work: {:?}", search.body);
    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_database_refused(&inquiry, "read-only", "inquiry");
    let purchase = app.purchase("3100", "08132259999", "read-only-buy").await;
    assert_database_refused(&purchase, "read-only", "purchase");
    assert_eq!(
        app.upstream_count(MessageType::Purchase),
        0,
        "nothing is sent upstream that could not be recorded first"
    );
    assert_eq!(app.upstream_count(MessageType::Payment), 0);

    immutable.clear();
    app.wait_ready(Duration::from_secs(10)).await;
    let payment = app.inquire_and_pay("AF085713323054", "2042").await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);
    let purchase = app.purchase("3100", "08132259999", "read-only-buy").await;
    assert_eq!(purchase.status, 200, "{:?}", purchase.body);
    assert_eq!(app.upstream_count(MessageType::Payment), 1);
    assert_eq!(app.upstream_count(MessageType::Purchase), 1);
}
