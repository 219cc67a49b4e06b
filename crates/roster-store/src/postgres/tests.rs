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
    "console_once",
    "console_setup_links",
    "jobs",
    "meta",
    "role_catalogue",
    "tenants",
    "webhooks",
];

/// The tables of the store's schema, by name.
async fn table_names(store: &PostgresStore) -> Vec<String> {
    super::db::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap()
}

/// Every per-tenant table has `tenant_id` first in its primary key and in every unique index,
/// so that a distributed PostgreSQL (Citus, distribution column `tenant_id`) can shard Roster
/// without a schema change; a table added later without that fails here.
#[tokio::test]
async fn per_tenant_tables_lead_every_key_with_tenant_id() {
    let db = super::testdb::TestDb::new().await;
    let store = db.open().await;
    let tables = table_names(&store).await;
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

/// Whether a statement compares `tenant_id` with a parameter (`tenant_id = $1`, `= ?`), as
/// every statement but an `INSERT … VALUES` must to be routed to one shard.
fn binds_a_tenant(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.match_indices("tenant_id").any(|(i, w)| {
        let rest = lower[i + w.len()..].trim_start();
        rest.strip_prefix('=')
            .is_some_and(|r| r.trim_start().starts_with(['?', '$']))
    })
}

/// How often a statement reads, updates or deletes rows of one of `tables` (`FROM t`,
/// `JOIN t`, `UPDATE t`), how often it inserts into one (`INTO t`), and how often it names
/// `tenant_id`.
fn table_refs_and_tenant_mentions(sql: &str, tables: &[String]) -> (usize, usize, usize) {
    let lower = sql.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let refs = |verbs: &[&str]| {
        words
            .windows(2)
            .filter(|w| verbs.contains(&w[0]) && tables.iter().any(|t| t == w[1]))
            .count()
    };
    let tenant = words.iter().filter(|w| **w == "tenant_id").count();
    (refs(&["from", "join", "update"]), refs(&["into"]), tenant)
}

/// Every statement of the request path that reads, updates or deletes rows compares
/// `tenant_id` with a parameter, and every statement names it at least once per per-tenant
/// table it reads or writes (an insert as a column): a row addressed by its pk alone, or a
/// join on pks alone, would need every shard of a database distributed by `tenant_id`. Runs
/// a cross-section of the conformance suite — users with emails, groups and member changes,
/// deprovisioning and restore, filters and pages, role mappings and effective roles, the login
/// lookup, the event outbox — and checks each statement it sent.
#[tokio::test]
async fn request_path_statements_name_their_tenant() {
    let db = TestDb::new().await;
    let store = db.open().await;
    let tables = table_names(&store).await;
    let per_tenant: Vec<String> = tables
        .into_iter()
        .filter(|t| !GLOBAL_TABLES.contains(&t.as_str()))
        .collect();
    assert!(per_tenant.iter().any(|t| t == "members"), "{per_tenant:?}");

    // The test's runtime has one thread: every task the stores spawn sends from it.
    super::db::capture::start();
    {
        let b = PostgresBackend;
        use crate::conformance::{app, directory, listing, outbox};
        directory::crud_round_trip_survives_reopening(&b).await;
        directory::email_rows_follow_replaces(&b).await;
        directory::deprovision_then_restore(&b).await;
        directory::membership_operations(&b).await;
        directory::a_leaving_user_leaves_its_groups_first(&b).await;
        listing::filters_select_the_expected_rows(&b).await;
        listing::index_pagination(&b).await;
        listing::cursor_pagination_is_stable_under_writes(&b).await;
        outbox::member_events_list_the_rows_that_really_changed_in_parts(&b).await;
        outbox::app_group_member_events_are_the_net_change(&b).await;
        app::login_lookup_prefers_live_managed_active_records(&b).await;
        app::effective_roles_follow_mappings_and_status(&b).await;
        app::search_matches_user_name_or_email_prefixes(&b).await;
        app::member_counts_follow_every_membership_change(&b).await;
        app::a_delete_carries_its_admission(&b).await;
    }
    let seen = super::db::capture::take();
    assert!(seen.len() > 200, "only {} statements captured", seen.len());
    let mut checked = 0;
    let mut unscoped = Vec::new();
    for sql in &seen {
        let (reads, inserts, tenant) = table_refs_and_tenant_mentions(sql, &per_tenant);
        if reads + inserts == 0 {
            continue;
        }
        checked += 1;
        // An insert names its tenant as a column value; a read, update or delete must compare
        // it with a parameter.
        if tenant < reads + inserts || (reads > 0 && !binds_a_tenant(sql)) {
            unscoped.push(sql.clone());
        }
    }
    unscoped.sort();
    unscoped.dedup();
    assert!(
        checked > 100,
        "only {checked} statements on per-tenant tables"
    );
    assert!(
        unscoped.is_empty(),
        "statements that do not name their tenant for each per-tenant table:\n{}",
        unscoped.join("\n")
    );
}

#[test]
fn table_refs_count_every_table_a_statement_reads_or_writes() {
    let t = ["members".to_owned(), "resources".to_owned()];
    assert_eq!(
        table_refs_and_tenant_mentions("DELETE FROM members WHERE group_pk = $1", &t),
        (1, 0, 0)
    );
    assert_eq!(
        table_refs_and_tenant_mentions(
            "INSERT INTO members (group_pk, member_pk, tenant_id) VALUES ($1, $2, $3)",
            &t
        ),
        (0, 1, 1)
    );
    assert_eq!(
        table_refs_and_tenant_mentions(
            "SELECT g.id FROM members m JOIN resources g ON g.tenant_id = m.tenant_id \
             AND g.pk = m.group_pk WHERE m.tenant_id = $1",
            &t
        ),
        (2, 0, 3)
    );
    assert_eq!(
        table_refs_and_tenant_mentions("SELECT 1 FROM tenants WHERE id = $1", &t),
        (0, 0, 0)
    );
    assert!(binds_a_tenant(
        "DELETE FROM members WHERE tenant_id = $1 AND group_pk = $2"
    ));
    assert!(binds_a_tenant(
        "SELECT 1 FROM members m WHERE m.tenant_id=?"
    ));
    assert!(!binds_a_tenant(
        "SELECT g.id FROM members m JOIN resources g ON g.tenant_id = m.tenant_id \
         AND g.pk = m.group_pk WHERE m.member_pk = $1"
    ));
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
