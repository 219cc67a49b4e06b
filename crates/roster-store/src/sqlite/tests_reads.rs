//! Tests of the read path: reads with their relations, streamed groups and snapshots, and the
//! number of statements a page costs.

use crate::sqlite::db;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures::TryStreamExt;
use scim_proto::schema::{ResourceKind, GROUP_SCHEMA, USER_SCHEMA};
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;
use tracing::Instrument;

use super::SqliteStore;
use crate::*;

const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

async fn mem() -> SqliteStore {
    SqliteStore::open("sqlite::memory:").await.unwrap()
}

/// A fresh database file, so that a held read transaction and a write use two connections.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        Self(std::env::temp_dir().join(format!(
            "roster-reads-test-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }

    async fn open(&self) -> SqliteStore {
        SqliteStore::open(&format!("sqlite://{}", self.0.display()))
            .await
            .unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

async fn tenant(s: &SqliteStore, id: &str) {
    s.create_tenant(&Tenant {
        id: id.into(),
        name: format!("Tenant {id}"),
        idp: "generic".into(),
        created_at: T0,
        settings: TenantSettings::default(),
    })
    .await
    .unwrap();
}

fn new(id: &str, doc: Value, members: &[String]) -> NewResource {
    NewResource {
        id: id.into(),
        doc,
        password_hash: None,
        members: members.to_vec(),
        events: vec![],
    }
}

async fn add_user(s: &SqliteStore, t: &str, id: &str) {
    let doc = json!({"schemas": [USER_SCHEMA], "userName": format!("{id}@x"), "active": true});
    s.create_resource(t, ResourceKind::User, new(id, doc, &[]), T0)
        .await
        .unwrap();
}

async fn add_group(s: &SqliteStore, t: &str, id: &str, name: &str, members: &[String]) {
    let doc = json!({"schemas": [GROUP_SCHEMA], "displayName": name});
    s.create_resource(t, ResourceKind::Group, new(id, doc, members), T0)
        .await
        .unwrap();
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

fn page(count: u64) -> ListQuery {
    ListQuery {
        max_candidates: None,
        filter: None,
        sort: None,
        page: PageRequest::Index {
            start_index: 1,
            count,
        },
    }
}

const BOTH: Relations = Relations {
    groups: true,
    members: true,
};

#[tokio::test]
async fn read_resource_returns_the_relations_asked_for() {
    let s = mem().await;
    tenant(&s, "t").await;
    tenant(&s, "other").await;
    let users = ids("u", 3);
    for u in &users {
        add_user(&s, "t", u).await;
    }
    add_user(&s, "other", "u0000").await;
    add_group(&s, "t", "gb", "Beta", &users[..2]).await;
    add_group(&s, "t", "ga", "Alpha", &users[..1]).await;
    add_group(&s, "other", "gx", "Other", &["u0000".to_owned()]).await;

    let u = s
        .read_resource("t", ResourceKind::User, "u0000", BOTH)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.resource.id, "u0000");
    assert_eq!(u.members, None);
    let groups = u.groups.unwrap();
    assert_eq!(
        groups,
        [
            GroupRef {
                id: "ga".into(),
                display_name: "Alpha".into()
            },
            GroupRef {
                id: "gb".into(),
                display_name: "Beta".into()
            }
        ]
    );
    assert_eq!(groups, s.groups_of_user("t", "u0000").await.unwrap());
    // In no group: an empty list, not `None`.
    let lone = s
        .read_resource("t", ResourceKind::User, "u0002", BOTH)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lone.groups, Some(vec![]));
    // Not asked for: not read.
    let bare = s
        .read_resource("t", ResourceKind::User, "u0000", Relations::NONE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((bare.groups, bare.members), (None, None));
    assert_eq!(bare.resource, u.resource);

    let g = s
        .read_resource("t", ResourceKind::Group, "gb", BOTH)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.groups, None);
    assert_eq!(g.members.unwrap(), ["u0000", "u0001"]);

    // Tenant scoping and kinds.
    for (t, kind, id) in [
        ("other", ResourceKind::Group, "gb"),
        ("t", ResourceKind::Group, "gx"),
        ("t", ResourceKind::User, "gb"),
        ("t", ResourceKind::User, "nope"),
    ] {
        assert_eq!(s.read_resource(t, kind, id, BOTH).await.unwrap(), None);
    }
    // A deprovisioned user is gone.
    s.delete_resource(
        "t",
        ResourceKind::User,
        "u0001",
        crate::Deletion::default(),
        T0,
    )
    .await
    .unwrap();
    assert_eq!(
        s.read_resource("t", ResourceKind::User, "u0001", BOTH)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn read_page_relations_equal_the_per_resource_reads() {
    let s = mem().await;
    tenant(&s, "t").await;
    tenant(&s, "other").await;
    let users = ids("u", 12);
    for u in &users {
        add_user(&s, "t", u).await;
    }
    add_user(&s, "other", "u0000").await;
    for g in 0..5 {
        let members: Vec<String> = users.iter().skip(g).step_by(g + 1).cloned().collect();
        add_group(&s, "t", &format!("g{g}"), &format!("G {g}"), &members).await;
    }
    add_group(&s, "t", "empty", "Empty", &[]).await;
    add_group(&s, "other", "g0", "Other", &["u0000".to_owned()]).await;

    let p = s
        .read_page("t", ResourceKind::User, &page(100), BOTH)
        .await
        .unwrap();
    assert_eq!(p.total, 12);
    assert_eq!(p.items.len(), 12);
    let plain = s
        .list_resources("t", ResourceKind::User, &page(100))
        .await
        .unwrap();
    for (read, res) in p.items.iter().zip(&plain.items) {
        assert_eq!(&read.resource, res);
        assert_eq!(read.members, None);
        let want = s.groups_of_user("t", &res.id).await.unwrap();
        assert_eq!(read.groups.as_ref(), Some(&want), "{}", res.id);
    }
    assert!(p.items.iter().any(|r| r.groups.as_ref().unwrap().len() > 1));

    let p = s
        .read_page("t", ResourceKind::Group, &page(100), BOTH)
        .await
        .unwrap();
    assert_eq!(p.items.len(), 6);
    for read in &p.items {
        assert_eq!(read.groups, None);
        let want: Vec<String> = s
            .list_members("t", &read.resource.id, None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(read.members.as_ref(), Some(&want), "{}", read.resource.id);
    }
    let empty = p.items.iter().find(|r| r.resource.id == "empty").unwrap();
    assert_eq!(empty.members, Some(vec![]));

    // Without relations, nothing extra; a count-only page has no items.
    let p = s
        .read_page("t", ResourceKind::User, &page(5), Relations::NONE)
        .await
        .unwrap();
    assert!(p.items.iter().all(|r| r.groups.is_none()));
    let p = s
        .read_page("t", ResourceKind::Group, &page(0), BOTH)
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (6, 0));
    // Cursor errors are those of `list_resources`.
    let bad = ListQuery {
        max_candidates: None,
        filter: None,
        sort: None,
        page: PageRequest::Cursor {
            cursor: Some("garbage".into()),
            count: 10,
        },
    };
    assert!(matches!(
        s.read_page("t", ResourceKind::User, &bad, BOTH).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn collect_members(gs: GroupStream) -> Vec<Vec<String>> {
    gs.members.try_collect().await.unwrap()
}

#[tokio::test]
async fn stream_group_pages_members_in_id_order() {
    let s = mem().await;
    tenant(&s, "t").await;
    tenant(&s, "other").await;
    let users = ids("u", 25);
    for u in users.iter().rev() {
        add_user(&s, "t", u).await;
    }
    add_group(&s, "t", "g", "G", &users).await;
    add_group(&s, "t", "ten", "Ten", &users[..10]).await;
    add_group(&s, "t", "empty", "Empty", &[]).await;

    let gs = s.stream_group("t", "g", 10).await.unwrap().unwrap();
    assert_eq!(gs.group.id, "g");
    assert_eq!(gs.group.doc["displayName"], "G");
    let pages = collect_members(gs).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    assert_eq!(pages.concat(), users);
    // A full last page is followed by nothing.
    let pages = collect_members(s.stream_group("t", "ten", 10).await.unwrap().unwrap()).await;
    assert_eq!(pages, [users[..10].to_vec()]);
    let pages = collect_members(s.stream_group("t", "empty", 10).await.unwrap().unwrap()).await;
    assert!(pages.is_empty());

    assert!(s.stream_group("other", "g", 10).await.unwrap().is_none());
    assert!(s.stream_group("t", "u0000", 10).await.unwrap().is_none());
    assert!(matches!(
        s.stream_group("t", "g", 0).await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_streamed_group_is_one_snapshot() {
    let db = TempDb::new();
    let s = db.open().await;
    tenant(&s, "t").await;
    let users = ids("u", 30);
    for u in &users {
        add_user(&s, "t", u).await;
    }
    add_group(&s, "t", "g", "G", &users[..20]).await;
    let mut gs = s.stream_group("t", "g", 5).await.unwrap().unwrap();
    let first = gs.members.try_next().await.unwrap().unwrap();
    // Changes committed while the stream is open are not seen by it.
    s.update_members(
        "t",
        "g",
        &[
            MemberOp::Add(users[20..].to_vec()),
            MemberOp::Remove(users[15..20].to_vec()),
        ],
        T0,
    )
    .await
    .unwrap();
    let rest: Vec<Vec<String>> = gs.members.try_collect().await.unwrap();
    let mut seen = first;
    seen.extend(rest.concat());
    assert_eq!(seen, users[..20]);
    // A new read sees them.
    let now = collect_members(s.stream_group("t", "g", 5).await.unwrap().unwrap()).await;
    let mut want = users[..15].to_vec();
    want.extend_from_slice(&users[20..]);
    assert_eq!(now.concat(), want);
}

#[tokio::test]
async fn snapshot_stream_gives_users_then_each_group_with_its_members() {
    let db = TempDb::new();
    let s = db.open().await;
    tenant(&s, "t").await;
    tenant(&s, "other").await;
    let users = ids("u", 7);
    for u in &users {
        add_user(&s, "t", u).await;
    }
    add_user(&s, "other", "x").await;
    add_group(&s, "t", "g1", "One", &users).await;
    add_group(&s, "t", "g2", "Two", &[]).await;
    add_group(&s, "t", "g3", "Three", &users[..3]).await;

    let snap = s.snapshot_stream("t", 3).await.unwrap();
    assert_eq!(snap.seq, s.last_seq("t").await.unwrap());
    let mut parts = snap.parts;
    let first = parts.try_next().await.unwrap().unwrap();
    // Committed after the snapshot started: not part of it.
    add_user(&s, "t", "late").await;
    add_group(&s, "t", "g4", "Four", &[]).await;
    let mut got = vec![first];
    got.extend(parts.try_collect::<Vec<_>>().await.unwrap());
    let shape: Vec<String> = got
        .iter()
        .map(|p| match p {
            SnapshotPart::Users(us) => {
                format!(
                    "U{}",
                    us.iter()
                        .map(|u| u.id.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
            SnapshotPart::Group(g) => format!("G{}", g.id),
            SnapshotPart::Members(ms) => format!("M{}", ms.join(",")),
        })
        .collect();
    assert_eq!(
        shape,
        [
            "Uu0000,u0001,u0002",
            "Uu0003,u0004,u0005",
            "Uu0006",
            "Gg1",
            "Mu0000,u0001,u0002",
            "Mu0003,u0004,u0005",
            "Mu0006",
            "Gg2",
            "Gg3",
            "Mu0000,u0001,u0002",
        ]
    );
    assert!(matches!(
        s.snapshot_stream("t", 0).await,
        Err(StoreError::Invalid(_))
    ));
    // The collected form agrees (and now sees the later writes).
    let whole = s.snapshot("t").await.unwrap();
    assert_eq!(whole.users.len(), 8);
    assert_eq!(
        whole
            .groups
            .iter()
            .map(|(g, m)| (g.id.as_str(), m.len()))
            .collect::<Vec<_>>(),
        [("g1", 7), ("g2", 0), ("g3", 3), ("g4", 0)]
    );
}

/// Counts the SQL statements run on behalf of a future, whatever thread runs them.
///
/// The driver reports every query it runs as a `tracing` event of target `db::SQL_TARGET` at
/// `debug`, on the caller's thread inside the caller's span. A global subscriber attributes
/// each such event to the `count_statements` span it happens in, so tests running in parallel
/// do not count each other's statements.
mod counting {
    use super::*;
    use tracing::span::{Attributes, Id};
    use tracing::{field, Event, Subscriber};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    /// The counters by key; a `count_statements` span carries its key.
    fn counters() -> &'static Mutex<HashMap<u64, Arc<AtomicUsize>>> {
        static C: OnceLock<Mutex<HashMap<u64, Arc<AtomicUsize>>>> = OnceLock::new();
        C.get_or_init(Default::default)
    }

    struct Key(u64);

    struct KeyVisitor(Option<u64>);

    impl field::Visit for KeyVisitor {
        fn record_u64(&mut self, f: &field::Field, v: u64) {
            if f.name() == "key" {
                self.0 = Some(v);
            }
        }
        fn record_debug(&mut self, _: &field::Field, _: &dyn std::fmt::Debug) {}
    }

    struct CountLayer;

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for CountLayer {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            if attrs.metadata().name() != "count_statements" {
                return;
            }
            let mut v = KeyVisitor(None);
            attrs.record(&mut v);
            if let (Some(key), Some(span)) = (v.0, ctx.span(id)) {
                span.extensions_mut().insert(Key(key));
            }
        }

        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            // Queries; transaction control (at `trace`) is not a statement of the request's.
            if event.metadata().target() != db::SQL_TARGET
                || *event.metadata().level() != tracing::Level::DEBUG
            {
                return;
            }
            let Some(scope) = ctx.event_scope(event) else {
                return;
            };
            for span in scope {
                if let Some(Key(key)) = span.extensions().get::<Key>() {
                    if let Some(c) = counters().lock().unwrap().get(key) {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                    return;
                }
            }
        }
    }

    /// Runs `f` and returns its output and the number of statements it ran.
    pub async fn statements<F: std::future::Future>(f: F) -> (F::Output, usize) {
        static INIT: OnceLock<()> = OnceLock::new();
        INIT.get_or_init(|| {
            // Fails only if another test set a global subscriber first; the counts would then
            // be 0, which the callers refuse.
            let _ = tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(CountLayer),
            );
        });
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        let counter = Arc::new(AtomicUsize::new(0));
        counters().lock().unwrap().insert(key, counter.clone());
        let out = f
            .instrument(tracing::info_span!("count_statements", key))
            .await;
        counters().lock().unwrap().remove(&key);
        (out, counter.load(Ordering::SeqCst))
    }
}

/// The N+1 guard: a page of 100 Users with their groups, or of 100 Groups with their members,
/// costs as many statements as a page of 10, and a small absolute number.
#[tokio::test]
async fn a_page_costs_the_same_statements_whatever_its_size() {
    let s = mem().await;
    tenant(&s, "t").await;
    let users = ids("u", 110);
    for u in &users {
        add_user(&s, "t", u).await;
    }
    // 110 groups; every user is in at least two of them, every group has members.
    for g in 0..110 {
        let members: Vec<String> = (0..4).map(|k| users[(g + k * 37) % 110].clone()).collect();
        add_group(&s, "t", &format!("g{g:04}"), &format!("G {g}"), &members).await;
    }

    let mut costs = HashMap::new();
    for kind in [ResourceKind::User, ResourceKind::Group] {
        for count in [10, 100] {
            let (p, n) = counting::statements(s.read_page("t", kind, &page(count), BOTH)).await;
            let p = p.unwrap();
            assert_eq!(p.items.len() as u64, count);
            // Every item has its relation, read in full.
            assert!(p.items.iter().all(|r| match kind {
                ResourceKind::User => r.groups.as_ref().is_some_and(|g| g.len() >= 2),
                ResourceKind::Group => r.members.as_ref().is_some_and(|m| m.len() == 4),
            }));
            costs.insert((kind, count), n);
        }
        let (ten, hundred) = (costs[&(kind, 10)], costs[&(kind, 100)]);
        assert!(
            ten > 0,
            "no statement counted: is the counter still wired to the driver?"
        );
        assert_eq!(ten, hundred, "{kind:?}: a page's cost grows with its size");
        // COUNT, the page, the relations.
        assert!(hundred <= 3, "{kind:?}: {hundred} statements for a page");
        // Without relations, the relations' statement goes.
        let (_, bare) =
            counting::statements(s.read_page("t", kind, &page(100), Relations::NONE)).await;
        assert_eq!(bare + 1, hundred, "{kind:?}");
    }

    // An identity provider's lookup (`userName eq`, one match or none) is a page that ends
    // before it is full: its total needs no COUNT, so the page and the relations.
    for (name, found) in [("u0007@x", 1), ("nobody@x", 0)] {
        let q = ListQuery {
            max_candidates: None,
            filter: Some(crate::conformance::support::valid(
                crate::conformance::support::cmp(
                    "userName",
                    scim_proto::filter::CompareOp::Eq,
                    name,
                ),
                ResourceKind::User,
            )),
            ..page(100)
        };
        let (p, n) = counting::statements(s.read_page("t", ResourceKind::User, &q, BOTH)).await;
        let p = p.unwrap();
        assert_eq!((p.total, p.items.len()), (found, found as usize));
        assert!(n <= 2, "{n} statements for a lookup of {name}");
    }
    // A page after an offset that runs out is counted from its rows too; one past the end
    // needs the COUNT to say how many there are.
    let after = |start_index| ListQuery {
        max_candidates: None,
        page: PageRequest::Index {
            start_index,
            count: 100,
        },
        ..page(100)
    };
    let p = s
        .read_page("t", ResourceKind::User, &after(51), Relations::NONE)
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (110, 60));
    let p = s
        .read_page("t", ResourceKind::User, &after(500), Relations::NONE)
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (110, 0));

    // A User by id with its groups is one statement; a Group with its members two.
    let (u, n) =
        counting::statements(s.read_resource("t", ResourceKind::User, "u0001", BOTH)).await;
    assert!(u.unwrap().unwrap().groups.unwrap().len() >= 2);
    assert_eq!(n, 1);
    let (g, n) =
        counting::statements(s.read_resource("t", ResourceKind::Group, "g0001", BOTH)).await;
    assert_eq!(g.unwrap().unwrap().members.unwrap().len(), 4);
    assert_eq!(n, 2);
}

/// The relations of a page start from the page's ids and use indexes from there: a plan that
/// scans the tenant's users or memberships turns a list page of a 100,000-user tenant into a
/// quarter of a second.
#[tokio::test]
async fn page_relations_start_from_the_page_and_use_indexes() {
    let s = mem().await;
    tenant(&s, "t").await;
    for (sql, first) in [
        (super::reads::GROUPS_OF_SQL, "SCAN j"),
        (super::reads::MEMBERS_OF_SQL, "SCAN j"),
    ] {
        let rows: Vec<(i64, i64, i64, String)> = db::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
            .bind(r#"["a","b"]"#)
            .bind("t")
            .fetch_all(&s.reader)
            .await
            .unwrap();
        let plan: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
        assert!(
            plan.first().is_some_and(|p| p.starts_with(first)),
            "{sql}: {plan:?}"
        );
        assert!(
            plan.iter()
                .skip(1)
                .all(|p| !p.starts_with("SCAN") && !p.contains("(tenant_id=? AND kind=?)")),
            "{sql}: {plan:?}"
        );
    }
}
