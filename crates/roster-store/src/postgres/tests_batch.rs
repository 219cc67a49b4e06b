//! Group commit on PostgreSQL (`batch.rs`): concurrent writers of one tenant share commits,
//! a failing or cancelled writer loses only its own work, seqs stay gap-free, and a broken
//! connection fails every writer of its batch.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use scim_proto::schema::ResourceKind;
use serde_json::json;
use time::OffsetDateTime;

use super::testdb::TestDb;
use super::{db, PostgresStore};
use crate::events::EventStore;
use crate::{NewResource, Store, StoreError, Tenant, TenantSettings};

async fn store_with_tenant(db: &TestDb) -> Arc<PostgresStore> {
    let store = db.open().await;
    store
        .create_tenant(&Tenant {
            id: "acme".into(),
            name: "Acme".into(),
            idp: "generic".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            settings: TenantSettings::default(),
        })
        .await
        .unwrap();
    store
}

fn user(name: &str) -> NewResource {
    NewResource {
        id: uuid::Uuid::new_v4().to_string(),
        doc: json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "emails": [{"value": format!("{name}@example.com"), "primary": true}],
        }),
        password_hash: None,
        members: vec![],
        events: vec![],
    }
}

async fn create(store: &PostgresStore, name: &str) -> Result<(), StoreError> {
    store
        .create_resource(
            "acme",
            ResourceKind::User,
            user(name),
            OffsetDateTime::UNIX_EPOCH,
        )
        .await
        .map(|_| ())
}

/// The tenant's events are numbered 1..=n with no gap, and there are as many `user.created`
/// events as live users (nothing announced that was not stored, and the reverse).
async fn assert_gap_free(store: &PostgresStore) -> usize {
    let events = store.list_events("acme", 0, &[], 100_000).await.unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.seq,
            i64::try_from(i + 1).unwrap(),
            "seqs must be gap-free"
        );
    }
    assert_eq!(
        store.last_seq("acme").await.unwrap(),
        i64::try_from(events.len()).unwrap()
    );
    let users: i64 = db::query_scalar(
        "SELECT COUNT(*) FROM resources WHERE tenant_id = 'acme' AND kind = 'User'",
    )
    .fetch_one(&store.pool)
    .await
    .unwrap();
    let created = events
        .iter()
        .filter(|e| e.event_type == "user.created")
        .count();
    assert_eq!(created, usize::try_from(users).unwrap());
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_tenant_share_commits() {
    let db = TestDb::new().await;
    let store = store_with_tenant(&db).await;
    let stats = store.pool.stats().clone();
    let before = stats.batches.load(Ordering::Relaxed);
    let writers = 64;
    let mut tasks = Vec::new();
    for i in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            create(&store, &format!("u{i:03}")).await.unwrap();
            // Acknowledged means committed: another connection sees it at once.
            let seen: i64 = db::query_scalar(
                "SELECT COUNT(*) FROM resources WHERE tenant_id = 'acme' AND user_name_lc = ?",
            )
            .bind(format!("u{i:03}"))
            .fetch_one(&store.pool)
            .await
            .unwrap();
            assert_eq!(seen, 1);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let batches = stats.batches.load(Ordering::Relaxed) - before;
    assert!(batches >= 1);
    assert!(
        batches < writers,
        "{writers} concurrent writers should share commits, got {batches} commits"
    );
    assert_eq!(assert_gap_free(&store).await, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_writer_loses_only_its_own_work_and_its_seqs() {
    let db = TestDb::new().await;
    let store = store_with_tenant(&db).await;
    let mut tasks = Vec::new();
    // Every userName is created by two writers at once: exactly one of each pair wins, and
    // the loser's conflict must undo nobody else's work in the same batch, nor leave a hole
    // in the seqs.
    for i in 0..40 {
        for _ in 0..2 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                create(&store, &format!("dup{i:03}")).await
            }));
        }
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict("userName")) => conflicts += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((ok, conflicts), (40, 40));
    assert_eq!(assert_gap_free(&store).await, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_writers_never_stall_the_others_and_leave_no_gap() {
    let db = TestDb::new().await;
    let store = store_with_tenant(&db).await;
    let mut handles = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            create(&store, &format!("c{i:03}")).await
        }));
    }
    // Cancel every third writer wherever it is: waiting for the batch, mid-statement, or
    // waiting for its batch's commit.
    tokio::task::yield_now().await;
    for (i, h) in handles.iter().enumerate() {
        if i % 3 == 0 {
            h.abort();
        }
    }
    let mut completed = 0;
    for h in handles {
        if let Ok(r) = h.await {
            r.unwrap();
            completed += 1;
        }
    }
    // A generous bound: this checks for a hang, not for speed.
    tokio::time::timeout(Duration::from_secs(30), create(&store, "after"))
        .await
        .expect("a writer after cancellations must not hang")
        .unwrap();
    // Cancelled writers may or may not be stored; every stored one is announced once.
    let stored = assert_gap_free(&store).await;
    assert!(stored > completed, "{stored} stored, {completed} completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_fails_every_writer_of_its_batch() {
    let db = TestDb::new().await;
    let store = db.open().await;
    db::query("CREATE TABLE t (name TEXT PRIMARY KEY)")
        .execute(&store.pool)
        .await
        .unwrap();
    // Writer a is in the batch and has finished; writer b, of the same batch, finds its
    // connection gone mid-write. (Batches that may grow old: the sleep below must not make
    // a's commit close the batch.)
    let batches =
        super::batch::Batches::new(store.pool.clone()).with_max_age(Duration::from_secs(60));
    let mut a = batches.begin("acme").await.unwrap();
    let b = {
        let batches = batches.clone();
        tokio::spawn(async move { batches.begin("acme").await })
    };
    // b is pending (waiting for the batch): a's commit leaves the batch open for it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    db::query("INSERT INTO t (name) VALUES ('a')")
        .execute(&mut *a)
        .await
        .unwrap();
    let a = tokio::spawn(a.commit());
    let mut b = b.await.unwrap().unwrap();
    let pid: i64 = db::query_scalar::<i64>("SELECT pg_backend_pid()")
        .fetch_one(&mut *b)
        .await
        .unwrap();
    db::query("SELECT pg_terminate_backend(?)")
        .bind(pid)
        .execute(&store.pool)
        .await
        .unwrap();
    let failed = db::query("INSERT INTO t (name) VALUES ('b')")
        .execute(&mut *b)
        .await
        .unwrap_err();
    assert!(db::is_unavailable(&failed), "{failed}");
    drop(b);
    let a = tokio::time::timeout(Duration::from_secs(10), a)
        .await
        .expect("a learns its batch's outcome")
        .unwrap()
        .unwrap_err();
    assert!(db::is_unavailable(&a), "a's batch broke: {a}");
    assert!(matches!(super::backend(a), StoreError::Unavailable(_)));
    // The next write opens a new batch on a new connection; a's row was never committed.
    let mut c = batches.begin("acme").await.unwrap();
    db::query("INSERT INTO t (name) VALUES ('c')")
        .execute(&mut *c)
        .await
        .unwrap();
    c.commit().await.unwrap();
    let names: Vec<String> = db::query_scalar("SELECT name FROM t ORDER BY name")
        .fetch_all(&store.pool)
        .await
        .unwrap();
    assert_eq!(names, vec!["c".to_owned()]);
}

/// A write whose statement failed cannot be committed by mistake: the failure would have
/// aborted the whole batch's transaction (PostgreSQL refuses everything after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_with_a_failed_statement_is_rolled_back_not_committed() {
    let db = TestDb::new().await;
    let store = db.open().await;
    db::query("CREATE TABLE t (name TEXT PRIMARY KEY)")
        .execute(&store.pool)
        .await
        .unwrap();
    let mut a = store.batches.begin("acme").await.unwrap();
    db::query("INSERT INTO t (name) VALUES ('a')")
        .execute(&mut *a)
        .await
        .unwrap();
    db::query("INSERT INTO t (name) VALUES ('a')")
        .execute(&mut *a)
        .await
        .unwrap_err();
    a.commit().await.unwrap_err();
    let mut b = store.batches.begin("acme").await.unwrap();
    db::query("INSERT INTO t (name) VALUES ('b')")
        .execute(&mut *b)
        .await
        .unwrap();
    b.commit().await.unwrap();
    let names: Vec<String> = db::query_scalar("SELECT name FROM t ORDER BY name")
        .fetch_all(&store.pool)
        .await
        .unwrap();
    assert_eq!(names, vec!["b".to_owned()]);
}
