//! Tests of the PostgreSQL store: the store conformance suite, each test on a database of its
//! own (see [`testdb`](super::testdb)).

use std::sync::Arc;

use async_trait::async_trait;

use super::testdb::TestDb;
use super::PostgresStore;
use crate::conformance::{Backend, SharedDb};
use crate::Store;

#[async_trait]
impl SharedDb for TestDb {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::open(&self.url).await.unwrap())
    }
}

/// PostgreSQL for the conformance suite: a new database per store, and one that several
/// stores share (as the server and the CLI, or several nodes, share one).
struct PostgresBackend;

#[async_trait]
impl Backend for PostgresBackend {
    async fn fresh(&self) -> Arc<dyn Store> {
        let db = Arc::new(TestDb::new().await);
        let mut store = PostgresStore::open(&db.url).await.unwrap();
        store._testdb = Some(db);
        Arc::new(store)
    }

    async fn shared(&self) -> Box<dyn SharedDb> {
        Box::new(TestDb::new().await)
    }
}

mod conformance {
    use super::PostgresBackend;

    crate::conformance_tests!(PostgresBackend);
}

/// The tables that hold no single tenant's data (docs/deployment.md): everything else must be
/// ready to be distributed by `tenant_id`.
const GLOBAL_TABLES: &[&str] = &[
    "_roster_migrations",
    "admin_keys",
    "audit_log",
    "auth_epoch",
    "console_operators",
    "console_sessions",
    "console_setup_links",
    "jobs",
    "meta",
    "tenants",
    "webhooks",
];

/// Every per-tenant table has `tenant_id` first in its primary key and in every unique index,
/// so that a distributed PostgreSQL (Citus, distribution column `tenant_id`) can shard Roster
/// without a schema change; a table added later without that fails here.
#[tokio::test]
async fn per_tenant_tables_lead_every_key_with_tenant_id() {
    let db = super::testdb::TestDb::new().await;
    let store = db.open().await;
    let tables: Vec<String> = super::db::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert!(tables.len() > 20, "{tables:?}");
    for g in GLOBAL_TABLES {
        assert!(tables.iter().any(|t| t == g), "global table {g} is gone");
    }
    // Each unique index (primary keys included) with its first column.
    let keys: Vec<(String, String, String)> = super::db::query_as(
        "SELECT t.relname::text, i.relname::text, a.attname::text \
         FROM pg_index x \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] \
         WHERE n.nspname = current_schema() AND x.indisunique ORDER BY 1, 2",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    let mut checked = 0;
    for table in tables
        .iter()
        .filter(|t| !GLOBAL_TABLES.contains(&t.as_str()))
    {
        let mine: Vec<_> = keys.iter().filter(|(t, _, _)| t == table).collect();
        assert!(!mine.is_empty(), "{table} has no primary key");
        for (_, index, first) in mine {
            assert_eq!(
                first, "tenant_id",
                "{table}: key {index} must start with tenant_id"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} keys checked");
}

/// Another process's commits wake this one at once (LISTEN/NOTIFY): appended events move
/// `subscribe()` (long-polling feed readers, webhook workers), a token or tenant change moves
/// `auth_changes()` (the authentication cache).
#[tokio::test]
async fn another_nodes_commits_are_heard_within_a_second() {
    use crate::events::{EventStore, EventType, NewEvent};
    let db = super::testdb::TestDb::new().await;
    let a = db.open().await;
    let b = db.open().await;
    // Give b's listener its connection.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut events = b.subscribe();
    events.borrow_and_update();
    let auth_before = b.auth_changes();
    let tenant = crate::Tenant {
        id: "acme".into(),
        name: "Acme".into(),
        idp: "generic".into(),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        settings: crate::TenantSettings::default(),
    };
    a.create_tenant(&tenant).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    while b.auth_changes() == auth_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b did not hear a's tenant within 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    a.append_events(
        "acme",
        vec![NewEvent {
            event_type: EventType::UserCreated,
            data: serde_json::json!({"id": "u1"}),
        }],
        time::OffsetDateTime::UNIX_EPOCH,
    )
    .await
    .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(1), events.changed())
        .await
        .expect("b hears a's events within 1 s")
        .unwrap();
}
