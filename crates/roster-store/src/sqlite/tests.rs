//! Tests of the SQLite store: the store conformance suite run on SQLite (in memory, and on a
//! temporary file where several stores share a database), and the checks of how SQLite does
//! things — the SQL translation of filters against the in-memory evaluator, query plans,
//! pragmas, bulk loads through the writer connection.

use crate::sqlite::db;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use scim_proto::filter::{CompareOp, Filter};
use scim_proto::schema::ResourceKind;
use serde_json::json;

use super::query::Translator;
use super::rows::SqliteDialect;
use super::SqliteStore;
use crate::conformance::support::{
    all, and, at, cmp, filtered, fixture, group_filters, new, not, sorted, tenant, user_filters,
    valid,
};
use crate::conformance::{Backend, SharedDb};
use crate::*;

async fn mem() -> SqliteStore {
    SqliteStore::open("sqlite::memory:").await.unwrap()
}

/// A fresh database file under the temp dir (removed when dropped, when possible).
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "roster-store-test-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        Self(p)
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

#[async_trait]
impl SharedDb for TempDb {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.url()).await.unwrap())
    }
}

/// SQLite for the conformance suite: an in-memory database per store, a temporary file where
/// several stores share one (as the server and the CLI share the file).
struct SqliteBackend;

#[async_trait]
impl Backend for SqliteBackend {
    async fn fresh(&self) -> Arc<dyn Store> {
        Arc::new(mem().await)
    }

    async fn shared(&self) -> Box<dyn SharedDb> {
        Box::new(TempDb::new())
    }
}

mod conformance {
    use super::SqliteBackend;

    crate::conformance_tests!(SqliteBackend);
}

#[tokio::test]
async fn large_group_gains_one_member() {
    let s = mem().await;
    tenant(&s, "t").await;
    let n = 20_000;
    {
        // Bulk-load the users in one transaction; going through create_resource 20,000 times
        // only measures the test machine.
        let mut tx = s.write().await.unwrap();
        for i in 0..=n {
            db::query(
                "INSERT INTO resources (tenant_id, kind, id, version, doc, user_name_lc, created, last_modified) \
                 VALUES ('t', 'User', ?, 1, '{}', ?, 0, 0)",
            )
            .bind(format!("u{i:05}"))
            .bind(format!("user{i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let members: Vec<String> = (0..n).map(|i| format!("u{i:05}")).collect();
    let mut g = new("g", json!({"displayName": "All"}));
    g.members = members;
    s.create_resource("t", ResourceKind::Group, g, at(0))
        .await
        .unwrap();
    let upd = ResourceUpdate {
        doc: json!({"displayName": "All"}),
        password_hash: None,
        members: vec![MemberOp::Add(vec![format!("u{n:05}")])],
        events: vec![],
        guard: None,
    };
    s.update_resource("t", ResourceKind::Group, "g", 1, upd, at(1))
        .await
        .unwrap();
    let count: i64 = db::query_scalar("SELECT COUNT(*) FROM members")
        .fetch_one(&s.reader)
        .await
        .unwrap();
    assert_eq!(count, i64::from(n) + 1);
    let last = s.list_members("t", "g", Some("u19999"), 10).await.unwrap();
    assert_eq!(
        last,
        [Member {
            id: format!("u{n:05}")
        }]
    );
    let hit = filtered(
        &s,
        "t",
        ResourceKind::Group,
        cmp("members.value", CompareOp::Eq, "u20000"),
    )
    .await;
    assert_eq!(hit, ["g"]);
}

#[tokio::test]
async fn sql_and_in_memory_filters_agree() {
    let s = mem().await;
    fixture(&s).await;
    let cases = user_filters()
        .into_iter()
        .map(|f| (ResourceKind::User, f))
        .chain(
            group_filters()
                .into_iter()
                .map(|f| (ResourceKind::Group, f)),
        );
    let (mut exact, mut nonempty, mut n) = (0, 0, 0);
    for (kind, f) in cases {
        let vf = valid(f.clone(), kind);
        let mut q = all(Some(vf.clone()));
        let sql = s.list_impl("t", kind, &q, false).await.unwrap();
        let memory = s.list_impl("t", kind, &q, true).await.unwrap();
        let a: Vec<_> = sql.items.iter().map(|r| &r.id).collect();
        let b: Vec<_> = memory.items.iter().map(|r| &r.id).collect();
        assert_eq!(a, b, "filter {f:?}");
        assert_eq!(sql.total, memory.total, "filter {f:?}");
        // Sorted and paged the same way too.
        q.sort = sorted("displayName", true);
        q.page = PageRequest::Index {
            start_index: 3,
            count: 7,
        };
        let sql = s.list_impl("t", kind, &q, false).await.unwrap();
        let memory = s.list_impl("t", kind, &q, true).await.unwrap();
        // The same page; only what was examined in memory differs.
        assert_eq!(
            (&sql.items, sql.total, &sql.next_cursor),
            (&memory.items, memory.total, &memory.next_cursor),
            "sorted {f:?}"
        );
        assert!(memory.examined >= memory.total, "{f:?}");
        exact += usize::from(
            Translator {
                tenant: "t",
                kind,
                dialect: &SqliteDialect,
                custom: &[],
            }
            .translate(vf.filter())
            .exact,
        );
        nonempty += usize::from(!a.is_empty() && a.len() < 160);
        n += 1;
    }
    assert!(exact >= 40, "{exact} of {n} filters ran as exact SQL");
    assert!(
        nonempty >= 40,
        "only {nonempty} of {n} filters were selective"
    );
}

#[tokio::test]
async fn indexed_filters_use_indexes() {
    let s = mem().await;
    fixture(&s).await;
    let mut tx = s.write().await.unwrap();
    db::query("ANALYZE").execute(&mut *tx).await.unwrap();
    s.commit(tx).await.unwrap();
    let cases = [
        (
            ResourceKind::User,
            cmp("userName", CompareOp::Eq, "auser003"),
        ),
        (
            ResourceKind::User,
            cmp("externalId", CompareOp::Eq, "Ext-4"),
        ),
        (
            ResourceKind::User,
            cmp("emails.value", CompareOp::Eq, "u5.1@example.com"),
        ),
        (ResourceKind::User, cmp("id", CompareOp::Eq, "u007")),
        (
            ResourceKind::User,
            cmp("groups.value", CompareOp::Eq, "g03"),
        ),
        (
            ResourceKind::Group,
            cmp("members.value", CompareOp::Eq, "u013"),
        ),
        (
            ResourceKind::Group,
            cmp("displayName", CompareOp::Eq, "group 3"),
        ),
    ];
    for (kind, f) in cases {
        let frag = Translator {
            tenant: "t",
            kind,
            dialect: &SqliteDialect,
            custom: &[],
        }
        .translate(&f);
        assert!(frag.exact);
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT r.pk FROM resources r WHERE r.tenant_id = ? AND r.kind = '{}' \
             AND r.deleted = 0 AND {} ORDER BY r.pk LIMIT 100",
            kind.as_str(),
            frag.sql
        );
        let mut args = vec![super::query::Arg::Text("t".into())];
        args.extend(frag.args);
        let rows: Vec<(i64, i64, i64, String)> =
            db::query_as_with(&sql, super::args_of(&args).unwrap())
                .fetch_all(&s.reader)
                .await
                .unwrap();
        let plan: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
        assert!(
            !plan.iter().any(|d| d.starts_with("SCAN")),
            "{f:?} scans: {plan:?}"
        );
    }
}

#[tokio::test]
async fn translator_marks_exact_and_partial_translations() {
    let tr = |f: Filter| {
        Translator {
            tenant: "t",
            kind: ResourceKind::User,
            dialect: &SqliteDialect,
            custom: &[],
        }
        .translate(&f)
    };
    assert!(tr(cmp("userName", CompareOp::Eq, "x")).exact);
    assert!(!tr(cmp("title", CompareOp::Eq, "x")).exact);
    let partial = tr(and(
        cmp("title", CompareOp::Eq, "x"),
        cmp("userName", CompareOp::Eq, "y"),
    ));
    assert!(
        !partial.exact && partial.sql.contains("user_name_lc"),
        "the translatable conjunct stays"
    );
    assert_eq!(tr(not(cmp("title", CompareOp::Eq, "x"))).sql, "TRUE");
}

/// The checkpointer copies committed frames into the database file by itself, long before the
/// writer's own automatic checkpoint would (16,384 pages): the file grows while nothing but
/// a few hundred pages were written.
#[tokio::test]
async fn the_checkpointer_copies_the_wal_into_the_database() {
    let db = TempDb::new();
    let s = SqliteStore::open(&db.url()).await.unwrap();
    tenant(&s, "t").await;
    let before = std::fs::metadata(&db.0).unwrap().len();
    for i in 0..300 {
        s.create_resource(
            "t",
            ResourceKind::User,
            new(
                &format!("u{i}"),
                json!({"userName": format!("user{i}@example.com")}),
            ),
            at(1),
        )
        .await
        .unwrap();
    }
    let mut grown = 0;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        grown = std::fs::metadata(&db.0).unwrap().len();
        if grown > before {
            break;
        }
    }
    assert!(
        grown > before,
        "the database file stayed at {before} bytes: nothing was checkpointed"
    );
}

#[tokio::test]
async fn file_databases_are_in_wal_mode() {
    let db = TempDb::new();
    let s = SqliteStore::open(&db.url()).await.unwrap();
    let mode: String = db::query_scalar("PRAGMA journal_mode")
        .fetch_one(&s.reader)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let mut tx = s.write().await.unwrap();
    let sync: i64 = db::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(sync, 2, "FULL: an acknowledged write is durable");
}
