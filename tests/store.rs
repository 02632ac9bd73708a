//! The storage port's contract, run against both adapters.
//!
//! Every test is a plain async fn taking a [`TestDb`]; `both_backends!` instantiates it once
//! for SQLite (a fresh temp file) and once for Postgres (a fresh database; the server must be
//! reachable, see `mpospay_testkit::postgres`: these tests fail rather than skip).

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use mpospay_gateway::domain::{Transaction, TransactionKind, TransactionStatus};
use mpospay_gateway::h2h::MessageType;
use mpospay_gateway::keys::{self, ApiKeyRecord, Role};
use mpospay_gateway::store::postgres::PostgresStore;
use mpospay_gateway::store::sqlite::SqliteStore;
use mpospay_gateway::store::{
    self, ExchangeOutcome, ExchangeRecord, KeyClaim, SharedStore, Store, StoreError,
    TransactionFilter,
};
use mpospay_testkit::{Backend, TestDatabase};
use sha2::{Digest, Sha256};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Harness

/// One empty database for one test (the SQLite file's directory does not exist yet: connect
/// must create it).
struct TestDb(TestDatabase);

impl Deref for TestDb {
    type Target = TestDatabase;

    fn deref(&self) -> &TestDatabase {
        &self.0
    }
}

impl TestDb {
    async fn new(backend: Backend) -> Self {
        Self(TestDatabase::new(backend).await)
    }

    /// A new store instance (its own pool) on this database.
    async fn open(&self) -> TestStore {
        match self.backend {
            Backend::Sqlite => {
                let store = Arc::new(SqliteStore::connect(&self.url, 5).await.expect("sqlite"));
                TestStore {
                    shared: store.clone(),
                    raw: Raw::Sqlite(store),
                }
            }
            Backend::Postgres => {
                let store = Arc::new(
                    PostgresStore::connect(&self.url, 5)
                        .await
                        .expect("postgres"),
                );
                TestStore {
                    shared: store.clone(),
                    raw: Raw::Postgres(store),
                }
            }
        }
    }

    async fn finish(self) {
        self.0.finish().await;
    }
}

enum Raw {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

/// A store as the application sees it, plus the adapters' test-only inherent methods.
struct TestStore {
    shared: SharedStore,
    raw: Raw,
}

impl TestStore {
    async fn set_trx_counter(&self, last: u32) {
        match &self.raw {
            Raw::Sqlite(store) => store.set_trx_counter(last).await,
            Raw::Postgres(store) => store.set_trx_counter(last).await,
        }
        .expect("set_trx_counter")
    }

    fn shared(&self) -> SharedStore {
        self.shared.clone()
    }

    /// Every stored `api_keys` row, all columns joined into one text (to look for secrets).
    async fn raw_api_key_rows(&self) -> Vec<String> {
        match &self.raw {
            Raw::Sqlite(store) => {
                sqlx::query_scalar(
                    "SELECT id || '|' || lookup || '|' || hash || '|' || client || '|' || role \
                 || '|' || created_at || '|' || COALESCE(revoked_at, '') || '|' \
                 || COALESCE(last_used_at, '') FROM api_keys",
                )
                .fetch_all(store.pool())
                .await
            }
            Raw::Postgres(store) => sqlx::query_scalar(
                "SELECT concat_ws('|', id::text, lookup, hash, client, role, created_at::text, \
                 revoked_at::text, last_used_at::text) FROM api_keys",
            )
            .fetch_all(store.pool())
            .await,
        }
        .expect("raw api_keys rows")
    }
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.shared
    }
}

/// Runs a test body on a fresh database, then drops it.
async fn with_test_db(backend: Backend, test: impl AsyncFnOnce(&TestDb)) {
    let db = TestDb::new(backend).await;
    test(&db).await;
    db.finish().await;
}

/// Each test on SQLite and on Postgres (`name::sqlite`, `name::postgres`).
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mpospay_testkit::both_backends!(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            with_test_db => $($name),*
        );
    };
}

both_backends!(
    connect_applies_migrations_and_is_ready,
    transactions_round_trip_every_field,
    update_is_compare_and_set,
    a_second_live_payment_of_one_inquiry_is_already_paid,
    concurrent_trx_ids_are_distinct,
    two_store_instances_never_share_a_trx_id,
    trx_ids_wrap_to_one,
    idempotency_keys_claim_once_and_replay,
    claim_due_advice_takes_only_due_pending_rows,
    concurrent_advice_claimers_get_disjoint_rows,
    stale_sending_lists_old_sending_rows_oldest_first,
    search_filters_and_pages_newest_first,
    exchanges_are_listed_oldest_first,
    concurrent_inquiries_and_exchanges_are_all_committed,
    a_payment_and_its_key_link_commit_together_or_not_at_all,
    concurrent_key_answers_are_all_stored,
    transactions_are_counted_by_status,
    api_keys_round_trip_storing_only_the_hash,
    a_duplicate_api_key_lookup_is_rejected,
    api_keys_are_listed_newest_first,
    revoking_an_api_key_keeps_the_first_instant,
    touching_an_api_key_records_its_last_use,
    a_linked_key_is_never_released,
    the_duplicate_guard_finds_recent_live_purchases_of_other_keys,
    a_midnight_burst_read_with_the_margin_and_cut_on_the_chain_has_no_false_break,
);

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A fixed instant with whole seconds (Postgres keeps microseconds, SQLite text keeps all).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap()
}

fn ms(millis: i64) -> DateTime<Utc> {
    t0() + Duration::milliseconds(millis)
}

fn inquiry(client: &str, at: DateTime<Utc>) -> Transaction {
    let mut t = Transaction::begin(
        TransactionKind::Inquiry,
        client,
        "2042",
        "AF085713323054",
        "00000001",
        "ret-1",
        at,
    );
    t.status = TransactionStatus::Succeeded;
    t
}

fn payment(inquiry_id: Uuid, at: DateTime<Utc>) -> Transaction {
    let mut t = Transaction::begin(
        TransactionKind::Payment,
        "shop",
        "2042",
        "AF085713323054",
        "00000002",
        "ret-2",
        at,
    );
    t.inquiry_id = Some(inquiry_id);
    t
}

fn with_status(mut t: Transaction, status: TransactionStatus) -> Transaction {
    t.status = status;
    t
}

/// A payment with every optional field set.
fn full_transaction() -> Transaction {
    Transaction {
        id: Uuid::now_v7(),
        kind: TransactionKind::Payment,
        status: TransactionStatus::Pending,
        client: "shop-ü".into(),
        request_id: Some("req-1".into()),
        product: "2042".into(),
        bill_number: "AF085713323054".into(),
        trx_id: "00000042".into(),
        retrieval: "000000000042".into(),
        amount: Some(304_000),
        admin_fee: Some(2_500),
        payment_code: Some("PAY-1".into()),
        inquiry_id: Some(Uuid::now_v7()),
        info1: Some("Nama : Eduard|Jml Tagihan : Rp. 304.000|".into()),
        info2: Some("info 2 'quoted' \"double\"".into()),
        info3: Some("ℹ️ three".into()),
        sheets: Some(3),
        balance_after: Some(9_000_000_000),
        result_code: Some("68".into()),
        result_description: Some("pending".into()),
        error_code: Some("upstream_timeout".into()),
        advice_attempts: 7,
        next_advice_at: Some(ms(61_250)),
        not_found_since: Some(ms(30_001)),
        review_reason: Some("needs a look".into()),
        expires_at: Some(ms(3_600_000)),
        created_at: ms(0),
        updated_at: ms(1_500),
        completed_at: Some(ms(2_999)),
    }
}

fn exchange(
    transaction_id: Option<Uuid>,
    at: DateTime<Utc>,
    message_type: MessageType,
) -> ExchangeRecord {
    ExchangeRecord {
        id: Uuid::now_v7(),
        transaction_id,
        message_type,
        trx_id: "00000007".into(),
        request: r#"{"type":"payment","amount":"304000"}"#.into(),
        response: Some(r#"{"resultCode":"00"}"#.into()),
        http_status: Some(200),
        outcome: ExchangeOutcome::Answered,
        result_code: Some("00".into()),
        latency_ms: 1234,
        request_id: Some("req-x".into()),
        created_at: at,
    }
}

/// Which transactions a search case expects.
type Keep = Box<dyn Fn(&Transaction) -> bool>;

/// A key record with a fixed id, lookup and creation instant.
fn api_key(id: Uuid, lookup: &str, role: Role, created_at: DateTime<Utc>) -> ApiKeyRecord {
    ApiKeyRecord {
        id,
        lookup: lookup.into(),
        hash: hex::encode(Sha256::digest(format!("{lookup}_secret").as_bytes())),
        client: "pos-web".into(),
        role,
        created_at,
        revoked_at: None,
        last_used_at: None,
    }
}

fn ids(transactions: &[Transaction]) -> Vec<Uuid> {
    transactions.iter().map(|t| t.id).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

async fn connect_applies_migrations_and_is_ready(db: &TestDb) {
    let store = store::connect(&db.url, 3).await.expect("connect");
    let expected = match db.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(store.backend(), expected);
    store.check_ready().await.expect("ready");
    // Connecting again (migrations already applied) is fine.
    let again = db.open().await;
    again.check_ready().await.expect("ready again");
    assert!(store::connect("mysql://localhost/x", 1).await.is_err());
}

async fn transactions_round_trip_every_field(db: &TestDb) {
    let store = db.open().await;
    let full = full_transaction();
    store.insert_transaction(&full).await.unwrap();
    assert_eq!(store.get_transaction(full.id).await.unwrap(), Some(full));

    // And with every optional field empty.
    let bare = Transaction::begin(
        TransactionKind::Inquiry,
        "c",
        "CBS",
        "123",
        "00000001",
        "r",
        ms(5),
    );
    store.insert_transaction(&bare).await.unwrap();
    assert_eq!(store.get_transaction(bare.id).await.unwrap(), Some(bare));

    assert_eq!(store.get_transaction(Uuid::now_v7()).await.unwrap(), None);
}

async fn update_is_compare_and_set(db: &TestDb) {
    let store = db.open().await;
    let mut t = payment(Uuid::now_v7(), ms(0));
    store.insert_transaction(&t).await.unwrap();

    t.status = TransactionStatus::Pending;
    t.result_code = Some("68".into());
    t.advice_attempts = 1;
    t.next_advice_at = Some(ms(60_000));
    t.updated_at = ms(1_000);
    let wrong = store
        .update_transaction(&t, TransactionStatus::Pending)
        .await
        .unwrap_err();
    assert!(matches!(wrong, StoreError::Conflict), "{wrong:?}");
    assert_eq!(
        store.get_transaction(t.id).await.unwrap().unwrap().status,
        TransactionStatus::Sending
    );

    store
        .update_transaction(&t, TransactionStatus::Sending)
        .await
        .unwrap();
    assert_eq!(
        store.get_transaction(t.id).await.unwrap().as_ref(),
        Some(&t)
    );

    // Every mutable field is written.
    let mut done = full_transaction();
    done.id = t.id;
    done.kind = t.kind;
    done.client = t.client.clone();
    done.product = t.product.clone();
    done.bill_number = t.bill_number.clone();
    done.inquiry_id = t.inquiry_id;
    done.created_at = t.created_at;
    done.status = TransactionStatus::Succeeded;
    store
        .update_transaction(&done, TransactionStatus::Pending)
        .await
        .unwrap();
    assert_eq!(
        store.get_transaction(t.id).await.unwrap(),
        Some(done.clone())
    );

    // Already moved on: a second writer expecting `pending` loses.
    let again = store
        .update_transaction(&done, TransactionStatus::Pending)
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict), "{again:?}");

    // An unknown id is a conflict too.
    let ghost = payment(Uuid::now_v7(), ms(0));
    let missing = store
        .update_transaction(&ghost, TransactionStatus::Sending)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::Conflict), "{missing:?}");
}

async fn a_second_live_payment_of_one_inquiry_is_already_paid(db: &TestDb) {
    let store = db.open().await;
    let inq = inquiry("shop", ms(0));
    store.insert_transaction(&inq).await.unwrap();

    let first = payment(inq.id, ms(10));
    store.insert_transaction(&first).await.unwrap();

    let second = payment(inq.id, ms(20));
    match store.insert_transaction(&second).await {
        Err(StoreError::AlreadyPaid(existing)) => assert_eq!(existing, first.id),
        other => panic!("expected AlreadyPaid, got {other:?}"),
    }
    assert_eq!(store.get_transaction(second.id).await.unwrap(), None);

    // Pending, succeeded and review payments all block.
    for status in [
        TransactionStatus::Pending,
        TransactionStatus::Review,
        TransactionStatus::Succeeded,
    ] {
        let mut moved = first.clone();
        let expected = store
            .get_transaction(first.id)
            .await
            .unwrap()
            .unwrap()
            .status;
        moved.status = status;
        store.update_transaction(&moved, expected).await.unwrap();
        let blocked = store
            .insert_transaction(&payment(inq.id, ms(30)))
            .await
            .unwrap_err();
        assert!(
            matches!(blocked, StoreError::AlreadyPaid(id) if id == first.id),
            "{status:?}: {blocked:?}"
        );
    }

    // Other kinds and other inquiries are not affected.
    let mut purchase = payment(inq.id, ms(40));
    purchase.kind = TransactionKind::Purchase;
    store.insert_transaction(&purchase).await.unwrap();
    store
        .insert_transaction(&payment(Uuid::now_v7(), ms(40)))
        .await
        .unwrap();

    // Once the first payment failed, the inquiry may be paid again.
    let inq2 = inquiry("shop", ms(50));
    store.insert_transaction(&inq2).await.unwrap();
    let failed = with_status(payment(inq2.id, ms(60)), TransactionStatus::Failed);
    store.insert_transaction(&failed).await.unwrap();
    let retry = payment(inq2.id, ms(70));
    store.insert_transaction(&retry).await.unwrap();
    let third = store
        .insert_transaction(&payment(inq2.id, ms(80)))
        .await
        .unwrap_err();
    assert!(
        matches!(third, StoreError::AlreadyPaid(id) if id == retry.id),
        "{third:?}"
    );

    // A failed payment cannot come back to life while another one holds the inquiry.
    let mut revived = failed.clone();
    revived.status = TransactionStatus::Pending;
    let revive = store
        .update_transaction(&revived, TransactionStatus::Failed)
        .await
        .unwrap_err();
    assert!(
        matches!(revive, StoreError::AlreadyPaid(id) if id == retry.id),
        "{revive:?}"
    );

    // The index also holds under concurrency: of 10 racing payments exactly one wins.
    let inq3 = inquiry("shop", ms(90));
    store.insert_transaction(&inq3).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let shared = store.shared();
        let p = payment(inq3.id, ms(100 + i));
        tasks.push(tokio::spawn(async move {
            (p.id, shared.insert_transaction(&p).await)
        }));
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(())) => winners.push(id),
            (_, Err(StoreError::AlreadyPaid(id))) => losers.push(id),
            (_, Err(other)) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(losers.len(), 9);
    assert!(losers.iter().all(|id| *id == winners[0]));
}

async fn concurrent_trx_ids_are_distinct(db: &TestDb) {
    let store = db.open().await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let shared = store.shared();
        tasks.push(tokio::spawn(async move { shared.allocate_trx_id().await }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        let id = task.await.unwrap().unwrap();
        assert!(seen.insert(id.value()), "duplicate trxId {id}");
    }
    assert_eq!(seen.len(), 50);
    // A fresh counter hands out 1..=50.
    assert_eq!(seen, (1..=50).collect::<HashSet<u32>>());
    assert_eq!(
        store.allocate_trx_id().await.unwrap().to_string(),
        "00000051"
    );
}

async fn two_store_instances_never_share_a_trx_id(db: &TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let shared = if i % 2 == 0 { a.shared() } else { b.shared() };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(shared.allocate_trx_id().await.unwrap().value());
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(seen.insert(id), "duplicate trxId {id}");
        }
    }
    assert_eq!(seen.len(), 180);
}

async fn trx_ids_wrap_to_one(db: &TestDb) {
    let store = db.open().await;
    store.set_trx_counter(99_999_997).await;
    let got: Vec<String> = [
        store.allocate_trx_id().await.unwrap(),
        store.allocate_trx_id().await.unwrap(),
        store.allocate_trx_id().await.unwrap(),
        store.allocate_trx_id().await.unwrap(),
    ]
    .iter()
    .map(|id| id.to_string())
    .collect();
    assert_eq!(got, ["99999998", "99999999", "00000001", "00000002"]);
}

async fn idempotency_keys_claim_once_and_replay(db: &TestDb) {
    let store = db.open().await;
    let now = ms(0);

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let shared = store.shared();
        tasks.push(tokio::spawn(async move {
            shared
                .claim_idempotency_key("shop", "order-42", "hash-1", now)
                .await
                .unwrap()
        }));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap() {
            KeyClaim::Claimed => claimed += 1,
            KeyClaim::Existing(record) => {
                assert_eq!(record.client, "shop");
                assert_eq!(record.key, "order-42");
                assert_eq!(record.request_hash, "hash-1");
                assert_eq!(record.transaction_id, None);
                assert_eq!(record.response_status, None);
                assert_eq!(record.response_body, None);
                assert_eq!(record.created_at, now);
            }
        }
    }
    assert_eq!(claimed, 1, "exactly one caller claims the key");

    // Keys are per client.
    assert_eq!(
        store
            .claim_idempotency_key("other", "order-42", "hash-9", now)
            .await
            .unwrap(),
        KeyClaim::Claimed
    );

    let linked = payment(Uuid::now_v7(), ms(4));
    let transaction_id = linked.id;
    store
        .insert_transaction_for_key(&linked, "shop", "order-42")
        .await
        .unwrap();
    match store
        .claim_idempotency_key("shop", "order-42", "hash-2", ms(5))
        .await
        .unwrap()
    {
        KeyClaim::Existing(record) => {
            assert_eq!(record.transaction_id, Some(transaction_id));
            assert_eq!(record.request_hash, "hash-1");
            assert_eq!(record.response_status, None);
        }
        KeyClaim::Claimed => panic!("key claimed twice"),
    }

    let body = r#"{"status":"succeeded","amount":304000}"#;
    store
        .complete_idempotency_key("shop", "order-42", 201, body)
        .await
        .unwrap();
    match store
        .claim_idempotency_key("shop", "order-42", "hash-1", ms(6))
        .await
        .unwrap()
    {
        KeyClaim::Existing(record) => {
            assert_eq!(record.transaction_id, Some(transaction_id));
            assert_eq!(record.response_status, Some(201));
            assert_eq!(record.response_body.as_deref(), Some(body));
            assert_eq!(record.created_at, now);
        }
        KeyClaim::Claimed => panic!("key claimed twice"),
    }

    // Linking a key that is not held (or already linked) records nothing.
    let mut unlinked = payment(Uuid::now_v7(), ms(8));
    unlinked.trx_id = "00000077".into();
    for key in ["nope", "order-42"] {
        assert!(matches!(
            store
                .insert_transaction_for_key(&unlinked, "shop", key)
                .await,
            Err(StoreError::KeyTaken)
        ));
    }
    assert_eq!(store.get_transaction(unlinked.id).await.unwrap(), None);

    // Release forgets the key.
    store
        .release_idempotency_key("other", "order-42")
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency_key("other", "order-42", "hash-3", ms(7))
            .await
            .unwrap(),
        KeyClaim::Claimed
    );

    // Prune deletes only keys created before the cutoff.
    let day = Duration::days(1);
    for (key, at) in [("old-1", now - day * 3), ("old-2", now - day * 2)] {
        assert_eq!(
            store
                .claim_idempotency_key("shop", key, "h", at)
                .await
                .unwrap(),
            KeyClaim::Claimed
        );
    }
    assert_eq!(store.prune_idempotency_keys(now - day).await.unwrap(), 2);
    assert_eq!(store.prune_idempotency_keys(now - day).await.unwrap(), 0);
    for key in ["old-1", "old-2"] {
        assert_eq!(
            store
                .claim_idempotency_key("shop", key, "h", now)
                .await
                .unwrap(),
            KeyClaim::Claimed
        );
    }
    assert!(matches!(
        store
            .claim_idempotency_key("shop", "order-42", "hash-1", now)
            .await
            .unwrap(),
        KeyClaim::Existing(_)
    ));
    // A cutoff after everything prunes everything (3 under "shop" + "old-*" + 1 "other").
    assert_eq!(store.prune_idempotency_keys(ms(10)).await.unwrap(), 4);
}

async fn claim_due_advice_takes_only_due_pending_rows(db: &TestDb) {
    let store = db.open().await;
    // Sub-second instants on purpose: SQLite compares them as text.
    let now = ms(60_500);
    let pending_at = |at: Option<DateTime<Utc>>| {
        let mut t = with_status(payment(Uuid::now_v7(), ms(0)), TransactionStatus::Pending);
        t.next_advice_at = at;
        t
    };
    let due_whole_second = pending_at(Some(ms(60_000)));
    let due_just_now = pending_at(Some(ms(60_499)));
    let due_exactly = pending_at(Some(now));
    let due_long_ago = pending_at(Some(ms(-86_400_000)));
    let not_due_soon = pending_at(Some(ms(60_501)));
    let not_due_later = pending_at(Some(ms(61_000)));
    let never = pending_at(None);
    let mut succeeded = pending_at(Some(ms(1_000)));
    succeeded.status = TransactionStatus::Succeeded;
    let mut review = pending_at(Some(ms(1_000)));
    review.status = TransactionStatus::Review;
    let mut sending = pending_at(Some(ms(1_000)));
    sending.status = TransactionStatus::Sending;
    for t in [
        &due_whole_second,
        &due_just_now,
        &due_exactly,
        &due_long_ago,
        &not_due_soon,
        &not_due_later,
        &never,
        &succeeded,
        &review,
        &sending,
    ] {
        store.insert_transaction(t).await.unwrap();
    }

    let lease = ms(120_000);
    // The limit takes the most overdue first.
    let first = store.claim_due_advice(now, lease, 2).await.unwrap();
    let first_ids: HashSet<Uuid> = ids(&first).into_iter().collect();
    assert_eq!(
        first_ids,
        HashSet::from([due_long_ago.id, due_whole_second.id])
    );
    let rest = store.claim_due_advice(now, lease, 10).await.unwrap();
    let rest_ids: HashSet<Uuid> = ids(&rest).into_iter().collect();
    assert_eq!(rest_ids, HashSet::from([due_just_now.id, due_exactly.id]));

    // Claimed rows carry the lease, in the result and in the store; the rest is untouched.
    for t in first.iter().chain(&rest) {
        assert_eq!(t.next_advice_at, Some(lease));
        assert_eq!(t.status, TransactionStatus::Pending);
        let stored = store.get_transaction(t.id).await.unwrap().unwrap();
        assert_eq!(&stored, t);
    }
    assert_eq!(
        store.get_transaction(not_due_soon.id).await.unwrap(),
        Some(not_due_soon.clone())
    );

    // Leased rows are not claimed again until the lease ends; rows that became due are.
    let later = store
        .claim_due_advice(ms(119_999), ms(180_000), 10)
        .await
        .unwrap();
    let later_ids: HashSet<Uuid> = ids(&later).into_iter().collect();
    assert_eq!(
        later_ids,
        HashSet::from([not_due_soon.id, not_due_later.id])
    );
    let after_lease = store
        .claim_due_advice(lease, ms(180_000), 10)
        .await
        .unwrap();
    let after_ids: HashSet<Uuid> = ids(&after_lease).into_iter().collect();
    assert_eq!(
        after_ids,
        HashSet::from([
            due_whole_second.id,
            due_just_now.id,
            due_exactly.id,
            due_long_ago.id,
        ])
    );
    assert!(store
        .claim_due_advice(ms(179_999), ms(240_000), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due_advice(now, lease, 0)
        .await
        .unwrap()
        .is_empty());
}

async fn concurrent_advice_claimers_get_disjoint_rows(db: &TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    let mut all = HashSet::new();
    for i in 0..40 {
        let mut t = with_status(payment(Uuid::now_v7(), ms(0)), TransactionStatus::Pending);
        t.next_advice_at = Some(ms(i * 10));
        a.insert_transaction(&t).await.unwrap();
        all.insert(t.id);
    }
    let now = ms(1_000);
    let lease = ms(100_000);
    let mut tasks = Vec::new();
    for claimer in 0..4 {
        let shared = if claimer % 2 == 0 {
            a.shared()
        } else {
            b.shared()
        };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = shared.claim_due_advice(now, lease, 3).await.unwrap();
                if batch.is_empty() {
                    break got;
                }
                got.extend(batch.into_iter().map(|t| t.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(seen.insert(id), "row {id} claimed twice");
        }
    }
    assert_eq!(seen, all);
}

async fn stale_sending_lists_old_sending_rows_oldest_first(db: &TestDb) {
    let store = db.open().await;
    let sending_at = |updated: i64| {
        let mut t = payment(Uuid::now_v7(), ms(0));
        t.updated_at = ms(updated);
        t
    };
    let newer_stale = sending_at(20_000);
    let oldest_stale = sending_at(5_000);
    let middle_stale = sending_at(10_500);
    let fresh = sending_at(30_000);
    let at_cutoff = sending_at(25_000);
    let mut old_pending = sending_at(1_000);
    old_pending.status = TransactionStatus::Pending;
    for t in [
        &newer_stale,
        &oldest_stale,
        &middle_stale,
        &fresh,
        &at_cutoff,
        &old_pending,
    ] {
        store.insert_transaction(t).await.unwrap();
    }
    let cutoff = ms(25_000);
    assert_eq!(
        ids(&store.stale_sending(cutoff, 10).await.unwrap()),
        [oldest_stale.id, middle_stale.id, newer_stale.id]
    );
    let limited = store.stale_sending(cutoff, 2).await.unwrap();
    assert_eq!(limited, [oldest_stale.clone(), middle_stale.clone()]);
    assert!(store.stale_sending(ms(5_000), 10).await.unwrap().is_empty());
}

async fn search_filters_and_pages_newest_first(db: &TestDb) {
    let store = db.open().await;
    let mut made = Vec::new();
    for i in 0..12_i64 {
        let client = if i % 3 == 0 { "alpha" } else { "beta" };
        let mut t = if i % 2 == 0 {
            inquiry(client, ms(i * 1_000))
        } else {
            let mut p = payment(Uuid::now_v7(), ms(i * 1_000));
            p.client = client.into();
            p
        };
        t.product = if i < 6 { "2042".into() } else { "CBS".into() };
        t.bill_number = format!("BILL{}", i % 4);
        if i % 4 == 1 {
            t.status = TransactionStatus::Failed;
        }
        store.insert_transaction(&t).await.unwrap();
        made.push(t);
    }
    let newest_first = |keep: &dyn Fn(&Transaction) -> bool| -> Vec<Uuid> {
        let mut wanted: Vec<Uuid> = made.iter().filter(|t| keep(t)).map(|t| t.id).collect();
        wanted.sort();
        wanted.reverse();
        wanted
    };

    let everything = store
        .search_transactions(&TransactionFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(ids(&everything), newest_first(&|_| true));
    // Full rows come back.
    let by_id = everything.iter().find(|t| t.id == made[3].id).unwrap();
    assert_eq!(by_id, &made[3]);

    let cases: Vec<(TransactionFilter, Keep)> = vec![
        (
            TransactionFilter {
                client: Some("alpha".into()),
                ..Default::default()
            },
            Box::new(|t| t.client == "alpha"),
        ),
        (
            TransactionFilter {
                kind: Some(TransactionKind::Payment),
                ..Default::default()
            },
            Box::new(|t| t.kind == TransactionKind::Payment),
        ),
        (
            TransactionFilter {
                statuses: vec![TransactionStatus::Failed],
                ..Default::default()
            },
            Box::new(|t| t.status == TransactionStatus::Failed),
        ),
        (
            TransactionFilter {
                product: Some("CBS".into()),
                bill_number: Some("BILL2".into()),
                ..Default::default()
            },
            Box::new(|t| t.product == "CBS" && t.bill_number == "BILL2"),
        ),
        (
            TransactionFilter {
                client: Some("beta".into()),
                kind: Some(TransactionKind::Payment),
                statuses: vec![TransactionStatus::Sending],
                product: Some("2042".into()),
                bill_number: None,
                from: None,
                to: None,
            },
            Box::new(|t| {
                t.client == "beta"
                    && t.kind == TransactionKind::Payment
                    && t.status == TransactionStatus::Sending
                    && t.product == "2042"
            }),
        ),
        (
            TransactionFilter {
                client: Some("nobody".into()),
                ..Default::default()
            },
            Box::new(|_| false),
        ),
    ];
    for (filter, keep) in &cases {
        let found = store.search_transactions(filter, None, 100).await.unwrap();
        let wanted = newest_first(keep.as_ref());
        assert_eq!(ids(&found), wanted, "{filter:?}");
    }

    // Paging with the `before` cursor walks everything once, newest first.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .search_transactions(&TransactionFilter::default(), before, 5)
            .await
            .unwrap();
        assert!(page.len() <= 5);
        if page.is_empty() {
            break;
        }
        before = page.last().map(|t| t.id);
        paged.extend(ids(&page));
    }
    assert_eq!(paged, newest_first(&|_| true));

    // The cursor combines with filters.
    let beta = newest_first(&|t| t.client == "beta");
    let filter = TransactionFilter {
        client: Some("beta".into()),
        ..Default::default()
    };
    let after_second = store
        .search_transactions(&filter, Some(beta[1]), 3)
        .await
        .unwrap();
    assert_eq!(ids(&after_second), beta[2..5].to_vec());
    assert!(store
        .search_transactions(&TransactionFilter::default(), None, 0)
        .await
        .unwrap()
        .is_empty());
}

async fn exchanges_are_listed_oldest_first(db: &TestDb) {
    let store = db.open().await;
    let t = payment(Uuid::now_v7(), ms(0));
    store.insert_transaction(&t).await.unwrap();
    let second = exchange(Some(t.id), ms(2_000), MessageType::Payment);
    let first = exchange(Some(t.id), ms(1_000), MessageType::Inquiry);
    let mut third = exchange(Some(t.id), ms(3_500), MessageType::Advice);
    third.response = None;
    third.http_status = None;
    third.outcome = ExchangeOutcome::Timeout;
    third.result_code = None;
    third.request_id = None;
    let other = exchange(Some(Uuid::now_v7()), ms(0), MessageType::Payment);
    let unlinked = exchange(None, ms(0), MessageType::BalanceInquiry);
    for e in [&second, &third, &first, &other, &unlinked] {
        store.record_exchange(e).await.unwrap();
    }
    assert_eq!(
        store.list_exchanges(t.id).await.unwrap(),
        [first, second, third]
    );
    assert_eq!(
        store
            .list_exchanges(other.transaction_id.unwrap())
            .await
            .unwrap(),
        [other]
    );
    assert!(store
        .list_exchanges(Uuid::now_v7())
        .await
        .unwrap()
        .is_empty());
}

async fn transactions_are_counted_by_status(db: &TestDb) {
    let store = db.open().await;
    use TransactionStatus::{Failed, Pending, Review, Sending, Succeeded};
    for status in [Sending, Pending, Succeeded, Failed, Review] {
        assert_eq!(store.count_by_status(status).await.unwrap(), 0);
    }
    let statuses = [
        Pending, Pending, Pending, Review, Succeeded, Failed, Sending,
    ];
    for (i, status) in statuses.into_iter().enumerate() {
        let mut t = with_status(payment(Uuid::now_v7(), ms(i as i64)), status);
        t.trx_id = format!("{:08}", i + 1);
        store.insert_transaction(&t).await.unwrap();
    }
    // Inquiries count too: the count is by status, whatever the kind.
    store
        .insert_transaction(&inquiry("shop", ms(100)))
        .await
        .unwrap();
    assert_eq!(store.count_by_status(Pending).await.unwrap(), 3);
    assert_eq!(store.count_by_status(Review).await.unwrap(), 1);
    assert_eq!(store.count_by_status(Succeeded).await.unwrap(), 2);
    assert_eq!(store.count_by_status(Failed).await.unwrap(), 1);
    assert_eq!(store.count_by_status(Sending).await.unwrap(), 1);

    // A pending payment that settles leaves the pending count.
    let mut settling = with_status(payment(Uuid::now_v7(), ms(200)), Pending);
    settling.trx_id = "00000099".into();
    store.insert_transaction(&settling).await.unwrap();
    assert_eq!(store.count_by_status(Pending).await.unwrap(), 4);
    let mut settled = settling.clone();
    settled.status = Succeeded;
    settled.completed_at = Some(ms(300));
    store.update_transaction(&settled, Pending).await.unwrap();
    assert_eq!(store.count_by_status(Pending).await.unwrap(), 3);
    assert_eq!(store.count_by_status(Succeeded).await.unwrap(), 3);
}

async fn api_keys_round_trip_storing_only_the_hash(db: &TestDb) {
    let store = db.open().await;
    let new = keys::generate("pos-web-ü", Role::Finance, ms(0));
    store.insert_api_key(&new.record).await.unwrap();

    let found = store
        .find_api_key(&new.record.lookup)
        .await
        .unwrap()
        .expect("stored key");
    assert_eq!(found, new.record);
    assert_eq!(
        found.hash,
        hex::encode(Sha256::digest(new.plain.as_bytes()))
    );
    assert!(keys::matches(&found, &new.plain));

    // The plain key, and its secret part, are stored nowhere.
    let secret = &new.plain[new.record.lookup.len() + 1..];
    let rows = store.raw_api_key_rows().await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains(&new.record.lookup), "{rows:?}");
    assert!(rows[0].contains(&new.record.hash), "{rows:?}");
    assert!(!rows[0].contains(&new.plain), "{rows:?}");
    assert!(!rows[0].contains(secret), "{rows:?}");

    // Every field survives, the optional ones and each role too.
    for (i, role) in [Role::Operator, Role::Finance, Role::Admin]
        .into_iter()
        .enumerate()
    {
        let offset = i64::try_from(i).unwrap();
        let mut full = api_key(Uuid::now_v7(), &format!("mpg_full{i}"), role, ms(offset));
        full.revoked_at = Some(ms(1_500 + offset));
        full.last_used_at = Some(ms(1_250 + offset));
        store.insert_api_key(&full).await.unwrap();
        assert_eq!(store.find_api_key(&full.lookup).await.unwrap(), Some(full));
    }

    // An unknown lookup finds nothing.
    assert_eq!(store.find_api_key("mpg_unknown0000").await.unwrap(), None);
    assert_eq!(store.find_api_key("").await.unwrap(), None);
}

async fn a_duplicate_api_key_lookup_is_rejected(db: &TestDb) {
    let store = db.open().await;
    let first = api_key(Uuid::now_v7(), "mpg_AAAAAAAAAAAA", Role::Operator, ms(0));
    store.insert_api_key(&first).await.unwrap();

    let mut twin = api_key(Uuid::now_v7(), "mpg_AAAAAAAAAAAA", Role::Admin, ms(10));
    twin.hash = "0".repeat(64);
    assert!(store.insert_api_key(&twin).await.is_err());

    // The same id again fails too.
    let same_id = api_key(first.id, "mpg_BBBBBBBBBBBB", Role::Operator, ms(20));
    assert!(store.insert_api_key(&same_id).await.is_err());

    assert_eq!(
        store.find_api_key(&first.lookup).await.unwrap().as_ref(),
        Some(&first)
    );
    assert_eq!(store.list_api_keys().await.unwrap(), [first]);
}

async fn api_keys_are_listed_newest_first(db: &TestDb) {
    let store = db.open().await;
    assert!(store.list_api_keys().await.unwrap().is_empty());

    // Ids are deliberately not in creation order; a tie on created_at falls back to id.
    let low = Uuid::from_u128(1);
    let high = Uuid::from_u128(2);
    let oldest = api_key(Uuid::now_v7(), "mpg_oldest000000", Role::Admin, ms(0));
    let middle_low = api_key(low, "mpg_middlelow000", Role::Operator, ms(1_500));
    let middle_high = api_key(high, "mpg_middlehigh00", Role::Finance, ms(1_500));
    let newest = api_key(
        Uuid::from_u128(0),
        "mpg_newest000000",
        Role::Operator,
        ms(61_000),
    );
    let whole_second = api_key(Uuid::now_v7(), "mpg_whole0000000", Role::Admin, ms(1_000));
    for key in [&middle_low, &newest, &oldest, &whole_second, &middle_high] {
        store.insert_api_key(key).await.unwrap();
    }
    store.revoke_api_key(oldest.id, ms(90_000)).await.unwrap();
    let mut revoked_oldest = oldest.clone();
    revoked_oldest.revoked_at = Some(ms(90_000));

    assert_eq!(
        store.list_api_keys().await.unwrap(),
        [
            newest,
            middle_high,
            middle_low,
            whole_second,
            revoked_oldest
        ]
    );
}

async fn revoking_an_api_key_keeps_the_first_instant(db: &TestDb) {
    let store = db.open().await;
    let key = api_key(Uuid::now_v7(), "mpg_revokeme0000", Role::Operator, ms(0));
    let other = api_key(Uuid::now_v7(), "mpg_keepme000000", Role::Operator, ms(1));
    store.insert_api_key(&key).await.unwrap();
    store.insert_api_key(&other).await.unwrap();

    assert!(store.revoke_api_key(key.id, ms(5_000)).await.unwrap());
    let revoked = store.find_api_key(&key.lookup).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(ms(5_000)));
    assert_eq!(
        revoked,
        ApiKeyRecord {
            revoked_at: Some(ms(5_000)),
            ..key.clone()
        }
    );

    // Revoking again succeeds but keeps the first instant.
    assert!(store.revoke_api_key(key.id, ms(9_000)).await.unwrap());
    assert_eq!(
        store
            .find_api_key(&key.lookup)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(ms(5_000))
    );

    // Other keys are untouched; an unknown id is false.
    assert_eq!(
        store.find_api_key(&other.lookup).await.unwrap(),
        Some(other)
    );
    assert!(!store
        .revoke_api_key(Uuid::now_v7(), ms(9_000))
        .await
        .unwrap());
}

async fn touching_an_api_key_records_its_last_use(db: &TestDb) {
    let store = db.open().await;
    let key = api_key(Uuid::now_v7(), "mpg_touchme00000", Role::Finance, ms(0));
    let other = api_key(Uuid::now_v7(), "mpg_untouched000", Role::Finance, ms(1));
    store.insert_api_key(&key).await.unwrap();
    store.insert_api_key(&other).await.unwrap();

    store.touch_api_key(key.id, ms(2_250)).await.unwrap();
    let touched = store.find_api_key(&key.lookup).await.unwrap().unwrap();
    assert_eq!(
        touched,
        ApiKeyRecord {
            last_used_at: Some(ms(2_250)),
            ..key.clone()
        }
    );

    store.touch_api_key(key.id, ms(7_000)).await.unwrap();
    assert_eq!(
        store
            .find_api_key(&key.lookup)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(ms(7_000))
    );

    // A revoked key still records use; other keys and unknown ids are left alone.
    store.revoke_api_key(key.id, ms(8_000)).await.unwrap();
    store.touch_api_key(key.id, ms(8_500)).await.unwrap();
    let after = store.find_api_key(&key.lookup).await.unwrap().unwrap();
    assert_eq!(after.last_used_at, Some(ms(8_500)));
    assert_eq!(after.revoked_at, Some(ms(8_000)));
    store
        .touch_api_key(Uuid::now_v7(), ms(9_000))
        .await
        .unwrap();
    assert_eq!(
        store.find_api_key(&other.lookup).await.unwrap(),
        Some(other)
    );
}

// ---------------------------------------------------------------------------------------------
// SQLite only: the connection settings that make it safe for money, and in-memory URLs.

#[tokio::test]
async fn sqlite_connections_are_durable_and_wait_for_locks() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = SqliteStore::connect(&db.url, 2).await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(journal.to_ascii_lowercase(), "wal");
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(synchronous, 2, "synchronous = FULL");
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(busy, 5_000);
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
}

#[tokio::test]
async fn sqlite_in_memory_urls_work() {
    for url in ["sqlite::memory:", "sqlite://?mode=memory"] {
        let store = store::connect(url, 4).await.expect(url);
        store.check_ready().await.unwrap();
        let t = full_transaction();
        store.insert_transaction(&t).await.unwrap();
        assert_eq!(store.allocate_trx_id().await.unwrap().value(), 1);
        assert_eq!(store.get_transaction(t.id).await.unwrap(), Some(t));
    }
}

async fn concurrent_inquiries_and_exchanges_are_all_committed(db: &TestDb) {
    let store = db.open().await.shared();
    // 200 writers at once: the group committer batches them; every one must be durable and
    // complete when its call returns.
    let writes = (0..200).map(|n| {
        let store = store.clone();
        async move {
            let mut inq = inquiry("shop", ms(n));
            inq.trx_id = format!("{:08}", n + 1);
            inq.amount = Some(1_000 + n);
            let ex = exchange(Some(inq.id), ms(n), MessageType::Inquiry);
            store.record_inquiry(&inq, &ex).await.unwrap();
            // An exchange of a stored transaction, written on its own.
            let advice = exchange(Some(inq.id), ms(n + 1), MessageType::Advice);
            store.record_exchange(&advice).await.unwrap();
            (inq, ex, advice)
        }
    });
    let written = futures_util::future::join_all(writes).await;
    let reopened = db.open().await.shared();
    for (inq, ex, advice) in &written {
        assert_eq!(
            reopened.get_transaction(inq.id).await.unwrap().as_ref(),
            Some(inq),
            "the inquiry row is stored whole"
        );
        assert_eq!(
            reopened.list_exchanges(inq.id).await.unwrap(),
            vec![ex.clone(), advice.clone()]
        );
    }
}

async fn a_payment_and_its_key_link_commit_together_or_not_at_all(db: &TestDb) {
    let store = db.open().await.shared();
    let inq = inquiry("shop", ms(0));
    store.insert_transaction(&inq).await.unwrap();
    let now = ms(1);
    for key in ["k-1", "k-2"] {
        assert_eq!(
            store
                .claim_idempotency_key("shop", key, "hash", now)
                .await
                .unwrap(),
            KeyClaim::Claimed
        );
    }
    let first = payment(inq.id, ms(2));
    store
        .insert_transaction_for_key(&first, "shop", "k-1")
        .await
        .unwrap();
    let held = |key: &'static str| {
        let store = store.clone();
        async move {
            match store
                .claim_idempotency_key("shop", key, "hash", now)
                .await
                .unwrap()
            {
                KeyClaim::Existing(record) => record.transaction_id,
                KeyClaim::Claimed => panic!("key {key} was not held"),
            }
        }
    };
    assert_eq!(held("k-1").await, Some(first.id));

    // A second live payment of the inquiry is refused, and its key stays unlinked.
    let second = payment(inq.id, ms(3));
    match store
        .insert_transaction_for_key(&second, "shop", "k-2")
        .await
    {
        Err(StoreError::AlreadyPaid(existing)) => assert_eq!(existing, first.id),
        other => panic!("expected AlreadyPaid, got {other:?}"),
    }
    assert_eq!(held("k-2").await, None, "the refused payment left no link");
    assert_eq!(store.get_transaction(second.id).await.unwrap(), None);

    // A key that is not held: nothing is inserted.
    let third = payment(Uuid::now_v7(), ms(4));
    assert!(store
        .insert_transaction_for_key(&third, "shop", "never-claimed")
        .await
        .is_err());
    assert_eq!(store.get_transaction(third.id).await.unwrap(), None);
}

async fn concurrent_key_answers_are_all_stored(db: &TestDb) {
    let store = db.open().await.shared();
    let now = ms(0);
    let keys: Vec<String> = (0..100).map(|n| format!("order-{n}")).collect();
    for key in &keys {
        store
            .claim_idempotency_key("shop", key, "hash", now)
            .await
            .unwrap();
    }
    let answers = keys.iter().enumerate().map(|(n, key)| {
        let store = store.clone();
        async move {
            let body = format!(r#"{{"n":{n}}}"#);
            store
                .complete_idempotency_key("shop", key, 200 + n as i32, &body)
                .await
                .unwrap();
        }
    });
    futures_util::future::join_all(answers).await;
    for (n, key) in keys.iter().enumerate() {
        match store
            .claim_idempotency_key("shop", key, "hash", now)
            .await
            .unwrap()
        {
            KeyClaim::Existing(record) => {
                assert_eq!(record.response_status, Some(200 + n as i32));
                assert_eq!(record.response_body, Some(format!(r#"{{"n":{n}}}"#)));
            }
            KeyClaim::Claimed => panic!("key {key} lost"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events and webhooks (store::events)

both_backends!(
    an_event_commits_with_its_state_or_not_at_all,
    the_feed_pages_by_id_scoped_to_a_client_and_a_type,
    deliveries_are_claimed_with_a_lease_and_recorded_only_by_its_holder,
    concurrent_delivery_claimers_get_disjoint_rows,
    endpoints_rotate_delete_and_retry,
    old_events_are_pruned_with_their_finished_deliveries,
);

use mpospay_gateway::store::WebhookEndpointRecord;
use mpospay_gateway::webhooks::{
    DeliveryStatus, DeliveryUpdate, Event, EventFilter, EventType, StoredSecret,
};

fn far_future() -> DateTime<Utc> {
    t0() + Duration::days(3650)
}

fn endpoint(client: Option<&str>, events: EventFilter, at: DateTime<Utc>) -> WebhookEndpointRecord {
    WebhookEndpointRecord {
        id: Uuid::now_v7(),
        url: "http://127.0.0.1:9/hook".into(),
        client: client.map(Into::into),
        events,
        secret: StoredSecret::from_stored(format!("v1:{}", Uuid::now_v7())),
        previous_secret: None,
        previous_secret_until: None,
        created_at: at,
        deleted_at: None,
    }
}

fn event_of(t: &Transaction, at: DateTime<Utc>) -> Event {
    Event::for_transaction(
        t.status,
        serde_json::json!({"id": t.id, "status": t.status.public()}),
        at,
    )
    .expect("a state with an event")
}

/// A payment of `client` committed in `sending`, then moved to `status` with its event.
async fn settled_payment(
    store: &TestStore,
    client: &str,
    status: TransactionStatus,
    at: DateTime<Utc>,
) -> (Transaction, Event) {
    let mut t = payment(Uuid::now_v7(), at);
    t.client = client.into();
    store.insert_transaction(&t).await.unwrap();
    let t = with_status(t, status);
    let event = event_of(&t, at);
    store
        .update_transaction_with_event(&t, TransactionStatus::Sending, Some(&event))
        .await
        .unwrap();
    (t, event)
}

async fn an_event_commits_with_its_state_or_not_at_all(db: &TestDb) {
    let store = db.open().await;
    let all = endpoint(None, EventFilter::all(), ms(0));
    let shop_only = endpoint(Some("shop"), EventFilter::all(), ms(0));
    let other_client = endpoint(Some("kiosk"), EventFilter::all(), ms(0));
    let failures_only = endpoint(
        None,
        EventFilter::only(vec![EventType::TransactionFailed]),
        ms(0),
    );
    let deleted = endpoint(None, EventFilter::all(), ms(0));
    for e in [&all, &shop_only, &other_client, &failures_only, &deleted] {
        store.insert_webhook_endpoint(e).await.unwrap();
    }
    assert!(store
        .delete_webhook_endpoint(deleted.id, ms(1))
        .await
        .unwrap());

    let (t, event) = settled_payment(&store, "shop", TransactionStatus::Pending, ms(10)).await;
    let stored = store.get_transaction(t.id).await.unwrap().unwrap();
    assert_eq!(stored.status, TransactionStatus::Pending);
    let feed = store
        .list_events(None, None, None, far_future(), 10)
        .await
        .unwrap();
    assert_eq!(feed, vec![event.clone()]);
    assert_eq!(
        feed[0].to_json(),
        event.to_json(),
        "the same bytes as first built"
    );
    for (e, wanted) in [
        (&all, 1),
        (&shop_only, 1),
        (&other_client, 0),
        (&failures_only, 0),
    ] {
        let deliveries = store.list_deliveries(e.id, None, None, 10).await.unwrap();
        assert_eq!(deliveries.len(), wanted, "endpoint {:?}", e.client);
        if let Some(d) = deliveries.first() {
            assert_eq!(d.event_id, event.id);
            assert_eq!(d.event_type, EventType::TransactionPending);
            assert_eq!(d.status, DeliveryStatus::Pending);
            assert_eq!(d.attempts, 0);
        }
    }

    // A compare-and-set that loses records neither the state nor its event.
    let lost = with_status(t.clone(), TransactionStatus::Succeeded);
    let lost_event = event_of(&lost, ms(20));
    let error = store
        .update_transaction_with_event(&lost, TransactionStatus::Sending, Some(&lost_event))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict), "{error:?}");
    let feed = store
        .list_events(None, None, None, far_future(), 10)
        .await
        .unwrap();
    assert_eq!(feed.len(), 1, "the lost update's event is not recorded");
    assert_eq!(store.delivery_queue().await.unwrap().pending, 2);

    // Without an event it is the plain update.
    let done = with_status(t, TransactionStatus::Succeeded);
    store
        .update_transaction_with_event(&done, TransactionStatus::Pending, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_transaction(done.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        TransactionStatus::Succeeded
    );

    // deposit.low belongs to no client: endpoints of a client do not get it.
    let low = Event::deposit_low(900_000, 1_000_000, ms(30));
    store.insert_event(&low).await.unwrap();
    assert_eq!(
        store
            .list_deliveries(all.id, None, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .list_deliveries(shop_only.id, None, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn the_feed_pages_by_id_scoped_to_a_client_and_a_type(db: &TestDb) {
    let store = db.open().await;
    let mut shop_events = Vec::new();
    for i in 0..3 {
        shop_events.push(
            settled_payment(&store, "shop", TransactionStatus::Succeeded, ms(i))
                .await
                .1,
        );
    }
    let (_, kiosk) = settled_payment(&store, "kiosk", TransactionStatus::Failed, ms(5)).await;
    let low = Event::deposit_low(1, 2, ms(6));
    store.insert_event(&low).await.unwrap();

    let everything = store
        .list_events(None, None, None, far_future(), 100)
        .await
        .unwrap();
    assert_eq!(everything.len(), 5);
    assert!(
        everything.windows(2).all(|w| w[0].id < w[1].id),
        "oldest first"
    );

    let shop = store
        .list_events(Some("shop"), None, None, far_future(), 100)
        .await
        .unwrap();
    assert_eq!(
        shop, shop_events,
        "a client sees only its own, never deposit events"
    );

    let first_page = store
        .list_events(Some("shop"), None, None, far_future(), 2)
        .await
        .unwrap();
    let rest = store
        .list_events(Some("shop"), None, Some(&first_page[1].id), far_future(), 2)
        .await
        .unwrap();
    assert_eq!(rest, shop_events[2..].to_vec());
    let after_last = store
        .list_events(Some("shop"), None, Some(&rest[0].id), far_future(), 2)
        .await
        .unwrap();
    assert!(after_last.is_empty());

    let failed = store
        .list_events(
            None,
            Some(EventType::TransactionFailed),
            None,
            far_future(),
            100,
        )
        .await
        .unwrap();
    assert_eq!(failed, vec![kiosk]);
    let settled = store
        .list_events(None, None, None, ms(3), 100)
        .await
        .unwrap();
    assert_eq!(settled.len(), 3, "only events created before the bound");
}

fn delivered(attempts: u32, at: DateTime<Utc>) -> DeliveryUpdate {
    DeliveryUpdate {
        status: DeliveryStatus::Delivered,
        attempts,
        next_attempt_at: None,
        last_attempt_at: at,
        last_status_code: Some(204),
        last_error: None,
    }
}

async fn deliveries_are_claimed_with_a_lease_and_recorded_only_by_its_holder(db: &TestDb) {
    let store = db.open().await;
    let hook = endpoint(None, EventFilter::all(), ms(0));
    store.insert_webhook_endpoint(&hook).await.unwrap();
    let (_, event) = settled_payment(&store, "shop", TransactionStatus::Pending, ms(10)).await;

    assert!(
        store
            .claim_due_deliveries(ms(5), ms(100), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let claimed = store
        .claim_due_deliveries(ms(20), ms(1_000), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let first = &claimed[0];
    assert_eq!(first.event, event);
    assert_eq!(first.url, hook.url);
    assert_eq!(first.secret, hook.secret);
    assert_eq!(first.attempts, 0);
    assert!(
        store
            .claim_due_deliveries(ms(500), ms(2_000), 10)
            .await
            .unwrap()
            .is_empty(),
        "held until the lease ends"
    );

    // The holder dies: after the lease it is claimed again, and the first holder's late result
    // is not recorded.
    let again = store
        .claim_due_deliveries(ms(1_000), ms(3_000), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(!store
        .record_delivery_attempt(first.id, first.lease_until, &delivered(1, ms(1_100)))
        .await
        .unwrap());
    let retry = DeliveryUpdate {
        status: DeliveryStatus::Pending,
        attempts: 1,
        next_attempt_at: Some(ms(5_000)),
        last_attempt_at: ms(1_100),
        last_status_code: Some(500),
        last_error: Some("HTTP 500".into()),
    };
    assert!(store
        .record_delivery_attempt(again[0].id, again[0].lease_until, &retry)
        .await
        .unwrap());
    let log = store
        .list_deliveries(hook.id, None, None, 10)
        .await
        .unwrap();
    assert_eq!(log[0].status, DeliveryStatus::Pending);
    assert_eq!(log[0].attempts, 1);
    assert_eq!(log[0].next_attempt_at, Some(ms(5_000)));
    assert_eq!(log[0].last_status_code, Some(500));
    assert_eq!(log[0].last_error.as_deref(), Some("HTTP 500"));

    assert!(store
        .claim_due_deliveries(ms(4_000), ms(9_000), 10)
        .await
        .unwrap()
        .is_empty());
    let third = store
        .claim_due_deliveries(ms(5_000), ms(9_000), 10)
        .await
        .unwrap();
    assert_eq!(third[0].attempts, 1);
    assert!(store
        .record_delivery_attempt(third[0].id, third[0].lease_until, &delivered(2, ms(5_100)))
        .await
        .unwrap());
    assert!(store
        .claim_due_deliveries(far_future(), far_future(), 10)
        .await
        .unwrap()
        .is_empty());
    let log = store
        .list_deliveries(hook.id, Some(DeliveryStatus::Delivered), None, 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].attempts, 2);
    assert_eq!(store.delivery_queue().await.unwrap().pending, 0);
}

async fn concurrent_delivery_claimers_get_disjoint_rows(db: &TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    let hooks = [
        endpoint(None, EventFilter::all(), ms(0)),
        endpoint(None, EventFilter::all(), ms(0)),
    ];
    for hook in &hooks {
        a.insert_webhook_endpoint(hook).await.unwrap();
    }
    for i in 0..20 {
        settled_payment(&a, "shop", TransactionStatus::Succeeded, ms(i)).await;
    }
    let queue = a.delivery_queue().await.unwrap();
    assert_eq!(queue.pending, 40);
    assert_eq!(queue.oldest_pending_at, Some(ms(0)));
    let mut tasks = Vec::new();
    for claimer in 0..4 {
        let shared = if claimer % 2 == 0 {
            a.shared()
        } else {
            b.shared()
        };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = shared
                    .claim_due_deliveries(ms(1_000), ms(100_000), 3)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break got;
                }
                got.extend(batch.into_iter().map(|d| d.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(seen.insert(id), "delivery {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 40);
}

async fn endpoints_rotate_delete_and_retry(db: &TestDb) {
    let store = db.open().await;
    let hook = endpoint(
        Some("shop"),
        EventFilter::only(vec![EventType::TransactionSucceeded]),
        ms(0),
    );
    store.insert_webhook_endpoint(&hook).await.unwrap();
    let listed = store.list_webhook_endpoints().await.unwrap();
    assert_eq!(listed, vec![hook.clone()]);

    let new_secret = StoredSecret::from_stored("v1:new".into());
    assert!(store
        .rotate_webhook_secret(hook.id, &new_secret, ms(60_000))
        .await
        .unwrap());
    let rotated = store.get_webhook_endpoint(hook.id).await.unwrap().unwrap();
    assert_eq!(rotated.secret, new_secret);
    assert_eq!(rotated.previous_secret, Some(hook.secret.clone()));
    assert_eq!(rotated.previous_secret_until, Some(ms(60_000)));

    settled_payment(&store, "shop", TransactionStatus::Succeeded, ms(10)).await;
    let claimed = store
        .claim_due_deliveries(ms(20), ms(1_000), 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].secret, new_secret);
    assert_eq!(
        claimed[0].previous_secret,
        Some((hook.secret.clone(), ms(60_000)))
    );
    assert!(store
        .record_delivery_attempt(claimed[0].id, claimed[0].lease_until, &delivered(1, ms(30)))
        .await
        .unwrap());

    // A delivered delivery is sent again on request.
    let retried = store
        .retry_delivery(claimed[0].id, ms(40))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried.status, DeliveryStatus::Pending);
    assert_eq!(retried.next_attempt_at, Some(ms(40)));
    assert_eq!(retried.attempts, 1);
    assert_eq!(
        store
            .claim_due_deliveries(ms(40), ms(1_000), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .retry_delivery(Uuid::now_v7(), ms(40))
        .await
        .unwrap()
        .is_none());

    // Deleted: its pending deliveries fail, nothing more is claimed or queued for it.
    settled_payment(&store, "shop", TransactionStatus::Succeeded, ms(50)).await;
    assert!(store
        .delete_webhook_endpoint(hook.id, ms(60))
        .await
        .unwrap());
    assert!(!store
        .delete_webhook_endpoint(hook.id, ms(61))
        .await
        .unwrap());
    assert!(store.get_webhook_endpoint(hook.id).await.unwrap().is_none());
    assert!(store.list_webhook_endpoints().await.unwrap().is_empty());
    assert!(store
        .claim_due_deliveries(far_future(), far_future(), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .retry_delivery(claimed[0].id, ms(70))
        .await
        .unwrap()
        .is_none());
    assert!(!store
        .rotate_webhook_secret(hook.id, &new_secret, ms(60_000))
        .await
        .unwrap());
    settled_payment(&store, "shop", TransactionStatus::Succeeded, ms(80)).await;
    assert_eq!(store.delivery_queue().await.unwrap().pending, 0);
}

async fn old_events_are_pruned_with_their_finished_deliveries(db: &TestDb) {
    let store = db.open().await;
    let hook = endpoint(None, EventFilter::all(), ms(0));
    store.insert_webhook_endpoint(&hook).await.unwrap();
    let (_, old_done) = settled_payment(&store, "shop", TransactionStatus::Succeeded, ms(0)).await;
    let (_, old_pending) = settled_payment(&store, "shop", TransactionStatus::Failed, ms(1)).await;
    let (_, recent) =
        settled_payment(&store, "shop", TransactionStatus::Succeeded, ms(10_000)).await;
    let claimed = store.claim_due_deliveries(ms(0), ms(100), 1).await.unwrap();
    assert_eq!(claimed[0].event.id, old_done.id);
    store
        .record_delivery_attempt(claimed[0].id, claimed[0].lease_until, &delivered(1, ms(2)))
        .await
        .unwrap();

    assert_eq!(store.prune_events(ms(5_000)).await.unwrap(), 1);
    let left: Vec<_> = store
        .list_events(None, None, None, far_future(), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        left,
        vec![old_pending.id, recent.id],
        "a pending delivery keeps its event"
    );
    assert_eq!(
        store
            .list_deliveries(hook.id, None, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A key linked to a transaction (a concurrent takeover of the same key recorded something) is
/// kept by `release_idempotency_key`: releasing it would let a later repeat buy again.
async fn a_linked_key_is_never_released(db: &TestDb) {
    let store = db.open().await.shared();
    for key in ["linked", "unlinked"] {
        store
            .claim_idempotency_key("shop", key, "hash", ms(0))
            .await
            .unwrap();
    }
    let bought = purchase_of("shop", "3100", "08132259999", ms(1));
    store
        .insert_transaction_for_key(&bought, "shop", "linked")
        .await
        .unwrap();
    for key in ["linked", "unlinked"] {
        store.release_idempotency_key("shop", key).await.unwrap();
    }
    match store
        .claim_idempotency_key("shop", "linked", "hash", ms(2))
        .await
        .unwrap()
    {
        KeyClaim::Existing(record) => assert_eq!(record.transaction_id, Some(bought.id)),
        KeyClaim::Claimed => panic!("a linked key was released"),
    }
    assert_eq!(
        store
            .claim_idempotency_key("shop", "unlinked", "hash", ms(2))
            .await
            .unwrap(),
        KeyClaim::Claimed
    );
}

fn purchase_of(client: &str, product: &str, customer: &str, at: DateTime<Utc>) -> Transaction {
    let mut t = Transaction::begin(
        TransactionKind::Purchase,
        client,
        product,
        customer,
        "00000009",
        "ret-9",
        at,
    );
    t.status = TransactionStatus::Succeeded;
    t
}

async fn the_duplicate_guard_finds_recent_live_purchases_of_other_keys(db: &TestDb) {
    let store = db.open().await.shared();
    let since = ms(0);
    store
        .claim_idempotency_key("shop", "first", "hash", ms(0))
        .await
        .unwrap();
    let earlier = purchase_of("shop", "3100", "08132259999", ms(10));
    store
        .insert_transaction_for_key(&earlier, "shop", "first")
        .await
        .unwrap();
    let found = |key: &'static str,
                 client: &'static str,
                 product: &'static str,
                 customer: &'static str,
                 since: DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .recent_purchase(client, key, product, customer, since)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        found("second", "shop", "3100", "08132259999", since).await,
        Some(earlier.id)
    );
    assert_eq!(
        found("first", "shop", "3100", "08132259999", since).await,
        None,
        "its own key"
    );
    assert_eq!(
        found("second", "kiosk", "3100", "08132259999", since).await,
        None
    );
    assert_eq!(
        found("second", "shop", "3200", "08132259999", since).await,
        None
    );
    assert_eq!(
        found("second", "shop", "3100", "08132250000", since).await,
        None
    );
    assert_eq!(
        found("second", "shop", "3100", "08132259999", ms(11)).await,
        None,
        "too old"
    );
    // Pending, still sending and in review count; failed does not.
    for (status, counts) in [
        (TransactionStatus::Pending, true),
        (TransactionStatus::Sending, true),
        (TransactionStatus::Review, true),
        (TransactionStatus::Failed, false),
    ] {
        let mut other = purchase_of("shop", "3100", "08132251111", ms(20));
        other.status = status;
        store.insert_transaction(&other).await.unwrap();
        let seen = found("x", "shop", "3100", "08132251111", since).await;
        assert_eq!(seen == Some(other.id), counts, "{status:?}");
        let mut gone = other.clone();
        gone.status = TransactionStatus::Failed;
        if status != TransactionStatus::Failed {
            store.update_transaction(&gone, status).await.unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The deposit's balance chain

/// Two hundred purchases applied every 5 ms from half a second before midnight (Jakarta), each
/// sent up to 90 ms before it was applied: around midnight the upstream applies some sent after
/// midnight before others sent before it. Each day, read with its margin and cut by position on
/// the chain, has no break; a cut by the clock would have.
async fn a_midnight_burst_read_with_the_margin_and_cut_on_the_chain_has_no_false_break(
    db: &TestDb,
) {
    use mpospay_gateway::payments::reconciliation::{
        business_day, reconcile, BalanceReading, DAY_MARGIN,
    };
    let store = db.open().await;
    // 2025-03-02 00:00 in Jakarta.
    let midnight = Utc.with_ymd_and_hms(2025, 3, 1, 17, 0, 0).unwrap();
    let (day_before, day_after) = (midnight - Duration::days(1), midnight + Duration::days(1));
    let at = |millis: i64| midnight + Duration::milliseconds(millis);
    let mut balance = 50_000_000;
    let opening = balance;
    let mut ids = HashSet::new();
    for n in 0..200i64 {
        let applied = -500 + n * 5;
        let total = 10_000 + n;
        balance -= total;
        let sent = applied - (n * 37) % 90;
        let mut t = Transaction::begin(
            TransactionKind::Purchase,
            "shop",
            "3100",
            "08132259999",
            &format!("{:08}", n + 1),
            "ret",
            at(sent),
        );
        t.status = TransactionStatus::Succeeded;
        t.amount = Some(total - 1_000);
        t.admin_fee = Some(1_000);
        t.balance_after = Some(balance);
        t.completed_at = Some(at(applied + (n * 53) % 90));
        t.updated_at = t.completed_at.unwrap();
        ids.insert(t.id);
        store.insert_transaction(&t).await.unwrap();
    }
    // One still pending from before midnight, one in review after it, one long before.
    for (status, sent) in [
        (TransactionStatus::Pending, at(-60_000)),
        (TransactionStatus::Review, at(60_000)),
        (TransactionStatus::Succeeded, at(-3 * 86_400_000)),
    ] {
        let mut t = with_status(
            Transaction::begin(
                TransactionKind::Purchase,
                "shop",
                "3100",
                "08132259999",
                "99999999",
                "ret",
                sent,
            ),
            status,
        );
        t.amount = Some(5_000);
        t.admin_fee = Some(0);
        t.balance_after = (status == TransactionStatus::Succeeded).then_some(1);
        store.insert_transaction(&t).await.unwrap();
    }
    store
        .record_balance_reading(&BalanceReading {
            at: at(5_000),
            balance,
        })
        .await
        .unwrap();

    let first_window = store
        .reconciliation_window(day_before, midnight, DAY_MARGIN)
        .await
        .unwrap();
    let second_window = store
        .reconciliation_window(midnight, day_after, DAY_MARGIN)
        .await
        .unwrap();
    let first = business_day(&first_window, day_before, midnight, DAY_MARGIN);
    let second = business_day(&second_window, midnight, day_after, DAY_MARGIN);
    let date = midnight.date_naive();
    let (a, b) = (
        reconcile(date, "Asia/Jakarta", &first),
        reconcile(date, "Asia/Jakarta", &second),
    );
    assert_eq!(
        a.succeeded_count + b.succeeded_count,
        200,
        "each in one day"
    );
    let mut seen: HashSet<Uuid> = first.transactions.iter().map(|t| t.id).collect();
    seen.extend(second.transactions.iter().map(|t| t.id));
    assert_eq!(seen, ids, "exactly the burst, nothing from days before");
    assert!(a.unexplained.is_empty(), "{:?}", a.unexplained);
    assert!(b.unexplained.is_empty(), "{:?}", b.unexplained);
    assert_eq!(a.opening_balance, opening);
    assert_eq!(a.closing_balance, b.opening_balance, "the days meet");
    assert_eq!(b.closing_balance, balance);
    assert_eq!((a.pending_count, a.review_count), (1, 0));
    assert_eq!((b.pending_count, b.review_count), (0, 1));
    assert_eq!(
        b.points.last().map(|p| (p.transaction_id, p.balance)),
        Some((None, balance)),
        "the reading ends the chain"
    );

    // Read and cut by the clock instead, the burst breaks on both days.
    let by_clock = store
        .reconciliation_window(day_before, midnight, Duration::zero())
        .await
        .unwrap();
    assert!(!reconcile(date, "Asia/Jakarta", &by_clock)
        .unexplained
        .is_empty());
}
